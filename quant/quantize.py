"""Post-training quantisation of a float AdderNet into an :class:`~quant.artifact.IntModel`.

The float model is traced with :mod:`torch.fx` (adder layers are leaves) and
walked in execution order.  Formulas (DESIGN section 2):

* **Shared scale per adder layer.**  The input of every adder layer is
  quantised to unsigned ``act_bits`` codes ``x = s*(x_q - z)``; ``s, z`` come
  from the calibrated range of that tensor: ``[0, pct_P]`` when it is
  non-negative (post-ReLU), else ``[pct_(100-P), pct_P]``, with ``P`` given
  or (default) chosen per tensor from :data:`AUTO_PERCENTILES` by the
  smallest quantise-dequantise MSE.  The layer's weights use the same ``s, z``.
* **Exact clamp.**  Weight codes ``w/s + z`` are clamped to ``[0, 2**A-1]``;
  the per-channel compensation ``C_o = sum_k dist(w_ok/s + z, [0, 2**A-1])``
  is exact (:func:`quant.intops.exact_clamp`) and goes into the bias, so
  ``sum_k |x - w| = s * (acc + C_o)`` with ``acc = sum_k |x_q - w_q|`` up to
  the rounding of ``w_q``.  With ``bits < act_bits`` the weights are rounded
  to every ``2**(act_bits-bits)``-th code (``bits``-bit weights on the
  activation grid).
* **Folding.**  Adder output ``-s*(acc + C_o) + bias``, then BatchNorm (eval
  statistics), give ``y_o = A_o*acc + B_o``; ReLU and the next tensor's
  quantiser give ``q = clamp(round(y_o/s' + z'), lo, hi)`` (``lo = z'`` with
  ReLU), written as fixed point ``clamp((m*acc + n) >> shift, lo, hi)`` with
  ``m`` a signed ``mult_bits`` integer (:func:`quant.intops.fixed_point_params`),
  or as thresholds derived exactly from that fixed-point form.
* **Multiply layers** (``nn.Conv2d``/``nn.Linear``: the ResNet stem and
  classifier): int8 signed symmetric per-channel weights, int8 signed inputs
  with zero point 0, ``y_o = s_x*s_w[o]*acc + bias``.
* **Bias correction** (default on): ``B_o`` is shifted so that the mean of
  ``A_o*acc_o + B_o`` on calibration images, with integer inputs from the
  layers already quantised, equals the float model's per-channel mean.
* **Residual adds** requantise both inputs into one fixed-point sum
  ``clamp((m_a*a + m_b*b + n) >> shift, lo, hi)``; the branch that ends in BN
  (no ReLU) is kept as signed ``mid_bits`` codes first.
* **Average pooling** sums the window in integers and requantises the sum.
* **Logits** are signed ``logit_bits`` fixed-point codes (zero point 0, scale
  twice the calibrated maximum over ``2**(logit_bits-1)-1``), in both modes.

Only ``groups=1`` (one scale per adder layer) is implemented.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from quant.artifact import IntLayer, IntModel, Requant
from quant.intops import (
    InputQuant,
    acc_bits_for,
    code_range,
    exact_clamp,
    fixed_point_params,
    signed_width,
    thresholds_from_fixed,
)

__all__ = [
    "QuantConfig",
    "AUTO_PERCENTILES",
    "Calibration",
    "trace",
    "calibrate",
    "quantize_model",
    "float_logits",
    "float_node_outputs",
    "recalibrate_bn",
    "synthetic_images",
]


#: Clipping percentiles tried per tensor when ``QuantConfig.percentile`` is None.
AUTO_PERCENTILES = (99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 100.0)


@dataclass(frozen=True, kw_only=True)
class QuantConfig:
    """Settings of the post-training quantizer.

    Parameters
    ----------
    bits : int
        Weight bits of adder layers (2..16).
    act_bits : int or None
        Activation bits of adder layers (operand width; ``bits`` when None;
        must be >= ``bits``).
    percentile : float or None
        Activation clipping percentile in (50, 100]; None chooses, per
        tensor, the candidate of :data:`AUTO_PERCENTILES` whose
        quantise-dequantise mean squared error on the calibration samples is
        smallest (at the tensor's own bit width).
    requant : {"fixed", "threshold"}
        Requant form of adder layers whose output feeds another layer as
        ``act_bits`` codes (others are always fixed point).
    groups : int
        Scale groups per adder layer (only 1 is implemented).
    mult_bits : int
        Signed width of the fixed-point multiplier ``m``.
    mult_layer_bits : int
        Operand bits of multiply layers (int8).
    mid_bits, logit_bits : int
        Signed widths of residual-branch intermediates and of the logits.
    max_shift : int
        Largest fixed-point shift.
    bias_correction : bool
        Empirical bias correction: per output channel, shift ``B_o`` so that
        the mean of ``A_o*acc_o + B_o`` over the first
        ``bias_correction_images`` calibration images (integer inputs from the
        already quantised layers) equals the float model's mean there.
    bias_correction_images : int
        Images used for bias correction.
    """

    bits: int = 8
    act_bits: int | None = None
    percentile: float | None = None
    requant: str = "fixed"
    groups: int = 1
    mult_bits: int = 16
    mult_layer_bits: int = 8
    mid_bits: int = 16
    logit_bits: int = 16
    max_shift: int = 40
    bias_correction: bool = True
    bias_correction_images: int = 256

    def __post_init__(self) -> None:
        def _int(name, lo, hi):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer in {lo}..{hi}, not {v!r}")

        _int("bits", 2, 16)
        if self.act_bits is None:
            object.__setattr__(self, "act_bits", self.bits)
        _int("act_bits", 2, 16)
        if self.act_bits < self.bits:
            raise ValueError(f"act_bits ({self.act_bits}) must be >= bits ({self.bits}): weights share the activation grid")
        if self.percentile is not None and not (
            isinstance(self.percentile, (int, float)) and not isinstance(self.percentile, bool) and 50 < self.percentile <= 100
        ):
            raise ValueError(f"percentile must be in (50, 100], not {self.percentile!r}")
        if self.requant not in ("fixed", "threshold"):
            raise ValueError(f"requant must be fixed or threshold, not {self.requant!r}")
        _int("groups", 1, 1 << 16)
        if self.groups != 1:
            raise ValueError(f"groups={self.groups}: group-shared scales are not implemented; use --groups 1")
        _int("mult_bits", 2, 32)
        _int("mult_layer_bits", 2, 16)
        _int("mid_bits", 2, 32)
        _int("logit_bits", 2, 32)
        _int("max_shift", 0, 62)
        _int("bias_correction_images", 1, 1 << 20)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# --- tracing ------------------------------------------------------------------------


def _is_adder(m: nn.Module) -> bool:
    # _parameters, not getattr: during tracing FX turns parameter reads into proxies
    return isinstance(m._parameters.get("adder"), nn.Parameter) and not m._modules


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return _is_adder(m) or super().is_leaf_module(m, qualname)


def trace(model: nn.Module) -> fx.GraphModule:
    """Symbolic trace of ``model`` with adder layers (modules holding an ``adder`` parameter) as leaves."""
    graph = _Tracer().trace(model)
    return fx.GraphModule(model, graph)


_RELU_FNS = {F.relu, torch.relu}
_ADD_FNS = {operator.add, operator.iadd, torch.add}
_FLAT_FNS = {torch.flatten}


#: Role of a called module (after the adder check), first match wins.
_MODULE_ROLES = (
    (nn.Conv2d, "conv"),
    (nn.Linear, "linear"),
    ((nn.BatchNorm1d, nn.BatchNorm2d), "bn"),
    (nn.ReLU, "relu"),
    (nn.MaxPool2d, "maxpool"),
    ((nn.AvgPool2d, nn.AdaptiveAvgPool2d), "avgpool"),
    (nn.Flatten, "flatten"),
    ((nn.Dropout, nn.Identity), "identity"),
)


def _classify(gm: fx.GraphModule, node: fx.Node) -> str:
    """One word for what a node does: adder, conv, linear, bn, relu, maxpool, avgpool, flatten, add, identity, input, output, other."""
    if node.op == "placeholder":
        return "input"
    if node.op == "output":
        return "output"
    if node.op == "call_module":
        m = gm.get_submodule(node.target)
        if _is_adder(m):
            return "adder"
        return next((role for types, role in _MODULE_ROLES if isinstance(m, types)), "other")
    if node.op == "call_function":
        if node.target in _RELU_FNS:
            return "relu"
        if node.target in _ADD_FNS:
            return "add"
        if node.target in _FLAT_FNS:
            return "flatten"
        if node.target is F.max_pool2d:
            return "maxpool"
        if node.target in (F.avg_pool2d, F.adaptive_avg_pool2d):
            return "avgpool"
        if node.target is F.dropout:
            return "identity"
        return "other"
    if node.op == "call_method":
        if node.target in ("view", "reshape", "flatten"):
            return "flatten"
        if node.target in ("relu", "relu_"):
            return "relu"
        if node.target in ("add", "add_", "__add__", "__iadd__"):
            return "add"
        if node.target == "size":
            return "size"
        return "other"
    if node.op == "get_attr":
        return "other"
    return "other"


# --- calibration --------------------------------------------------------------------


@dataclass
class Calibration:
    """Per-node statistics of the float model on the calibration images.

    ``samples[node]`` is a seeded random subsample (at most ``cap`` values)
    used for percentiles; ``min``/``max`` are exact.
    """

    samples: dict = field(default_factory=dict)
    chan_mean: dict = field(default_factory=dict)
    min: dict = field(default_factory=dict)
    max: dict = field(default_factory=dict)
    shapes: dict = field(default_factory=dict)

    def percentile(self, name: str, q: float) -> float:
        return float(np.percentile(self.samples[name], q))


class _Recorder(fx.Interpreter):
    def __init__(self, gm, sink):
        super().__init__(gm)
        self.sink = sink

    def run_node(self, n):
        out = super().run_node(n)
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            self.sink(n.name, out)
        return out


def _normalise(images: np.ndarray, mean, std) -> torch.Tensor:
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
            rec.run(_normalise(images[s : s + batch], mean, std))
            seen[0] += min(batch, n - s)
    cal.samples = {k: np.concatenate(v) for k, v in chunks.items()}
    cal.chan_mean = {k: sum(t for t, _ in v) / sum(c for _, c in v) for k, v in sums.items()}
    return cal


# --- integer graph construction ------------------------------------------------------


@dataclass
class _Codes:
    """A tensor available as integer codes produced by layer ``layer``."""

    layer: str
    scale: float
    zero_point: int
    bits: int
    signed: bool
    shape: tuple


@dataclass
class _Pending:
    """A compute layer's accumulator followed by affine ops: ``y = A*acc + B`` (then ReLU)."""

    spec: dict  # IntLayer fields of the compute layer (no requant yet)
    a: np.ndarray
    b: np.ndarray
    relu: bool
    max_acc: int
    min_acc: int
    pre_node: str = ""  # float node holding y before ReLU (for bias correction)


@dataclass
class _PendingAdd:
    a: _Codes
    b: _Codes
    relu: bool
    name: str
    shape: tuple


@dataclass
class _Target:
    kind: str  # act, mult_in, mid, logits
    scale: float
    zero_point: int
    bits: int
    signed: bool
    lo: int
    hi: int


class _Builder:
    def __init__(self, gm: fx.GraphModule, cal: Calibration, cfg: QuantConfig, mean, std):
        self.gm = gm
        self.cal = cal
        self.cfg = cfg
        self.mean, self.std = mean, std
        self.layers: list[IntLayer] = []
        self.float_node: dict[str, str] = {}  # int layer -> float node name whose value it approximates
        self.state: dict = {}
        self.kind = {n: _classify(gm, n) for n in gm.graph.nodes}
        self.input_quant: InputQuant | None = None
        self.input_shape: tuple | None = None
        self.names: set = set()
        self.bc_images = None  # calibration images used for bias correction
        self.bc_codes: dict = {}  # layer name -> int32 codes on bc_images

    # -- helpers
    def _unique(self, base: str) -> str:
        name, i = base, 1
        while name in self.names:
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        return name

    def _tensor_users(self, node: fx.Node):
        return [u for u in node.users if self.kind[u] != "size"]

    def _final_consumers(self, node: fx.Node) -> list[str]:
        out = []
        for u in self._tensor_users(node):
            k = self.kind[u]
            if k in ("maxpool", "flatten", "identity"):
                out += self._final_consumers(u)
            else:
                out.append(k)
        return out

    def _data_node(self, node: fx.Node) -> str:
        users = self._tensor_users(node)
        while len(users) == 1 and self.kind[users[0]] in ("maxpool", "flatten", "identity"):
            node = users[0]
            users = self._tensor_users(node)
        return node.name

    def _target(self, node: fx.Node, relu: bool, pending_compute: bool) -> _Target:
        cons = self._final_consumers(node)
        cfg = self.cfg
        data = self._data_node(node)
        cal = self.cal
        if "output" in cons:
            if len(cons) > 1:
                raise ValueError(f"node {node.name}: the logits are also used inside the network")
            peak = max(abs(cal.min[data]), abs(cal.max[data]), 1e-12)
            lo, hi = code_range(cfg.logit_bits, True)
            return _Target("logits", 2.0 * peak / hi, 0, cfg.logit_bits, True, lo, hi)
        if any(c in ("conv", "linear") for c in cons):
            if any(c == "adder" for c in cons):
                raise ValueError(f"node {node.name} feeds both adder and multiply layers; unsupported")
            bits = cfg.mult_layer_bits
            lo, hi = code_range(bits, True)
            nonneg = relu or cal.min[data] >= 0
            lo_r, hi_r = self._range(data, nonneg, hi if nonneg else 2 * hi, symmetric=True)
            peak = max(abs(lo_r), abs(hi_r), 1e-12)
            lo_c = 0 if nonneg else -hi
            return _Target("mult_in", peak / hi, 0, bits, True, lo_c, hi)
        if pending_compute and not relu and cons and all(c == "add" for c in cons):
            lo, hi = code_range(cfg.mid_bits, True)
            peak = max(abs(cal.min[data]), abs(cal.max[data]), 1e-12)
            return _Target("mid", peak / hi, 0, cfg.mid_bits, True, lo, hi)
        bits = cfg.act_bits
        qmax = (1 << bits) - 1
        lo_r, hi_r = self._range(data, relu or cal.min[data] >= 0, qmax)
        if hi_r - lo_r <= 1e-12:
            hi_r = lo_r + 1e-6
        scale = (hi_r - lo_r) / qmax
        zp = int(min(max(round(-lo_r / scale), 0), qmax))
        return _Target("act", scale, zp, bits, False, 0, qmax)

    def _range(self, data: str, nonneg: bool, steps: int, symmetric: bool = False) -> tuple[float, float]:
        """Clipping range of a tensor: a percentile range, or the best of AUTO_PERCENTILES by MSE."""
        cal = self.cal

        def rng_for(p):
            if nonneg:
                return 0.0, max(0.0, cal.percentile(data, p))
            lo, hi = min(0.0, cal.percentile(data, 100 - p)), max(0.0, cal.percentile(data, p))
            if symmetric:
                peak = max(-lo, hi)
                return -peak, peak
            return lo, hi

        if self.cfg.percentile is not None:
            return rng_for(self.cfg.percentile)
        x = cal.samples[data].astype(np.float64)
        best, best_err = None, None
        for p in AUTO_PERCENTILES:
            lo, hi = rng_for(p)
            if hi - lo <= 1e-12:
                continue
            step = (hi - lo) / steps
            q = np.clip(np.rint((x - lo) / step), 0, steps)
            err = float(np.mean((q * step + lo - x) ** 2))
            if best_err is None or err < best_err:
                best, best_err = (lo, hi), err
        return best if best is not None else rng_for(100.0)

    # -- materialisation
    def codes(self, node: fx.Node) -> _Codes:
        st = self.state[node]
        if isinstance(st, _Codes):
            return st
        if isinstance(st, _Pending):
            st2 = self._emit_compute(node, st)
        elif isinstance(st, _PendingAdd):
            st2 = self._emit_add(node, st)
        else:
            raise ValueError(f"node {node.name}: unsupported value {st!r}")
        self.state[node] = st2
        return st2

    def _requant(self, a, b, target: _Target, relu: bool, threshold_ok: bool, max_acc: int, min_acc: int) -> Requant:
        cfg = self.cfg
        ca = np.asarray(a, dtype=np.float64) / target.scale
        cb = np.asarray(b, dtype=np.float64) / target.scale + target.zero_point
        m, n, shift = fixed_point_params(ca, cb, mult_bits=cfg.mult_bits, max_shift=cfg.max_shift)
        lo = max(target.lo, target.zero_point) if relu else target.lo
        hi = target.hi
        common = dict(out_scale=float(target.scale), out_zero_point=int(target.zero_point), out_bits=target.bits, out_signed=target.signed)
        if threshold_ok and cfg.requant == "threshold" and target.kind == "act":
            thr, neg = thresholds_from_fixed(m, n, shift, lo, hi, target.bits, max_acc)
            return Requant(mode="threshold", thr=thr, neg=neg, **common)
        ends = [int(mm) * acc + int(nn) for mm, nn in zip(m, n) for acc in (min_acc, max_acc)]
        return Requant(
            mode="fixed", m=m, n=n, shift=int(shift), lo=int(lo), hi=int(hi),
            n_bits=signed_width(n), sum_bits=signed_width(ends), **common,
        )

    def _bc_input(self, name: str) -> np.ndarray:
        return self.bc_codes[name].astype(np.int64)

    def _emit_compute(self, node: fx.Node, st: _Pending) -> _Codes:
        from quant import golden

        target = self._target(node, st.relu, pending_compute=True)
        spec = st.spec
        b = st.b
        track = self.bc_images is not None
        if track:
            x = self._bc_input(spec["inputs"][0])
            x4 = x.reshape(x.shape[0], -1, 1, 1) if x.ndim == 2 else x
            cols = golden.im2col_batch(x4, spec["kernel"], spec["stride"], spec["padding"], spec["in_zero_point"])
            acc = golden.adder_acc(cols, spec["weight"]) if spec["kind"].startswith("adder") else golden.mult_acc(cols, spec["weight"])
            if st.pre_node in self.cal.chan_mean:
                mean_acc = acc.mean(axis=(0, 2))
                b = b - (st.a * mean_acc + b - self.cal.chan_mean[st.pre_node])
        rq = self._requant(st.a, b, target, st.relu, spec["kind"].startswith("adder"), st.max_acc, st.min_acc)
        layer = IntLayer(requant=rq, **spec)
        if track:
            q = golden.requant(acc, rq).reshape((acc.shape[0],) + layer.out_shape)
            self.bc_codes[layer.name] = q.astype(np.int32)
        self.layers.append(layer)
        self.float_node[layer.name] = node.name
        return _Codes(layer.name, target.scale, target.zero_point, target.bits, target.signed, layer.out_shape)

    def _emit_add(self, node: fx.Node, st: _PendingAdd) -> _Codes:
        target = self._target(node, st.relu, pending_compute=False)
        a, b = st.a, st.b
        ma, mb = a.scale / target.scale, b.scale / target.scale
        const = target.zero_point - (a.scale * a.zero_point + b.scale * b.zero_point) / target.scale
        cfg = self.cfg
        m, n, shift = fixed_point_params([ma, mb], [const, const], mult_bits=cfg.mult_bits, max_shift=cfg.max_shift)
        lo = max(target.lo, target.zero_point) if st.relu else target.lo
        ra, rb = code_range(a.bits, a.signed), code_range(b.bits, b.signed)
        ends = [int(m[0]) * x + int(m[1]) * y + int(n[0]) for x in ra for y in rb]
        rq = Requant(
            mode="fixed", m=m, n=n[:1], shift=int(shift), lo=int(lo), hi=int(target.hi),
            n_bits=signed_width(n[:1]), sum_bits=signed_width(ends),
            out_scale=float(target.scale), out_zero_point=int(target.zero_point), out_bits=target.bits, out_signed=target.signed,
        )
        layer = IntLayer(name=st.name, kind="add", inputs=(a.layer, b.layer), in_shape=st.shape, out_shape=st.shape, requant=rq)
        self.layers.append(layer)
        self.float_node[layer.name] = node.name
        return _Codes(layer.name, target.scale, target.zero_point, target.bits, target.signed, st.shape)

    # -- node handlers
    def _shape(self, node) -> tuple:
        return self.cal.shapes[node.name]

    def _arg(self, node, i=0) -> fx.Node:
        a = node.args[i]
        if not isinstance(a, fx.Node):
            raise ValueError(f"node {node.name}: argument {i} is not a tensor")
        return a

    def _input(self, node: fx.Node) -> None:
        if self.input_quant is not None:
            raise ValueError("models with more than one input are not supported")
        t = self._target(node, relu=False, pending_compute=False)
        if t.kind not in ("act", "mult_in"):
            raise ValueError("the model input must feed adder or multiply layers")
        self.input_quant = InputQuant(mean=tuple(self.mean), std=tuple(self.std), scale=float(t.scale), zero_point=int(t.zero_point), bits=t.bits, signed=t.signed)
        self.input_shape = self._shape(node)
        self.state[node] = _Codes("input", t.scale, t.zero_point, t.bits, t.signed, self.input_shape)

    def _compute(self, node: fx.Node, kind: str) -> None:
        src = self.codes(self._arg(node))
        m = self.gm.get_submodule(node.target)
        cfg = self.cfg
        out_shape = self._shape(node)
        if kind == "adder":
            w = m.adder.detach().double().numpy()
            if src.signed:
                raise ValueError(f"{node.target}: adder layer input must be unsigned codes")
        else:
            w = m.weight.detach().double().numpy()
            if not src.signed or src.zero_point != 0:
                raise ValueError(f"{node.target}: multiply layer input must be signed codes with zero point 0")
        o = w.shape[0]
        if w.ndim == 4:
            kernel = tuple(int(v) for v in w.shape[2:])
            stride = _one(m.stride, node.target, "stride")
            padding = _one(m.padding, node.target, "padding")
            if getattr(m, "groups", 1) != 1 or tuple(getattr(m, "dilation", (1, 1))) != (1, 1):
                raise ValueError(f"{node.target}: grouped or dilated convolutions are not supported")
            is_linear = len(src.shape) == 1
            if is_linear:
                raise ValueError(f"{node.target}: conv layer on a flat input")
            int_kind = "adder_conv" if kind == "adder" else "conv"
        else:
            kernel, stride, padding = (1, 1), 1, 0
            int_kind = "adder_linear" if kind == "adder" else "linear"
        w2 = w.reshape(o, -1)
        k = w2.shape[1]
        bias = getattr(m, "bias", None)
        bias = np.zeros(o) if bias is None else bias.detach().double().numpy()
        s = src.scale
        if kind == "adder":
            abits, wbits = src.bits, cfg.bits
            qmax = (1 << abits) - 1
            clamped, comp = exact_clamp(w2 / s + src.zero_point, qmax)
            g = 1 << (abits - wbits)
            wq = np.minimum(g * np.rint(clamped / g), g * ((1 << wbits) - 1)).astype(np.int64)
            a = np.full(o, -s)
            b = -s * comp + bias
            max_acc, min_acc = k * qmax, 0
            pe = "adder"
            extra = dict(compensation=comp)
        else:
            abits = wbits = src.bits
            lim = (1 << (wbits - 1)) - 1
            peak = np.abs(w2).max(axis=1)
            ws = np.where(peak > 0, peak / lim, 1.0)
            wq = np.clip(np.rint(w2 / ws[:, None]), -lim, lim).astype(np.int64)
            a = s * ws
            b = bias.copy()
            xmax = 1 << (abits - 1)
            max_acc, min_acc = k * xmax * lim, -k * xmax * lim
            pe = "mult"
            extra = dict(compensation=np.zeros(o), weight_scale=ws)
        name = self._unique(str(node.target))
        spec = dict(
            name=name, kind=int_kind, inputs=(src.layer,), in_shape=src.shape, out_shape=out_shape,
            kernel=kernel, stride=stride, padding=padding, K=k, weight=wq, in_scale=float(s),
            in_zero_point=int(src.zero_point), bits=abits, weight_bits=wbits,
            acc_bits=acc_bits_for(abits, k, pe), **extra,
        )
        self.state[node] = _Pending(spec, a, b, False, max_acc, min_acc, node.name)

    def _bn(self, node: fx.Node) -> None:
        st = self.state[self._arg(node)]
        if not isinstance(st, _Pending) or st.relu:
            raise ValueError(f"{node.target}: batch norm must directly follow a conv/linear/adder layer")
        m = self.gm.get_submodule(node.target)
        mean = m.running_mean.detach().double().numpy()
        var = m.running_var.detach().double().numpy()
        gamma = m.weight.detach().double().numpy() if m.weight is not None else np.ones_like(mean)
        beta = m.bias.detach().double().numpy() if m.bias is not None else np.zeros_like(mean)
        g = gamma / np.sqrt(var + m.eps)
        self.state[node] = _Pending(st.spec, st.a * g, (st.b - mean) * g + beta, False, st.max_acc, st.min_acc, node.name)

    def _relu(self, node: fx.Node) -> None:
        st = self.state[self._arg(node)]
        if isinstance(st, _Pending):
            self.state[node] = _Pending(st.spec, st.a, st.b, True, st.max_acc, st.min_acc, st.pre_node)
        elif isinstance(st, _PendingAdd):
            self.state[node] = _PendingAdd(st.a, st.b, True, st.name, st.shape)
        elif isinstance(st, _Codes) and not st.signed and st.zero_point == 0:
            self.state[node] = st
        else:
            raise ValueError(f"node {node.name}: ReLU on already quantised signed codes is not supported")

    def _pool(self, node: fx.Node, kind: str) -> None:
        src = self.codes(self._arg(node))
        if len(src.shape) != 3:
            raise ValueError(f"node {node.name}: pooling needs [C, H, W] inputs")
        kernel, stride, padding = _pool_params(self.gm, node, src.shape)
        name = self._unique(str(node.target) if node.op == "call_module" else node.name)
        out_shape = self._shape(node)
        if kind == "maxpool":
            layer = IntLayer(name=name, kind="maxpool", inputs=(src.layer,), in_shape=src.shape, out_shape=out_shape, kernel=kernel, stride=stride, padding=padding)
            self.layers.append(layer)
            self.float_node[name] = node.name
            self.state[node] = _Codes(name, src.scale, src.zero_point, src.bits, src.signed, out_shape)
            return
        if padding:
            raise ValueError(f"node {node.name}: padded average pooling is not supported")
        target = self._target(node, relu=False, pending_compute=False)
        cnt = kernel[0] * kernel[1]
        a = src.scale / (cnt * target.scale)
        b = target.zero_point - src.scale * src.zero_point / target.scale
        m, n, shift = fixed_point_params([a], [b], mult_bits=self.cfg.mult_bits, max_shift=self.cfg.max_shift)
        lo_in, hi_in = code_range(src.bits, src.signed)
        ends = [int(m[0]) * v * cnt + int(n[0]) for v in (lo_in, hi_in)]
        rq = Requant(mode="fixed", m=m, n=n, shift=int(shift), lo=int(target.lo), hi=int(target.hi),
                     n_bits=signed_width(n), sum_bits=signed_width(ends), out_scale=float(target.scale),
                     out_zero_point=int(target.zero_point), out_bits=target.bits, out_signed=target.signed)
        layer = IntLayer(name=name, kind="avgpool", inputs=(src.layer,), in_shape=src.shape, out_shape=out_shape, kernel=kernel, stride=stride, padding=0, requant=rq)
        self.layers.append(layer)
        self.float_node[name] = node.name
        self.state[node] = _Codes(name, target.scale, target.zero_point, target.bits, target.signed, out_shape)

    def _flatten(self, node: fx.Node) -> None:
        src_node = self._arg(node)
        out_shape = self._shape(node)
        if len(out_shape) != 1:
            raise ValueError(f"node {node.name}: only flattening to [N, features] is supported")
        src = self.codes(src_node)
        if src.shape == out_shape:
            self.state[node] = src
            return
        name = self._unique("flatten" if node.op != "call_module" else str(node.target))
        layer = IntLayer(name=name, kind="flatten", inputs=(src.layer,), in_shape=src.shape, out_shape=out_shape)
        self.layers.append(layer)
        self.float_node[name] = node.name
        self.state[node] = _Codes(name, src.scale, src.zero_point, src.bits, src.signed, out_shape)

    def _add(self, node: fx.Node) -> None:
        if len(node.args) != 2 or node.kwargs:
            raise ValueError(f"node {node.name}: only a plain sum of two tensors is supported")
        a = self.codes(self._arg(node, 0))
        b = self.codes(self._arg(node, 1))
        if a.shape != b.shape:
            raise ValueError(f"node {node.name}: residual add of shapes {a.shape} and {b.shape}")
        stack = node.meta.get("nn_module_stack") or {}
        prefix = ""
        if stack:
            prefix = list(stack.values())[-1]
            prefix = prefix[0] if isinstance(prefix, tuple) else str(prefix)
        base = f"{prefix}.add" if prefix and isinstance(prefix, str) and not prefix.startswith("<") else node.name
        self.state[node] = _PendingAdd(a, b, False, self._unique(base), a.shape)

    def _bc_follow(self) -> None:
        """Codes of newly emitted non-compute layers on the bias-correction images."""
        from quant import golden

        if self.bc_images is None:
            return
        for layer in self.layers:
            if layer.name in self.bc_codes or layer.pe is not None:
                continue
            if all(s in self.bc_codes for s in layer.inputs):
                out = golden.run_layer(layer, [self.bc_codes[s].astype(np.int64) for s in layer.inputs])
                self.bc_codes[layer.name] = out.astype(np.int32)

    def build(self, bc_images: np.ndarray | None = None) -> None:
        from quant import golden

        for node in self.gm.graph.nodes:
            self._bc_follow()
            if self.input_quant is not None and bc_images is not None and self.bc_images is None:
                self.bc_images = bc_images
                self.bc_codes["input"] = golden.quantize_input(bc_images, self.input_quant).astype(np.int32)
            k = self.kind[node]
            if k == "input":
                self._input(node)
            elif k in ("adder", "conv", "linear"):
                self._compute(node, k)
            elif k == "bn":
                self._bn(node)
            elif k == "relu":
                self._relu(node)
            elif k in ("maxpool", "avgpool"):
                self._pool(node, k)
            elif k == "flatten":
                self._flatten(node)
            elif k == "add":
                self._add(node)
            elif k == "identity":
                self.state[node] = self.state[self._arg(node)]
            elif k == "size":
                continue
            elif k == "output":
                out = node.args[0]
                if not isinstance(out, fx.Node):
                    raise ValueError("the model must return one logits tensor")
                self.codes(out)
            else:
                what = node.target if node.op != "call_module" else type(self.gm.get_submodule(node.target)).__name__
                raise ValueError(f"node {node.name}: operation {what} is not supported by the quantizer")


def _one(v, where: str, what: str) -> int:
    t = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if isinstance(t[0], str) or t[0] != t[1]:
        raise ValueError(f"{where}: {what} {v!r} must be one integer for both axes")
    return int(t[0])


def _pool_params(gm, node, in_shape):
    if node.op == "call_module":
        m = gm.get_submodule(node.target)
        if isinstance(m, nn.AdaptiveAvgPool2d):
            osz = m.output_size if isinstance(m.output_size, tuple) else (m.output_size, m.output_size)
            if tuple(osz) != (1, 1):
                raise ValueError(f"{node.target}: only adaptive pooling to 1x1 is supported")
            return (in_shape[1], in_shape[2]), 1, 0
        if getattr(m, "ceil_mode", False) or (isinstance(m, nn.MaxPool2d) and _one(m.dilation, node.target, "dilation") != 1):
            raise ValueError(f"{node.target}: ceil_mode/dilation pooling is not supported")
        if isinstance(m, nn.AvgPool2d) and not m.count_include_pad and _one(m.padding, node.target, "padding"):
            raise ValueError(f"{node.target}: avg pooling that excludes padding is not supported")
        k = _one(m.kernel_size, node.target, "kernel_size")
        s = _one(m.stride if m.stride is not None else m.kernel_size, node.target, "stride")
        p = _one(m.padding, node.target, "padding")
        return (k, k), s, p
    args = list(node.args) + [None] * 4
    kw = dict(node.kwargs)
    if node.target is F.adaptive_avg_pool2d:
        return (in_shape[1], in_shape[2]), 1, 0
    k = kw.get("kernel_size", args[1])
    s = kw.get("stride", args[2]) or k
    p = kw.get("padding", args[3]) or 0
    k = _one(k, node.name, "kernel_size")
    return (k, k), _one(s, node.name, "stride"), _one(p, node.name, "padding")


def quantize_model(
    model: nn.Module,
    calib_images: np.ndarray,
    *,
    mean,
    std,
    cfg: QuantConfig,
    name: str = "model",
    dataset: str = "",
    class_names=(),
    source: dict | None = None,
    seed: int = 0,
) -> tuple[IntModel, dict]:
    """Quantise a float model into an integer model.

    Parameters
    ----------
    model : torch.nn.Module
        Float model in eval mode taking normalised images.
    calib_images : numpy.ndarray
        Calibration images ``[N, C, H, W]`` in 0..1 (before normalisation).
    mean, std : sequence of float
        Input normalisation.
    cfg : QuantConfig

    Returns
    -------
    (IntModel, dict)
        The integer model and ``{int layer name: float FX node name}`` (the
        float tensor each layer's output codes approximate; for SQNR).
    """
    imgs = np.asarray(calib_images, dtype=np.float32)
    if imgs.ndim != 4 or imgs.shape[0] < 1:
        raise ValueError(f"calibration images must be a non-empty [N, C, H, W] array, not shape {imgs.shape}")
    model = model.eval()
    gm = trace(model)
    n_bc = min(imgs.shape[0], cfg.bias_correction_images)
    cal = calibrate(gm, imgs, mean, std, seed=seed, mean_images=n_bc)
    builder = _Builder(gm, cal, cfg, mean, std)
    builder.build(imgs[:n_bc] if cfg.bias_correction else None)
    im = IntModel(
        name=name,
        dataset=dataset,
        input=builder.input_quant,
        input_shape=builder.input_shape,
        layers=builder.layers,
        class_names=tuple(class_names),
        source=dict(source or {}),
        quantization={**cfg.to_dict(), "calib_images": int(imgs.shape[0]), "seed": seed},
    )
    return im, dict(builder.float_node)


def float_logits(model: nn.Module, images: np.ndarray, mean, std, *, batch: int = 500) -> np.ndarray:
    """Float logits (float64) of images in 0..1."""
    outs = []
    model = model.eval()
    with torch.no_grad():
        for s in range(0, images.shape[0], batch):
            outs.append(model(_normalise(images[s : s + batch], mean, std)).double().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 0))


def float_node_outputs(gm: fx.GraphModule, images: np.ndarray, mean, std, names) -> dict:
    """Float outputs of the FX nodes ``names`` for ``images`` (one batch)."""
    want = set(names)
    got: dict = {}

    def sink(name, t):
        if name in want:
            got[name] = t.detach().double().numpy()

    with torch.no_grad():
        _Recorder(gm, sink).run(_normalise(images, mean, std))
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
            model(_normalise(images[s : s + batch], mean, std))
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
