"""Benchmark of the quantizer and the golden integer model (issue 14).

Every figure is printed as a ratio against a baseline measured in the same
run, on the same machine and the same images (house rule 10):

1. Accuracy table (float, W8, W6, W5, W4; groups 1 and the best G; LeNet and
   the in-house ResNet-20 on their Fashion-MNIST test sets): **to be added**
   by the accuracy part of issue 14, in :func:`accuracy_table` below.
2. Golden model speed: images/s of :func:`quant.golden.run` (C kernels)
   against the float PyTorch model (baseline), both at the same batch size,
   on LeNet-5-BN (the shipped checkpoint, quantized W8 here) and on a
   ResNet-20 in the reference layout (random adder weights in trained
   ranges, BN statistics from a calibration pass on synthetic images: there
   is no CIFAR-10 here).  The two models alternate, best of ``--repeats``
   runs each.  The golden model's numpy path
   (``ADDERHW_GOLDEN_BACKEND=numpy``) is timed too, on fewer images, and its
   integers are checked equal to the C kernels'.
3. Quantize wall time of that ResNet-20 with 1,000 calibration images
   (target: at most 60 s on 2 cores), as a ratio to the float model's time
   on the same 1,000 images.

Usage: ``python scripts/bench_quant.py [--lenet CKPT] [--batch 500] [--lenet-images N]
[--resnet-images N] [--numpy-images N] [--calib 1000] [--repeats 3] [--threads 2] [--skip-quantize]``
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from quant import golden
from quant.calibrate import float_logits, recalibrate_bn, synthetic_images
from quant.checkpoint import load
from quant.datasets import NORMALIZATION, load_dataset
from quant.models import resnet20
from quant.native import golden as native_golden
from quant.quantize import QuantConfig, quantize_model

__all__ = ["accuracy_table", "golden_speed", "main", "quantize_time", "reference_resnet20"]

LENET = "checkpoints/lenet5_bn_adder_fmnist.pt"


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def accuracy_table(args: argparse.Namespace) -> None:
    """Part 1: the accuracy table of issue 14 (float, W8/W6/W5/W4, groups 1 and best G; LeNet, ResNet-20).

    Placeholder: the accuracy work of issue 14 adds it here (columns with
    units, e.g. ``| model | bits | groups | int_accuracy_pct | drop_points |``).
    """
    print("## 1. accuracy table: not yet (added with the group-shared scales of issue 14)")


def reference_resnet20(calib_n: int = 256, *, seed: int = 0):
    """A ResNet-20 in the reference layout with adder weights ~ N(0, 8^2) and BN calibrated on synthetic images."""
    mean, std = NORMALIZATION["cifar10"]
    torch.manual_seed(seed)
    model = resnet20("adder")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".adder"):
                p.normal_(0.0, 8.0)  # trained reference adder weights reach about +-50..70
    recalibrate_bn(model, synthetic_images(calib_n, (3, 32, 32), seed=seed + 1), mean, std)
    return model, mean, std


def _speed_rows(label: str, model, im, x, mean, std, *, batch: int, numpy_images: int, repeats: int) -> None:
    # float and golden alternate, best of `repeats` each: a machine shared with other jobs is noisy
    t_float = t_gold = float("inf")
    for _ in range(repeats):
        _, t = _timed(lambda: float_logits(model, x, mean, std, batch=batch))
        t_float = min(t_float, t)
        q, t = _timed(lambda: golden.run(im, x, batch=batch))
        t_gold = min(t_gold, t)
    n = x.shape[0]
    xs = x[:numpy_images]
    old = os.environ.get("ADDERHW_GOLDEN_BACKEND")
    os.environ["ADDERHW_GOLDEN_BACKEND"] = "numpy"
    try:
        q_np, t_np = _timed(lambda: golden.run(im, xs, batch=batch))
    finally:
        if old is None:
            os.environ.pop("ADDERHW_GOLDEN_BACKEND")
        else:
            os.environ["ADDERHW_GOLDEN_BACKEND"] = old
    same = bool(np.array_equal(q[: xs.shape[0]], q_np))
    if not same:
        raise AssertionError(f"{label}: the golden model's C kernels and numpy path disagree")
    f_ips, g_ips, n_ips = n / t_float, n / t_gold, xs.shape[0] / t_np
    print(f"| {label} | {batch} | {n} | {f_ips:.1f} | {g_ips:.1f} | {g_ips / f_ips:.2f} | {n_ips:.1f} | "
          f"{n_ips / f_ips:.3f} | {same} |")


def golden_speed(args: argparse.Namespace) -> None:
    """Part 2: golden (C kernels) vs float model images/s, same batch, same images; numpy path for reference."""
    print(f"## 2. golden model speed (ratio vs the float model in this run; {native_golden.threads()} threads, "
          f"golden backend {native_golden.backend()})")
    print("| model | batch | images | float_img_per_s | golden_img_per_s | golden/float | "
          "golden_numpy_img_per_s | numpy/float | c==numpy |")
    print("|---|---|---|---|---|---|---|---|---|")
    ckpt = Path(args.lenet)
    if ckpt.is_file():
        ck = load(ckpt)
        mean, std = ck.meta["normalization"]["mean"], ck.meta["normalization"]["std"]
        xtr, _ = load_dataset("fashion-mnist", "train")
        x, _ = load_dataset("fashion-mnist", "test")
        calib = xtr[np.sort(np.random.default_rng(0).choice(xtr.shape[0], args.calib, replace=False))]
        im, _ = quantize_model(ck.model, calib, mean=mean, std=std, cfg=QuantConfig(bits=8))
        _speed_rows("LeNet-5-BN W8", ck.model, im, x[: args.lenet_images], mean, std, batch=args.batch,
                    numpy_images=min(args.numpy_images * 10, args.lenet_images), repeats=args.repeats)
    else:
        print(f"| LeNet-5-BN W8 | - | - | no checkpoint {ckpt} | | | | | |")
    model, mean, std = reference_resnet20()
    im, _ = quantize_model(model, synthetic_images(256, (3, 32, 32), seed=2), mean=mean, std=std,
                           cfg=QuantConfig(bits=8))
    x = synthetic_images(args.resnet_images, (3, 32, 32), seed=3)
    _speed_rows("ResNet-20 ref. layout W8", model, im, x, mean, std, batch=min(args.batch, args.resnet_images),
                numpy_images=args.numpy_images, repeats=args.repeats)


def quantize_time(args: argparse.Namespace) -> None:
    """Part 3: quantize wall time of the ResNet-20 with ``args.calib`` calibration images (target <= 60 s)."""
    model, mean, std = reference_resnet20()
    calib = synthetic_images(args.calib, (3, 32, 32), seed=2)
    _, t_float = _timed(lambda: float_logits(model, calib, mean, std))
    _, t_q = _timed(lambda: quantize_model(model, calib, mean=mean, std=std, cfg=QuantConfig(bits=8)))
    print(f"## 3. quantize time, ResNet-20 ref. layout W8, {args.calib} calibration images "
          f"({torch.get_num_threads()} torch threads)")
    print("| float_forward_s | quantize_s | quantize/float | target_s | within_target |")
    print("|---|---|---|---|---|")
    print(f"| {t_float:.2f} | {t_q:.2f} | {t_q / t_float:.1f} | 60 | {t_q <= 60.0} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lenet", default=LENET, help=f"LeNet-5-BN checkpoint (default {LENET})")
    ap.add_argument("--batch", type=int, default=500, help="batch of both models (default 500, golden.run's)")
    ap.add_argument("--lenet-images", type=int, default=10000)
    ap.add_argument("--resnet-images", type=int, default=256)
    ap.add_argument("--numpy-images", type=int, default=32, help="images for the numpy path (x10 for LeNet)")
    ap.add_argument("--calib", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each model, best kept (default 3)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the golden kernels: ADDERHW_GOLDEN_THREADS)")
    ap.add_argument("--skip-quantize", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    accuracy_table(args)
    golden_speed(args)
    if not args.skip_quantize:
        quantize_time(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
