"""The integer model artifact: ``manifest.json`` + ``weights.npz`` (numpy only).

This module is the file format of docs/interfaces.md section 4.  hwsim and the
testbenches load artifacts with :func:`load_int_model`; it never imports torch.

Layout of ``manifest.json`` (format ``adderhw-int-model``, version
:data:`FORMAT_VERSION`)::

    {"format": "adderhw-int-model", "format_version": 3,
     "name": ..., "dataset": ..., "class_names": [...],
     "source": {"path": ..., "sha256": ...},
     "quantization": {...settings...},
     "input": {"shape": [C, H, W], "mean": [...], "std": [...],
               "scale": s, "zero_point": z, "bits": b, "signed": false},
     "weights_sha256": <sha256 of weights.npz>,
     "layers": [{"name": ..., "kind": ..., "inputs": [...], ...}, ...],
     "manifest_sha256": <sha256 of the rest of the manifest, see seal_manifest>}

The manifest's own digest covers every other field (so the weights' digest
too): an edited manifest is refused as corrupt.  Versions 1 (no manifest
digest) and 2 (no group-shared scales) are refused naming both versions.

Array fields are stored in ``weights.npz`` under ``"<layer>.<field>"`` and
referenced from the manifest as ``{"array": key, "shape": [...], "dtype": ...}``.

Layer kinds and their fields (all integer arrays int64); each kind is one
class (:data:`LAYER_CLASSES`), the reader builds the one ``kind`` names:

* ``adder_conv``, ``adder_linear`` (:class:`AdderLayer`), ``conv``,
  ``linear`` (:class:`MultLayer`): ``kernel``,
  ``stride``, ``padding`` (linear: 1x1, 1, 0 over one pixel), ``K``,
  ``weight [O, K]`` (im2col order ``k = c*kh*kw + i*kw + j``),
  ``in_scale``, ``in_zero_point`` (padding value), ``bits`` (operand width),
  ``weight_bits``, ``acc_bits`` (= ``quant.base.intops.acc_bits_for(bits, K, pe)``),
  ``compensation [O]`` (float64, already folded into the requant bias),
  ``weight_scale [O]`` (float64, multiply layers only) and ``requant``;
  adder layers with group-shared scales also ``scale_groups``
  (:class:`GroupScales`): the input codes are re-scaled once per group,
  ``x_g = clamp((m[g]*x + n[g]) >> shift, 0, 2**bits - 1)``, and output
  channel ``o`` reads ``x_{channel_group[o]}``.
* ``maxpool`` (:class:`MaxPoolLayer`): ``kernel``, ``stride``, ``padding``
  (padded positions never win: minus infinity).
* ``avgpool`` (:class:`AvgPoolLayer`): ``kernel``, ``stride``, ``padding`` (padded positions count
  as 0) and a fixed ``requant`` of the window sum (``m``, ``n`` one value each).
* ``add`` (:class:`AddLayer`): a fixed ``requant`` whose ``m`` holds one multiplier per input:
  ``q = clamp((m[0]*a + m[1]*b + n) >> shift, lo, hi)``.
* ``flatten`` (:class:`FlattenLayer`): ``[C, H, W] -> [C*H*W]`` in C order.

``requant`` (:class:`Requant`): ``mode`` fixed (``m``, ``n``, ``shift``,
``lo``, ``hi``, plus the widths ``n_bits`` and ``sum_bits`` the datapath
needs) or threshold (``thr [O, 2**out_bits-1]``, ``neg [O]``); always
``out_scale``, ``out_zero_point``, ``out_bits``, ``out_signed``.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import io
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from quant.base.files import atomic_write_bytes
from quant.base.intops import (
    ADDER_KINDS,
    LAYER_KINDS,
    MULT_KINDS,
    InputQuant,
    LayerKind,
    PeKind,
    RequantMode,
    acc_bits_for,
    check_int,
    code_range,
    conv_out_size,
    requant_fixed,
    signed_width,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "GroupScales",
    "Requant",
    "IntLayer",
    "ComputeLayer",
    "AdderLayer",
    "MultLayer",
    "PoolLayer",
    "MaxPoolLayer",
    "AvgPoolLayer",
    "AddLayer",
    "FlattenLayer",
    "LAYER_CLASSES",
    "IntModel",
    "save_int_model",
    "seal_manifest",
    "manifest_digest",
    "load_int_model",
    "MANIFEST_NAME",
    "WEIGHTS_NAME",
]

FORMAT = "adderhw-int-model"
FORMAT_VERSION = 3
MANIFEST_NAME = "manifest.json"
WEIGHTS_NAME = "weights.npz"
#: Largest kernel side, stride or padding an artifact may declare.
MAX_KERNEL = 64
#: Largest extent of one dimension of a layer shape.
MAX_DIM = 1 << 20



def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _bool(v, what: str) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{what} must be true or false, not {v!r}")
    return v


def _int_array(v, what: str) -> np.ndarray:
    """``v`` as int64, refusing float, bool or object arrays (which would be truncated silently)."""
    arr = np.asarray(v)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{what} must be an integer array, not {arr.dtype}")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{what} holds values beyond int64")
    return arr.astype(np.int64)


def _fits(what: str, values, bits: int) -> None:
    """Refuse ``values`` that do not fit a signed ``bits``-bit integer."""
    lo, hi = code_range(bits, True)
    arr = np.asarray(values, dtype=np.int64)
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        bad = int(arr.max()) if int(arr.max()) > hi else int(arr.min())
        raise ValueError(f"{what} value {bad} does not fit its declared signed {bits} bits ({lo}..{hi})")


def _check_geometry(where: str, kernel, stride, padding, in_hw) -> tuple:
    """Refuse a kernel, stride or padding out of range (naming the field); return the output (OH, OW)."""
    if kernel is None or len(kernel) != 2:
        raise ValueError(f"{where}: kernel must be a list [kh, kw], not {kernel!r}")
    for v in kernel:
        check_int(f"{where}: kernel", v, 1, MAX_KERNEL)
    check_int(f"{where}: stride", stride, 1, MAX_KERNEL)
    check_int(f"{where}: padding", padding, 0, MAX_KERNEL)
    out = []
    for size, k, axis in zip(in_hw, kernel, ("height", "width")):
        if size + 2 * padding < k:
            raise ValueError(
                f"{where}: kernel {kernel[0]}x{kernel[1]} is larger than the padded input {axis} {size + 2 * padding}"
            )
        out.append(conv_out_size(size, k, stride, padding))
    return tuple(out)


@dataclass(frozen=True, kw_only=True, eq=False)
class Requant:
    """Integer re-quantisation of an accumulator (or a pool sum / residual sum).

    Fixed point: ``q = clamp((m*acc + n) >> shift, lo, hi)``.
    Threshold: ``cnt = #{t: acc >= thr[t]}``, ``q = neg ? 2**out_bits-1 - cnt : cnt``.
    The output code means the real value ``out_scale * (q - out_zero_point)``.
    """

    mode: RequantMode
    out_scale: float
    out_zero_point: int
    out_bits: int
    out_signed: bool = False
    m: np.ndarray | None = None
    n: np.ndarray | None = None
    shift: int | None = None
    lo: int | None = None
    hi: int | None = None
    n_bits: int | None = None
    sum_bits: int | None = None
    thr: np.ndarray | None = None
    neg: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.mode not in tuple(RequantMode):
            raise ValueError(f"requant mode must be fixed or threshold, not {self.mode!r}")
        object.__setattr__(self, "mode", RequantMode(self.mode))
        if not (isinstance(self.out_scale, (int, float)) and self.out_scale > 0 and math.isfinite(self.out_scale)):
            raise ValueError(f"requant out_scale must be positive and finite, not {self.out_scale!r}")
        if not _is_int(self.out_bits) or not 1 <= self.out_bits <= 32:
            raise ValueError(f"requant out_bits must be an integer in 1..32, not {self.out_bits!r}")
        if self.mode == RequantMode.FIXED:
            for name in ("m", "n"):
                v = getattr(self, name)
                if v is None:
                    raise ValueError(f"fixed requant needs {name}")
                object.__setattr__(self, name, _int_array(v, f"requant {name}"))
            for name in ("shift", "lo", "hi"):
                if not _is_int(getattr(self, name)):
                    raise ValueError(f"fixed requant {name} must be an integer, not {getattr(self, name)!r}")
            if not 0 <= self.shift <= 62:
                raise ValueError(f"fixed requant shift must be in 0..62, not {self.shift}")
            if self.lo > self.hi:
                raise ValueError(f"fixed requant lo={self.lo} exceeds hi={self.hi}")
            for name in ("n_bits", "sum_bits"):
                v = getattr(self, name)
                if v is not None and (not _is_int(v) or not 1 <= v <= 62):
                    raise ValueError(f"fixed requant {name} must be an integer in 1..62, not {v!r}")
            if self.n_bits is not None:
                _fits("requant n", self.n, self.n_bits)
        elif any(getattr(self, f) is not None for f in ("m", "n", "shift", "lo", "hi", "n_bits", "sum_bits")):
            extra = [f for f in ("m", "n", "shift", "lo", "hi", "n_bits", "sum_bits") if getattr(self, f) is not None]
            raise ValueError(f"threshold requant has fixed-point fields {', '.join(extra)}")
        else:
            if self.out_signed:
                raise ValueError("threshold requant produces unsigned codes")
            if self.thr is None or self.neg is None:
                raise ValueError("threshold requant needs thr and neg")
            thr = _int_array(self.thr, "threshold thr")
            neg = _int_array(self.neg, "threshold neg")
            t = (1 << self.out_bits) - 1
            if thr.ndim != 2 or thr.shape[1] != t:
                raise ValueError(f"threshold thr must be [O, {t}], not {list(thr.shape)}")
            if neg.shape != (thr.shape[0],) or not np.all((neg == 0) | (neg == 1)):
                raise ValueError("threshold neg must be [O] of 0/1")
            if thr.size and (thr.min() < 0 or np.any(np.diff(thr, axis=1) < 0)):
                raise ValueError("threshold thr must be non-negative and non-decreasing along t")
            object.__setattr__(self, "thr", thr)
            object.__setattr__(self, "neg", neg)
        if not isinstance(self.out_signed, (bool, np.bool_)):
            raise ValueError(f"requant out_signed must be true or false, not {self.out_signed!r}")
        object.__setattr__(self, "out_signed", bool(self.out_signed))
        if not _is_int(self.out_zero_point):
            raise ValueError(f"requant out_zero_point must be an integer, not {self.out_zero_point!r}")
        lo, hi = code_range(self.out_bits, self.out_signed)
        if not lo <= self.out_zero_point <= hi:
            raise ValueError(f"requant out_zero_point {self.out_zero_point} outside {lo}..{hi}")
        if self.mode == RequantMode.FIXED and not (lo <= self.lo and self.hi <= hi):
            raise ValueError(
                f"fixed requant clamp {self.lo}..{self.hi} exceeds the {self.out_bits}-bit "
                f"{'signed' if self.out_signed else 'unsigned'} range"
            )

    def check_sums(self, where: str, ends) -> None:
        """Refuse ``m*x + n`` values (the reachable extremes ``ends``) wider than ``sum_bits`` (or int64-unsafe)."""
        top = max(abs(int(v)) for v in ends) if len(ends) else 0
        if self.sum_bits is not None:
            need = signed_width(ends)
            if need > self.sum_bits:
                raise ValueError(
                    f"{where}: requant sums m*acc + n reach {top} and need {need} bits, "
                    f"more than its sum_bits={self.sum_bits}"
                )
        elif top >= 1 << 62:
            raise ValueError(f"{where}: requant sums m*acc + n reach {top}, beyond the int64 range the model runs in")

    @property
    def qmin(self) -> int:
        return self.lo if self.mode == RequantMode.FIXED else 0

    @property
    def qmax(self) -> int:
        return self.hi if self.mode == RequantMode.FIXED else (1 << self.out_bits) - 1


@dataclass(frozen=True, kw_only=True, eq=False)
class GroupScales:
    """Group-shared scales of an adder layer (AdderQuant; DESIGN section 2).

    The layer's output channels are split into ``count`` (>= 2) groups; group
    ``g`` has its own scale ``scale[g]`` and zero point ``zero_point[g]``,
    shared by its weights and by its copy of the input.  The input codes
    ``x`` (``in_bits`` wide, unsigned; the padding value is the layer's
    ``in_zero_point``) are re-scaled once per group, element-wise::

        x_g = clamp((m[g]*x + n[g]) >> shift, 0, 2**bits - 1)

    (``>>`` floors; the rounding offset is in ``n``), and output channel
    ``o`` accumulates ``sum_k |x_{channel_group[o]}[k] - weight[o, k]|``.
    ``scale`` and ``zero_point`` describe the re-scaled codes (real value
    ``scale[g] * (x_g - zero_point[g])``); only ``channel_group``, ``m``,
    ``n`` and ``shift`` enter the arithmetic.
    """

    count: int
    channel_group: np.ndarray
    in_bits: int
    m: np.ndarray
    n: np.ndarray
    shift: int
    scale: np.ndarray
    zero_point: np.ndarray

    def __post_init__(self) -> None:
        if not _is_int(self.count) or not 2 <= self.count <= 1 << 16:
            raise ValueError(f"scale_groups count must be an integer in 2..65536, not {self.count!r}")
        g = self.count
        cg = _int_array(self.channel_group, "scale_groups channel_group")
        if cg.ndim != 1 or cg.size < g or cg.min() < 0 or cg.max() >= g:
            raise ValueError(f"scale_groups channel_group must be [O] of group indices 0..{g - 1} with O >= {g}")
        if np.unique(cg).size != g:
            raise ValueError(f"scale_groups: every one of the {g} groups needs a channel")
        object.__setattr__(self, "channel_group", cg)
        if not _is_int(self.in_bits) or not 2 <= self.in_bits <= 16:
            raise ValueError(f"scale_groups in_bits must be an integer in 2..16, not {self.in_bits!r}")
        for name in ("m", "n", "zero_point"):
            v = _int_array(getattr(self, name), f"scale_groups {name}")
            if v.shape != (g,):
                raise ValueError(f"scale_groups {name} must be [{g}], not {list(v.shape)}")
            object.__setattr__(self, name, v)
        sc = np.asarray(self.scale)
        if sc.dtype.kind not in "fiu" or sc.shape != (g,) or not np.all(np.isfinite(sc)) or np.any(sc <= 0):
            raise ValueError(f"scale_groups scale must be [{g}] positive finite numbers")
        object.__setattr__(self, "scale", sc.astype(np.float64))
        if not _is_int(self.shift) or not 0 <= self.shift <= 62:
            raise ValueError(f"scale_groups shift must be an integer in 0..62, not {self.shift!r}")
        top = (1 << self.in_bits) - 1
        ends = [int(mm) * x + int(nn) for mm, nn in zip(self.m, self.n) for x in (0, top)]
        if max(abs(v) for v in ends) >= 1 << 62:
            raise ValueError("scale_groups: re-scale sums m*x + n reach beyond the int64 range the model runs in")

    def codes(self, x, bits: int, group: int) -> np.ndarray:
        """Group ``group``'s operand codes of input codes ``x``: ``clamp((m[g]*x + n[g]) >> shift, 0, 2**bits-1)``."""
        return requant_fixed(x, self.m[group], self.n[group], self.shift, 0, (1 << bits) - 1)

    def channels(self, group: int) -> np.ndarray:
        """Output channels of group ``group`` (ascending)."""
        return np.flatnonzero(self.channel_group == group)


