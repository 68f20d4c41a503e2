"""Benchmark and full-size checks of the golden integer model.

1. LeNet-5-BN on the whole Fashion-MNIST test set, for every bit width of the
   sweep and both requant modes: golden == fake-quant exactly (asserted),
   integer vs float accuracy, and golden time as a ratio to the float
   PyTorch model on the same images (baseline measured in the same run).
2. A ResNet-20 in the reference layout with random weights in trained ranges
   (adder weights ~ N(0, 8^2), BN statistics from a calibration pass on
   synthetic images; there is no CIFAR-10 here): integer/float top-1
   agreement and golden == fake-quant.

Usage: ``python scripts/bench_golden.py [CKPT] [--sweep 8,6,5,4] [--resnet-images N] [--skip-resnet] [--skip-lenet]
[--json PATH]`` (CKPT defaults to checkpoints/lenet5_bn_adder_fmnist.pt, else the dev one).  Besides printing
them, it writes its tables to ``--json`` (default ``build/bench/golden.json``) for
``python -m scripts.results collect --bench``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from quant.base.intops import NetKind, RequantMode
from quant.intmodel import golden
from quant.training.checkpoint import load
from quant.training.datasets import NORMALIZATION, load_dataset
from quant.quantizer.fakequant import FakeQuantModel
from quant.net.models import resnet20
from quant.quantizer.calibrate import float_logits, recalibrate_bn, synthetic_images
from quant.quantizer.config import QuantConfig
from quant.quantizer.quantize import quantize_model
from quant.quantizer.report import tool_versions
from scripts.results import BenchTable, bench_command, bench_json_option, write_bench

__all__ = ["main"]

CANDIDATES = ("checkpoints/lenet5_bn_adder_fmnist.pt", "build/dev/lenet5_bn_adder_fmnist_dev.pt")


def _lenet(ckpt: Path, widths, calib_n: int) -> BenchTable:
    ck = load(ckpt)
    mean, std = ck.meta["normalization"]["mean"], ck.meta["normalization"]["std"]
    xtr, _ = load_dataset("fashion-mnist", "train")
    x, y = load_dataset("fashion-mnist", "test")
    calib = xtr[np.sort(np.random.default_rng(0).choice(xtr.shape[0], calib_n, replace=False))]
    t0 = time.perf_counter()
    fl = float_logits(ck.model, x, mean, std)
    t_float = time.perf_counter() - t0
    facc = 100 * np.mean(fl.argmax(1) == y)
    print(f"LeNet-5-BN {ckpt}: float accuracy {facc:.2f}% on {len(y)} test images; float model {t_float:.2f} s")
    print("| bits | requant | int_accuracy_pct | drop_points | golden_s | golden/float_time | golden==fakequant |")
    print("|---|---|---|---|---|---|---|")
    rows = [dict(bits="float", requant="-", accuracy_pct=round(float(facc), 2), drop_points=0.0,
                 time_s=round(t_float, 2), golden_over_float_time_x=None, golden_equals_fakequant=None,
                 images=int(len(y)))]
    for bits in widths:
        for mode in RequantMode:
            im, _ = quantize_model(ck.model, calib, mean=mean, std=std, cfg=QuantConfig(bits=bits, requant=mode))
            t0 = time.perf_counter()
            q = golden.run(im, x)
            t_gold = time.perf_counter() - t0
            fq = FakeQuantModel(im).forward_int(x).numpy()
            same = bool(np.array_equal(q, fq))
            assert same, f"golden != fake-quant at W{bits} {mode}"
            iacc = 100 * np.mean(q.argmax(1) == y)
            print(f"| {bits} | {mode} | {iacc:.2f} | {facc - iacc:.2f} | {t_gold:.2f} | {t_gold / t_float:.2f} | {same} |")
            rows.append(dict(bits=bits, requant=str(mode), accuracy_pct=round(float(iacc), 2),
                             drop_points=round(float(facc - iacc), 2), time_s=round(t_gold, 2),
                             golden_over_float_time_x=round(t_gold / t_float, 2), golden_equals_fakequant=same,
                             images=int(len(y))))
    return BenchTable("lenet", f"LeNet-5-BN {ckpt}: golden model vs float on the Fashion-MNIST test set "
                               f"({calib_n} calibration images; the float row is the float model)", tuple(rows))


def _resnet(n_images: int, bits: int) -> BenchTable:
    mean, std = NORMALIZATION["cifar10"]
    torch.manual_seed(0)
    model = resnet20(NetKind.ADDER)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".adder"):
                p.normal_(0.0, 8.0)
    recalibrate_bn(model, synthetic_images(256, (3, 32, 32), seed=1), mean, std)
    im, _ = quantize_model(model, synthetic_images(256, (3, 32, 32), seed=2), mean=mean, std=std, cfg=QuantConfig(bits=bits))
    x = synthetic_images(n_images, (3, 32, 32), seed=3)
    t0 = time.perf_counter()
    fl = float_logits(model, x, mean, std)
    t_float = time.perf_counter() - t0
    t0 = time.perf_counter()
    q = golden.run(im, x, batch=64)
    t_gold = time.perf_counter() - t0
    fq = FakeQuantModel(im).forward_int(x[:64]).numpy()
    same = bool(np.array_equal(q[:64], fq))
    agree = 100 * np.mean(q.argmax(1) == fl.argmax(1))
    adder_w = np.concatenate([p.detach().numpy().ravel() for n, p in model.named_parameters() if n.endswith(".adder")])
    print(
        f"ResNet-20 reference layout, random adder weights (|w| max {np.abs(adder_w).max():.1f}, std {adder_w.std():.1f}), "
        f"W{bits}: int/float top-1 agreement {agree:.1f}% on {n_images} synthetic images; "
        f"golden {t_gold:.2f} s vs float {t_float:.2f} s (ratio {t_gold / t_float:.2f}); golden==fakequant on 64: {same}"
    )
    assert same
    return BenchTable("resnet20", "ResNet-20 reference layout, random adder weights, synthetic images", (dict(
        bits=bits, images=n_images, adder_weight_abs_max=round(float(np.abs(adder_w).max()), 1),
        adder_weight_std=round(float(adder_w.std()), 1), int_float_top1_agreement_pct=round(float(agree), 1),
        golden_s=round(t_gold, 2), float_s=round(t_float, 2), golden_over_float_time_x=round(t_gold / t_float, 2),
        golden_equals_fakequant_on_64=same),))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", nargs="?", default=None)
    ap.add_argument("--sweep", default="8,6,5,4")
    ap.add_argument("--calib", type=int, default=1000)
    ap.add_argument("--resnet-images", type=int, default=256)
    ap.add_argument("--resnet-bits", type=int, default=8)
    ap.add_argument("--skip-resnet", action="store_true")
    ap.add_argument("--skip-lenet", action="store_true")
    bench_json_option(ap, "golden")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    ckpt = args.checkpoint or next((c for c in CANDIDATES if Path(c).is_file()), None)
    tables = []
    if args.skip_lenet:
        pass
    elif ckpt is None:
        print("no LeNet checkpoint found; skipping the LeNet part")
    else:
        tables.append(_lenet(Path(ckpt), [int(b) for b in args.sweep.split(",")], args.calib))
    if not args.skip_resnet:
        tables.append(_resnet(args.resnet_images, args.resnet_bits))
    write_bench(args.json, bench="golden", title="Benchmark: the golden integer model at full size", tables=tables,
                command=bench_command(__file__, argv), tools=tool_versions())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
