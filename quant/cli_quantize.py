"""``adderhw quantize`` and ``adderhw predict`` (torch is imported only when a command runs).

``quantize`` writes, atomically (a temporary folder renamed into place):
``OUT_DIR/manifest.json`` + ``weights.npz`` (the integer model),
``report.json`` and ``report.md``; with ``--sweep 8,6,5,4`` one such folder
per bit width (``OUT_DIR/w8`` ...) plus ``OUT_DIR/sweep.json`` and
``sweep.md``.

``predict`` runs the golden integer model (artifact folder; writes int64
integer logits) or the float model (checkpoint file; writes float32 logits)
on float32 ``[N, C, H, W]`` images in 0..1.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from quant.files import atomic_write_bytes

__all__ = ["register", "run_quantize", "run_predict", "quantize_to_dir", "parse_sweep"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``quantize`` and ``predict`` to the ``adderhw`` parser."""
    p = subparsers.add_parser(
        "quantize",
        help="quantize a checkpoint to an integer model (+ golden-model accuracy report)",
        description="Post-training quantisation of an AdderNet checkpoint (DESIGN section 2): "
        "writes OUT_DIR/{manifest.json,weights.npz,report.json,report.md}.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="adderhw checkpoint or bare reference state dict (.pt/.pth)")
    p.add_argument("--bits", type=int, default=None, help="weight bits of adder layers (default 8)")
    p.add_argument("--act-bits", type=int, default=None, help="activation bits of adder layers (default: --bits)")
    p.add_argument("--calib", type=int, default=1000, help="calibration images (default 1000)")
    p.add_argument("--percentile", type=_percentile, default=None, metavar="P|auto",
                   help="activation clipping percentile in (50, 100], or auto: per tensor, the best of "
                   "99..100 by quantisation MSE (default auto)")
    p.add_argument("--no-bias-correction", dest="bias_correction", action="store_false",
                   help="keep the folded BN bias as is (default: empirical per-channel bias correction)")
    p.add_argument("--requant", choices=("fixed", "threshold"), default="fixed", help="requant form of adder layers")
    p.add_argument("--groups", type=int, default=1, help="scale groups per adder layer (only 1 is implemented)")
    p.add_argument("--calib-data", metavar="FILE.npy", default=None,
                   help="calibration images: float32 [N, C, H, W] in 0..1 (default: the dataset's training split)")
    p.add_argument("--data-root", default=None, metavar="DIR",
                   help="dataset folder for calibration and evaluation (MNIST IDX files, CIFAR-10 python batches; "
                        "default: Debian's Fashion-MNIST folder)")
    p.add_argument("--model", default=None, help="model name for bare state dicts (lenet5-bn, resnet20, resnet32)")
    p.add_argument("--dataset", default=None, help="dataset for bare state dicts (fashion-mnist, mnist, cifar10)")
    p.add_argument("--sweep", default=None, metavar="B1,B2,...", help="quantize at several weight bit widths, e.g. 8,6,5,4")
    p.add_argument("--eval", type=int, default=None, metavar="N", help="evaluate on the first N test images (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration subset (default 0)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder (replaced atomically)")
    p.set_defaults(func=run_quantize)

    q = subparsers.add_parser(
        "predict",
        help="run the golden integer model (or a float checkpoint) on images",
        description="Logits of float32 [N, C, H, W] images in 0..1 (before normalisation). "
        "An integer model folder writes int64 integer logits; a checkpoint writes float32 logits.",
    )
    q.add_argument("model", metavar="MODEL_DIR_OR_CKPT")
    q.add_argument("input", metavar="INPUT.npy")
    q.add_argument("-o", "--output", required=True, metavar="LOGITS.npy")
    q.add_argument("--labels", action="store_true", help="print the class name of each top-1 prediction")
    q.add_argument("--model-name", dest="model_name", default=None, help="model name for bare state dicts")
    q.add_argument("--dataset", default=None, help="dataset for bare state dicts")
    q.set_defaults(func=run_predict)


def _percentile(text: str):
    if text == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or auto, not {text!r}") from None


def parse_sweep(text: str) -> list[int]:
    """``"8,6,5,4"`` -> ``[8, 6, 5, 4]`` (distinct integers in 2..16)."""
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--sweep must be comma-separated integers, not {text!r}") from None
    if not vals or len(set(vals)) != len(vals) or any(not 2 <= v <= 16 for v in vals):
        raise ValueError(f"--sweep needs distinct bit widths in 2..16, not {text!r}")
    return vals


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for blk in iter(lambda: fh.read(1 << 20), b""):
            h.update(blk)
    return h.hexdigest()


def _load_images(path: str, what: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} {path}: no such file")
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{what} {path}: not a readable .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 4 or arr.dtype.kind != "f":
        raise ValueError(f"{what} {path}: expected float32 [N, C, H, W] images, not {getattr(arr, 'dtype', '?')} {getattr(arr, 'shape', '?')}")
    if arr.shape[0] == 0:
        raise ValueError(f"{what} {path}: no images")
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"{what} {path}: values must be finite and in 0..1 (images before normalisation)")
    return arr.astype(np.float32)


