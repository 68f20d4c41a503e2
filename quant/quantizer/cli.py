"""``adderhw quantize`` and ``adderhw predict``: parse, call :mod:`quant.quantizer.workflow`, print.

``quantize`` writes, atomically (a temporary folder renamed into place):
``OUT_DIR/manifest.json`` + ``weights.npz`` (the integer model),
``report.json`` and ``report.md`` (:mod:`quant.quantizer.report`); with
``--sweep 8,6,5,4`` one such folder per bit width (``OUT_DIR/w8`` ...) plus
``OUT_DIR/sweep.json`` and ``sweep.md``.

``predict`` runs the golden integer model (artifact folder; writes int64
integer logits) or the float model (checkpoint file; writes float32 logits)
on float32 ``[N, C, H, W]`` images in 0..1.

Torch is imported only when a command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from quant.base.intops import RequantMode
from quant.quantizer.rounding import AUTO_GREEDY_MAX_BITS, DEFAULT_ROUNDING, ROUNDINGS

__all__ = ["register", "run_quantize", "run_predict", "parse_sweep", "read_bits_file"]


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
    p.add_argument("--bits-file", default=None, metavar="FILE.json",
                   help='per-layer weight bits of adder layers, a JSON object {"layer": bits, ...} overriding --bits '
                   "for the layers it names (each in 2..act-bits; names as in the integer model's manifest)")
    p.add_argument("--act-bits", type=int, default=None, help="activation bits of adder layers (default: --bits)")
    p.add_argument("--calib", type=int, default=1000, help="calibration images (default 1000)")
    p.add_argument("--percentile", type=_percentile, default=None, metavar="P|auto",
                   help="activation clipping percentile in (50, 100], or auto: per tensor, the best of "
                   "99..100 by quantisation MSE (default auto)")
    p.add_argument("--no-bias-correction", dest="bias_correction", action="store_false",
                   help="keep the folded BN bias as is (default: empirical per-channel bias correction)")
    modes = [m.value for m in RequantMode]
    p.add_argument("--requant", choices=modes, default=RequantMode.FIXED.value, help="requant form of adder layers")
    p.add_argument("--logits", choices=modes, default=RequantMode.FIXED.value,
                   help="requant form of the logits layer: fixed point (signed 16-bit codes; default), or threshold: "
                   "unsigned act-bits codes by comparisons only (with --requant threshold: no multiply anywhere)")
    p.add_argument("--rounding", choices=[r.value for r in ROUNDINGS], default=DEFAULT_ROUNDING.value,
                   help="rounding of adder weights: nearest, or greedy: each weight down or up, whichever lowers the "
                   f"layer's output error on calibration patches; auto: greedy up to {AUTO_GREEDY_MAX_BITS}-bit "
                   f"activations, else nearest (default {DEFAULT_ROUNDING})")
    p.add_argument("--groups", type=int, default=1, help="scale groups per adder layer (default 1; G > 1: group-shared scales, golden model and fake-quant only: the hardware refuses them)")
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
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR",
                   help="output folder (built atomically; an existing one is replaced only when it is an earlier "
                   "quantize output)")
    p.add_argument("--force", action="store_true", help="replace OUT_DIR even if it is not an earlier quantize output")
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


def read_bits_file(path) -> dict:
    """``--bits-file``: a JSON object ``{layer name: weight bits}`` -> that dict (integer values; ranges are
    checked by :class:`quant.quantizer.config.QuantConfig`, names against the model by the workflow)."""
    import json

    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"--bits-file {path}: cannot read it ({e.__class__.__name__}: {e})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--bits-file {path} is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ValueError(f'--bits-file {path} must be a JSON object {{"layer": bits, ...}}, not a {type(doc).__name__}')
    for name, b in doc.items():
        if isinstance(b, bool) or not isinstance(b, int):
            raise ValueError(f"--bits-file {path}: the bits of layer {name!r} must be an integer, not {b!r}")
    return doc


def _limit_torch_threads() -> None:
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))


def run_quantize(args: argparse.Namespace) -> int:
    from quant.quantizer.config import QuantConfig
    from quant.quantizer.report import sweep_markdown
    from quant.quantizer.workflow import quantize_checkpoint

    _limit_torch_threads()
    if args.sweep is not None and args.bits is not None:
        raise ValueError("give either --bits or --sweep, not both")
    widths = parse_sweep(args.sweep) if args.sweep is not None else [args.bits if args.bits is not None else 8]
    layer_bits = read_bits_file(args.bits_file) if args.bits_file is not None else {}
    cfgs = [
        QuantConfig(bits=b, layer_bits=layer_bits, act_bits=args.act_bits, percentile=args.percentile,
                    requant=args.requant, groups=args.groups, logits=args.logits, bias_correction=args.bias_correction,
                    rounding=args.rounding)
        for b in widths
    ]
    run = quantize_checkpoint(
        args.checkpoint, cfgs, args.output, sweep=args.sweep is not None, calib=args.calib, calib_data=args.calib_data,
        data_root=args.data_root, model=args.model, dataset=args.dataset, eval_images=args.eval, seed=args.seed,
        force=args.force,
    )
    if run.sweep:
        print(sweep_markdown([r.sweep_row() for r in run.reports]), end="")
    else:
        print(run.reports[0].summary())
    print(f"wrote {run.out}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from quant.quantizer.workflow import predict

    if not Path(args.model).is_dir():
        _limit_torch_threads()
    pred = predict(args.model, args.input, args.output, model_name=args.model_name, dataset=args.dataset)
    if args.labels:  # stdout is the label table (for a pipe)
        for i, label in enumerate(pred.labels()):
            print(f"{i}\t{label}")
    else:
        print(f"wrote {args.output} (logits of {pred.logits.shape[0]} images)")
    return 0
