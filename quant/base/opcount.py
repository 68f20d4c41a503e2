"""Operation counts per layer, from layer shapes (numpy only; no torch at import).

Conventions (per image):

* adder layer (``adder_conv``/``adder_linear``), ``O`` output channels, ``P``
  output pixels, reduction length ``K``: ``O*P*K`` subtractions (``|x - w|``,
  the absolute value is free: a conditional inversion) and ``O*P*K``
  accumulating additions, so ``additions = 2*O*P*K``, ``multiplications = 0``;
* multiply layer (``conv``/``linear``): ``multiplications = O*P*K`` and
  ``additions = O*P*K`` (one multiply-accumulate each);
* requant, per output value: fixed point ``1`` multiplication and ``1``
  addition (the shift and clamp are free); thresholds ``2**bits - 1``
  comparisons;
* pools and residual adds: ``maxpool`` ``(kh*kw - 1)`` comparisons per output;
  ``avgpool`` ``(kh*kw - 1)`` additions plus a fixed requant; ``add`` 2
  multiplications and 2 additions per output (its fixed-point requant).

With these conventions LeNet-5-BN's five layers have 416,520
multiply-accumulates (DESIGN section 5 quotes "about 435K").

:func:`count_layer_ops` works on plain shapes, :func:`count_int_layer` on
:class:`quant.intmodel.artifact.IntLayer`; :func:`quant.net.shapes.float_layer_shapes`
reads the compute-layer shapes of a float torch model.
"""

from __future__ import annotations

from dataclasses import dataclass

from quant.base.intops import COMPUTE_KINDS, PE_KINDS, LayerKind, PeKind, RequantMode, pe_of

__all__ = [
    "OpCount",
    "count_layer_ops",
    "count_requant_ops",
    "count_group_rescale_ops",
    "count_int_layer",
]

_KINDS = COMPUTE_KINDS + PE_KINDS


@dataclass(frozen=True)
class OpCount:
    """Operation counts (per image)."""

    additions: int = 0
    multiplications: int = 0
    comparisons: int = 0

    def __add__(self, other: "OpCount") -> "OpCount":
        return OpCount(
            self.additions + other.additions,
            self.multiplications + other.multiplications,
            self.comparisons + other.comparisons,
        )

    def to_dict(self) -> dict:
        return {"additions": self.additions, "multiplications": self.multiplications, "comparisons": self.comparisons}


def _pos(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive integer, not {v!r}")
    return v


def count_layer_ops(kind: str, out_channels: int, out_pixels: int, k: int) -> OpCount:
    """Reduction operations of a compute layer (requant not included).

    Parameters
    ----------
    kind : str
        ``adder_conv``, ``adder_linear`` or ``adder`` (adder PE); ``conv``,
        ``linear`` or ``mult`` (multiplier PE).
    out_channels, out_pixels, k : int
        ``O``, ``P`` (1 for linear layers) and the reduction length ``K``.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {', '.join(_KINDS)}, not {kind!r}")
    n = _pos("out_channels", out_channels) * _pos("out_pixels", out_pixels) * _pos("k", k)
    if kind == PeKind.ADDER or pe_of(kind) == PeKind.ADDER:
        return OpCount(additions=2 * n)
    return OpCount(additions=n, multiplications=n)


def count_requant_ops(mode: str, outputs: int, bits: int | None = None) -> OpCount:
    """Requant operations for ``outputs`` values: fixed (1 mult + 1 add each) or thresholds."""
    _pos("outputs", outputs)
    if mode == RequantMode.FIXED:
        return OpCount(additions=outputs, multiplications=outputs)
    if mode == RequantMode.THRESHOLD:
        if bits is None:
            raise ValueError("threshold requant op counts need bits")
        return OpCount(comparisons=outputs * ((1 << _pos("bits", bits)) - 1))
    raise ValueError(f"requant mode must be fixed or threshold, not {mode!r}")


def count_group_rescale_ops(groups: int, in_elems: int) -> OpCount:
    """The input re-scale of an adder layer with ``groups`` group-shared scales.

    Every one of the layer's ``in_elems`` input values (``prod(in_shape)``;
    padded positions take one constant per group, not counted) is re-scaled
    once per group, ``clamp((m[g]*x + n[g]) >> shift, 0, 2**bits - 1)``: one
    multiplication and one addition each (the shift and clamp are free), so
    ``groups * in_elems`` of each; nothing for ``groups == 1``.
    """
    if _pos("groups", groups) == 1:
        return OpCount()
    return count_requant_ops(RequantMode.FIXED, groups * _pos("in_elems", in_elems))


def _prod(shape) -> int:
    n = 1
    for v in shape:
        n *= int(v)
    return n


def count_int_layer(layer, *, include_requant: bool = True) -> OpCount:
    """Operations of one :class:`~quant.intmodel.artifact.IntLayer` (per image).

    An adder layer with ``G > 1`` group-shared scales also counts its input
    re-scale, ``G * prod(in_shape)`` fixed-point operations (padded
    positions take a constant), whatever ``include_requant`` says.
    """
    outs = _prod(layer.out_shape)
    if layer.kind in COMPUTE_KINDS:
        ops = count_layer_ops(layer.kind, layer.out_shape[0], outs // layer.out_shape[0], layer.K)
        # group-shared scales: every input value re-scaled once per group (1 mult + 1 add)
        ops = ops + count_group_rescale_ops(getattr(layer, "groups", 1), _prod(layer.in_shape))
        if include_requant:
            rq = layer.requant
            ops = ops + count_requant_ops(rq.mode, outs, rq.out_bits)
        return ops
    if layer.kind == LayerKind.MAXPOOL:
        return OpCount(comparisons=outs * (layer.kernel[0] * layer.kernel[1] - 1))
    if layer.kind == LayerKind.AVGPOOL:
        ops = OpCount(additions=outs * (layer.kernel[0] * layer.kernel[1] - 1))
        return ops + count_requant_ops(RequantMode.FIXED, outs) if include_requant else ops
    if layer.kind == LayerKind.ADD:
        return OpCount(additions=2 * outs, multiplications=2 * outs)
    return OpCount()
