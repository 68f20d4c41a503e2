"""Benchmark of the verification flow: LeNet-5-BN layer by layer on Icarus vs Verilator.

Quantises the shipped checkpoint (``checkpoints/lenet5_bn_adder_fmnist.pt``,
or the development one under ``build/dev`` while it is missing) to 8-bit
fixed point, generates the 4x4 adder design for it, and runs the whole
network through the RTL on both simulators (builds cached under
``build/verify``).  Prints wall time, simulated cycles and cycles per second
for each simulator and the Verilator/Icarus speed ratio measured in this run
(the baseline is Icarus).

Usage::

    .venv/bin/python scripts/bench_verify.py [--images N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[1]


def _artifact(out: Path) -> Path:
    import numpy as np
    import torch

    from quant import checkpoint
    from quant.artifact import save_int_model
    from quant.datasets import load_dataset
    from quant.quantize import QuantConfig, quantize_model

    ckpt = REPO / "checkpoints" / "lenet5_bn_adder_fmnist.pt"
    if not ckpt.exists():
        ckpt = REPO / "build" / "dev" / "lenet5_bn_adder_fmnist_dev.pt"
    torch.set_num_threads(2)
    ck = checkpoint.load(ckpt)
    images, _ = load_dataset("fashion-mnist", "train")
    calib = images[np.random.default_rng(0).choice(images.shape[0], 256, replace=False)]
    norm = ck.meta["normalization"]
    model, _ = quantize_model(ck.model, calib, mean=norm["mean"], std=norm["std"],
                              cfg=QuantConfig(bits=8, requant="fixed"), name="lenet5_bn",
                              dataset="fashion-mnist")
    save_int_model(model, out)
    print(f"artifact: {ckpt.name} -> {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    from quant.artifact import load_int_model
    from verification.runner import Design, build
    from verification.suite import DesignSpec, config_for_model, generate_design, run_design

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=1, help="test images run through the network (default 1)")
    args = p.parse_args(argv)
    root = REPO / "build" / "bench_verify"
    model_dir = _artifact(root / "lenet_int8")
    model = load_int_model(model_dir)
    meta = generate_design(DesignSpec("lenet", config_for_model(model, rows=4, cols=4)), root / "designs")
    rates = {}
    for sim in ("icarus", "verilator"):
        t0 = time.monotonic()
        # the first call builds (cached afterwards): timed separately from the run
        build(Design(meta.verilog, meta.name), sim, build_root=REPO / "build" / "verify")
        t_build = time.monotonic() - t0
        t1 = time.monotonic()
        run = run_design(meta, sim, out_dir=root / f"run-{sim}", build_root=REPO / "build" / "verify",
                         testcases=["network"], model_dir=model_dir, network=True,
                         images=list(range(args.images)))
        wall = time.monotonic() - t1
        case = run.case("network")
        cycles = case.record.get("cycles_measured") or 0
        status = "pass" if case.passed else "FAIL"
        rates[sim] = cycles / case.wall_s if case.wall_s else 0.0
        print(f"{sim:9s} {status}  build_s={t_build:6.1f}  run_wall_s={wall:6.1f}  test_s={case.wall_s:6.1f}  "
              f"cycles={cycles}  cycles_per_s={rates[sim]:8.0f}")
        if not case.passed:
            print(f"  {case.message}", file=sys.stderr)
            return 1
    print(f"verilator/icarus speed ratio: {rates['verilator'] / rates['icarus']:.2f}x (baseline: icarus, same run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
