"""Folding: a per-channel affine map and a code target become one integer :class:`~quant.intmodel.artifact.Requant`.

Every requantised integer value in the quantizer is an affine function of an
integer sum ``acc`` (an accumulator, a pool window sum, or the two codes of a
residual add), in real units::

    y = A * acc + B

(per output channel, or per operand for an add).  The next tensor's codes are
``q = clamp(round(y / s' + z'), lo, hi)`` for the :class:`Target`
``(s', z', lo, hi)``; with ReLU, ``lo = max(lo, z')``.
:func:`fixed_requant` is the one builder of that fixed-point form: with
``m, n, shift = fixed_point_params(A / s', B / s' + z')``
(:func:`quant.base.intops.fixed_point_params`)::

    q = clamp((m * acc + n) >> shift, lo, hi)

and ``sum_bits`` is the signed width of ``m*acc + n`` over the extremes of
``acc``.  Threshold requant (:meth:`LayerFold.requant`) is derived exactly
from that fixed-point form (:func:`quant.base.intops.thresholds_from_fixed`).

:class:`Affine` carries ``A, B`` through the folding steps of a compute
layer: BatchNorm in eval mode (:meth:`Affine.then_bn`,
``A' = A*g, B' = (B - mu)*g + beta`` with ``g = gamma / sqrt(var + eps)``)
and ReLU (:meth:`Affine.then_relu`).  :class:`LayerFold` records everything a
compute layer's requant was made from, so a later pass (bias correction) can
rebuild it with another ``B``.
"""

from __future__ import annotations

import enum
import itertools
import math
from dataclasses import dataclass, replace

import numpy as np

from quant.intmodel.artifact import Requant
from quant.base.intops import RequantMode, code_range, fixed_point_params, signed_width, thresholds_from_fixed

__all__ = ["CodeKind", "Target", "Affine", "LayerFold", "fixed_requant"]


class CodeKind(enum.Enum):
    """What a tensor's integer codes are for (which decides their format)."""

    #: unsigned ``act_bits`` codes of an adder layer's input (or any other tensor)
    ACT = "act"
    #: signed codes with zero point 0 of a multiply layer's input
    MULT_IN = "mult_in"
    #: signed ``mid_bits`` codes of a residual branch that ends in BN
    MID = "mid"
    #: signed ``logit_bits`` codes of the model output
    LOGITS = "logits"


@dataclass(frozen=True, kw_only=True)
class Target:
    """Code format of a tensor: real value ``scale * (q - zero_point)``, ``q`` in ``lo..hi``.

    Parameters
    ----------
    kind : CodeKind
    scale : float
        Positive, finite.
    zero_point : int
    bits : int
        Code width.
    signed : bool
        Two's-complement codes.
    lo, hi : int
        Clamp range, within the ``bits``-bit range.
    """

    kind: CodeKind
    scale: float
    zero_point: int
    bits: int
    signed: bool
    lo: int
    hi: int

    def __post_init__(self) -> None:
        if not isinstance(self.kind, CodeKind):
            raise ValueError(f"target kind must be a CodeKind, not {self.kind!r}")
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise ValueError(f"target scale must be positive and finite, not {self.scale!r}")
        rlo, rhi = code_range(self.bits, self.signed)
        if not rlo <= self.lo <= self.hi <= rhi:
            raise ValueError(f"target clamp {self.lo}..{self.hi} is not within the {self.bits}-bit range {rlo}..{rhi}")


@dataclass(frozen=True, kw_only=True, eq=False)
class Affine:
    """``y_o = a_o * acc_o + b_o`` (then ReLU if ``relu``) of a compute layer's accumulator.

    Parameters
    ----------
    a, b : numpy.ndarray
        Per output channel, float64.
    relu : bool
        A ReLU follows.
    acc_min, acc_max : int
        Range of the accumulator (``0 .. K*(2**bits-1)`` for adder layers,
        ``-+K * 2**(bits-1) * (2**(bits-1)-1)`` for multiply layers).
    """

    a: np.ndarray
    b: np.ndarray
    relu: bool = False
    acc_min: int
    acc_max: int

    def __post_init__(self) -> None:
        if np.shape(self.a) != np.shape(self.b):
            raise ValueError(f"affine a and b must have one entry per channel, not {np.shape(self.a)} and {np.shape(self.b)}")
        if self.acc_min > self.acc_max:
            raise ValueError(f"affine accumulator range {self.acc_min}..{self.acc_max} is empty")

    def then_bn(self, mean, var, gamma, beta, eps: float) -> "Affine":
        """Fold an eval-mode BatchNorm: ``a*g``, ``(b - mean)*g + beta`` with ``g = gamma / sqrt(var + eps)``."""
        if self.relu:
            raise ValueError("batch norm after ReLU cannot be folded")
        g = gamma / np.sqrt(var + eps)
        return replace(self, a=self.a * g, b=(self.b - mean) * g + beta)

    def then_relu(self) -> "Affine":
        """The same map followed by ReLU (absorbed into the requant's ``lo``)."""
        return replace(self, relu=True)


