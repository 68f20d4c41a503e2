"""The quantize report: accuracy, per-layer SQNR and operation counts of an integer model.

:func:`quantize_with_report` quantises a float model
(:func:`quant.quantizer.quantize.quantize_model`), runs the golden integer model and
the float model on the evaluation images and returns the
:class:`~quant.intmodel.artifact.IntModel` with a :class:`QuantizeReport`:

* top-1 accuracies ``100 * mean(argmax == label)`` (rounded to 0.01) of both
  models, their top-1 agreement, and ``accuracy_drop_points = float - int``;
* per layer (:class:`LayerReport`) on the first :data:`SQNR_IMAGES`
  evaluation images: ``sqnr_db = 10*log10(sum(ref**2) / sum((ref - deq)**2))``
  with ``ref`` the float tensor the layer's codes approximate and
  ``deq = out_scale * (q - out_zero_point)`` (``inf`` without error, None
  for an all-zero reference), plus the layer's operation counts per image
  (:func:`quant.base.opcount.count_int_layer`).

:meth:`QuantizeReport.to_dict` is the layout of ``report.json``,
:meth:`QuantizeReport.to_markdown` of ``report.md``; :func:`write_quantized`
writes both beside the integer model; :func:`sweep_markdown` is the table of
a bit-width sweep.
"""

from __future__ import annotations

import enum
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from quant.intmodel.artifact import ComputeLayer, IntModel, save_int_model
from quant.base.files import dist_version, dist_versions
from quant.base.intops import LayerKind, RequantMode
from quant.base.opcount import OpCount, count_int_layer
from quant.quantizer.rounding import DEFAULT_ROUNDING, Rounding

__all__ = [
    "SQNR_IMAGES",
    "SWEEP_KEYS",
    "LayerReport",
    "QuantizeReport",
    "EvalSplit",
    "sqnr_db",
    "tool_versions",
    "layer_reports",
    "quantize_with_report",
    "write_quantized",
    "sweep_markdown",
]

#: Evaluation images used for the per-layer SQNR.
SQNR_IMAGES = 500

#: Fields of a report in a sweep table (``sweep.json`` rows).
SWEEP_KEYS = ("bits", "act_bits", "requant", "float_accuracy", "int_accuracy", "accuracy_drop_points",
              "int_float_top1_agreement_pct", "eval_images")


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float | None:
    """``10*log10(sum(ref**2) / sum((ref - got)**2))`` rounded to 0.01 dB; ``inf`` if equal, None if ``ref`` is 0."""
    sig = float(np.sum(ref.astype(np.float64) ** 2))
    noise = float(np.sum((ref.astype(np.float64) - got) ** 2))
    if sig == 0:
        return None
    if noise == 0:
        return float("inf")
    return round(10 * np.log10(sig / noise), 2)


def tool_versions() -> dict:
    """``{"adderhw", "torch", "numpy", "python"}`` versions (``0+unknown`` for a source tree)."""
    return {
        "adderhw": dist_version("adderhw", "0+unknown"),
        **dist_versions(("torch", "numpy")),
        "python": sys.version.split()[0],
    }


