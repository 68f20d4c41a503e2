"""Benchmark of the quantizer and the golden integer model (issue 14).

Every figure is printed as a ratio against a baseline measured in the same
run, on the same machine and the same images (house rule 10):

1. Accuracy table: the shipped LeNet-5-BN and in-house ResNet-20
   checkpoints quantised at every width of ``--widths`` (8,6,5,4) with every
   ``--groups`` (1,4) and ``--rounding`` (nearest,greedy) through the
   library calls of ``adderhw quantize`` (the same calibration images:
   ``--calib`` training images, seed 0; ResNet-20's fitted input from its
   checkpoint metadata), integer (golden) and float top-1 accuracy on the
   first ``--eval`` test images (default: the whole Fashion-MNIST test set),
   the drop against the float model measured on the same images, and each
   quantize's wall time.  Progress goes to stderr.
2. Golden model speed: images/s of :func:`quant.intmodel.golden.run` (C kernels)
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

Usage: ``python scripts/bench_quant.py [--models lenet,resnet20] [--resnet CKPT] [--widths 8,6,5,4]
[--groups 1,4] [--rounding nearest,greedy] [--eval N] [--skip-accuracy] [--lenet CKPT] [--batch 500]
[--lenet-images N] [--resnet-images N] [--numpy-images N] [--calib 1000] [--repeats 3] [--threads 2]
[--skip-speed] [--skip-quantize] [--json PATH]``

Besides printing them, it writes the tables of the parts it ran to ``--json``
(default ``build/bench/quant.json``) for ``python -m scripts.results collect --bench``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from quant.base.intops import NetKind
from quant.intmodel import golden
from quant.quantizer.calibrate import float_logits, recalibrate_bn, synthetic_images
from quant.training.checkpoint import load
from quant.training.datasets import NORMALIZATION, load_dataset
from quant.net.models import resnet20
from quant.intmodel import native as native_golden
from quant.quantizer.config import QuantConfig
from quant.quantizer.quantize import quantize_model
from quant.quantizer.rounding import ROUNDINGS, Rounding
from quant.quantizer.workflow import calibration_images, evaluation_set
from quant.quantizer.report import tool_versions
from scripts.results import BenchTable, bench_command, bench_json_option, write_bench

__all__ = ["MODELS", "accuracy_rows", "accuracy_table", "golden_speed", "main", "quantize_time", "reference_resnet20"]

LENET = "checkpoints/lenet5_bn_adder_fmnist.pt"
RESNET = "checkpoints/resnet20_adder_fmnist.pt"
#: Models of the accuracy table: ``{name: (label, args attribute holding its checkpoint)}``.
MODELS = {"lenet": ("LeNet-5-BN", "lenet"), "resnet20": ("ResNet-20", "resnet")}


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _pct(pred, labels) -> float:
    return round(100.0 * float(np.mean(pred == labels)), 2)


def accuracy_rows(ckpt, *, widths, groups, roundings, calib: int, eval_images=None, label: str = "", seed: int = 0):
    """Rows of the accuracy table for one checkpoint: one dict per (width, groups, rounding), float first.

    Calibration and evaluation images are those of ``adderhw quantize``
    (:func:`quant.quantizer.workflow.calibration_images`, :func:`quant.quantizer.workflow.evaluation_set`);
    each config is quantised with :func:`quant.quantizer.quantize.quantize_model` and
    run by the golden model; the float model runs once on the same images.
    """
    ck = load(Path(ckpt))
    mean, std = ck.meta["normalization"]["mean"], ck.meta["normalization"]["std"]
    cal = calibration_images(ck, calib=calib, seed=seed)
    x, y = evaluation_set(ck.meta["dataset"], cal, eval_images=eval_images)
    if y is None:
        raise ValueError(f"{ckpt}: no {ck.meta['dataset']} test set on this machine")
    _progress(f"[{label}] float model on {x.shape[0]} test images ...")
    fl, t_f = _timed(lambda: float_logits(ck.model, x, mean, std))
    pred_f = fl.argmax(1)
    f_acc = _pct(pred_f, y)
    _progress(f"[{label}] float {f_acc} % ({t_f:.1f} s)")
    rows = [dict(model=label, bits="float", groups="-", rounding="-", int_accuracy=f_acc, drop=0.0, agreement=100.0,
                 quantize_s=None, golden_s=round(t_f, 1), images=int(x.shape[0]))]
    for bits in widths:
        for g in groups:
            for rnd in roundings:
                cfg = QuantConfig(bits=bits, groups=g, rounding=rnd)
                _progress(f"[{label}] W{bits} G{g} {rnd}: quantize ...")
                (im, _), t_q = _timed(lambda: quantize_model(ck.model, cal, mean=mean, std=std, cfg=cfg, seed=seed))
                q, t_g = _timed(lambda: golden.run(im, x))
                pred = q.argmax(1)
                acc = _pct(pred, y)
                rows.append(dict(model=label, bits=bits, groups=g, rounding=cfg.rounding, int_accuracy=acc,
                                 drop=round(f_acc - acc, 2), agreement=_pct(pred, pred_f), quantize_s=round(t_q, 1),
                                 golden_s=round(t_g, 1), images=int(x.shape[0])))
                _progress(f"[{label}] W{bits} G{g} {rnd}: int {acc} % (drop {rows[-1]['drop']}), quantize {t_q:.1f} s, "
                          f"golden {t_g:.1f} s")
    return rows


def accuracy_table(args: argparse.Namespace) -> BenchTable:
    """Part 1: the accuracy table (module docstring), one row per model and config, the float model first."""
    which = "all the" if args.eval is None else f"the first {args.eval}"
    title = (f"accuracy (top-1 on {which} Fashion-MNIST test images; {args.calib} calibration images; "
             f"drop = float - int on the same images)")
    print(f"## 1. {title}")
    rows = []
    print("| model | bits | groups | rounding | int_accuracy_pct | drop_points | int_float_agreement_pct | "
          "quantize_s | golden_s | images |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        label, attr = MODELS[name]
        ckpt = Path(getattr(args, attr))
        if not ckpt.is_file():
            print(f"| {label} | - | - | - | no checkpoint {ckpt} | | | | | |", flush=True)
            rows.append(dict(model=label, bits=None, groups=None, rounding=None, int_accuracy_pct=None,
                             drop_points=None, int_float_agreement_pct=None, quantize_s=None, golden_s=None,
                             images=None, note=f"no checkpoint {ckpt}"))
            continue
        for r in accuracy_rows(ckpt, widths=args.widths, groups=args.groups, roundings=args.rounding, calib=args.calib,
                               eval_images=args.eval, label=label):
            rows.append(dict(model=r["model"], bits=r["bits"], groups=r["groups"], rounding=str(r["rounding"]),
                             int_accuracy_pct=r["int_accuracy"], drop_points=r["drop"],
                             int_float_agreement_pct=r["agreement"], quantize_s=r["quantize_s"],
                             golden_s=r["golden_s"], images=r["images"],
                             note="float model" if r["bits"] == "float" else ""))
            acc = f"{r['int_accuracy']:.2f}" + (" (float)" if r["bits"] == "float" else "")
            print(f"| {r['model']} | {r['bits']} | {r['groups']} | {r['rounding']} | {acc} | {r['drop']:.2f} | "
                  f"{r['agreement']:.2f} | {'-' if r['quantize_s'] is None else r['quantize_s']} | {r['golden_s']} | "
                  f"{r['images']} |", flush=True)
    return BenchTable("accuracy", title, tuple(rows))


def reference_resnet20(calib_n: int = 256, *, seed: int = 0):
    """A ResNet-20 in the reference layout with adder weights ~ N(0, 8^2) and BN calibrated on synthetic images."""
    mean, std = NORMALIZATION["cifar10"]
    torch.manual_seed(seed)
    model = resnet20(NetKind.ADDER)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".adder"):
                p.normal_(0.0, 8.0)  # trained reference adder weights reach about +-50..70
    recalibrate_bn(model, synthetic_images(calib_n, (3, 32, 32), seed=seed + 1), mean, std)
    return model, mean, std


def _speed_rows(label: str, model, im, x, mean, std, *, batch: int, numpy_images: int, repeats: int) -> dict:
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
    return dict(model=label, batch=batch, images=n, float_img_per_s=round(f_ips, 1), golden_img_per_s=round(g_ips, 1),
                golden_over_float_x=round(g_ips / f_ips, 2), numpy_images=int(xs.shape[0]),
                numpy_img_per_s=round(n_ips, 1), numpy_over_float_x=round(n_ips / f_ips, 3), numpy_equal=same)


def golden_speed(args: argparse.Namespace) -> BenchTable:
    """Part 2: golden (C kernels) vs float model images/s, same batch, same images; numpy path for reference."""
    title = (f"golden model speed (ratio vs the float model in this run; {native_golden.threads()} threads, "
             f"golden backend {native_golden.backend()})")
    print(f"## 2. {title}")
    rows = []
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
        rows.append(_speed_rows("LeNet-5-BN W8", ck.model, im, x[: args.lenet_images], mean, std, batch=args.batch,
                                numpy_images=min(args.numpy_images * 10, args.lenet_images), repeats=args.repeats))
    else:
        print(f"| LeNet-5-BN W8 | - | - | no checkpoint {ckpt} | | | | | |")
    model, mean, std = reference_resnet20()
    im, _ = quantize_model(model, synthetic_images(256, (3, 32, 32), seed=2), mean=mean, std=std,
                           cfg=QuantConfig(bits=8))
    x = synthetic_images(args.resnet_images, (3, 32, 32), seed=3)
    rows.append(_speed_rows("ResNet-20 ref. layout W8", model, im, x, mean, std,
                            batch=min(args.batch, args.resnet_images), numpy_images=args.numpy_images,
                            repeats=args.repeats))
    return BenchTable("speed", title, tuple(rows))


def quantize_time(args: argparse.Namespace) -> BenchTable:
    """Part 3: quantize wall time of the ResNet-20 with ``args.calib`` calibration images (target <= 60 s)."""
    model, mean, std = reference_resnet20()
    calib = synthetic_images(args.calib, (3, 32, 32), seed=2)
    _, t_float = _timed(lambda: float_logits(model, calib, mean, std))
    _, t_q = _timed(lambda: quantize_model(model, calib, mean=mean, std=std, cfg=QuantConfig(bits=8)))
    title = f"quantize time, ResNet-20 ref. layout W8, {args.calib} calibration images ({torch.get_num_threads()} torch threads)"
    print(f"## 3. {title}")
    print("| float_forward_s | quantize_s | quantize/float | target_s | within_target |")
    print("|---|---|---|---|---|")
    print(f"| {t_float:.2f} | {t_q:.2f} | {t_q / t_float:.1f} | 60 | {t_q <= 60.0} |")
    return BenchTable("quantize_time", title, (dict(float_forward_s=round(t_float, 2), quantize_s=round(t_q, 2),
                                                    quantize_over_float_x=round(t_q / t_float, 1), target_s=60,
                                                    within_target=t_q <= 60.0),))


def _int_list(what: str, lo: int, hi: int):
    def parse(text: str) -> list[int]:
        try:
            vals = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be comma-separated integers, not {text!r}") from None
        if not vals or any(not lo <= v <= hi for v in vals) or len(set(vals)) != len(vals):
            raise argparse.ArgumentTypeError(f"{what} needs distinct integers in {lo}..{hi}, not {text!r}")
        return vals
    return parse


def _names(what: str, known):
    def parse(text: str) -> list[str]:
        vals = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in vals if v not in known]
        if not vals or bad or len(set(vals)) != len(vals):
            raise argparse.ArgumentTypeError(f"{what} must be distinct names of {', '.join(known)}, not {text!r}")
        return vals
    return parse


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=_names("--models", tuple(MODELS)), default=list(MODELS),
                    help="models of the accuracy table (default lenet,resnet20)")
    ap.add_argument("--resnet", default=RESNET, help=f"ResNet-20 checkpoint (default {RESNET})")
    ap.add_argument("--widths", type=_int_list("--widths", 2, 16), default=[8, 6, 5, 4],
                    help="weight/activation bits of the accuracy table (default 8,6,5,4)")
    ap.add_argument("--groups", type=_int_list("--groups", 1, 1 << 16), default=[1, 4],
                    help="scale groups of the accuracy table (default 1,4)")
    ap.add_argument("--rounding", type=_names("--rounding", ROUNDINGS), default=[Rounding.NEAREST, Rounding.GREEDY],
                    help=f"weight roundings of the accuracy table, of {', '.join(ROUNDINGS)} (default nearest,greedy)")
    ap.add_argument("--eval", type=int, default=None, metavar="N",
                    help="accuracy on the first N test images (default: all)")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--lenet", default=LENET, help=f"LeNet-5-BN checkpoint (default {LENET})")
    ap.add_argument("--batch", type=int, default=500, help="batch of both models (default 500, golden.run's)")
    ap.add_argument("--lenet-images", type=int, default=10000)
    ap.add_argument("--resnet-images", type=int, default=256)
    ap.add_argument("--numpy-images", type=int, default=32, help="images for the numpy path (x10 for LeNet)")
    ap.add_argument("--calib", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each model, best kept (default 3)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the golden kernels: ADDERHW_GOLDEN_THREADS)")
    ap.add_argument("--skip-quantize", action="store_true")
    bench_json_option(ap, "quant")
    args = ap.parse_args(argv)
    if args.eval is not None and args.eval < 1:
        ap.error(f"--eval must be a positive integer, not {args.eval}")
    torch.set_num_threads(args.threads)
    tables = []
    if not args.skip_accuracy:
        tables.append(accuracy_table(args))
    if not args.skip_speed:
        tables.append(golden_speed(args))
    if not args.skip_quantize:
        tables.append(quantize_time(args))
    write_bench(args.json, bench="quant", title="Benchmark: quantizer accuracy and golden-model speed", tables=tables,
                command=bench_command(__file__, argv), tools=tool_versions())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
