"""C kernels of the integer golden model (``golden.c``): exact, numpy + ctypes only (no torch).

:func:`adder_acc` computes ``acc[n, o, p] = sum_k |x[n, k, p] - w[o, k]|``
exactly, as :func:`quant.intmodel.golden.adder_acc`'s numpy path does, and
:func:`im2col_batch` the int64 columns of :func:`quant.intmodel.golden.im2col_batch`.

**Exactness.** With ``c = min(x, w)`` and ``span = max(x, w) - c`` over the
whole batch and the weights, every shifted value ``x - c`` and ``w - c`` lies
in ``[0, span]``, ``|x - w|`` is unchanged by the shift and
``0 <= |x - w| <= span``, so every partial sum lies in ``[0, K * span]``.
The element type follows from that bound:

* ``"i16"``: ``span <= 2047`` (codes of up to 11 bits) and ``K * span < 2**31``:
  int16 codes, int16 partial sums over ``kc = floor(32767 / span)`` rows
  (each below ``2**15``), added into int32;
* ``"i32"``: ``K * span < 2**31``;
* ``"i64"``: ``K * span < 2**63``; beyond that the sum is refused
  (:class:`ValueError`) — int64 cannot hold it.

:func:`requant_fixed`, :func:`requant_threshold` and :func:`requant_add`
are :mod:`quant.base.intops`' re-quantisations of the same names in C, equal to
them bit for bit (the same int64 two's-complement arithmetic, the same
overflow refusal); they return ``None`` for an argument layout they do not
cover, and the caller uses numpy.

Integer sums do not depend on their order, so the result is the same for
every thread count and tile order.

``ADDERHW_GOLDEN_BACKEND`` chooses the golden model's backend: ``auto``
(default: these kernels if they build, else the numpy kernels with one
warning naming the reason), ``native`` (an error if they cannot build) or
``numpy``.  ``ADDERHW_GOLDEN_THREADS`` caps the threads (default: the CPUs
this process may use).
"""

from __future__ import annotations

import ctypes
import enum
import os
import threading
import warnings

import numpy as np

from quant.base.intops import conv_out_size
from quant.base.native.build import Library, NativeUnavailable, default_threads

__all__ = ["GoldenBackend", "BACKENDS", "KINDS", "NativeUnavailable", "adder_acc", "backend", "choose_kind", "conv_adder_acc",
           "conv_adder_requant", "im2col_batch", "library", "max_pool", "requant_add", "requant_fixed", "requant_threshold", "threads"]

class GoldenBackend(enum.StrEnum):
    """Kernels of the golden model (``ADDERHW_GOLDEN_BACKEND``): ``AUTO`` is C where it builds, else numpy."""

    AUTO = "auto"
    NATIVE = "native"
    NUMPY = "numpy"


#: The values ``ADDERHW_GOLDEN_BACKEND`` takes.
BACKENDS = tuple(GoldenBackend)
#: Element types of the adder kernel, narrowest first.
KINDS = ("i16", "i32", "i64")
_DTYPES = {"i16": np.int16, "i32": np.int32, "i64": np.int64}
_I16_MAX_SPAN = 2047  # kc = floor(32767 / span) >= 16 rows between int16 -> int32 flushes


def _declare(lib: ctypes.CDLL) -> None:
    ptr, i64, cint = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    lib.golden_minmax_i64.argtypes = [ptr, i64, ptr, cint]
    lib.golden_minmax_i64.restype = cint
    lib.golden_maxpool_i64.argtypes = [ptr, ptr, i64, i64, i64, i64, i64, i64, i64, i64, i64, cint]
    lib.golden_maxpool_i64.restype = cint
    lib.golden_requant_fixed_i64.argtypes = [ptr, ptr, i64, i64, i64, ptr, ptr, i64, i64, i64, ptr, cint]
    lib.golden_requant_fixed_i64.restype = cint
    lib.golden_requant_add_i64.argtypes = [ptr, ptr, ptr, i64, i64, i64, i64, i64, i64, i64, cint]
    lib.golden_requant_add_i64.restype = cint
    lib.golden_requant_threshold_i64.argtypes = [ptr, ptr, i64, i64, i64, ptr, ptr, i64, i64, cint]
    lib.golden_requant_threshold_i64.restype = cint
    for kind in KINDS:
        for name, args in (("pack", [ptr, ptr, i64, i64, i64, i64, i64, cint]),
                           ("im2col", [ptr, ptr, i64, ptr, i64, i64, i64, i64, i64, i64, cint]),
                           ("adder", [ptr, ptr, ptr, i64, i64, i64, i64, i64, i64, cint]),
                           ("adder_rq", [ptr, ptr, ptr, i64, i64, i64, i64, i64, i64, ptr, ptr, i64, i64, i64, cint]),
                           ("tile_width", [])):
            fn = getattr(lib, f"golden_{name}_{kind}")
            fn.argtypes = args
            fn.restype = cint


