"""Conversion of a traced float model into integer layers: one handler per node kind.

:func:`classify` gives every FX node a :class:`NodeKind`; :func:`convert`
walks the graph in execution order and calls the handler registered for that
kind (``@_handles(NodeKind.BN)`` ...; the table is :data:`HANDLERS`).
Handlers keep a value per node, one of

* integer codes already produced by an emitted layer (``_Codes``);
* a compute layer not yet emitted, ``y = A*acc + B`` (``_PendingCompute``:
  its :class:`ComputeSpec` and :class:`quant.quantizer.fold.Affine`), to which BN and
  ReLU fold;
* a residual add not yet emitted (``_PendingAdd``), to which ReLU folds.

A pending value is emitted (its requant built by :mod:`quant.quantizer.fold`) when a
consumer needs its codes; the consumers decide the code :class:`~quant.quantizer.fold.Target`
(DESIGN section 2):

* the model output: signed ``logit_bits`` codes, zero point 0, scale
  ``2*peak / (2**(logit_bits-1) - 1)`` with ``peak`` the calibrated ``max|y|``;
* multiply layers: signed ``mult_layer_bits`` codes, zero point 0,
  scale ``peak / (2**(bits-1) - 1)`` of the (symmetric) clipping range;
* only residual adds, from a compute layer without ReLU: signed
  ``mid_bits`` codes, scale ``max|y| / (2**(mid_bits-1) - 1)``;
* otherwise unsigned ``act_bits`` codes on the clipping range ``[lo, hi]``:
  ``s = (hi - lo) / (2**act_bits - 1)``, ``z = clamp(round(-lo/s), 0, 2**act_bits - 1)``.

Weights (``w2 = W.reshape(O, K)``, input scale ``s``, zero point ``z``):

* adder layers: codes ``w2/s + z`` clamped exactly to ``[0, 2**bits_x - 1]``
  with compensation ``C_o`` (:func:`quant.base.intops.exact_clamp`), rounded to
  every ``2**(bits_x - bits)``-th code; ``A_o = -s``, ``B_o = -s*C_o + bias_o``;
  with ``groups > 1`` the same per group ``g`` with its own ``s_g, z_g``
  (:mod:`quant.quantizer.groups`), the layer's input codes being ``act_bits + 4``
  bits wide (at most 16) and re-scaled once per group
  (:class:`~quant.intmodel.artifact.GroupScales`);
* multiply layers: symmetric per-channel ``ws_o = max|w2_o| / (2**(b-1)-1)``,
  ``w_q = clamp(rint(w2/ws), -(2**(b-1)-1), 2**(b-1)-1)``; ``A_o = s*ws_o``,
  ``B_o = bias_o``.
"""

from __future__ import annotations

import enum
import operator
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from quant.intmodel.artifact import (
    LAYER_CLASSES,
    AddLayer,
    AvgPoolLayer,
    ComputeLayer,
    FlattenLayer,
    GroupScales,
    IntLayer,
    MaxPoolLayer,
    Requant,
)
from quant.quantizer.calibrate import Calibration, is_adder_module
from quant.quantizer.config import QuantConfig
from quant.quantizer.fold import Affine, CodeKind, LayerFold, Target, fixed_requant
from quant.quantizer.groups import EXTRA_INPUT_BITS, channel_ranges, choose_group_range, cluster_channels
from quant.base.intops import (
    MAX_BITS,
    InputQuant,
    LayerKind,
    PeKind,
    RequantMode,
    acc_bits_for,
    code_range,
    exact_clamp,
    fixed_point_params,
    pe_of,
)
from quant.quantizer.rounding import round_nearest

__all__ = ["NodeKind", "classify", "choose_target", "ComputeSpec", "QuantGraph", "HANDLERS", "convert"]


class NodeKind(enum.Enum):
    """What an FX node does, for the quantizer."""

    INPUT = "input"
    OUTPUT = "output"
    ADDER = "adder"
    CONV = "conv"
    LINEAR = "linear"
    BN = "bn"
    RELU = "relu"
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    FLATTEN = "flatten"
    ADD = "add"
    IDENTITY = "identity"
    SIZE = "size"
    OTHER = "other"