def _versions() -> dict:
    from importlib import metadata

    import torch

    try:
        own = metadata.version("adderhw")
    except metadata.PackageNotFoundError:  # running from a source tree
        own = "0+unknown"
    return {"adderhw": own, "torch": torch.__version__, "numpy": np.__version__, "python": sys.version.split()[0]}


def _atomic_dir(out: Path):
    """A temporary folder beside ``out``; :func:`_commit_dir` renames it into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp.", dir=out.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _commit_dir(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        if not out.is_dir():
            raise ValueError(f"{out} exists and is not a folder")
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        os.replace(out, old / "x")
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _sqnr(ref: np.ndarray, got: np.ndarray) -> float | None:
    sig = float(np.sum(ref.astype(np.float64) ** 2))
    noise = float(np.sum((ref.astype(np.float64) - got) ** 2))
    if sig == 0:
        return None
    if noise == 0:
        return float("inf")
    return round(10 * np.log10(sig / noise), 2)


def quantize_to_dir(ck, calib, evalset, cfg, out_dir: Path, *, source: dict, name: str, dataset: str, class_names, seed: int) -> dict:
    """Quantize, evaluate with the golden model, write the artifact and reports into ``out_dir``."""
    from quant import golden
    from quant.artifact import save_int_model
    from quant.intops import dequantize
    from quant.opcount import count_int_layer
    from quant.calibrate import float_logits, float_node_outputs, trace
    from quant.quantize import quantize_model

    mean, std = ck.meta["normalization"]["mean"], ck.meta["normalization"]["std"]
    t0 = time.perf_counter()
    im, fmap = quantize_model(ck.model, calib, mean=mean, std=std, cfg=cfg, name=name, dataset=dataset,
                              class_names=class_names, source=source, seed=seed)
    t_quant = time.perf_counter() - t0
    x_eval, y_eval = evalset
    t0 = time.perf_counter()
    q = golden.run(im, x_eval)
    t_golden = time.perf_counter() - t0
    fl = float_logits(ck.model, x_eval, mean, std)
    pred_i, pred_f = q.argmax(1), fl.argmax(1)
    report: dict = {
        "tool": "adderhw quantize",
        "versions": _versions(),
        "source": source,
        "model": name,
        "dataset": dataset,
        "bits": cfg.bits,
        "act_bits": cfg.act_bits,
        "requant": cfg.requant,
        "percentile": "auto" if cfg.percentile is None else cfg.percentile,
        "bias_correction": cfg.bias_correction,
        "groups": cfg.groups,
        "calib_images": int(calib.shape[0]),
        "eval_images": int(x_eval.shape[0]),
        "eval_split": "test" if y_eval is not None else "calibration",
        "float_accuracy": None if y_eval is None else round(100.0 * float(np.mean(pred_f == y_eval)), 2),
        "int_accuracy": None if y_eval is None else round(100.0 * float(np.mean(pred_i == y_eval)), 2),
        "int_float_top1_agreement_pct": round(100.0 * float(np.mean(pred_i == pred_f)), 2),
        "quantize_seconds": round(t_quant, 2),
        "golden_seconds": round(t_golden, 2),
    }
    if y_eval is not None:
        report["accuracy_drop_points"] = round(report["float_accuracy"] - report["int_accuracy"], 2)
    # per-layer SQNR on up to 500 evaluation images
    sub = x_eval[:500]
    gm = trace(ck.model)
    fvals = float_node_outputs(gm, sub, mean, std, set(fmap.values()))
    ivals = golden.run_codes(im, golden.quantize_input(sub, im.input))
    quant_of = {"input": (im.input.scale, im.input.zero_point)}
    layers = []
    totals = {"additions": 0, "multiplications": 0, "comparisons": 0}
    for layer in im.layers:
        rq = layer.requant
        quant_of[layer.name] = (rq.out_scale, rq.out_zero_point) if rq is not None else quant_of[layer.inputs[0]]
        ops = count_int_layer(layer).to_dict()
        for k in totals:
            totals[k] += ops[k]
        row = {"name": layer.name, "kind": layer.kind, "in_shape": list(layer.in_shape), "out_shape": list(layer.out_shape)}
        if layer.pe is not None:
            row.update(K=layer.K, bits=layer.bits, weight_bits=layer.weight_bits, acc_bits=layer.acc_bits,
                       clamped_weight_channels=int(np.count_nonzero(layer.compensation)))
        if rq is not None:
            row["requant"] = rq.mode
            row["out_bits"] = rq.out_bits
            if rq.mode == "fixed":
                row.update(shift=rq.shift, n_bits=rq.n_bits, sum_bits=rq.sum_bits)
        node = fmap.get(layer.name)
        if node in fvals:
            deq = dequantize(ivals[layer.name], *quant_of[layer.name])
            ref = fvals[node].reshape(deq.shape)
            row["sqnr_db"] = _sqnr(ref, deq)
        row.update({f"{k}_per_image": v for k, v in ops.items()})
        layers.append(row)
    report["layers"] = layers
    report["ops_per_image"] = totals
    save_int_model(im, out_dir)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (out_dir / "report.md").write_text(_report_md(report))
    return report


def _fmt(v) -> str:
    return "-" if v is None else (f"{v:,}" if isinstance(v, int) else str(v))


def _report_md(r: dict) -> str:
    lines = [
        f"# Integer model of {r['model']} ({r['dataset']})",
        "",
        f"Weights W{r['bits']}, activations A{r['act_bits']}, requant {r['requant']}, "
        f"percentile {r['percentile']}, {r['calib_images']} calibration images; "
        f"evaluated on {r['eval_images']} {r['eval_split']} images.",
        "",
        "| float_accuracy_pct | int_accuracy_pct | drop_points | int_float_agreement_pct | golden_s |",
        "|---|---|---|---|---|",
        f"| {_fmt(r['float_accuracy'])} | {_fmt(r['int_accuracy'])} | {_fmt(r.get('accuracy_drop_points'))} "
        f"| {r['int_float_top1_agreement_pct']} | {r['golden_seconds']} |",
        "",
        "| layer | kind | K | bits | acc_bits | requant | sqnr_db | additions | multiplications | comparisons |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["layers"]:
        lines.append(
            f"| {row['name']} | {row['kind']} | {_fmt(row.get('K'))} | {_fmt(row.get('bits'))} | "
            f"{_fmt(row.get('acc_bits'))} | {_fmt(row.get('requant'))} | {_fmt(row.get('sqnr_db'))} | "
            f"{row['additions_per_image']:,} | {row['multiplications_per_image']:,} | {row['comparisons_per_image']:,} |"
        )
    t = r["ops_per_image"]
    lines += [
        f"| **total** | | | | | | | {t['additions']:,} | {t['multiplications']:,} | {t['comparisons']:,} |",
        "",
        f"Source: `{r['source'].get('path')}` (sha256 {str(r['source'].get('sha256'))[:16]}...). "
        f"Tools: " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()) + ".",
        "",
    ]
    return "\n".join(lines)


def _sweep_md(rows: list[dict]) -> str:
    lines = [
        "| bits | act_bits | requant | float_accuracy_pct | int_accuracy_pct | drop_points | int_float_agreement_pct |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['bits']} | {r['act_bits']} | {r['requant']} | {_fmt(r['float_accuracy'])} | {_fmt(r['int_accuracy'])} "
            f"| {_fmt(r.get('accuracy_drop_points'))} | {r['int_float_top1_agreement_pct']} |"
        )
    return "\n".join(lines) + "\n"


def run_quantize(args: argparse.Namespace) -> int:
    import torch

    from quant.checkpoint import load
    from quant.datasets import CLASS_NAMES, load_dataset
    from quant.quantize import QuantConfig

    torch.set_num_threads(min(2, torch.get_num_threads()))
    if args.sweep is not None and args.bits is not None:
        raise ValueError("give either --bits or --sweep, not both")
    widths = parse_sweep(args.sweep) if args.sweep is not None else [args.bits if args.bits is not None else 8]
    cfgs = [
        QuantConfig(bits=b, act_bits=args.act_bits, percentile=args.percentile, requant=args.requant, groups=args.groups,
                    bias_correction=args.bias_correction)
        for b in widths
    ]
    if args.calib < 1:
        raise ValueError(f"--calib must be a positive integer, not {args.calib}")
    if args.eval is not None and args.eval < 1:
        raise ValueError(f"--eval must be a positive integer, not {args.eval}")
    ckpt = Path(args.checkpoint)
    ck = load(ckpt, model=args.model, dataset=args.dataset)
    name, dataset = ck.meta["model"], ck.meta["dataset"]
    shape = tuple(ck.meta.get("input_shape", ()))
    rng = np.random.default_rng(args.seed)
    if args.calib_data is not None:
        calib = _load_images(args.calib_data, "--calib-data")
        if shape and calib.shape[1:] != shape:
            raise ValueError(f"--calib-data images are {calib.shape[1:]}, the model takes {shape}")
        calib = calib[: args.calib]
    else:
        try:
            xtr, _ = load_dataset(dataset, "train", args.data_root)
        except (OSError, ValueError) as exc:
            raise ValueError(f"no calibration data for {dataset} ({exc}); pass --data-root DIR or --calib-data FILE.npy") from None
        idx = np.sort(rng.choice(xtr.shape[0], size=min(args.calib, xtr.shape[0]), replace=False))
        calib = xtr[idx]
    try:
        xte, yte = load_dataset(dataset, "test", args.data_root)
        if args.eval is not None:
            xte, yte = xte[: args.eval], yte[: args.eval]
        evalset = (xte, yte)
    except (OSError, ValueError):
        if args.data_root is not None:  # the user named a folder: its test set must be there
            raise
        evalset = (calib, None)  # no test set on this machine: report agreement on the calibration images
    source = {"path": str(ckpt), "sha256": _sha256(ckpt), "meta_accuracy": ck.meta.get("accuracy")}
    class_names = CLASS_NAMES.get(dataset, ())
    out = Path(args.output)
    tmp = _atomic_dir(out)
    try:
        rows = []
        for cfg in cfgs:
            sub = tmp if args.sweep is None else tmp / f"w{cfg.bits}"
            sub.mkdir(parents=True, exist_ok=True)
            r = quantize_to_dir(ck, calib, evalset, cfg, sub, source=source, name=name, dataset=dataset,
                                class_names=class_names, seed=args.seed)
            rows.append(r)
        if args.sweep is not None:
            keys = ("bits", "act_bits", "requant", "float_accuracy", "int_accuracy", "accuracy_drop_points",
                    "int_float_top1_agreement_pct", "eval_images")
            table = [{k: r.get(k) for k in keys} for r in rows]
            (tmp / "sweep.json").write_text(json.dumps({"model": name, "dataset": dataset, "source": source, "rows": table}, indent=1) + "\n")
            (tmp / "sweep.md").write_text(_sweep_md(table))
        _commit_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if args.sweep is not None:
        print(_sweep_md(rows), end="")
    else:
        r = rows[0]
        print(
            f"W{r['bits']}A{r['act_bits']} {r['requant']}: float {_fmt(r['float_accuracy'])}%  int {_fmt(r['int_accuracy'])}%  "
            f"agreement {r['int_float_top1_agreement_pct']}% on {r['eval_images']} {r['eval_split']} images"
        )
    print(f"wrote {out}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    images = _load_images(args.input, "input")
    src = Path(args.model)
    out = Path(args.output)
    if src.is_dir():
        from quant import golden
        from quant.artifact import load_int_model

        im = load_int_model(src)
        if images.shape[1:] != im.input_shape:
            raise ValueError(f"input images are {images.shape[1:]}, the model takes {im.input_shape}")
        logits = golden.run(im, images)
        names = im.class_names
    else:
        import torch

        from quant.checkpoint import load
        from quant.datasets import CLASS_NAMES
        from quant.calibrate import float_logits

        torch.set_num_threads(min(2, torch.get_num_threads()))
        ck = load(src, model=args.model_name, dataset=args.dataset)
        shape = tuple(ck.meta.get("input_shape", ()))
        if shape and images.shape[1:] != shape:
            raise ValueError(f"input images are {images.shape[1:]}, the model takes {shape}")
        n = ck.meta["normalization"]
        logits = float_logits(ck.model, images, n["mean"], n["std"]).astype(np.float32)
        names = CLASS_NAMES.get(ck.meta["dataset"], ())
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.save(buf, logits)
    atomic_write_bytes(out, buf.getvalue())
    if args.labels:
        top = logits.argmax(1)
        for i, t in enumerate(top):
            label = names[t] if t < len(names) else str(int(t))
            print(f"{i}\t{label}")
    return 0
