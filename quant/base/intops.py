"""The one integer / rounding code path of adderhw (numpy only, no torch).

Every conversion between real values and integer codes, and every integer
re-quantisation, is defined here once.  The golden model
(:mod:`quant.intmodel.golden`), the fake-quant PyTorch model (:mod:`quant.quantizer.fakequant`)
and the quantizer (:mod:`quant.quantizer.quantize`) all call these functions, so the
three cannot drift apart (the Brevitas ``to_int`` idea: the fake-quant
forward dequantises from the same integer codes the export uses).

Formulas
--------
Affine quantisation (round half to even, then clamp)::

    q = clamp(rint(x / scale) + zero_point, qmin, qmax)
    x ~ scale * (q - zero_point)

Fixed-point re-quantisation (``>>`` is an arithmetic shift, i.e. floor)::

    q = clamp((m * acc + n) >> shift, lo, hi)

with the rounding offset ``2**(shift-1)`` and the output zero point already
folded into ``n`` by :func:`fixed_point_params`.

Threshold re-quantisation (comparisons only)::

    cnt = #{t : acc >= thr[t]}            (t = 0 .. 2**bits - 2)
    q   = neg ? (2**bits - 1) - cnt : cnt

:func:`thresholds_from_fixed` derives ``thr`` and ``neg`` from a fixed-point
form so that both modes give identical outputs for every reachable ``acc``.

Exact weight clamping (DESIGN section 2): for ``x`` in ``[0, qmax]`` and any
real weight code ``w``, ``|x - w| = |x - clamp(w, 0, qmax)| + dist(w, [0, qmax])``,
so clamping changes nothing once the per-channel sum of the distances (the
compensation ``C_o``) is added back into the bias.

The ground floor
----------------
Besides the arithmetic, this module is the one home of the small facts every
package uses (DESIGN §1): operand widths (:data:`MIN_BITS`, :data:`MAX_BITS`)
and code ranges (:func:`code_range`), the accumulator width
(:func:`acc_bits_for`), the conv/pool output size (:func:`conv_out_size`),
the kinds as ``str``-valued enums (:class:`LayerKind`, :class:`PeKind`,
:class:`RequantMode`, :class:`NetKind`; a member equals its string, ``LayerKind.CONV == "conv"``,
and serialises as it), the groups of layer kinds (:data:`ADDER_KINDS`,
:data:`MULT_KINDS`, :data:`COMPUTE_KINDS`, :data:`LAYER_KINDS`) and the PE
kind of a layer kind (:func:`pe_of`).  ``hwsim.config`` re-exports the first
ones for ``rtl``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MIN_BITS",
    "MAX_BITS",
    "PeKind",
    "LayerKind",
    "RequantMode",
    "NetKind",
    "PE_KINDS",
    "ADDER_KINDS",
    "MULT_KINDS",
    "COMPUTE_KINDS",
    "POOL_KINDS",
    "LAYER_KINDS",
    "pe_of",
    "check_int",
    "acc_bits_for",
    "conv_out_size",
    "InputQuant",
    "quantize_affine",
    "dequantize",
    "quantize_input",
    "requant_fixed",
    "requant_threshold",
    "requant_add",
    "fixed_point_params",
    "thresholds_from_fixed",
    "exact_clamp",
    "signed_width",
    "unsigned_width",
    "code_range",
    "wrap_code",
]


#: Operand widths the toolkit supports (adder and multiply layers, the arrays).
MIN_BITS = 2
MAX_BITS = 16

class PeKind(enum.StrEnum):
    """PE arithmetic: ``|x - w|`` on unsigned codes, or ``x * w`` on signed codes."""

    ADDER = "adder"
    MULT = "mult"


class LayerKind(enum.StrEnum):
    """Layer kinds of the integer model (docs/interfaces.md section 4; one class each in :mod:`quant.intmodel.artifact`)."""

    ADDER_CONV = "adder_conv"
    ADDER_LINEAR = "adder_linear"
    CONV = "conv"
    LINEAR = "linear"
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    ADD = "add"
    FLATTEN = "flatten"

    @property
    def pe(self) -> PeKind | None:
        """:attr:`PeKind.ADDER` or :attr:`PeKind.MULT` for compute kinds, else None."""
        return _PE_OF.get(self)

    @property
    def linear(self) -> bool:
        """A compute kind over one pixel (``[F] -> [O]``): ``adder_linear`` or ``linear``."""
        return self in (LayerKind.ADDER_LINEAR, LayerKind.LINEAR)


class RequantMode(enum.StrEnum):
    """Integer re-quantisation form: fixed point ``(m*acc + n) >> shift``, or comparisons with thresholds."""

    FIXED = "fixed"
    THRESHOLD = "threshold"


class NetKind(enum.StrEnum):
    """Kind of a float network of the zoo (:mod:`quant.net.models`): adder layers, or ordinary convolutions (a CNN)."""

    ADDER = "adder"
    CNN = "cnn"


#: PE arithmetic: ``|x - w|`` on unsigned codes, or ``x * w`` on signed codes.
PE_KINDS = tuple(PeKind)

#: Layer kinds of the integer model, by group.
ADDER_KINDS = (LayerKind.ADDER_CONV, LayerKind.ADDER_LINEAR)
MULT_KINDS = (LayerKind.CONV, LayerKind.LINEAR)
COMPUTE_KINDS = ADDER_KINDS + MULT_KINDS
POOL_KINDS = (LayerKind.MAXPOOL, LayerKind.AVGPOOL)
LAYER_KINDS = tuple(LayerKind)

_PE_OF = {**{k: PeKind.ADDER for k in ADDER_KINDS}, **{k: PeKind.MULT for k in MULT_KINDS}}


def pe_of(kind: str) -> PeKind | None:
    """:attr:`PeKind.ADDER` for adder layer kinds, :attr:`PeKind.MULT` for multiply ones, else None."""
    return _PE_OF.get(kind)


def check_int(name: str, value, lo: int = 1, hi: int | None = None) -> None:
    """Raise ``ValueError`` (``"NAME must be an integer in LO..HI, not V"``) unless ``value`` is an int in range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        what = "a positive integer" if (lo == 1 and hi is None) else f"an integer {rng}"
        raise ValueError(f"{name} must be {what}, not {value}")