#: Kind of a called module (after the adder check), first match wins.
_MODULE_KINDS = (
    (nn.Conv2d, NodeKind.CONV),
    (nn.Linear, NodeKind.LINEAR),
    ((nn.BatchNorm1d, nn.BatchNorm2d), NodeKind.BN),
    (nn.ReLU, NodeKind.RELU),
    (nn.MaxPool2d, NodeKind.MAXPOOL),
    ((nn.AvgPool2d, nn.AdaptiveAvgPool2d), NodeKind.AVGPOOL),
    (nn.Flatten, NodeKind.FLATTEN),
    ((nn.Dropout, nn.Identity), NodeKind.IDENTITY),
)

#: Kind of a called function.
_FUNCTION_KINDS = {
    F.relu: NodeKind.RELU,
    torch.relu: NodeKind.RELU,
    operator.add: NodeKind.ADD,
    operator.iadd: NodeKind.ADD,
    torch.add: NodeKind.ADD,
    torch.flatten: NodeKind.FLATTEN,
    F.max_pool2d: NodeKind.MAXPOOL,
    F.avg_pool2d: NodeKind.AVGPOOL,
    F.adaptive_avg_pool2d: NodeKind.AVGPOOL,
    F.dropout: NodeKind.IDENTITY,
}

#: Kind of a called tensor method.
_METHOD_KINDS = {
    "view": NodeKind.FLATTEN,
    "reshape": NodeKind.FLATTEN,
    "flatten": NodeKind.FLATTEN,
    "relu": NodeKind.RELU,
    "relu_": NodeKind.RELU,
    "add": NodeKind.ADD,
    "add_": NodeKind.ADD,
    "__add__": NodeKind.ADD,
    "__iadd__": NodeKind.ADD,
    "size": NodeKind.SIZE,
}

#: Kinds that pass a tensor through unchanged in value and scale (consumers look through them).
_PASS_THROUGH = (NodeKind.MAXPOOL, NodeKind.FLATTEN, NodeKind.IDENTITY)


def classify(gm: fx.GraphModule, node: fx.Node) -> NodeKind:
    """The :class:`NodeKind` of ``node`` (``OTHER`` for anything the quantizer does not know)."""
    if node.op == "placeholder":
        return NodeKind.INPUT
    if node.op == "output":
        return NodeKind.OUTPUT
    if node.op == "call_module":
        m = gm.get_submodule(node.target)
        if is_adder_module(m):
            return NodeKind.ADDER
        return next((kind for types, kind in _MODULE_KINDS if isinstance(m, types)), NodeKind.OTHER)
    if node.op == "call_function":
        return _FUNCTION_KINDS.get(node.target, NodeKind.OTHER)
    if node.op == "call_method":
        return _METHOD_KINDS.get(node.target, NodeKind.OTHER)
    return NodeKind.OTHER


# --- values kept per node ------------------------------------------------------------


@dataclass(frozen=True)
class _Codes:
    """A tensor available as integer codes produced by layer ``layer``."""

    layer: str
    scale: float
    zero_point: int
    bits: int
    signed: bool
    shape: tuple


@dataclass(frozen=True, kw_only=True, eq=False)
class ComputeSpec:
    """A compute layer before its requant: the :class:`~quant.intmodel.artifact.ComputeLayer` fields but ``requant``.

    ``weight_scale`` is set for multiply layers (:class:`~quant.intmodel.artifact.MultLayer`) only,
    ``scale_groups`` for adder layers (:class:`~quant.intmodel.artifact.AdderLayer`) only.
    """

    name: str
    kind: LayerKind
    inputs: tuple
    in_shape: tuple
    out_shape: tuple
    kernel: tuple
    stride: int
    padding: int
    K: int
    weight: np.ndarray
    in_scale: float
    in_zero_point: int
    bits: int
    weight_bits: int
    acc_bits: int
    compensation: np.ndarray
    weight_scale: np.ndarray | None = None
    scale_groups: GroupScales | None = None

    def __post_init__(self) -> None:
        pe = pe_of(self.kind)
        if pe is None:
            raise ValueError(f"{self.name}: {self.kind!r} is not a compute layer kind")
        if (self.weight_scale is not None) != (pe == PeKind.MULT):
            raise ValueError(f"{self.name}: weight_scale belongs to multiply layers, and they need it")
        if self.scale_groups is not None and pe != PeKind.ADDER:
            raise ValueError(f"{self.name}: scale_groups belong to adder layers only")

    def layer(self, requant: Requant) -> ComputeLayer:
        """The :class:`~quant.intmodel.artifact.AdderLayer` or :class:`~quant.intmodel.artifact.MultLayer` with ``requant``."""
        fields = {k: getattr(self, k) for k in self.__dataclass_fields__}
        if pe_of(self.kind) == PeKind.MULT:
            del fields["scale_groups"]
        else:
            del fields["weight_scale"]
        return LAYER_CLASSES[LayerKind(self.kind)](requant=requant, **fields)


