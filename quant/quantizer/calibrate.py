"""Tracing and calibration of a float AdderNet, and the float-model helpers.

The quantizer (:mod:`quant.quantizer.quantize`) sees a float model only through this
module:

* :func:`trace`: a :mod:`torch.fx` trace with adder layers (modules holding an
  ``adder`` parameter, :func:`is_adder_module`) as leaves;
* :func:`calibrate`: every floating tensor node's exact ``min``/``max``, a
  seeded subsample for percentiles and per-channel means
  (:class:`Calibration`);
* :meth:`Calibration.clip_range`: the clipping range of a tensor, either
  ``[pct_(100-P), pct_P]`` (``[0, pct_P]`` when non-negative) for a given
  ``P``, or the candidate whose quantise-dequantise error
  ``mean(((q - z)*step - x)**2)`` with ``q = clamp(rint(x/step) + z, 0, steps)``,
  ``step = (hi - lo)/steps``, ``z = round(-lo/step)`` (the quantiser's grid)
  is smallest; candidates are the ranges of :data:`AUTO_PERCENTILES` and,
  for a range with ``lo < 0 < hi``, the two nearby ranges that put ``lo``
  exactly on a code (``step = -lo/z`` for the integers ``z`` next to
  ``-lo/step``: the minimum of an image, its black background, is then
  represented exactly);
* float references: :func:`float_logits`, :func:`float_node_outputs`,
  :func:`float_node_map` (a function of some nodes' outputs, not the outputs),
  :func:`recalibrate_bn` (BN statistics of random-weight models) and
  :func:`synthetic_images` (for models whose dataset is absent).

Images are float ``[N, C, H, W]`` in 0..1; :func:`normalise` applies
``(x - mean[c]) / std[c]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AUTO_PERCENTILES",
    "Calibration",
    "is_adder_module",
    "trace",
    "normalise",
    "calibrate",
    "float_logits",
    "float_node_outputs",
    "float_node_map",
    "recalibrate_bn",
    "synthetic_images",
]


#: Clipping percentiles tried per tensor when no percentile is given.
AUTO_PERCENTILES = (99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 100.0)


# --- tracing ------------------------------------------------------------------------


def is_adder_module(m: nn.Module) -> bool:
    """True for an adder layer: a module with its own ``adder`` parameter and no children."""
    # _parameters, not getattr: during tracing FX turns parameter reads into proxies
    return isinstance(m._parameters.get("adder"), nn.Parameter) and not m._modules


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return is_adder_module(m) or super().is_leaf_module(m, qualname)


def trace(model: nn.Module) -> fx.GraphModule:
    """Symbolic trace of ``model`` with adder layers (modules holding an ``adder`` parameter) as leaves."""
    graph = _Tracer().trace(model)
    return fx.GraphModule(model, graph)


# --- calibration --------------------------------------------------------------------


@dataclass
class Calibration:
    """Per-node statistics of the float model on the calibration images.

    ``samples[node]`` is a seeded random subsample (at most ``cap`` values)
    used for percentiles; ``min``/``max`` are exact; ``chan_mean[node]`` is
    the mean over images and positions of each channel (axis 1);
    ``shapes[node]`` the shape of one image's tensor.
    """

    samples: dict = field(default_factory=dict)
    chan_mean: dict = field(default_factory=dict)
    min: dict = field(default_factory=dict)
    max: dict = field(default_factory=dict)
    shapes: dict = field(default_factory=dict)

    def percentile(self, name: str, q: float) -> float:
        return float(np.percentile(self.samples[name], q))

    def clip_range(self, name: str, nonneg: bool, steps: int, *, percentile: float | None,
                   symmetric: bool = False) -> tuple[float, float]:
        """Clipping range ``(lo, hi)`` of tensor ``name`` for ``steps`` code steps.

        For a percentile ``P``: ``(0, max(0, pct_P))`` when ``nonneg``, else
        ``(min(0, pct_(100-P)), max(0, pct_P))`` (``(-peak, peak)`` with
        ``peak = max(-lo, hi)`` when ``symmetric``).  With ``percentile=None``
        the candidate (of :data:`AUTO_PERCENTILES`, and the ranges of
        :func:`_zero_exact_ranges`) with the smallest quantise-dequantise MSE
        on the samples, on the quantiser's grid (module docstring); the
        100th percentile if every candidate range is empty.
        """

        def rng_for(p):
            if nonneg:
                return 0.0, max(0.0, self.percentile(name, p))
            lo, hi = min(0.0, self.percentile(name, 100 - p)), max(0.0, self.percentile(name, p))
            if symmetric:
                peak = max(-lo, hi)
                return -peak, peak
            return lo, hi

        if percentile is not None:
            return rng_for(percentile)
        x = self.samples[name].astype(np.float64)
        best, best_err = None, None
        for p in AUTO_PERCENTILES:
            for lo, hi in _zero_exact_ranges(*rng_for(p), steps):
                step = (hi - lo) / steps
                z = min(max(round(-lo / step), 0), steps)
                q = np.clip(np.rint(x / step) + z, 0, steps)
                err = float(np.mean(((q - z) * step - x) ** 2))
                if best_err is None or err < best_err:
                    best, best_err = (lo, hi), err
        return best if best is not None else rng_for(100.0)


def _zero_exact_ranges(lo: float, hi: float, steps: int) -> list:
    """Candidate ranges of the auto search from one percentile range ``(lo, hi)``.

    ``(lo, hi)`` itself, and when ``lo < 0 < hi`` the ranges whose grid has
    ``lo`` on an integer code ``z`` (``floor`` and ``ceil`` of ``-lo/step``,
    ``1 <= z < steps``): ``(lo, lo + steps * (-lo / z))``.  The quantiser's
    zero point is ``round(-lo/step)``, so otherwise ``lo`` (the minimum, e.g.
    the black background of an image) lies off the grid.
    """
    if hi - lo <= 1e-12:
        return []
    out = [(lo, hi)]
    zr = -lo / ((hi - lo) / steps)
    if lo < 0 < hi and abs(zr - round(zr)) > 1e-9:
        for z in (math.floor(zr), math.ceil(zr)):
            if 1 <= z < steps:
                out.append((lo, lo + steps * (-lo / z)))
    return out


class _Recorder(fx.Interpreter):
    def __init__(self, gm, sink):
        super().__init__(gm)
        self.sink = sink

    def run_node(self, n):
        out = super().run_node(n)
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            self.sink(n.name, out)
        return out


def normalise(images: np.ndarray, mean, std) -> torch.Tensor:
    """``(x - mean[c]) / std[c]`` of images ``[N, C, ...]`` as a float32 tensor."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    c = x.shape[1]
    m = torch.tensor(mean, dtype=torch.float32).view(1, c, *([1] * (x.dim() - 2)))
    s = torch.tensor(std, dtype=torch.float32).view(1, c, *([1] * (x.dim() - 2)))
    return (x - m) / s