def _int_field(where: str, name: str, v) -> None:
    if not _is_int(v):
        raise ValueError(f"{where}: {name} must be an integer, not {v!r}")


def _kernel(where: str, kernel) -> tuple:
    """``kernel`` as a tuple of ints (its length is checked with the geometry)."""
    kernel = tuple(kernel) if isinstance(kernel, (tuple, list)) else kernel
    if not isinstance(kernel, tuple) or not all(_is_int(v) for v in kernel):
        raise ValueError(f"{where}: kernel must be a list of integers, not {kernel!r}")
    return tuple(int(v) for v in kernel)


def _requant_field(where: str, rq) -> None:
    if not isinstance(rq, Requant):
        raise ValueError(f"{where}: requant must be a Requant, not {rq!r}")


@dataclass(frozen=True, kw_only=True, eq=False)
class IntLayer:
    """One layer of an :class:`IntModel`: what every kind has (the base of the layer classes).

    Each kind is its own class (:data:`LAYER_CLASSES`): :class:`AdderLayer`,
    :class:`MultLayer` (compute layers, :class:`ComputeLayer`),
    :class:`MaxPoolLayer`, :class:`AvgPoolLayer` (:class:`PoolLayer`),
    :class:`AddLayer` and :class:`FlattenLayer`; each validates its own
    fields on construction (``ValueError`` naming the layer and the field).

    Parameters
    ----------
    name : str
        Unique name in the model.
    kind : LayerKind
        Fixed by the class, except for compute layers (conv or linear).
    inputs : tuple of str
        Names of the layers (or ``"input"``) this layer reads.
    in_shape, out_shape : tuple of int
        ``[C, H, W]`` or ``[F]``.
    """

    #: The kinds a class holds (a plain class attribute, not a field).
    KINDS = ()
    #: How many inputs a layer of the class reads (a plain class attribute, not a field).
    N_INPUTS = 1

    name: str
    kind: LayerKind
    inputs: tuple
    in_shape: tuple
    out_shape: tuple

    def __post_init__(self) -> None:
        if not self.KINDS:
            raise TypeError(f"{type(self).__name__} is the base of the layer classes; use one of "
                            f"{', '.join(c.__name__ for c in dict.fromkeys(LAYER_CLASSES.values()))}")
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"layer name must be a non-empty string, not {self.name!r}")
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"layer {self.name}: unknown kind {self.kind!r}")
        if self.kind not in self.KINDS:
            raise ValueError(f"layer {self.name}: kind {self.kind} is not one of {type(self).__name__}'s "
                             f"({', '.join(self.KINDS)})")
        object.__setattr__(self, "kind", LayerKind(self.kind))
        object.__setattr__(self, "inputs", tuple(self.inputs))
        if not all(isinstance(v, str) for v in self.inputs):
            raise ValueError(f"layer {self.name}: inputs must be layer names, not {list(self.inputs)!r}")
        for fname in ("in_shape", "out_shape"):
            shape = tuple(getattr(self, fname))
            if len(shape) not in (1, 3) or not all(_is_int(v) and 1 <= v <= MAX_DIM for v in shape):
                raise ValueError(
                    f"layer {self.name}: {fname} must be [C, H, W] or [F] of integers in 1..{MAX_DIM}, not {list(shape)!r}"
                )
            object.__setattr__(self, fname, tuple(int(v) for v in shape))
        if len(self.inputs) != self.N_INPUTS:
            raise ValueError(f"layer {self.name}: {self.kind} needs {self.N_INPUTS} input(s), not {len(self.inputs)}")

    @property
    def pe(self) -> PeKind | None:
        """:attr:`PeKind.ADDER` or :attr:`PeKind.MULT` for compute layers, else None."""
        return self.kind.pe

    @property
    def out_channels(self) -> int:
        return self.out_shape[0]

    @property
    def out_pixels(self) -> int:
        """``P``: output pixels per image (1 for linear layers)."""
        return int(np.prod(self.out_shape[1:])) if len(self.out_shape) > 1 else 1