@dataclass(frozen=True)
class _PendingCompute:
    spec: ComputeSpec
    affine: Affine
    pre_node: str  # float node holding y before ReLU (for bias correction)
    real_weights: np.ndarray | None = None  # adder layers: real weight codes before clamp and rounding


@dataclass(frozen=True)
class _PendingAdd:
    a: _Codes
    b: _Codes
    relu: bool
    name: str
    shape: tuple


# --- the result ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class QuantGraph:
    """Integer layers of a converted model, what passes (:mod:`quant.quantizer.passes`) transform.

    Parameters
    ----------
    input : InputQuant
    input_shape : tuple
    layers : tuple of IntLayer
        In execution order.
    float_node : dict
        ``{layer name: float FX node name}`` whose value the layer's codes approximate.
    folds : dict
        ``{compute layer name: LayerFold}`` its requant was built from.
    real_weights : dict
        ``{adder layer name: real weight codes [O, K]}`` before clamping and
        rounding (``w/s + z``; with group-shared scales in each channel's
        group codes), for the rounding pass (:class:`quant.quantizer.passes.OutputRounding`).
    """

    input: InputQuant
    input_shape: tuple
    layers: tuple
    float_node: dict = field(default_factory=dict)
    folds: dict = field(default_factory=dict)
    real_weights: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        names = {layer.name for layer in self.layers}
        if set(self.folds) - names:
            raise ValueError(f"folds of unknown layers: {sorted(set(self.folds) - names)}")
        if set(self.real_weights) - names:
            raise ValueError(f"real weights of unknown layers: {sorted(set(self.real_weights) - names)}")


def choose_target(consumers, data: str, cal: Calibration, cfg: QuantConfig, *, relu: bool, pending_compute: bool,
                  where: str = "") -> Target:
    """Code format of a tensor from the kinds of its final consumers (module docstring).

    Parameters
    ----------
    consumers : list of NodeKind
        Kinds of the nodes that use the tensor (through max pools, flattens
        and identities).
    data : str
        Float node whose calibration statistics describe the tensor.
    cal : Calibration
    cfg : QuantConfig
    relu : bool
        A ReLU is folded into the producer (the tensor is non-negative).
    pending_compute : bool
        The producer is a compute layer not yet emitted (may use ``mid`` codes).
    where : str
        Node name for error messages.
    """
    cons = list(consumers)

    def clip(nonneg, steps, symmetric=False):
        return cal.clip_range(data, nonneg, steps, percentile=cfg.percentile, symmetric=symmetric)

    def unsigned(kind: CodeKind, bits: int, nonneg: bool) -> Target:  # codes 0..2**bits-1 over the clipped range
        qmax = (1 << bits) - 1
        lo_r, hi_r = clip(nonneg, (1 << cfg.act_bits) - 1)
        if hi_r - lo_r <= 1e-12:
            hi_r = lo_r + 1e-6
        scale = (hi_r - lo_r) / qmax
        zp = int(min(max(round(-lo_r / scale), 0), qmax))
        return Target(kind=kind, scale=scale, zero_point=zp, bits=bits, signed=False, lo=0, hi=qmax)

    if NodeKind.OUTPUT in cons:
        if len(cons) > 1:
            raise ValueError(f"node {where}: the logits are also used inside the network")
        if cfg.logits == RequantMode.THRESHOLD:  # unsigned act_bits codes: thresholds can produce them
            return unsigned(CodeKind.LOGITS, cfg.act_bits, cal.min[data] >= 0)
        peak = max(abs(cal.min[data]), abs(cal.max[data]), 1e-12)
        lo, hi = code_range(cfg.logit_bits, True)
        return Target(kind=CodeKind.LOGITS, scale=2.0 * peak / hi, zero_point=0, bits=cfg.logit_bits, signed=True, lo=lo, hi=hi)
    if any(c in (NodeKind.CONV, NodeKind.LINEAR) for c in cons):
        if NodeKind.ADDER in cons:
            raise ValueError(f"node {where} feeds both adder and multiply layers; unsupported")
        bits = cfg.mult_layer_bits
        lo, hi = code_range(bits, True)
        nonneg = relu or cal.min[data] >= 0
        lo_r, hi_r = clip(nonneg, hi if nonneg else 2 * hi, symmetric=True)
        peak = max(abs(lo_r), abs(hi_r), 1e-12)
        lo_c = 0 if nonneg else -hi
        return Target(kind=CodeKind.MULT_IN, scale=peak / hi, zero_point=0, bits=bits, signed=True, lo=lo_c, hi=hi)
    if pending_compute and not relu and cons and all(c is NodeKind.ADD for c in cons):
        lo, hi = code_range(cfg.mid_bits, True)
        peak = max(abs(cal.min[data]), abs(cal.max[data]), 1e-12)
        return Target(kind=CodeKind.MID, scale=peak / hi, zero_point=0, bits=cfg.mid_bits, signed=True, lo=lo, hi=hi)
    bits = cfg.act_bits
    if cfg.groups > 1 and NodeKind.ADDER in cons:  # grouped adder layers re-scale these codes: finer base grid
        bits = min(MAX_BITS, bits + EXTRA_INPUT_BITS)
    return unsigned(CodeKind.ACT, bits, relu or cal.min[data] >= 0)


