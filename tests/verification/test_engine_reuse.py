"""Weight reuse across a pixel tile (``EngineConfig.pixel_tile``) under cocotb on Verilator.

The shipped LeNet-5-BN (W8) on the 4x4 engine with pixel tiles of 8, tracing
every layer: logits, every traced layer, cycles and every counter (the
weight-buffer reads a conv makes once per pixel tile) equal golden and hwsim,
also under back-pressure; and the address generator's ``bank_off`` mutant
(each step's accumulator bank one too high) is caught on a small model.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.config import EngineConfig
from hwsim.engine import EngineModel
from hwsim.samples import SMALL_ENGINE, small_model
from quant.intmodel.artifact import load_int_model, save_int_model
from tests.verification.test_engine import SEED, _check, lenet_images  # noqa: F401 - a fixture
from verification.engine_host import emit_engine, run_engine_tests

pytestmark = [pytest.mark.sim]


@pytest.mark.slow
def test_lenet_pixel_tiles_on_verilator(lenet_dir, lenet_images, build_root, tmp_path):
    print(f"seed {SEED}")
    cfg = EngineConfig(rows=4, cols=4, act_words=(784, 1568), weight_words=100, max_k=400, trace=True, pixel_tile=8)
    design = emit_engine(cfg, max_ops=7, build_root=build_root)
    tests = ["images", "back_pressure"]
    run = run_engine_tests(design, "verilator", model_dir=lenet_dir, images=lenet_images[:2], out_dir=tmp_path,
                           build_root=build_root, seed=SEED, testcases=tests)
    _check(run, tests)  # logits == golden == reference, traced layers, counters == hwsim, cycles exact
    model = load_int_model(lenet_dir)
    reads = {l.name: l.wbuf_reads for l in EngineModel(cfg).estimate(model).layers}
    plain = {l.name: l.wbuf_reads for l in EngineModel(cfg.replace(pixel_tile=1)).estimate(model).layers}
    (im, *_) = run.case("images").record["images"]
    seen = {op["name"]: op["counters"]["wbuf_reads"] for op in im["ops"]}
    assert seen == reads and seen["conv1"] * 7 < plain["conv1"]


def test_bank_off_mutant_is_caught(build_root, tmp_path):
    print(f"seed {SEED}")
    rng = np.random.default_rng([SEED, 24])
    model = small_model(rng, c0=2, h=4, w=4, c1=3, bits=5)
    d = tmp_path / "model"
    save_int_model(model, d)
    x = rng.integers(model.input.lo, model.input.hi + 1, size=model.input_shape)
    cfg = EngineConfig(**{**SMALL_ENGINE, "pixel_tile": 2})
    bad = emit_engine(cfg, max_ops=8, mutation="bank_off", build_root=build_root)
    run = run_engine_tests(bad, "verilator", model_dir=d, images=[x], out_dir=tmp_path / "run",
                           build_root=build_root, seed=SEED, testcases=["images"])
    case = run.case("images")
    assert not case.passed, "the accumulator bank off by one went unnoticed"
    (im,) = case.record["images"]
    assert im["logits"] != im["golden"]


@pytest.mark.slow
def test_lenet_resident_pixel_tiles_on_verilator(lenet_dir, build_root, tmp_path):
    """The shipped LeNet-5-BN W8 with resident weights and pixel tiles of 8 (the issue's two reuses together):
    one load, then two images, also under back-pressure and with a reset in the middle; logits, the load phase
    and every image's cycles and counters exact."""
    from hwsim.sizing import size_engine
    from quant.intmodel import golden
    from quant.training.datasets import load_dataset
    from tests.verification.test_engine_resident import _check_load

    print(f"seed {SEED}")
    model = load_int_model(lenet_dir)
    images, _ = load_dataset(model.dataset, "test")
    codes = list(golden.quantize_input(images[:2], model.input))
    cfg, compiled = size_engine(model, rows=4, cols=4, weights="resident", part="ecp5-25k", pixel_tile=8)
    assert cfg.resident and cfg.pixel_tile == 8
    design = emit_engine(cfg, max_ops=len(compiled.program.ops), build_root=build_root)
    tests = ["images", "back_pressure", "reset_mid_network"]
    run = run_engine_tests(design, "verilator", model_dir=lenet_dir, images=codes, compiled=compiled,
                           out_dir=tmp_path, build_root=build_root, seed=SEED, testcases=tests)
    _check(run, tests)
    _check_load(run, tests)
    streamed_tp1 = EngineModel(cfg.replace(pixel_tile=1)).estimate(model).totals()["wbuf_reads"]
    for r in run.case("images").record["images"]:
        assert sum(op["counters"]["w_beats"] for op in r["ops"]) == 0
        assert sum(op["counters"]["wbuf_reads"] for op in r["ops"]) < streamed_tp1 / 4
