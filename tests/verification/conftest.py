"""Session fixtures of the verification tests: one build cache, the shipped models quantised.

Everything is written under pytest's session temporary folder; simulator
builds are cached there per design and simulator (keyed by the Verilog's
hash), so each design is built once per session whatever the number of
tests that use it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CKPT = REPO / "checkpoints" / "lenet5_bn_adder_fmnist.pt"
SHIPPED_RESNET20 = REPO / "checkpoints" / "resnet20_adder_fmnist.pt"


@pytest.fixture(scope="session")
def build_root(tmp_path_factory) -> Path:
    """Build cache shared by every simulator test of the session."""
    return tmp_path_factory.mktemp("simbuild")


@pytest.fixture(scope="session")
def lenet_design(build_root):
    """The traced 4x4 engine that runs the shipped LeNet-5-BN (7 operations), emitted once into the build cache."""
    from hwsim.config import EngineConfig
    from verification.engine_host import emit_engine

    cfg = EngineConfig(rows=4, cols=4, act_words=(784, 1568), weight_words=100, max_k=400, trace=True)
    return emit_engine(cfg, max_ops=7, build_root=build_root)


@pytest.fixture(scope="session")
def lenet_dir(tmp_path_factory) -> Path:
    """The shipped LeNet-5-BN checkpoint quantised to an 8-bit fixed-point integer artifact.

    The checkpoint is tracked in git: a missing one is a failure, never a
    silent fall-back to another checkpoint.
    """
    return _shipped_w8(tmp_path_factory, SHIPPED_CKPT, "lenet5_bn")


@pytest.fixture(scope="session")
def resnet20_dir(tmp_path_factory) -> Path:
    """The shipped in-house ResNet-20 (Fashion-MNIST fitted to 3x32x32) quantised to W8, 256 calibration images."""
    return _shipped_w8(tmp_path_factory, SHIPPED_RESNET20, "resnet20")


def _shipped_w8(tmp_path_factory, ckpt: Path, name: str) -> Path:
    """``ckpt`` (tracked in git) quantised to W8 fixed point with 256 calibration images."""
    import torch

    from quant.quantizer.workflow import quantize_shipped

    assert ckpt.is_file(), f"the tracked checkpoint {ckpt} is missing"
    torch.set_num_threads(2)
    return quantize_shipped(ckpt, tmp_path_factory.mktemp(f"{name}_int8"), name=name)