_LIBRARY = Library("golden.c", ("golden_kernels.h", "pool.h"), _declare, what="the golden kernels")


def library() -> ctypes.CDLL:
    """The loaded golden kernel library (built on first call); raises :class:`NativeUnavailable`."""
    return _LIBRARY.load()


_warned = False


def backend() -> GoldenBackend:
    """The backend :mod:`quant.intmodel.golden` uses now: :attr:`GoldenBackend.NATIVE` or :attr:`GoldenBackend.NUMPY`.

    Reads ``ADDERHW_GOLDEN_BACKEND`` on every call (tests switch it); ``auto``
    falls back to ``"numpy"`` with one :class:`RuntimeWarning` when the
    kernels cannot be built.
    """
    global _warned
    choice = os.environ.get("ADDERHW_GOLDEN_BACKEND", "auto").strip().lower() or "auto"
    if choice not in BACKENDS:
        raise ValueError(f"ADDERHW_GOLDEN_BACKEND must be one of {', '.join(BACKENDS)}, not {choice!r}")
    if choice == GoldenBackend.NUMPY:
        return GoldenBackend.NUMPY
    try:
        library()
    except NativeUnavailable as exc:
        if choice == GoldenBackend.NATIVE:
            raise
        if not _warned:
            _warned = True
            warnings.warn(f"the golden model uses the slower numpy kernels: {exc}", RuntimeWarning, stacklevel=3)
        return GoldenBackend.NUMPY
    return GoldenBackend.NATIVE


def threads() -> int:
    """Threads of the kernels: ``ADDERHW_GOLDEN_THREADS`` if set, else :func:`quant.base.native.build.default_threads`."""
    raw = os.environ.get("ADDERHW_GOLDEN_THREADS", "").strip()
    if not raw:
        return default_threads()
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"ADDERHW_GOLDEN_THREADS must be a positive integer, not {raw!r}")
    return int(raw)


def _threads(n: int | None) -> int:
    if n is None:
        return threads()
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"threads must be a positive integer, not {n!r}")
    return int(n)


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


def _minmax(a: np.ndarray, nthreads: int) -> tuple[int, int]:
    out = np.empty(2, dtype=np.int64)
    if library().golden_minmax_i64(_ptr(a), a.size, _ptr(out), nthreads) != 0:
        raise MemoryError("golden_minmax_i64: out of memory")
    return int(out[0]), int(out[1])


def choose_kind(k: int, span: int, kind: str | None = None) -> str:
    """Element type of :func:`adder_acc` for reduction length ``k`` and value span ``span``.

    ``kind=None`` picks the narrowest of :data:`KINDS` the bound allows (see
    the module docstring); a forced ``kind`` is checked against the bound.
    Raises :class:`ValueError` when ``k * span >= 2**63``.
    """
    total = int(k) * int(span)
    if total >= 1 << 63:
        raise ValueError(f"adder_acc: sums up to {k} * {span} = {total} do not fit in int64")
    allowed = [name for name, ok in (("i16", span <= 32767 and total < 1 << 31), ("i32", total < 1 << 31),
                                     ("i64", True)) if ok]
    if kind is None:
        if total >= 1 << 31:
            return "i64"
        return "i16" if span <= _I16_MAX_SPAN else "i32"
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind not in allowed:
        raise ValueError(f"adder_acc: {kind} cannot hold sums up to {k} * {span} = {total}")
    return kind