# --- the converter -------------------------------------------------------------------

#: ``{NodeKind: handler(converter, node)}``; filled by :func:`_handles`.
HANDLERS: dict[NodeKind, Callable[["_Converter", fx.Node], None]] = {}


def _handles(*kinds: NodeKind):
    def register(fn):
        for k in kinds:
            if k in HANDLERS:
                raise ValueError(f"two handlers for {k}")
            HANDLERS[k] = fn
        return fn

    return register


class _Converter:
    """The state of one conversion: node values, emitted layers, names."""

    def __init__(self, gm: fx.GraphModule, cal: Calibration, cfg: QuantConfig, mean, std):
        self.gm = gm
        self.cal = cal
        self.cfg = cfg
        self.mean, self.std = mean, std
        self.layers: list[IntLayer] = []
        self.float_node: dict[str, str] = {}
        self.folds: dict[str, LayerFold] = {}
        self.real_weights: dict[str, np.ndarray] = {}
        self.state: dict = {}
        self.kind = {n: classify(gm, n) for n in gm.graph.nodes}
        self.input_quant: InputQuant | None = None
        self.input_shape: tuple | None = None
        self.names: set = set()

    # -- names, shapes, arguments
    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self.names:
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        return name

    def shape(self, node) -> tuple:
        return self.cal.shapes[node.name]

    def arg(self, node, i=0) -> fx.Node:
        a = node.args[i]
        if not isinstance(a, fx.Node):
            raise ValueError(f"node {node.name}: argument {i} is not a tensor")
        return a

    def emit(self, layer: IntLayer, node: fx.Node) -> None:
        self.layers.append(layer)
        self.float_node[layer.name] = node.name

    # -- consumers decide the code format
    def _tensor_users(self, node: fx.Node):
        return [u for u in node.users if self.kind[u] is not NodeKind.SIZE]

    def _final_consumers(self, node: fx.Node) -> list[NodeKind]:
        out = []
        for u in self._tensor_users(node):
            k = self.kind[u]
            if k in _PASS_THROUGH:
                out += self._final_consumers(u)
            else:
                out.append(k)
        return out

    def _data_node(self, node: fx.Node) -> str:
        users = self._tensor_users(node)
        while len(users) == 1 and self.kind[users[0]] in _PASS_THROUGH:
            node = users[0]
            users = self._tensor_users(node)
        return node.name

    def target(self, node: fx.Node, relu: bool, pending_compute: bool) -> Target:
        """Code format of ``node``'s value, from its consumers (:func:`choose_target`)."""
        return choose_target(self._final_consumers(node), self._data_node(node), self.cal, self.cfg, relu=relu,
                             pending_compute=pending_compute, where=node.name)

    # -- materialisation
    def codes(self, node: fx.Node) -> _Codes:
        """``node``'s value as codes, emitting its pending layer first if needed."""
        st = self.state[node]
        if isinstance(st, _Codes):
            return st
        if isinstance(st, _PendingCompute):
            st2 = self._emit_compute(node, st)
        elif isinstance(st, _PendingAdd):
            st2 = self._emit_add(node, st)
        else:
            raise ValueError(f"node {node.name}: unsupported value {st!r}")
        self.state[node] = st2
        return st2

    def _emit_compute(self, node: fx.Node, st: _PendingCompute) -> _Codes:
        target = self.target(node, st.affine.relu, pending_compute=True)
        adder = pe_of(st.spec.kind) == PeKind.ADDER
        if target.kind is CodeKind.LOGITS and self.cfg.logits == RequantMode.THRESHOLD and not adder:
            raise ValueError(f"layer {st.spec.name}: threshold logits need an adder layer, not a {st.spec.kind} layer "
                             "(use --logits fixed)")
        threshold = adder and ((self.cfg.requant == RequantMode.THRESHOLD and target.kind is CodeKind.ACT)
                               or (self.cfg.logits == RequantMode.THRESHOLD and target.kind is CodeKind.LOGITS))
        fold = LayerFold(affine=st.affine, target=target, threshold=threshold, pre_node=st.pre_node,
                         mult_bits=self.cfg.mult_bits, max_shift=self.cfg.max_shift)
        try:
            requant = fold.requant()
        except ValueError as exc:  # a requant out of range (weights all zero, or far out of scale)
            raise ValueError(f"layer {st.spec.name}: {exc}") from None
        layer = st.spec.layer(requant)
        self.emit(layer, node)
        self.folds[layer.name] = fold
        if st.real_weights is not None:
            self.real_weights[layer.name] = st.real_weights
        return _Codes(layer.name, target.scale, target.zero_point, target.bits, target.signed, layer.out_shape)

    def _emit_add(self, node: fx.Node, st: _PendingAdd) -> _Codes:
        target = self.target(node, st.relu, pending_compute=False)
        a, b = st.a, st.b
        try:
            rq = fixed_requant(
                [a.scale, b.scale], [-(a.scale * a.zero_point + b.scale * b.zero_point)], target,
                operand_ranges=(code_range(a.bits, a.signed), code_range(b.bits, b.signed)), relu=st.relu,
                mult_bits=self.cfg.mult_bits, max_shift=self.cfg.max_shift,
            )
        except ValueError as exc:
            raise ValueError(f"layer {st.name}: {exc}") from None
        layer = AddLayer(name=st.name, inputs=(a.layer, b.layer), in_shape=st.shape, out_shape=st.shape, requant=rq)
        self.emit(layer, node)
        return _Codes(layer.name, target.scale, target.zero_point, target.bits, target.signed, st.shape)

    def result(self) -> QuantGraph:
        if self.input_quant is None:
            raise ValueError("the model has no input")
        return QuantGraph(input=self.input_quant, input_shape=self.input_shape, layers=self.layers,
                          float_node=dict(self.float_node), folds=dict(self.folds), real_weights=dict(self.real_weights))