def fixed_requant(
    a,
    b,
    target: Target,
    *,
    acc_range: tuple[int, int] | None = None,
    operand_ranges=None,
    relu: bool = False,
    mult_bits: int,
    max_shift: int,
) -> Requant:
    """Fixed-point requant of the real map ``y = A*acc + B`` onto ``target``.

    ``m, n, shift = fixed_point_params(A / s, B / s + z)`` with the target's
    ``s, z``; ``q = clamp((m*acc + n) >> shift, lo, hi)`` with
    ``lo = max(target.lo, z)`` under ``relu``, else ``target.lo``, and
    ``hi = target.hi``.

    Parameters
    ----------
    a, b : array_like
        ``A`` and ``B``.  With ``acc_range``: one entry each per output
        channel, ``y_o = A_o*acc_o + B_o``.  With ``operand_ranges``: ``A``
        holds one multiplier per operand and ``B`` one constant,
        ``y = sum_j A_j*x_j + B`` (residual adds).
    target : Target
    acc_range : (int, int)
        Smallest and largest ``acc`` (for ``sum_bits``).
    operand_ranges : sequence of (int, int)
        Range of each operand instead of ``acc_range``.
    relu : bool
    mult_bits, max_shift : int
        Width of ``m`` and largest shift (:func:`quant.base.intops.fixed_point_params`).

    Returns
    -------
    Requant
        Mode fixed, with ``n_bits = signed_width(n)`` and ``sum_bits`` the
        signed width of ``m*acc + n`` at the extremes of ``acc``.
    """
    if (acc_range is None) == (operand_ranges is None):
        raise ValueError("give exactly one of acc_range and operand_ranges")
    ca = np.asarray(a, dtype=np.float64) / target.scale
    cb = np.asarray(b, dtype=np.float64) / target.scale + target.zero_point
    m, n, shift = fixed_point_params(ca, cb, mult_bits=mult_bits, max_shift=max_shift)
    lo = max(target.lo, target.zero_point) if relu else target.lo
    if acc_range is not None:
        ends = [int(mm) * acc + int(nn) for mm, nn in zip(m, n) for acc in acc_range]
    else:
        if len(operand_ranges) != m.size or n.size != 1:
            raise ValueError(f"operand_ranges needs one multiplier per operand and one constant, not {m.size} and {n.size}")
        ends = [sum(int(mj) * xj for mj, xj in zip(m, xs)) + int(n[0]) for xs in itertools.product(*operand_ranges)]
    return Requant(
        mode=RequantMode.FIXED, m=m, n=n, shift=int(shift), lo=int(lo), hi=int(target.hi),
        n_bits=signed_width(n), sum_bits=signed_width(ends),
        out_scale=float(target.scale), out_zero_point=int(target.zero_point), out_bits=target.bits,
        out_signed=target.signed,
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class LayerFold:
    """How a compute layer's requant is made: its :class:`Affine`, :class:`Target` and form.

    Parameters
    ----------
    affine : Affine
    target : Target
    threshold : bool
        Threshold requant (multiplier-free) instead of fixed point.
    pre_node : str
        Float FX node holding ``y`` before ReLU (for bias correction).
    mult_bits, max_shift : int
        Fixed-point limits (:func:`fixed_requant`).
    """

    affine: Affine
    target: Target
    threshold: bool
    pre_node: str
    mult_bits: int
    max_shift: int

    def __post_init__(self) -> None:
        if self.threshold and (self.target.signed or self.target.kind not in (CodeKind.ACT, CodeKind.LOGITS)):
            raise ValueError("threshold requant needs an unsigned activation or logits target")

    def requant(self) -> Requant:
        """:func:`fixed_requant` of the affine map; thresholds derived from it when ``threshold``."""
        af, t = self.affine, self.target
        rq = fixed_requant(af.a, af.b, t, acc_range=(af.acc_min, af.acc_max), relu=af.relu,
                           mult_bits=self.mult_bits, max_shift=self.max_shift)
        if not self.threshold:
            return rq
        thr, neg = thresholds_from_fixed(rq.m, rq.n, rq.shift, rq.lo, rq.hi, t.bits, af.acc_max)
        return Requant(mode=RequantMode.THRESHOLD, thr=thr, neg=neg, out_scale=rq.out_scale, out_zero_point=rq.out_zero_point,
                       out_bits=rq.out_bits, out_signed=rq.out_signed)

    def with_bias(self, b) -> "LayerFold":
        """The same fold with ``B`` replaced (bias correction)."""
        return replace(self, affine=replace(self.affine, b=np.asarray(b, dtype=np.float64)))