def adder_acc(x_cols: np.ndarray, w: np.ndarray, *, threads: int | None = None, kind: str | None = None) -> np.ndarray:
    """``acc[n, o, p] = sum_k |x[n, k, p] - w[o, k]|`` exactly (int64), in C.

    Parameters
    ----------
    x_cols
        int64 columns ``[N, K, P]`` (or ``[K, P]`` for one image).
    w
        int64 weights ``[O, K]``.
    threads
        Threads to use (default :func:`threads`); the result does not depend on it.
    kind
        Force an element type of :data:`KINDS` (tests); default: the narrowest
        the bound ``K * span`` allows (module docstring).

    Returns
    -------
    numpy.ndarray
        ``[N, O, P]`` (or ``[O, P]``) int64.
    """
    c = np.ascontiguousarray(x_cols, dtype=np.int64)
    wt = np.ascontiguousarray(w, dtype=np.int64)
    single = c.ndim == 2
    if single:
        c = c[None]
    if wt.ndim != 2 or c.ndim != 3 or c.shape[1] != wt.shape[1]:
        raise ValueError(f"cols [..., K, P] and w [O, K] do not match: {c.shape} and {wt.shape}")
    n, k, p = c.shape
    o = wt.shape[0]
    nthreads = _threads(threads)
    out = np.zeros((n, o, p), dtype=np.int64)
    if out.size == 0 or k == 0:
        return out[0] if single else out
    xlo, xhi = _minmax(c, nthreads)
    chosen, base, span, kc, dt = _plan(k, xlo, xhi, wt, kind)
    packed, ld = _rows(chosen, k, n * p)
    getattr(library(), "golden_pack_" + chosen)(_ptr(c), _ptr(packed), n, k, p, base, ld, nthreads)
    _run_adder(chosen, packed, ld, wt, base, kc, out, nthreads)
    return out[0] if single else out