def acc_bits_for(bits: int, k: int, pe: str = PeKind.ADDER) -> int:
    """Accumulator width that can never wrap for a reduction of length ``k``.

    Adder PE (unsigned ``bits``-bit operands): ``|x - w| <= 2**bits - 1``, so
    ``sum <= k * (2**bits - 1)`` needs ``bits + ceil(log2(k))`` unsigned bits.
    Multiplier PE (signed ``bits``-bit operands): ``|x*w| <= 2**(2*bits-2)``,
    so ``|sum| <= k * 2**(2*bits-2)`` needs ``2*bits - 1 + ceil(log2(k))``
    bits, plus a sign bit.
    """
    check_int("bits", bits, MIN_BITS, MAX_BITS)
    check_int("k", k, 1)
    lg = math.ceil(math.log2(k)) if k > 1 else 0
    if pe == PeKind.ADDER:
        return bits + lg
    if pe == PeKind.MULT:
        return 2 * bits + lg
    raise ValueError(f"pe must be one of {', '.join(PE_KINDS)}, not {pe!r}")


def conv_out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a conv or pool along one axis: ``(size + 2*padding - kernel) // stride + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def wrap_code(value: int, bits: int, signed: bool) -> int:
    """``value`` reduced to a ``bits``-bit register: modulo ``2**bits``, read as two's complement if ``signed``."""
    value &= (1 << bits) - 1
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