def convert(gm: fx.GraphModule, cal: Calibration, cfg: QuantConfig, mean, std) -> QuantGraph:
    """Integer layers of the traced model ``gm``: each node in order through its :data:`HANDLERS` entry."""
    conv = _Converter(gm, cal, cfg, mean, std)
    for node in gm.graph.nodes:
        kind = conv.kind[node]
        handler = HANDLERS.get(kind)
        if handler is None:
            what = node.target if node.op != "call_module" else type(gm.get_submodule(node.target)).__name__
            raise ValueError(f"node {node.name}: operation {what} is not supported by the quantizer")
        handler(conv, node)
    return conv.result()


# --- handlers ------------------------------------------------------------------------


@_handles(NodeKind.INPUT)
def _input(cv: _Converter, node: fx.Node) -> None:
    if cv.input_quant is not None:
        raise ValueError("models with more than one input are not supported")
    t = cv.target(node, relu=False, pending_compute=False)
    if t.kind not in (CodeKind.ACT, CodeKind.MULT_IN):
        raise ValueError("the model input must feed adder or multiply layers")
    cv.input_quant = InputQuant(mean=tuple(cv.mean), std=tuple(cv.std), scale=float(t.scale), zero_point=int(t.zero_point), bits=t.bits, signed=t.signed)
    cv.input_shape = cv.shape(node)
    cv.state[node] = _Codes("input", t.scale, t.zero_point, t.bits, t.signed, cv.input_shape)