def _plan(k: int, xlo: int, xhi: int, wt: np.ndarray, kind: str | None):
    """Element type, offset ``base``, ``span``, int16 chunk ``kc`` and dtype for codes in ``[xlo, xhi]``."""
    base = min(xlo, int(wt.min()))
    span = max(xhi, int(wt.max())) - base
    chosen = choose_kind(k, span, kind)
    kc = k if chosen != "i16" or span == 0 else max(1, 32767 // span)
    return chosen, base, span, kc, _DTYPES[chosen]


def _rows(kind: str, k: int, l: int) -> tuple[np.ndarray, int]:
    """Room for the kernels' ``k`` rows of ``l`` columns, and the row stride ``ld`` (``golden.c``).

    ``ld`` is ``l`` rounded up to the kernel's tile width, plus one tile when
    a row would span a multiple of 2 KiB (rows that far apart share L1 cache
    sets, and a tile reads the same columns of every row).
    """
    mr = getattr(library(), "golden_tile_width_" + kind)()
    size = np.dtype(_DTYPES[kind]).itemsize
    ld = -(-l // mr) * mr
    if (ld * size) % 2048 == 0:
        ld += mr
    return _scratch(_DTYPES[kind], k * ld), ld


_SCRATCH = threading.local()
#: Largest scratch buffer kept between calls (bytes); larger ones are allocated each time.
SCRATCH_MAX_BYTES = 256 << 20


def _scratch(dtype, n: int) -> np.ndarray:
    """``n`` elements of a per-thread buffer kept between calls (its contents are garbage).

    A fresh buffer of tens of MB costs a page fault per 4 KiB on first touch,
    about as long as the kernels' work on it; the packed columns never leave
    this module, so one buffer per thread and dtype (up to
    :data:`SCRATCH_MAX_BYTES`) is reused.
    """
    cache = _SCRATCH.__dict__.setdefault("buffers", {})
    key = np.dtype(dtype).str
    buf = cache.get(key)
    if buf is None or buf.size < n:
        buf = np.empty(n, dtype=dtype)
        if buf.nbytes <= SCRATCH_MAX_BYTES:
            cache[key] = buf
    return buf[:n]


def _run_adder(kind: str, packed: np.ndarray, ld: int, wt: np.ndarray, base: int, kc: int, out: np.ndarray,
               nthreads: int, rq=None) -> None:
    n, o, p = out.shape
    k = wt.shape[1]
    ws = np.ascontiguousarray(wt - base, dtype=packed.dtype)
    if rq is None:
        getattr(library(), "golden_adder_" + kind)(_ptr(packed), _ptr(ws), _ptr(out), k, n * p, ld, o, p, kc,
                                                   nthreads)
        return
    m, nn, shift, lo, hi = rq
    getattr(library(), "golden_adder_rq_" + kind)(_ptr(packed), _ptr(ws), _ptr(out), k, n * p, ld, o, p, kc, _ptr(m),
                                                  _ptr(nn), shift, lo, hi, nthreads)


def _geometry(x: np.ndarray, kernel, stride: int, padding: int):
    n, c, h, w = x.shape
    kh, kw = kernel
    oh, ow = conv_out_size(h, kh, stride, padding), conv_out_size(w, kw, stride, padding)
    return (ctypes.c_int64 * 10)(c, h, w, kh, kw, stride, stride, padding, padding, ow), c * kh * kw, oh * ow


def conv_adder_requant(x: np.ndarray, w: np.ndarray, kernel: tuple[int, int], stride: int, padding: int,
                       pad_value: int, m, n, shift: int, lo: int, hi: int, *,
                       threads: int | None = None) -> np.ndarray | None:
    """``requant_fixed(conv_adder_acc(x, w, ...), m, n, shift, lo, hi)`` with the requant fused into the kernel.

    Every sum is re-quantised as it leaves the tile (no int64 sums written and
    read again), the same integers as the two steps.  Used only where the
    numpy path's overflow test cannot fire: ``K*span*max|m| + max|n| < 2**62``
    for the proven sum bound ``K*span`` (module docstring), which is at least
    the largest sum.  Returns ``None`` when that bound, the shapes of ``m``
    and ``n`` or ``shift`` (``0..63``) do not allow it: the caller runs the two steps.
    """
    return conv_adder_acc(x, w, kernel, stride, padding, pad_value, threads=threads, requant=(m, n, shift, lo, hi))


def _fused_params(requant, k: int, span: int, o: int):
    """``(m [o], n [o], shift, lo, hi)`` for ``golden_adder_rq``, or None when it must not be fused."""
    m, n, shift, lo, hi = requant
    mv, nv = np.asarray(m, dtype=np.int64), np.asarray(n, dtype=np.int64)
    if not (0 <= int(shift) <= 63) or not _fits_i64(lo, hi):
        return None
    if (mv.size != 1 or nv.size != 1) and o == 1:
        return None
    mc, nc = _channel_params(mv, o), _channel_params(nv, o)
    if mc is None or nc is None or mv.size == 0 or nv.size == 0:
        return None
    if k * span * int(np.abs(mv).max()) + int(np.abs(nv).max()) >= 1 << 62:
        return None
    return mc, nc, int(shift), int(lo), int(hi)


def conv_adder_acc(x: np.ndarray, w: np.ndarray, kernel: tuple[int, int], stride: int, padding: int,
                   pad_value: int, *, threads: int | None = None, kind: str | None = None,
                   requant=None) -> np.ndarray | None:
    """``adder_acc(im2col_batch(x, kernel, stride, padding, pad_value), w)`` without the int64 columns.

    ``x`` is ``[N, C, H, W]`` int64 codes, ``w`` ``[O, C*kh*kw]``; returns
    ``[N, O, OH*OW]`` int64.  The bound of :func:`adder_acc` is taken over
    the whole input (and ``pad_value`` when ``padding > 0``), a superset of
    the columns' values, so the choice of element type stays safe; the
    columns are written once, straight into the kernel's element type.
    """
    x = np.ascontiguousarray(x, dtype=np.int64)
    wt = np.ascontiguousarray(w, dtype=np.int64)
    if x.ndim != 4:
        raise ValueError(f"conv_adder_acc needs [N, C, H, W], not shape {x.shape}")
    n = x.shape[0]
    geom, k, p = _geometry(x, kernel, stride, padding)
    if wt.ndim != 2 or wt.shape[1] != k:
        raise ValueError(f"w must be [O, {k}] for {x.shape[1]} channels and kernel {tuple(kernel)}, not {wt.shape}")
    nthreads = _threads(threads)
    if n * wt.shape[0] * p == 0:
        return np.zeros((n, wt.shape[0], p), dtype=np.int64)
    out = np.empty((n, wt.shape[0], p), dtype=np.int64)  # the kernel writes every entry
    xlo, xhi = _minmax(x, nthreads)
    if padding:
        xlo, xhi = min(xlo, int(pad_value)), max(xhi, int(pad_value))
    chosen, base, span, kc, dt = _plan(k, xlo, xhi, wt, kind)
    rq = None
    if requant is not None:
        rq = _fused_params(requant, k, span, wt.shape[0])
        if rq is None:
            return None
    packed, ld = _rows(chosen, k, n * p)
    lib = library()
    if tuple(kernel) == (1, 1) and stride == 1 and padding == 0:  # x [N, C, H*W] is its own im2col
        getattr(lib, "golden_pack_" + chosen)(_ptr(x), _ptr(packed), n, k, p, base, ld, nthreads)
    elif getattr(lib, "golden_im2col_" + chosen)(_ptr(x), _ptr(packed), n, geom, p, int(pad_value), base, ld, p,
                                                 ld - n * p, nthreads) != 0:
        raise MemoryError("golden_im2col: out of memory")
    _run_adder(chosen, packed, ld, wt, base, kc, out, nthreads, rq)
    return out


def im2col_batch(x: np.ndarray, kernel: tuple[int, int], stride: int, padding: int, pad_value: int, *,
                 threads: int | None = None) -> np.ndarray:
    """``[N, C, H, W]`` int64 codes -> ``[N, K, P]`` int64 columns, ``pad_value`` around (in C).

    ``k = c*kh*kw + i*kw + j``; ``p = oy*OW + ox``;
    ``OH = (H + 2*padding - kh) // stride + 1`` (as :func:`quant.intmodel.golden.im2col_batch`,
    which validates the arguments).
    """
    x = np.ascontiguousarray(x, dtype=np.int64)
    n = x.shape[0]
    geom, k, p = _geometry(x, kernel, stride, padding)
    cols = np.empty((n, k, p), dtype=np.int64)
    if cols.size and library().golden_im2col_i64(_ptr(x), _ptr(cols), n, geom, p, int(pad_value), 0, p, k * p, 0,
                                                 _threads(threads)) != 0:
        raise MemoryError("golden_im2col: out of memory")
    return cols


def max_pool(x: np.ndarray, kernel: tuple[int, int], stride: int, padding: int, *,
             threads: int | None = None) -> np.ndarray:
    """``out[n, c, oy, ox] = max_{i,j} x[n, c, oy*stride - padding + i, ox*stride - padding + j]`` (in C).

    Over the window entries inside the image (padding never wins); ``x`` is
    ``[N, C, H, W]`` int64, the output ``[N, C, OH, OW]`` int64.
    """
    x = np.ascontiguousarray(x, dtype=np.int64)
    n, c, h, w = x.shape
    kh, kw = kernel
    oh, ow = conv_out_size(h, kh, stride, padding), conv_out_size(w, kw, stride, padding)
    out = np.empty((n, c, oh, ow), dtype=np.int64)
    if out.size:
        library().golden_maxpool_i64(_ptr(x), _ptr(out), n * c, h, w, kh, kw, stride, padding, oh, ow,
                                     _threads(threads))
    return out


def _channel_params(v, o: int) -> np.ndarray | None:
    """``v`` as ``[o]`` contiguous int64 (one value repeated for a scalar), or None if it has another size."""
    a = np.asarray(v, dtype=np.int64).ravel()
    if a.size == 1:
        return np.full(o, a[0], dtype=np.int64)
    return np.ascontiguousarray(a) if a.size == o else None


def _rows_of(acc: np.ndarray, per_channel: bool) -> tuple[int, int, int] | None:
    """``(rows, P, O)`` of ``acc [..., O, P]`` read as rows of P values, row r of channel r % O."""
    if not per_channel:
        p = acc.shape[-1]
        return (acc.size // p if p else 0), p, 1
    if acc.ndim < 2:
        return None
    o, p = acc.shape[-2], acc.shape[-1]
    return (acc.size // p if p else 0), p, o


def requant_fixed(acc, m, n, shift: int, lo: int, hi: int, *, threads: int | None = None,
                  inplace: bool = False) -> np.ndarray | None:
    """:func:`quant.base.intops.requant_fixed` in C: ``clamp((m*acc + n) >> shift, lo, hi)``, int64.

    ``acc`` is ``[..., O, P]`` with ``m``, ``n`` of ``O`` values or one value
    each.  Raises the same :class:`AssertionError` as the numpy path when
    ``max|acc| * max|m| + max|n| >= 2**62``; returns ``None`` for a layout
    the kernel does not cover (other sizes of ``m``/``n`` that numpy would
    broadcast, ``shift`` outside ``0..63``, bounds outside int64).
    ``inplace=True`` writes the codes over ``acc`` when it is a contiguous
    int64 array (a temporary of the caller's: no second buffer to fault in).
    """
    a = np.asarray(acc, dtype=np.int64)
    if a.ndim == 0:  # numpy returns a scalar
        return None
    a = np.ascontiguousarray(a)
    mv, nv = np.asarray(m, dtype=np.int64), np.asarray(n, dtype=np.int64)
    per_channel = mv.size != 1 or nv.size != 1
    shape = _rows_of(a, per_channel)
    if shape is None or not (0 <= int(shift) <= 63) or not _fits_i64(lo, hi):
        return None
    rows, p, o = shape
    if per_channel and o == 1:
        return None  # [O, 1] against [..., 1, P]: numpy broadcasts to O channels
    mc, nc = _channel_params(mv, o), _channel_params(nv, o)
    if mc is None or nc is None:
        return None
    out = a if inplace and a is acc else np.empty(a.shape, dtype=np.int64)
    if a.size == 0:
        return out
    amax = np.empty(1, dtype=np.int64)
    if library().golden_requant_fixed_i64(_ptr(a), _ptr(out), rows, p, o, _ptr(mc), _ptr(nc), int(shift), int(lo),
                                          int(hi), _ptr(amax), _threads(threads)) != 0:
        raise MemoryError("golden_requant_fixed: out of memory")
    bound = int(amax[0]) * int(np.abs(mv).max()) + int(np.abs(nv).max())
    assert bound < (1 << 62), f"fixed-point requant would overflow int64 (|m*acc+n| up to {bound})"
    return out


def requant_add(a, b, m, n, shift: int, lo: int, hi: int, *, threads: int | None = None) -> np.ndarray | None:
    """:func:`quant.base.intops.requant_add` in C: ``clamp((m[0]*a + m[1]*b + n) >> shift, lo, hi)``, int64.

    ``None`` when the numpy path should answer (its errors, ``shift`` outside ``0..63``).
    """
    aa, bb = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if aa.ndim == 0:  # numpy returns a scalar
        return None
    aa, bb = np.ascontiguousarray(aa), np.ascontiguousarray(bb)
    mv = np.asarray(m, dtype=np.int64).ravel()
    nv = np.asarray(n, dtype=np.int64).ravel()
    if aa.shape != bb.shape or mv.size != 2 or nv.size < 1 or not (0 <= int(shift) <= 63) or not _fits_i64(lo, hi):
        return None
    out = np.empty(aa.shape, dtype=np.int64)
    if aa.size and library().golden_requant_add_i64(_ptr(aa), _ptr(bb), _ptr(out), aa.size, int(mv[0]), int(mv[1]),
                                                    int(nv[0]), int(shift), int(lo), int(hi),
                                                    _threads(threads)) != 0:
        raise MemoryError("golden_requant_add: out of memory")
    return out


def requant_threshold(acc, thr, neg, bits: int, *, threads: int | None = None) -> np.ndarray | None:
    """:func:`quant.base.intops.requant_threshold` in C: ``cnt = #{t: acc >= thr[o, t]}``, ``q = neg ? 2**bits-1-cnt : cnt``.

    A binary search per value, which counts like numpy's ``searchsorted`` only
    on non-decreasing rows: ``None`` (numpy answers) for rows that are not,
    and for shapes numpy refuses.
    """
    a = np.ascontiguousarray(acc, dtype=np.int64)
    th = np.ascontiguousarray(thr, dtype=np.int64)
    ng = np.asarray(neg, dtype=np.int64).ravel()
    qmax = (1 << int(bits)) - 1
    if (th.ndim != 2 or th.shape[1] != qmax or a.ndim < 2 or a.shape[-2] != th.shape[0] or ng.size != th.shape[0]
            or not bool(np.all((ng == 0) | (ng == 1)))
            or (th.size and not bool(np.all(th[:, 1:] >= th[:, :-1])))):
        return None
    rows, p, o = _rows_of(a, True)
    out = np.empty(a.shape, dtype=np.int64)
    ng = np.ascontiguousarray(ng)
    if a.size and library().golden_requant_threshold_i64(_ptr(a), _ptr(out), rows, p, o, _ptr(th), _ptr(ng), qmax,
                                                         qmax, _threads(threads)) != 0:
        raise MemoryError("golden_requant_threshold: out of memory")
    return out


def _fits_i64(*vals) -> bool:
    return all(-(1 << 63) <= int(v) < (1 << 63) for v in vals)