@dataclass(frozen=True, kw_only=True, eq=False)
class ComputeLayer(IntLayer):
    """A conv or linear layer: ``acc[o, p] = sum_k op(x[k, p], weight[o, k])``, then ``requant``.

    The base of :class:`AdderLayer` (``op = |x - w|``) and :class:`MultLayer`
    (``op = x * w``).  A linear layer (``[F] -> [O]``) has kernel ``1x1``,
    stride 1 and padding 0 over one pixel.

    Parameters
    ----------
    kernel : tuple of int
        ``(kh, kw)``.
    stride, padding : int
    K : int
        Reduction length, ``C*kh*kw`` (``F`` for linear layers).
    weight : numpy.ndarray
        int64 ``[O, K]`` in im2col order ``k = c*kh*kw + i*kw + j``.
    in_scale : float
        Real value of one input code step.
    in_zero_point : int
        Code of the real value 0 (the padding value).
    bits, weight_bits : int
        Operand width (2..16) and the weight grid's width (2..``bits``).
    acc_bits : int
        ``quant.base.intops.acc_bits_for(bits, K, pe)``, nothing else.
    compensation : numpy.ndarray or None
        float64 ``[O]``, already folded into the requant bias (None: zeros).
    requant : Requant
        Of the accumulator, ``[O]`` rows.
    """

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
    compensation: np.ndarray | None = None
    requant: Requant

    def __post_init__(self) -> None:
        super().__post_init__()
        nm = self.name
        where = f"layer {nm}"
        object.__setattr__(self, "kernel", _kernel(where, self.kernel))
        for fname in ("K", "bits", "weight_bits", "acc_bits", "in_zero_point"):
            _int_field(where, fname, getattr(self, fname))
        v = self.in_scale
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0 and math.isfinite(v)):
            raise ValueError(f"{where}: in_scale must be a positive finite number, not {v!r}")
        _requant_field(where, self.requant)
        pe = self.pe
        w = np.asarray(self.weight)
        if w.dtype != np.int64 or w.ndim != 2:
            raise ValueError(f"{where}: weight must be int64 [O, K], not {w.dtype} {list(w.shape)}")
        o, k = w.shape
        if len(self.kernel) != 2:
            raise ValueError(f"{where}: kernel must be a list [kh, kw], not {self.kernel!r}")
        kh, kw = self.kernel
        if self.kind.linear:
            if len(self.in_shape) != 1 or self.kernel != (1, 1) or self.stride != 1 or self.padding != 0:
                raise ValueError(f"{where}: a linear layer takes [F] inputs with kernel 1x1, stride 1, padding 0")
            want_k, want_out = self.in_shape[0], (o,)
        else:
            if len(self.in_shape) != 3:
                raise ValueError(f"{where}: a conv layer takes [C, H, W] inputs, not {self.in_shape}")
            c, h, wd = self.in_shape
            oh, ow = _check_geometry(where, self.kernel, self.stride, self.padding, (h, wd))
            want_k, want_out = c * kh * kw, (o, oh, ow)
        if self.K != k or k != want_k:
            raise ValueError(f"{where}: K={self.K} and weight [{o}, {k}] do not match the input {self.in_shape} (K={want_k})")
        if self.out_shape != want_out:
            raise ValueError(f"{where}: out_shape {self.out_shape} does not match {want_out}")
        if not 2 <= self.bits <= 16:
            raise ValueError(f"{where}: bits must be in 2..16, not {self.bits!r}")
        if not 2 <= self.weight_bits <= self.bits:
            raise ValueError(f"{where}: weight_bits must be in 2..bits, not {self.weight_bits!r}")
        need = acc_bits_for(int(self.bits), int(k), pe)
        if self.acc_bits != need:
            raise ValueError(f"{where}: acc_bits={self.acc_bits} but K={k} at {self.bits} bits needs {need}")
        lo, hi = code_range(self.bits, signed=(pe == PeKind.MULT))
        if w.size and (w.min() < lo or w.max() > hi):
            raise ValueError(f"{where}: weight codes outside the {self.bits}-bit range {lo}..{hi}")
        zlo, zhi = self._zero_point_range(lo, hi)
        if not zlo <= self.in_zero_point <= zhi:
            raise ValueError(f"{where}: in_zero_point {self.in_zero_point!r} outside {zlo}..{zhi}")
        comp = np.asarray(self.compensation if self.compensation is not None else np.zeros(o))
        if comp.dtype.kind not in "fiu" or comp.shape != (o,) or not np.all(np.isfinite(comp)):
            raise ValueError(f"{where}: compensation must be [{o}] finite numbers")
        object.__setattr__(self, "compensation", comp.astype(np.float64))
        rq = self.requant
        if rq.mode == RequantMode.FIXED and (rq.m.shape not in ((o,), ()) or rq.n.shape not in ((o,), ())):
            raise ValueError(f"{where}: fixed requant m and n must be [{o}]")
        if rq.mode == RequantMode.THRESHOLD and rq.thr.shape[0] != o:
            raise ValueError(f"{where}: threshold thr must have {o} rows")
        lo_acc, hi_acc = self.acc_range
        if rq.mode == RequantMode.FIXED:
            ends = [int(mm) * a + int(nn) for mm, nn in np.broadcast(rq.m, rq.n) for a in (lo_acc, hi_acc)]
            rq.check_sums(where, ends)
        elif rq.thr.size and int(rq.thr.max()) > hi_acc + 1:
            raise ValueError(
                f"{where}: threshold {int(rq.thr.max())} is above the largest accumulator "
                f"{hi_acc} + 1 (K={k} at {self.bits} bits)"
            )

    def _zero_point_range(self, lo: int, hi: int) -> tuple[int, int]:
        """Allowed ``in_zero_point`` given the operand code range ``lo..hi``."""
        return lo, hi

    @property
    def groups(self) -> int:
        """Scale groups of the layer's input (1: one shared scale; :class:`GroupScales`)."""
        return 1

    @property
    def acc_range(self) -> tuple[int, int]:
        """``(min, max)`` accumulator over every operand the widths allow (see the subclasses)."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True, eq=False)
class AdderLayer(ComputeLayer):
    """An adder conv or linear layer (``adder_conv``, ``adder_linear``): ``acc = sum_k |x - w|`` on unsigned codes.

    Parameters
    ----------
    scale_groups : GroupScales or None
        Group-shared scales (None: one scale shared by the input and every
        weight); with them ``in_zero_point`` is a code of the ``in_bits``-wide
        input before the per-group re-scale.
    """

    KINDS = ADDER_KINDS

    scale_groups: GroupScales | None = None

    def __post_init__(self) -> None:
        sg = self.scale_groups
        if sg is not None and not isinstance(sg, GroupScales):
            raise ValueError(f"layer {self.name}: scale_groups must be GroupScales, not {sg!r}")
        super().__post_init__()
        o = self.out_shape[0]
        if sg is not None and sg.channel_group.shape != (o,):
            raise ValueError(f"layer {self.name}: scale_groups channel_group must be [{o}], one group per output channel")

    def _zero_point_range(self, lo: int, hi: int) -> tuple[int, int]:
        sg = self.scale_groups
        return code_range(sg.in_bits, False) if sg is not None else (lo, hi)

    @property
    def groups(self) -> int:
        return 1 if self.scale_groups is None else int(self.scale_groups.count)

    @property
    def acc_range(self) -> tuple[int, int]:
        """``0 .. K*(2**bits-1)``."""
        return 0, self.max_acc

    @property
    def max_acc(self) -> int:
        """Largest accumulator value: ``K * (2**bits - 1)``."""
        return self.K * ((1 << self.bits) - 1)


@dataclass(frozen=True, kw_only=True, eq=False)
class MultLayer(ComputeLayer):
    """A multiply conv or linear layer (``conv``, ``linear``): ``acc = sum_k x * w`` on signed codes.

    Parameters
    ----------
    weight_scale : numpy.ndarray
        float64 ``[O]``, positive: the real value of one weight code step per
        output channel (the inputs have zero point 0).
    """

    KINDS = MULT_KINDS

    weight_scale: np.ndarray

    def __post_init__(self) -> None:
        super().__post_init__()
        nm = self.name
        o = self.out_shape[0]
        if self.in_zero_point != 0:
            raise ValueError(f"layer {nm}: multiply layers need in_zero_point 0")
        ws = np.asarray(self.weight_scale) if self.weight_scale is not None else None
        if ws is None or ws.dtype.kind not in "fiu" or ws.shape != (o,) or not np.all(np.isfinite(ws)) or np.any(ws <= 0):
            raise ValueError(f"layer {nm}: multiply layers need weight_scale [{o}] of positive finite numbers")
        object.__setattr__(self, "weight_scale", ws.astype(np.float64))

    @property
    def acc_range(self) -> tuple[int, int]:
        """``-B .. B`` with ``B = K * 2**(bits-1) * max|w|`` (signed inputs, the layer's weights)."""
        wmax = int(np.abs(self.weight).max(initial=0))
        top = self.K * (1 << (self.bits - 1)) * wmax
        return -top, top


@dataclass(frozen=True, kw_only=True, eq=False)
class PoolLayer(IntLayer):
    """A pooling window over ``[C, H, W]``: the base of :class:`MaxPoolLayer` and :class:`AvgPoolLayer`.

    Parameters
    ----------
    kernel : tuple of int
        ``(kh, kw)``.
    stride, padding : int
        At most half the kernel of padding (a window never sees only padding).
    """

    kernel: tuple
    stride: int
    padding: int

    def __post_init__(self) -> None:
        super().__post_init__()
        where = f"layer {self.name}"
        object.__setattr__(self, "kernel", _kernel(where, self.kernel))
        if len(self.in_shape) != 3:
            raise ValueError(f"{where}: a {self.kind} takes [C, H, W] inputs, not {list(self.in_shape)}")
        c, h, w = self.in_shape
        oh, ow = _check_geometry(where, self.kernel, self.stride, self.padding, (h, w))
        if 2 * self.padding > min(self.kernel):
            raise ValueError(
                f"{where}: padding {self.padding} is more than half the kernel "
                f"{self.kernel[0]}x{self.kernel[1]} (a window could see only padding)"
            )
        if self.out_shape != (c, oh, ow):
            raise ValueError(f"{where}: out_shape {self.out_shape} does not match the pool ({c}, {oh}, {ow})")


@dataclass(frozen=True, kw_only=True, eq=False)
class MaxPoolLayer(PoolLayer):
    """``maxpool``: the largest code of each window; padded positions never win (minus infinity). No requant."""

    KINDS = (LayerKind.MAXPOOL,)

    kind: LayerKind = field(default=LayerKind.MAXPOOL, init=False)


@dataclass(frozen=True, kw_only=True, eq=False)
class AvgPoolLayer(PoolLayer):
    """``avgpool``: the window sum of codes (padded positions count as 0), then a fixed ``requant`` of scalar ``m``, ``n``."""

    KINDS = (LayerKind.AVGPOOL,)

    kind: LayerKind = field(default=LayerKind.AVGPOOL, init=False)
    requant: Requant

    def __post_init__(self) -> None:
        _requant_field(f"layer {self.name}", self.requant)
        super().__post_init__()
        rq = self.requant
        if rq.mode != RequantMode.FIXED or rq.m.size != 1 or rq.n.size != 1:
            raise ValueError(f"layer {self.name}: avgpool needs a fixed requant with scalar m, n")


@dataclass(frozen=True, kw_only=True, eq=False)
class AddLayer(IntLayer):
    """``add``: residual sum of two code tensors, ``q = clamp((m[0]*a + m[1]*b + n) >> shift, lo, hi)``."""

    KINDS = (LayerKind.ADD,)
    N_INPUTS = 2

    kind: LayerKind = field(default=LayerKind.ADD, init=False)
    requant: Requant

    def __post_init__(self) -> None:
        _requant_field(f"layer {self.name}", self.requant)
        super().__post_init__()
        rq = self.requant
        if rq.mode != RequantMode.FIXED or rq.m.shape != (2,) or rq.n.size != 1:
            raise ValueError(f"layer {self.name}: add needs a fixed requant with m [2] and scalar n")
        if self.in_shape != self.out_shape:
            raise ValueError(f"layer {self.name}: add changes the shape {self.in_shape} -> {self.out_shape}")


@dataclass(frozen=True, kw_only=True, eq=False)
class FlattenLayer(IntLayer):
    """``flatten``: ``[C, H, W] -> [C*H*W]`` in C order (codes unchanged)."""

    KINDS = (LayerKind.FLATTEN,)

    kind: LayerKind = field(default=LayerKind.FLATTEN, init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.out_shape != (int(np.prod(self.in_shape)),):
            raise ValueError(f"layer {self.name}: flatten of {self.in_shape} cannot give {self.out_shape}")


#: The class of each layer kind (the reader picks it from the manifest's ``kind``).
LAYER_CLASSES = {
    LayerKind.ADDER_CONV: AdderLayer,
    LayerKind.ADDER_LINEAR: AdderLayer,
    LayerKind.CONV: MultLayer,
    LayerKind.LINEAR: MultLayer,
    LayerKind.MAXPOOL: MaxPoolLayer,
    LayerKind.AVGPOOL: AvgPoolLayer,
    LayerKind.ADD: AddLayer,
    LayerKind.FLATTEN: FlattenLayer,
}
assert set(LAYER_CLASSES) == set(LayerKind)


def _requant_of(layer: IntLayer) -> Requant | None:
    """The layer's requant (None: max pooling and flatten pass codes through)."""
    return None if isinstance(layer, (MaxPoolLayer, FlattenLayer)) else layer.requant


@dataclass(frozen=True, kw_only=True, eq=False)
class IntModel:
    """An integer network: the input quantiser and the layers in execution order.

    The last layer produces the integer logits; ``real logits = out_scale *
    (q - out_zero_point)`` with its ``requant``.
    """

    name: str
    dataset: str
    input: InputQuant
    input_shape: tuple
    layers: tuple
    class_names: tuple = ()
    source: dict = field(default_factory=dict)
    quantization: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"model name must be a non-empty string, not {self.name!r}")
        if not isinstance(self.dataset, str):
            raise ValueError(f"model dataset must be a string, not {self.dataset!r}")
        object.__setattr__(self, "layers", tuple(self.layers))
        shape = tuple(self.input_shape)
        if len(shape) not in (1, 3) or not all(_is_int(v) and 1 <= v <= MAX_DIM for v in shape):
            raise ValueError(f"input shape must be [C, H, W] or [F] of integers in 1..{MAX_DIM}, not {list(shape)!r}")
        object.__setattr__(self, "input_shape", tuple(int(v) for v in shape))
        if not all(isinstance(v, str) for v in self.class_names):
            raise ValueError(f"class_names must be strings, not {list(self.class_names)!r}")
        object.__setattr__(self, "class_names", tuple(self.class_names))
        if not self.layers:
            raise ValueError("an integer model needs at least one layer")
        if not all(isinstance(layer, IntLayer) for layer in self.layers):
            raise ValueError("an integer model's layers must be IntLayer objects")
        mult_bits = self.quantization.get("mult_bits") if isinstance(self.quantization, dict) else None
        if mult_bits is not None and (not _is_int(mult_bits) or not 2 <= mult_bits <= 32):
            raise ValueError(f"quantization mult_bits must be an integer in 2..32, not {mult_bits!r}")
        shapes = {"input": self.input_shape}
        # code range of each tensor: what its producer's width allows
        codes = {"input": code_range(self.input.bits, self.input.signed)}
        for layer in self.layers:
            if layer.name in shapes:
                raise ValueError(f"duplicate layer name {layer.name!r}")
            for src in layer.inputs:
                if src not in shapes:
                    raise ValueError(f"layer {layer.name}: input {src!r} is not an earlier layer")
                if shapes[src] != layer.in_shape:
                    raise ValueError(
                        f"layer {layer.name}: in_shape {layer.in_shape} but {src!r} produces {shapes[src]}"
                    )
            shapes[layer.name] = layer.out_shape
            rq = _requant_of(layer)
            if rq is not None and rq.mode == RequantMode.FIXED and mult_bits is not None:
                _fits(f"layer {layer.name}: requant m", rq.m, mult_bits)
            if isinstance(layer, AvgPoolLayer):
                cnt = layer.kernel[0] * layer.kernel[1]
                lo_in, hi_in = codes[layer.inputs[0]]
                rq.check_sums(f"layer {layer.name}", [int(rq.m.ravel()[0]) * v * cnt + int(rq.n.ravel()[0]) for v in (lo_in, hi_in)])
            elif isinstance(layer, AddLayer):
                m0, m1 = (int(v) for v in rq.m)
                n0 = int(rq.n.ravel()[0])
                (alo, ahi), (blo, bhi) = codes[layer.inputs[0]], codes[layer.inputs[1]]
                rq.check_sums(f"layer {layer.name}", [m0 * a + m1 * b + n0 for a in (alo, ahi) for b in (blo, bhi)])
            codes[layer.name] = code_range(rq.out_bits, rq.out_signed) if rq is not None else codes[layer.inputs[0]]
        if len(self.input.mean) != self.input_shape[0]:
            raise ValueError("input normalisation must have one entry per input channel")
        last = self.layers[-1]
        if len(last.out_shape) != 1:
            raise ValueError(f"the last layer must produce logits [classes], not {list(last.out_shape)}")
        self.logits_requant  # raises when the logits have no requant
        if self.class_names and len(self.class_names) != last.out_shape[0]:
            raise ValueError(
                f"{len(self.class_names)} class names for {last.out_shape[0]} logits"
            )

    def layer(self, name: str) -> IntLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}")

    @property
    def compute_layers(self) -> tuple:
        return tuple(l for l in self.layers if isinstance(l, ComputeLayer))

    @property
    def output(self) -> IntLayer:
        """The last layer: its output codes are the integer logits."""
        return self.layers[-1]

    @property
    def logits_requant(self) -> Requant:
        """The requant that produced the logits (through trailing ``flatten`` layers)."""
        by_name = {l.name: l for l in self.layers}
        layer = self.layers[-1]
        while isinstance(layer, FlattenLayer) and layer.inputs[0] in by_name:
            layer = by_name[layer.inputs[0]]
        rq = _requant_of(layer)
        if rq is None:
            raise ValueError(f"the logits come from layer {layer.name!r}, which has no requant")
        return rq