@_handles(NodeKind.OUTPUT)
def _output(cv: _Converter, node: fx.Node) -> None:
    out = node.args[0]
    if not isinstance(out, fx.Node):
        raise ValueError("the model must return one logits tensor")
    cv.codes(out)


@_handles(NodeKind.SIZE)
def _size(cv: _Converter, node: fx.Node) -> None:
    """``x.size()`` only feeds shapes (reshape arguments): no value."""


@_handles(NodeKind.IDENTITY)
def _identity(cv: _Converter, node: fx.Node) -> None:
    cv.state[node] = cv.state[cv.arg(node)]


def _adder_weights(w2: np.ndarray, src: _Codes, wbits: int):
    """Exactly clamped adder weight codes: ``(w_q, A, B without bias, acc range, C, real codes)`` (module docstring)."""
    o, k = w2.shape
    s = src.scale
    abits = src.bits
    qmax = (1 << abits) - 1
    real = w2 / s + src.zero_point
    clamped, comp = exact_clamp(real, qmax)
    g = 1 << (abits - wbits)
    wq = round_nearest(clamped, g, g * ((1 << wbits) - 1))
    return wq, np.full(o, -s), -s * comp, (0, k * qmax), comp, real


def _mult_weights(w2: np.ndarray, src: _Codes):
    """Symmetric per-channel multiply weight codes: ``(w_q, A, weight_scale, acc range)``."""
    k = w2.shape[1]
    wbits = src.bits
    lim = (1 << (wbits - 1)) - 1
    peak = np.abs(w2).max(axis=1)
    ws = np.where(peak > 0, peak / lim, 1.0)
    wq = np.clip(np.rint(w2 / ws[:, None]), -lim, lim).astype(np.int64)
    xmax = 1 << (wbits - 1)
    return wq, src.scale * ws, ws, (-k * xmax * lim, k * xmax * lim)


def _grouped_adder_weights(w2: np.ndarray, src: _Codes, cfg, samples, where: str, wbits: int):
    """Adder weights with ``cfg.groups`` group-shared scales (:mod:`quant.quantizer.groups`).

    Returns ``(w_q, A, B without bias, acc range, C, GroupScales, real codes)``: channel
    ``o`` of group ``g`` has codes ``w/s_g + z_g`` clamped exactly to
    ``[0, 2**act_bits - 1]`` (compensation ``C_o`` in group-``g`` codes),
    ``A_o = -s_g``, ``B_o = -s_g*C_o``; the input codes (scale ``s``, zero
    point ``z``) are re-scaled per group by ``fixed_point_params(s/s_g, z_g - z*s/s_g)``.
    """
    o, k = w2.shape
    groups = cfg.groups
    if groups > o:
        raise ValueError(f"layer {where}: {o} output channels cannot be split into --groups {groups} "
                         f"(at most {o} for this layer)")
    s, z = src.scale, src.zero_point
    lo_r, hi_r = s * (0 - z), s * (((1 << src.bits) - 1) - z)
    abits = cfg.act_bits
    qmax = (1 << abits) - 1
    labels = cluster_channels(channel_ranges(w2, lo_r, hi_r), groups)
    sg_scale, sg_zp = np.empty(groups), np.empty(groups, dtype=np.int64)
    wq = np.empty((o, k), dtype=np.int64)
    real = np.empty((o, k))
    comp, a = np.empty(o), np.empty(o)
    step = 1 << (abits - wbits)
    for g in range(groups):
        rows = np.flatnonzero(labels == g)
        hi_g = choose_group_range(samples, w2[rows], lo_r, hi_r, abits, wbits=wbits, seed=g)
        s_g = (hi_g - lo_r) / qmax
        z_g = int(min(max(round(-lo_r / s_g), 0), qmax))
        real[rows] = w2[rows] / s_g + z_g
        clamped, c = exact_clamp(real[rows], qmax)
        wq[rows] = round_nearest(clamped, step, step * ((1 << wbits) - 1))
        comp[rows], a[rows] = c, -s_g
        sg_scale[g], sg_zp[g] = s_g, z_g
    ratio = s / sg_scale
    m, n, shift = fixed_point_params(ratio, sg_zp - z * ratio, mult_bits=cfg.mult_bits, max_shift=cfg.max_shift)
    sg = GroupScales(count=groups, channel_group=labels, in_bits=src.bits, m=m, n=n, shift=int(shift),
                     scale=sg_scale, zero_point=sg_zp)
    return wq, a, a * comp, (0, k * qmax), comp, sg, real