@dataclass(frozen=True, kw_only=True)
class LayerReport:
    """One row of the per-layer table.

    Compute-layer fields (``K`` .. ``clamped_weight_channels``) are None for
    other layers, requant fields (``requant``, ``out_bits``) for layers
    without one, ``shift``/``n_bits``/``sum_bits`` for threshold requant.
    ``float_node`` is the float tensor the codes were compared with (None:
    not measured, and ``sqnr_db`` is absent from :meth:`to_dict`).
    """

    name: str
    kind: LayerKind
    in_shape: tuple
    out_shape: tuple
    ops: OpCount
    K: int | None = None
    bits: int | None = None
    weight_bits: int | None = None
    acc_bits: int | None = None
    clamped_weight_channels: int | None = None
    requant: RequantMode | None = None
    out_bits: int | None = None
    shift: int | None = None
    n_bits: int | None = None
    sum_bits: int | None = None
    float_node: str | None = None
    sqnr_db: float | None = None

    def __post_init__(self) -> None:
        if self.float_node is None and self.sqnr_db is not None:
            raise ValueError(f"layer {self.name}: an SQNR needs the float node it was measured against")
        if self.requant is not None and self.requant not in tuple(RequantMode):
            raise ValueError(f"layer {self.name}: requant must be fixed, threshold or None, not {self.requant!r}")

    def to_dict(self) -> dict:
        """The ``report.json`` row (absent fields left out)."""
        row = {"name": self.name, "kind": str(self.kind), "in_shape": list(self.in_shape), "out_shape": list(self.out_shape)}
        if self.K is not None:
            row.update(K=self.K, bits=self.bits, weight_bits=self.weight_bits, acc_bits=self.acc_bits,
                       clamped_weight_channels=self.clamped_weight_channels)
        if self.requant is not None:
            row["requant"] = str(self.requant)
            row["out_bits"] = self.out_bits
            if self.requant == RequantMode.FIXED:
                row.update(shift=self.shift, n_bits=self.n_bits, sum_bits=self.sum_bits)
        if self.float_node is not None:
            row["sqnr_db"] = self.sqnr_db
        row.update({f"{k}_per_image": v for k, v in self.ops.to_dict().items()})
        return row


class EvalSplit(enum.StrEnum):
    """Images a report's accuracies come from: the dataset's test split, or (no labels) the calibration images."""

    TEST = "test"
    CALIBRATION = "calibration"