def code_range(bits: int, signed: bool) -> tuple[int, int]:
    """Integer range of a ``bits``-bit code: ``[0, 2**bits-1]`` or two's complement."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def signed_width(values) -> int:
    """Smallest two's-complement width holding every value of ``values`` (>= 1)."""
    arr = np.asarray(values, dtype=np.int64)
    if arr.size == 0:
        return 1
    lo, hi = int(arr.min()), int(arr.max())
    width = 1
    while not (-(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1):
        width += 1
    return width


def unsigned_width(value: int) -> int:
    """Bits of an unsigned integer ``value`` (>= 1)."""
    if value < 0:
        raise ValueError(f"unsigned_width needs a non-negative value, not {value}")
    return max(1, int(value).bit_length())


def quantize_affine(x, scale: float, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """``clamp(rint(x / scale) + zero_point, qmin, qmax)`` as int64 (x in float64)."""
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be a positive finite number, not {scale!r}")
    xf = np.asarray(x, dtype=np.float64)
    q = np.rint(xf / scale) + zero_point
    return np.clip(q, qmin, qmax).astype(np.int64)


def dequantize(q, scale: float, zero_point: int) -> np.ndarray:
    """``scale * (q - zero_point)`` in float64."""
    return scale * (np.asarray(q, dtype=np.float64) - zero_point)


@dataclass(frozen=True, kw_only=True)
class InputQuant:
    """How float images in 0..1 become the first layer's integer codes.

    ``q = clamp(rint(((x - mean[c]) / std[c]) / scale) + zero_point, lo, hi)``,
    computed in float64 (:func:`quantize_input`).

    Parameters
    ----------
    mean, std : tuple of float
        Per-channel normalisation (one entry per input channel).
    scale : float
        Real value of one code step (shared with the first layer's weights).
    zero_point : int
        Code of the real value 0.
    bits : int
        Code width.
    signed : bool
        Two's-complement codes (multiply first layer) or unsigned (adder).
    """

    mean: tuple
    std: tuple
    scale: float
    zero_point: int
    bits: int
    signed: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if len(self.mean) == 0 or len(self.mean) != len(self.std):
            raise ValueError(
                f"input mean and std need one entry per channel, not {len(self.mean)} "
                f"and {len(self.std)}"
            )
        if any(not (s > 0 and math.isfinite(s)) for s in self.std):
            raise ValueError(f"input std must be positive, not {self.std}")
        if not (isinstance(self.scale, (int, float)) and self.scale > 0 and math.isfinite(self.scale)):
            raise ValueError(f"input scale must be a positive finite number, not {self.scale!r}")
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 2 <= self.bits <= 16:
            raise ValueError(f"input bits must be an integer in 2..16, not {self.bits!r}")
        lo, hi = code_range(self.bits, self.signed)
        if isinstance(self.zero_point, bool) or not isinstance(self.zero_point, int) or not lo <= self.zero_point <= hi:
            raise ValueError(
                f"input zero_point must be an integer in {lo}..{hi}, not {self.zero_point!r}"
            )

    @property
    def lo(self) -> int:
        return code_range(self.bits, self.signed)[0]

    @property
    def hi(self) -> int:
        return code_range(self.bits, self.signed)[1]


def quantize_input(images, spec: InputQuant) -> np.ndarray:
    """Float images ``[N, C, H, W]`` (or ``[N, F]``) in 0..1 -> int64 codes.

    The one input quantiser: golden and fake-quant both call it.
    """
    x = np.asarray(images, dtype=np.float64)
    c = len(spec.mean)
    if x.ndim < 2 or x.shape[1] != c:
        raise ValueError(
            f"images must be [N, {c}, ...] float arrays for this model, not shape {tuple(x.shape)}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("images contain NaN or infinite values")
    shape = (1, c) + (1,) * (x.ndim - 2)
    mean = np.asarray(spec.mean, dtype=np.float64).reshape(shape)
    std = np.asarray(spec.std, dtype=np.float64).reshape(shape)
    return quantize_affine((x - mean) / std, spec.scale, spec.zero_point, spec.lo, spec.hi)


def _channel_view(v, acc: np.ndarray) -> np.ndarray:
    """Per-channel vector ``[O]`` as ``[O, 1]`` against ``acc[..., O, P]``."""
    v = np.asarray(v, dtype=np.int64)
    if v.ndim == 0 or v.size == 1:
        return v.reshape(())
    return v.reshape(-1, 1)


def requant_fixed(acc, m, n, shift: int, lo: int, hi: int) -> np.ndarray:
    """``clamp((m*acc + n) >> shift, lo, hi)`` on int64.

    ``acc`` is ``[..., O, P]``; ``m`` and ``n`` are ``[O]`` (per output channel)
    or scalars.  The product and sum must fit int64: asserted.
    """
    a = np.asarray(acc, dtype=np.int64)
    mm = _channel_view(m, a)
    nn = _channel_view(n, a)
    if a.size:
        amax = int(np.abs(a).max())
        bound = amax * int(np.abs(mm).max()) + int(np.abs(nn).max())
        assert bound < (1 << 62), f"fixed-point requant would overflow int64 (|m*acc+n| up to {bound})"
    return np.clip((mm * a + nn) >> shift, lo, hi)


def requant_add(a, b, m, n, shift: int, lo: int, hi: int) -> np.ndarray:
    """Residual add of two code tensors: ``clamp((m[0]*a + m[1]*b + n) >> shift, lo, hi)``."""
    m0, m1 = (int(v) for v in np.asarray(m, dtype=np.int64).ravel())
    nn = int(np.asarray(n, dtype=np.int64).ravel()[0])
    aa = np.asarray(a, dtype=np.int64)
    bb = np.asarray(b, dtype=np.int64)
    if aa.shape != bb.shape:
        raise ValueError(f"residual add of shapes {aa.shape} and {bb.shape}")
    return np.clip((m0 * aa + m1 * bb + nn) >> shift, lo, hi)


def requant_threshold(acc, thr, neg, bits: int) -> np.ndarray:
    """``cnt = #{t: acc >= thr[t]}``, ``q = neg ? 2**bits-1 - cnt : cnt``.

    ``acc`` is ``[..., O, P]``; ``thr`` is ``[O, 2**bits-1]`` sorted along ``t``
    (non-decreasing); ``neg`` is ``[O]`` of 0/1.
    """
    a = np.asarray(acc, dtype=np.int64)
    thr = np.asarray(thr, dtype=np.int64)
    neg = np.asarray(neg, dtype=np.int64)
    qmax = (1 << bits) - 1
    if thr.ndim != 2 or thr.shape[1] != qmax:
        raise ValueError(f"thr must be [O, {qmax}] for {bits}-bit outputs, not {thr.shape}")
    if a.ndim < 2 or a.shape[-2] != thr.shape[0]:
        raise ValueError(f"acc must be [..., {thr.shape[0]}, P], not {a.shape}")
    moved = np.moveaxis(a, -2, 0)  # [O, ..., P]
    cnt = np.empty(moved.shape, dtype=np.int64)
    for o in range(thr.shape[0]):
        cnt[o] = np.searchsorted(thr[o], moved[o], side="right")
    cnt = np.moveaxis(cnt, 0, -2)
    nv = neg.reshape(-1, 1)
    return cnt + nv * (qmax - 2 * cnt)


def fixed_point_params(
    a,
    b,
    *,
    mult_bits: int = 16,
    max_shift: int = 40,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Fixed-point form of the real affine map ``y = a*acc + b`` followed by rounding.

    Returns ``m, n, shift`` with ``m = rint(a * 2**shift)`` fitting a signed
    ``mult_bits``-bit integer and ``n = rint(b * 2**shift) + 2**(shift-1)``,
    so that ``(m*acc + n) >> shift ~ floor(a*acc + b + 1/2)`` (round half up).
    ``shift`` is the largest in ``0..max_shift`` for which every ``m`` fits;
    ``a`` is already divided by the output scale and ``b`` includes the output
    zero point.
    """
    a = np.atleast_1d(np.asarray(a, dtype=np.float64))
    b = np.atleast_1d(np.asarray(b, dtype=np.float64))
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("requant coefficients are not finite (check BN statistics and scales)")
    mlim = (1 << (mult_bits - 1)) - 1
    amax = float(np.abs(a).max()) if a.size else 0.0
    if amax == 0.0:
        shift = max_shift
    else:
        if np.rint(amax) > mlim:
            raise ValueError(
                f"requant multiplier {amax:.4g} does not fit a signed {mult_bits}-bit integer"
            )
        shift = min(max_shift, int(math.floor(math.log2(mlim / amax))))
        while shift > 0 and np.rint(amax * 2.0**shift) > mlim:
            shift -= 1
    m = np.rint(a * 2.0**shift).astype(np.int64)
    half = (1 << (shift - 1)) if shift > 0 else 0
    n = (np.rint(b * 2.0**shift) + half).astype(np.int64)
    return m, n, shift


def thresholds_from_fixed(m, n, shift: int, lo: int, hi: int, bits: int, max_acc: int):
    """Thresholds equal to ``clamp((m*acc+n) >> shift, lo, hi)`` on ``0..max_acc``.

    Requires ``0 <= lo <= hi <= 2**bits - 1``.  Returns ``thr`` int64
    ``[O, 2**bits-1]`` (each in ``0 .. max_acc+1``, non-decreasing along t)
    and ``neg`` int64 ``[O]``.

    For ``m > 0`` the output is non-decreasing in ``acc``: ``q >= t`` iff
    ``acc >= ceil((t*2**shift - n) / m)``.  For ``m < 0`` it is non-increasing
    and ``neg = 1``: ``qmax - q >= t`` iff ``acc >= floor((n - (qmax-t+1)*2**shift)/(-m)) + 1``.
    For ``m == 0`` the output is the constant ``c`` and ``thr = 0`` for
    ``t <= c``, ``max_acc + 1`` (never reached) above.
    """
    qmax = (1 << bits) - 1
    if not (0 <= lo <= hi <= qmax):
        raise ValueError(f"threshold requant needs 0 <= lo <= hi <= {qmax}, not lo={lo}, hi={hi}")
    m = [int(v) for v in np.asarray(m, dtype=np.int64).ravel()]
    n = [int(v) for v in np.asarray(n, dtype=np.int64).ravel()]
    one = 1 << shift
    thr = np.zeros((len(m), qmax), dtype=np.int64)
    neg = np.zeros(len(m), dtype=np.int64)
    never = max_acc + 1
    for o, (mo, no) in enumerate(zip(m, n)):
        row = []
        if mo > 0:
            for t in range(1, qmax + 1):
                if t <= lo:
                    row.append(0)
                elif t > hi:
                    row.append(never)
                else:
                    row.append(-((no - t * one) // mo))  # ceil((t*one - n) / m)
        elif mo < 0:
            neg[o] = 1
            mp = -mo
            for t in range(1, qmax + 1):
                v = qmax - t  # qmax - q >= t  iff  q <= v
                if v >= hi:
                    row.append(0)
                elif v < lo:
                    row.append(never)
                else:
                    row.append((no - (v + 1) * one) // mp + 1)
        else:
            c = min(max(no >> shift, lo), hi)
            row = [0 if t <= c else never for t in range(1, qmax + 1)]
        thr[o] = np.clip(np.asarray(row, dtype=np.int64), 0, never)
    return thr, neg


def exact_clamp(w_codes, qmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Clamp real weight codes ``[O, K]`` to ``[0, qmax]``; return ``(clamped, C)``.

    ``C[o] = sum_k dist(w[o, k], [0, qmax])`` is the exact compensation: for
    every ``x`` in ``[0, qmax]``, ``sum_k |x_k - w_ok| = sum_k |x_k - clamped_ok| + C[o]``.
    """
    w = np.asarray(w_codes, dtype=np.float64)
    clamped = np.clip(w, 0.0, float(qmax))
    comp = np.abs(w - clamped).sum(axis=-1)
    return clamped, comp