@_handles(NodeKind.ADDER, NodeKind.CONV, NodeKind.LINEAR)
def _compute(cv: _Converter, node: fx.Node) -> None:
    kind = cv.kind[node]
    adder = kind is NodeKind.ADDER
    src = cv.codes(cv.arg(node))
    m = cv.gm.get_submodule(node.target)
    out_shape = cv.shape(node)
    if adder:
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
        if len(src.shape) == 1:
            raise ValueError(f"{node.target}: conv layer on a flat input")
        int_kind = LayerKind.ADDER_CONV if adder else LayerKind.CONV
    else:
        kernel, stride, padding = (1, 1), 1, 0
        int_kind = LayerKind.ADDER_LINEAR if adder else LayerKind.LINEAR
    w2 = w.reshape(o, -1)
    k = w2.shape[1]
    bias = getattr(m, "bias", None)
    bias = np.zeros(o) if bias is None else bias.detach().double().numpy()
    sg = real = None
    if adder and cv.cfg.groups > 1:
        abits, wbits = cv.cfg.act_bits, cv.cfg.weight_bits(str(node.target))
        wq, a, b0, acc_range, comp, sg, real = _grouped_adder_weights(w2, src, cv.cfg, cv.cal.samples[cv.arg(node).name],
                                                                str(node.target), wbits)
        b = b0 + bias
        ws = None
    elif adder:
        abits, wbits = src.bits, cv.cfg.weight_bits(str(node.target))  # per-layer bits (QuantConfig.layer_bits)
        wq, a, b0, acc_range, comp, real = _adder_weights(w2, src, wbits)
        b = b0 + bias
        ws = None
    else:
        abits = wbits = src.bits
        wq, a, ws, acc_range = _mult_weights(w2, src)
        b = bias.copy()
        comp = np.zeros(o)
    spec = ComputeSpec(
        name=cv.unique(str(node.target)), kind=int_kind, inputs=(src.layer,), in_shape=src.shape, out_shape=out_shape,
        kernel=kernel, stride=stride, padding=padding, K=k, weight=wq, in_scale=float(src.scale),
        in_zero_point=int(src.zero_point), bits=abits, weight_bits=wbits,
        acc_bits=acc_bits_for(abits, k, pe_of(int_kind)), compensation=comp, weight_scale=ws, scale_groups=sg,
    )
    affine = Affine(a=a, b=b, relu=False, acc_min=acc_range[0], acc_max=acc_range[1])
    cv.state[node] = _PendingCompute(spec, affine, node.name, real)


@_handles(NodeKind.BN)
def _bn(cv: _Converter, node: fx.Node) -> None:
    st = cv.state[cv.arg(node)]
    if not isinstance(st, _PendingCompute) or st.affine.relu:
        raise ValueError(f"{node.target}: batch norm must directly follow a conv/linear/adder layer")
    m = cv.gm.get_submodule(node.target)
    mean = m.running_mean.detach().double().numpy()
    var = m.running_var.detach().double().numpy()
    gamma = m.weight.detach().double().numpy() if m.weight is not None else np.ones_like(mean)
    beta = m.bias.detach().double().numpy() if m.bias is not None else np.zeros_like(mean)
    cv.state[node] = _PendingCompute(st.spec, st.affine.then_bn(mean, var, gamma, beta, m.eps), node.name, st.real_weights)