@dataclass(frozen=True, kw_only=True)
class QuantizeReport:
    """What ``adderhw quantize`` reports about one integer model (module docstring).

    ``float_accuracy``/``int_accuracy`` are None without labels (evaluated
    on the calibration images, ``eval_split = "calibration"``);
    ``percentile`` is ``"auto"`` or the clipping percentile.
    """

    versions: dict
    source: dict
    model: str
    dataset: str
    bits: int
    act_bits: int
    requant: RequantMode
    percentile: float | str
    bias_correction: bool
    groups: int
    calib_images: int
    eval_images: int
    eval_split: EvalSplit
    float_accuracy: float | None
    int_accuracy: float | None
    int_float_top1_agreement_pct: float
    quantize_seconds: float
    golden_seconds: float
    layers: tuple = ()
    ops_per_image: OpCount = field(default_factory=OpCount)
    tool: str = "adderhw quantize"
    rounding: Rounding = DEFAULT_ROUNDING

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if self.eval_split not in tuple(EvalSplit):
            raise ValueError(f"eval_split must be test or calibration, not {self.eval_split!r}")
        object.__setattr__(self, "eval_split", EvalSplit(self.eval_split))
        if (self.float_accuracy is None) != (self.int_accuracy is None):
            raise ValueError("float_accuracy and int_accuracy are both given or both None")

    @property
    def accuracy_drop_points(self) -> float | None:
        """``float_accuracy - int_accuracy`` (rounded to 0.01), None without labels."""
        if self.float_accuracy is None:
            return None
        return round(self.float_accuracy - self.int_accuracy, 2)

    def to_dict(self) -> dict:
        """The ``report.json`` layout."""
        d = {
            "tool": self.tool,
            "versions": dict(self.versions),
            "source": self.source,
            "model": self.model,
            "dataset": self.dataset,
            "bits": self.bits,
            "act_bits": self.act_bits,
            "requant": str(self.requant),
            "percentile": self.percentile,
            "bias_correction": self.bias_correction,
            "groups": self.groups,
            "rounding": str(self.rounding),
            "calib_images": self.calib_images,
            "eval_images": self.eval_images,
            "eval_split": str(self.eval_split),
            "float_accuracy": self.float_accuracy,
            "int_accuracy": self.int_accuracy,
            "int_float_top1_agreement_pct": self.int_float_top1_agreement_pct,
            "quantize_seconds": self.quantize_seconds,
            "golden_seconds": self.golden_seconds,
        }
        if self.float_accuracy is not None:
            d["accuracy_drop_points"] = self.accuracy_drop_points
        d["layers"] = [row.to_dict() for row in self.layers]
        d["ops_per_image"] = self.ops_per_image.to_dict()
        return d

    def sweep_row(self) -> dict:
        """The :data:`SWEEP_KEYS` fields (a ``sweep.json`` row)."""
        d = self.to_dict()
        return {k: d.get(k) for k in SWEEP_KEYS}

    def summary(self) -> str:
        """One line: widths, requant, accuracies and agreement."""
        return (
            f"W{self.bits}A{self.act_bits} {self.requant}: float {_fmt(self.float_accuracy)}%  int {_fmt(self.int_accuracy)}%  "
            f"agreement {self.int_float_top1_agreement_pct}% on {self.eval_images} {self.eval_split} images"
        )

    def to_markdown(self) -> str:
        """The ``report.md`` text."""
        lines = [
            f"# Integer model of {self.model} ({self.dataset})",
            "",
            f"Weights W{self.bits}, activations A{self.act_bits}, requant {self.requant}, "
            f"percentile {self.percentile}, rounding {self.rounding}, {self.calib_images} calibration images; "
            f"evaluated on {self.eval_images} {self.eval_split} images.",
            "",
            "| float_accuracy_pct | int_accuracy_pct | drop_points | int_float_agreement_pct | golden_s |",
            "|---|---|---|---|---|",
            f"| {_fmt(self.float_accuracy)} | {_fmt(self.int_accuracy)} | {_fmt(self.accuracy_drop_points)} "
            f"| {self.int_float_top1_agreement_pct} | {self.golden_seconds} |",
            "",
            "| layer | kind | K | bits | acc_bits | requant | sqnr_db | additions | multiplications | comparisons |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in self.layers:
            o = row.ops
            lines.append(
                f"| {row.name} | {row.kind} | {_fmt(row.K)} | {_fmt(row.bits)} | "
                f"{_fmt(row.acc_bits)} | {_fmt(row.requant)} | {_fmt(row.sqnr_db)} | "
                f"{o.additions:,} | {o.multiplications:,} | {o.comparisons:,} |"
            )
        t = self.ops_per_image
        lines += [
            f"| **total** | | | | | | | {t.additions:,} | {t.multiplications:,} | {t.comparisons:,} |",
            "",
            f"Source: `{self.source.get('path')}` (sha256 {str(self.source.get('sha256'))[:16]}...). "
            f"Tools: " + ", ".join(f"{k} {v}" for k, v in self.versions.items()) + ".",
            "",
        ]
        return "\n".join(lines)


def _fmt(v) -> str:
    return "-" if v is None else (f"{v:,}" if isinstance(v, int) else str(v))


def layer_reports(im: IntModel, fmap: dict, float_values: dict, int_values: dict) -> tuple[LayerReport, ...]:
    """Per-layer rows from the layers' float references and integer codes on the same images.

    Parameters
    ----------
    im : IntModel
    fmap : dict
        ``{layer name: float node name}`` (from :func:`quant.quantizer.quantize.quantize_model`).
    float_values : dict
        ``{float node name: float array [N, ...]}``.
    int_values : dict
        ``{layer name: codes [N, *out_shape]}`` (:func:`quant.intmodel.golden.run_codes`).
    """
    from quant.base.intops import dequantize

    quant_of = {"input": (im.input.scale, im.input.zero_point)}
    rows = []
    for layer in im.layers:
        rq = getattr(layer, "requant", None)  # max pooling and flatten pass codes through
        quant_of[layer.name] = (rq.out_scale, rq.out_zero_point) if rq is not None else quant_of[layer.inputs[0]]
        f = {}
        if isinstance(layer, ComputeLayer):
            f.update(K=layer.K, bits=layer.bits, weight_bits=layer.weight_bits, acc_bits=layer.acc_bits,
                     clamped_weight_channels=int(np.count_nonzero(layer.compensation)))
        if rq is not None:
            f.update(requant=rq.mode, out_bits=rq.out_bits)
            if rq.mode == RequantMode.FIXED:
                f.update(shift=rq.shift, n_bits=rq.n_bits, sum_bits=rq.sum_bits)
        node = fmap.get(layer.name)
        if node in float_values:
            deq = dequantize(int_values[layer.name], *quant_of[layer.name])
            f.update(float_node=node, sqnr_db=sqnr_db(float_values[node].reshape(deq.shape), deq))
        rows.append(LayerReport(name=layer.name, kind=layer.kind, in_shape=layer.in_shape, out_shape=layer.out_shape,
                                ops=count_int_layer(layer), **f))
    return tuple(rows)


def _accuracy(pred, labels) -> float | None:
    return None if labels is None else round(100.0 * float(np.mean(pred == labels)), 2)


def quantize_with_report(model, calib, evalset, cfg, *, mean, std, source: dict, name: str, dataset: str,
                         class_names=(), seed: int = 0) -> tuple[IntModel, QuantizeReport]:
    """Quantise ``model`` and evaluate the integer model against it (module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        Float model taking normalised images.
    calib : numpy.ndarray
        Calibration images ``[N, C, H, W]`` in 0..1.
    evalset : (numpy.ndarray, numpy.ndarray or None)
        Evaluation images and labels (None: no labels, the images are the
        calibration images).
    cfg : quant.quantizer.config.QuantConfig
    mean, std : sequence of float
        Input normalisation.
    source, name, dataset, class_names, seed
        Recorded in the integer model (:func:`quant.quantizer.quantize.quantize_model`).
    """
    from quant.intmodel import golden
    from quant.quantizer.calibrate import float_logits, float_node_outputs, trace
    from quant.quantizer.quantize import quantize_model

    t0 = time.perf_counter()
    im, fmap = quantize_model(model, calib, mean=mean, std=std, cfg=cfg, name=name, dataset=dataset,
                              class_names=class_names, source=source, seed=seed)
    t_quant = time.perf_counter() - t0
    x_eval, y_eval = evalset
    t0 = time.perf_counter()
    q = golden.run(im, x_eval)
    t_golden = time.perf_counter() - t0
    fl = float_logits(model, x_eval, mean, std)
    pred_i, pred_f = q.argmax(1), fl.argmax(1)
    sub = x_eval[:SQNR_IMAGES]
    fvals = float_node_outputs(trace(model), sub, mean, std, set(fmap.values()))
    ivals = golden.run_codes(im, golden.quantize_input(sub, im.input))
    layers = layer_reports(im, fmap, fvals, ivals)
    total = OpCount()
    for row in layers:
        total = total + row.ops
    report = QuantizeReport(
        versions=tool_versions(), source=source, model=name, dataset=dataset, bits=cfg.bits, act_bits=cfg.act_bits,
        requant=cfg.requant, percentile="auto" if cfg.percentile is None else cfg.percentile,
        bias_correction=cfg.bias_correction, groups=cfg.groups, rounding=cfg.rounding, calib_images=int(calib.shape[0]),
        eval_images=int(x_eval.shape[0]), eval_split=EvalSplit.TEST if y_eval is not None else EvalSplit.CALIBRATION,
        float_accuracy=_accuracy(pred_f, y_eval), int_accuracy=_accuracy(pred_i, y_eval),
        int_float_top1_agreement_pct=round(100.0 * float(np.mean(pred_i == pred_f)), 2),
        quantize_seconds=round(t_quant, 2), golden_seconds=round(t_golden, 2), layers=layers, ops_per_image=total,
    )
    return im, report


def write_quantized(out_dir, im: IntModel, report: QuantizeReport) -> None:
    """Write the integer model and ``report.json`` / ``report.md`` into the folder ``out_dir``."""
    out_dir = Path(out_dir)
    save_int_model(im, out_dir)
    (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=1) + "\n")
    (out_dir / "report.md").write_text(report.to_markdown())


def sweep_markdown(rows) -> str:
    """Markdown table of sweep rows (dicts with the :data:`SWEEP_KEYS`)."""
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