# --- serialisation ----------------------------------------------------------------

_ARRAY_FIELDS = ("weight", "compensation", "weight_scale")
_RQ_ARRAY_FIELDS = ("m", "n", "thr", "neg")
_GROUP_ARRAY_FIELDS = ("channel_group", "m", "n", "scale", "zero_point")


def _ref(arrays: dict, key: str, value) -> dict:
    arr = np.ascontiguousarray(value)
    arrays[key] = arr
    return {"array": key, "shape": list(arr.shape), "dtype": str(arr.dtype)}


#: Manifest key order of a layer's fields: each layer writes the fields its class has, in this order.
_LAYER_KEYS = ("name", "kind", "inputs", "in_shape", "out_shape", "kernel", "stride", "padding", "K", "weight",
               "in_scale", "in_zero_point", "bits", "weight_bits", "acc_bits", "compensation", "weight_scale",
               "requant", "scale_groups")
assert all({f.name for f in dataclasses.fields(c)} <= set(_LAYER_KEYS) for c in LAYER_CLASSES.values())


def _plain(v):
    """A JSON value of a scalar field: numpy scalars and enum members as Python ints, floats, strings."""
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _layer_to_json(layer: IntLayer, arrays: dict) -> dict:
    out: dict = {}
    have = {f.name for f in dataclasses.fields(layer)}
    for name in _LAYER_KEYS:
        v = getattr(layer, name) if name in have else None
        if v is None:
            continue
        if name in _ARRAY_FIELDS:
            out[name] = _ref(arrays, f"{layer.name}.{name}", v)
        elif name == "requant":
            rq: dict = {}
            for g in dataclasses.fields(Requant):
                rv = getattr(v, g.name)
                if rv is None:
                    continue
                if g.name in _RQ_ARRAY_FIELDS:
                    rq[g.name] = _ref(arrays, f"{layer.name}.requant.{g.name}", rv)
                else:
                    rq[g.name] = _plain(rv)
            out["requant"] = rq
        elif name == "scale_groups":
            out["scale_groups"] = {
                g.name: (_ref(arrays, f"{layer.name}.scale_groups.{g.name}", getattr(v, g.name))
                         if g.name in _GROUP_ARRAY_FIELDS else int(getattr(v, g.name)))
                for g in dataclasses.fields(GroupScales)
            }
        elif isinstance(v, tuple):
            out[name] = list(v)
        else:
            out[name] = _plain(v)
    return out