@_handles(NodeKind.RELU)
def _relu(cv: _Converter, node: fx.Node) -> None:
    st = cv.state[cv.arg(node)]
    if isinstance(st, _PendingCompute):
        cv.state[node] = _PendingCompute(st.spec, st.affine.then_relu(), st.pre_node, st.real_weights)
    elif isinstance(st, _PendingAdd):
        cv.state[node] = _PendingAdd(st.a, st.b, True, st.name, st.shape)
    elif isinstance(st, _Codes) and not st.signed and st.zero_point == 0:
        cv.state[node] = st
    else:
        raise ValueError(f"node {node.name}: ReLU on already quantised signed codes is not supported")


@_handles(NodeKind.MAXPOOL, NodeKind.AVGPOOL)
def _pool(cv: _Converter, node: fx.Node) -> None:
    src = cv.codes(cv.arg(node))
    if len(src.shape) != 3:
        raise ValueError(f"node {node.name}: pooling needs [C, H, W] inputs")
    kernel, stride, padding = _pool_params(cv.gm, node, src.shape)
    name = cv.unique(str(node.target) if node.op == "call_module" else node.name)
    out_shape = cv.shape(node)
    common = dict(name=name, inputs=(src.layer,), in_shape=src.shape, out_shape=out_shape, kernel=kernel, stride=stride)
    if cv.kind[node] is NodeKind.MAXPOOL:
        cv.emit(MaxPoolLayer(padding=padding, **common), node)
        cv.state[node] = _Codes(name, src.scale, src.zero_point, src.bits, src.signed, out_shape)
        return
    if padding:
        raise ValueError(f"node {node.name}: padded average pooling is not supported")
    target = cv.target(node, relu=False, pending_compute=False)
    cnt = kernel[0] * kernel[1]
    lo_in, hi_in = code_range(src.bits, src.signed)
    # the window sum of codes: y = (s / cnt) * sum - s*z
    rq = fixed_requant([src.scale / cnt], [-(src.scale * src.zero_point)], target, acc_range=(lo_in * cnt, hi_in * cnt),
                       mult_bits=cv.cfg.mult_bits, max_shift=cv.cfg.max_shift)
    cv.emit(AvgPoolLayer(padding=0, requant=rq, **common), node)
    cv.state[node] = _Codes(name, target.scale, target.zero_point, target.bits, target.signed, out_shape)


@_handles(NodeKind.FLATTEN)
def _flatten(cv: _Converter, node: fx.Node) -> None:
    src_node = cv.arg(node)
    out_shape = cv.shape(node)
    if len(out_shape) != 1:
        raise ValueError(f"node {node.name}: only flattening to [N, features] is supported")
    src = cv.codes(src_node)
    if src.shape == out_shape:
        cv.state[node] = src
        return
    name = cv.unique("flatten" if node.op != "call_module" else str(node.target))
    cv.emit(FlattenLayer(name=name, inputs=(src.layer,), in_shape=src.shape, out_shape=out_shape), node)
    cv.state[node] = _Codes(name, src.scale, src.zero_point, src.bits, src.signed, out_shape)


@_handles(NodeKind.ADD)
def _add(cv: _Converter, node: fx.Node) -> None:
    if len(node.args) != 2 or node.kwargs:
        raise ValueError(f"node {node.name}: only a plain sum of two tensors is supported")
    a = cv.codes(cv.arg(node, 0))
    b = cv.codes(cv.arg(node, 1))
    if a.shape != b.shape:
        raise ValueError(f"node {node.name}: residual add of shapes {a.shape} and {b.shape}")
    stack = node.meta.get("nn_module_stack") or {}
    prefix = ""
    if stack:
        prefix = list(stack.values())[-1]
        prefix = prefix[0] if isinstance(prefix, tuple) else str(prefix)
    base = f"{prefix}.add" if prefix and isinstance(prefix, str) and not prefix.startswith("<") else node.name
    cv.state[node] = _PendingAdd(a, b, False, cv.unique(base), a.shape)


# --- module parameters ---------------------------------------------------------------


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