def calibrate(
    gm: fx.GraphModule, images: np.ndarray, mean, std, *, batch: int = 250, cap: int = 1 << 20, seed: int = 0,
    mean_images: int | None = None,
) -> Calibration:
    """Run the float model on ``images`` (0..1) and record every tensor node's range.

    Per-channel means (axis 1) are taken over the first ``mean_images`` images.
    """
    cal = Calibration()
    rng = np.random.default_rng(seed)
    n = images.shape[0]
    chunks: dict = {}

    def sink(name, t):
        a = t.detach().float().numpy()
        cal.shapes[name] = tuple(a.shape[1:])
        lo, hi = float(a.min()), float(a.max())
        cal.min[name] = min(cal.min.get(name, lo), lo)
        cal.max[name] = max(cal.max.get(name, hi), hi)
        flat = a.ravel()
        keep = int(math.ceil(cap * a.shape[0] / n))
        if flat.size > keep:  # uniform subsample (with replacement: cheap, fine for percentiles)
            flat = flat[rng.integers(0, flat.size, size=keep)]
        chunks.setdefault(name, []).append(np.array(flat, dtype=np.float32))
        if a.ndim >= 2 and seen[0] < limit:
            take = a[: limit - seen[0]]
            axes = (0,) + tuple(range(2, take.ndim))
            sums.setdefault(name, []).append((take.astype(np.float64).sum(axis=axes), take.size // take.shape[1]))

    sums: dict = {}
    limit = n if mean_images is None else min(n, mean_images)
    seen = [0]
    rec = _Recorder(gm, sink)
    with torch.no_grad():
        for s in range(0, n, batch):
            rec.run(normalise(images[s : s + batch], mean, std))
            seen[0] += min(batch, n - s)
    cal.samples = {k: np.concatenate(v) for k, v in chunks.items()}
    cal.chan_mean = {k: sum(t for t, _ in v) / sum(c for _, c in v) for k, v in sums.items()}
    return cal


# --- float references ---------------------------------------------------------------


def float_logits(model: nn.Module, images: np.ndarray, mean, std, *, batch: int = 500) -> np.ndarray:
    """Float logits (float64) of images in 0..1."""
    outs = []
    model = model.eval()
    with torch.no_grad():
        for s in range(0, images.shape[0], batch):
            outs.append(model(normalise(images[s : s + batch], mean, std)).double().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 0))


def float_node_outputs(gm: fx.GraphModule, images: np.ndarray, mean, std, names) -> dict:
    """Float outputs of the FX nodes ``names`` for ``images`` (one batch)."""
    want = set(names)
    got: dict = {}

    def sink(name, t):
        if name in want:
            got[name] = t.detach().double().numpy()

    with torch.no_grad():
        _Recorder(gm, sink).run(normalise(images, mean, std))
    return got


def float_node_map(gm: fx.GraphModule, images: np.ndarray, mean, std, fns: dict) -> dict:
    """``{name: fns[name](output)}`` for FX nodes ``name`` on ``images`` (one batch; outputs as float64 arrays).

    Keeps only what the functions return (e.g. sampled patches), not the tensors.
    """
    got: dict = {}

    def sink(name, t):
        if name in fns:
            got[name] = fns[name](t.detach().double().numpy())

    with torch.no_grad():
        _Recorder(gm, sink).run(normalise(images, mean, std))
    return got


def recalibrate_bn(model: nn.Module, images: np.ndarray, mean, std, *, batch: int = 64) -> nn.Module:
    """Set every BatchNorm's running statistics to their averages over ``images`` (0..1).

    For models with random weights (no trained statistics): a calibration pass
    with ``momentum=None`` (cumulative average), then ``eval()``.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for s in range(0, images.shape[0], batch):
            model(normalise(images[s : s + batch], mean, std))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    return model.eval()


def synthetic_images(n: int, shape, *, seed: int = 0) -> np.ndarray:
    """Smooth random float32 images ``[n, *shape]`` in 0..1 (for models whose dataset is absent).

    Uniform noise on a grid of a quarter of the resolution, bilinearly
    upsampled, plus a little pixel noise.
    """
    c, h, w = shape
    rng = np.random.default_rng(seed)
    base = torch.from_numpy(rng.random((n, c, max(1, h // 4), max(1, w // 4))).astype(np.float32))
    img = F.interpolate(base, size=(h, w), mode="bilinear", align_corners=False).numpy()
    img = img + 0.05 * rng.standard_normal(img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0).astype(np.float32)