def _manifest(model: IntModel, arrays: dict) -> dict:
    inp = model.input
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": model.name,
        "dataset": model.dataset,
        "class_names": list(model.class_names),
        "source": dict(model.source),
        "quantization": dict(model.quantization),
        "input": {
            "shape": list(model.input_shape),
            "mean": list(inp.mean),
            "std": list(inp.std),
            "scale": inp.scale,
            "zero_point": inp.zero_point,
            "bits": inp.bits,
            "signed": inp.signed,
        },
        "layers": [_layer_to_json(layer, arrays) for layer in model.layers],
    }


def manifest_digest(manifest: dict) -> str:
    """SHA-256 of a manifest's content without its ``manifest_sha256`` field.

    Computed over ``json.dumps(fields, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)`` encoded as UTF-8, so it depends on the values, not
    on the file's formatting.
    """
    rest = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    text = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def seal_manifest(manifest: dict) -> dict:
    """Set ``manifest["manifest_sha256"]`` to :func:`manifest_digest` (the writer's last step); return it."""
    manifest.pop("manifest_sha256", None)
    manifest["manifest_sha256"] = manifest_digest(manifest)
    return manifest


def save_int_model(model: IntModel, out_dir) -> tuple[Path, Path]:
    """Write ``manifest.json`` and ``weights.npz`` into ``out_dir`` (created if needed).

    Each file is written to a temporary name and renamed.  The manifest
    records the SHA-256 of the weights file so a mismatched pair is refused.
    Returns the two paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays: dict = {}
    manifest = _manifest(model, arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    blob = buf.getvalue()
    manifest["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    seal_manifest(manifest)
    text = json.dumps(manifest, indent=1, sort_keys=False) + "\n"
    wpath, mpath = out / WEIGHTS_NAME, out / MANIFEST_NAME
    atomic_write_bytes(wpath, blob)
    atomic_write_bytes(mpath, text.encode())
    return mpath, wpath


# --- loading ------------------------------------------------------------------------


def _take(arrays, ref, where: str) -> np.ndarray:
    if not (isinstance(ref, dict) and set(ref) == {"array", "shape", "dtype"}):
        raise ValueError(f"{where}: expected an array reference, not {ref!r}")
    key = ref["array"]
    if key not in arrays:
        raise ValueError(f"{where}: array {key!r} is missing from {WEIGHTS_NAME}")
    arr = arrays[key]
    if list(arr.shape) != list(ref["shape"]) or str(arr.dtype) != ref["dtype"]:
        raise ValueError(
            f"{where}: array {key!r} is {arr.dtype} {list(arr.shape)} in {WEIGHTS_NAME} "
            f"but the manifest says {ref['dtype']} {ref['shape']}"
        )
    return arr


def _dict(v, what: str) -> dict:
    if not isinstance(v, dict):
        raise ValueError(f"manifest {what} must be an object, not {v!r}")
    return v


def _layer_from_json(d: dict, arrays, index: int) -> IntLayer:
    """The layer of manifest entry ``d``, of the class its ``kind`` names (:data:`LAYER_CLASSES`)."""
    if not isinstance(d, dict) or "name" not in d or "kind" not in d:
        raise ValueError(f"manifest layer {index} needs a name and a kind")
    where = f"layer {d['name']!r}"
    if d["kind"] not in LAYER_KINDS:
        raise ValueError(f"layer {d['name']}: unknown kind {d['kind']!r}")
    cls = LAYER_CLASSES[LayerKind(d["kind"])]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown fields {', '.join(unknown)} ({d['kind']} layers have "
                         f"{', '.join(fields)})")
    kw = {}
    for k, v in d.items():
        if not fields[k].init:  # the kind of a one-kind class
            continue
        if k in _ARRAY_FIELDS:
            kw[k] = _take(arrays, v, f"{where}.{k}")
        elif k == "requant":
            if not isinstance(v, dict):
                raise ValueError(f"{where}: requant must be an object")
            rknown = {f.name for f in dataclasses.fields(Requant)}
            runknown = sorted(set(v) - rknown)
            if runknown:
                raise ValueError(f"{where}.requant: unknown fields {', '.join(runknown)}")
            rkw = {
                rk: (_take(arrays, rv, f"{where}.requant.{rk}") if rk in _RQ_ARRAY_FIELDS else rv)
                for rk, rv in v.items()
            }
            try:
                kw[k] = Requant(**rkw)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{where}.requant: {exc}") from None
        elif k == "scale_groups":
            if not isinstance(v, dict):
                raise ValueError(f"{where}: scale_groups must be an object")
            gknown = {f.name for f in dataclasses.fields(GroupScales)}
            if set(v) != gknown:
                extra, missing = sorted(set(v) - gknown), sorted(gknown - set(v))
                raise ValueError(f"{where}.scale_groups: unknown fields {', '.join(extra)}" if extra
                                 else f"{where}.scale_groups: missing fields {', '.join(missing)}")
            gkw = {gk: (_take(arrays, gv, f"{where}.scale_groups.{gk}") if gk in _GROUP_ARRAY_FIELDS else gv)
                   for gk, gv in v.items()}
            try:
                kw[k] = GroupScales(**gkw)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{where}.scale_groups: {exc}") from None
        elif k in ("inputs", "in_shape", "out_shape", "kernel"):
            if not isinstance(v, list):
                raise ValueError(f"{where}.{k} must be a list")
            kw[k] = tuple(v)
        else:
            kw[k] = v
    missing = [n for n, f in fields.items()
               if f.init and n not in kw and f.default is dataclasses.MISSING]
    if missing:
        raise ValueError(f"{where}: {d['kind']} layers need {', '.join(missing)}")
    return cls(**kw)


def load_int_model(path) -> IntModel:
    """Load and validate an artifact directory (or its ``manifest.json``).

    Raises
    ------
    OSError
        The directory or one of its files does not exist.
    ValueError
        Anything corrupt, truncated or mismatched, with a message naming it:
        bad JSON, wrong format or version, a weights file whose SHA-256
        differs from the manifest's, missing arrays, wrong shapes or dtypes,
        inconsistent layer shapes, an accumulator width that is not the one
        the layer needs.
    """
    p = Path(path)
    if p.is_dir():
        mpath = p / MANIFEST_NAME
    elif p.name == MANIFEST_NAME:
        mpath, p = p, p.parent
    else:
        raise ValueError(f"{path}: not an integer model directory (expected {MANIFEST_NAME} inside)")
    wpath = p / WEIGHTS_NAME
    if not mpath.is_file():
        raise FileNotFoundError(f"{mpath}: no such file (not an integer model directory?)")
    if not wpath.is_file():
        raise FileNotFoundError(f"{wpath}: no such file")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{mpath}: corrupt manifest (not valid JSON: {exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{mpath}: not an {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{mpath}: format version {manifest.get('format_version')!r} is not supported "
            f"(this adderhw reads version {FORMAT_VERSION} only; quantize the checkpoint again)"
        )
    if manifest.get("manifest_sha256") != manifest_digest(manifest):
        raise ValueError(
            f"{mpath}: the manifest's SHA-256 does not match its manifest_sha256 "
            "(edited or corrupt; quantize the checkpoint again)"
        )
    blob = wpath.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if manifest.get("weights_sha256") != digest:
        raise ValueError(
            f"{wpath}: SHA-256 {digest[:12]}... does not match the manifest's "
            f"{str(manifest.get('weights_sha256'))[:12]}... (truncated, corrupt or from another model)"
        )
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{wpath}: corrupt weights file ({exc})") from None
    try:
        inp = manifest["input"]
        if not isinstance(inp, dict):
            raise ValueError("manifest input must be an object")
        spec = InputQuant(
            mean=tuple(inp["mean"]),
            std=tuple(inp["std"]),
            scale=inp["scale"],
            zero_point=inp["zero_point"],
            bits=inp["bits"],
            signed=_bool(inp["signed"], "input signed"),
        )
        if not isinstance(manifest["layers"], list):
            raise ValueError("manifest layers must be a list")
        if not isinstance(manifest.get("class_names", []), list):
            raise ValueError("manifest class_names must be a list")
        layers = [_layer_from_json(d, arrays, i) for i, d in enumerate(manifest["layers"])]
        return IntModel(
            name=manifest["name"],
            dataset=manifest["dataset"],
            input=spec,
            input_shape=tuple(inp["shape"]),
            layers=layers,
            class_names=tuple(manifest.get("class_names", ())),
            source=_dict(manifest.get("source", {}), "source"),
            quantization=_dict(manifest.get("quantization", {}), "quantization"),
        )
    except KeyError as exc:
        raise ValueError(f"{mpath}: manifest is missing the field {exc.args[0]!r}") from None
    except (TypeError, AttributeError) as exc:
        raise ValueError(f"{mpath}: malformed manifest ({exc})") from None
    except ValueError as exc:
        raise ValueError(f"{mpath}: {exc}") from None
