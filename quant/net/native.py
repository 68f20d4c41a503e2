"""The C kernels of the float adder layers (``adder.c``), and the backend choice.

The kernels are built and cached by :mod:`quant.base.native.build` (one machinery
for every C library of the package: ``$CC``, default ``cc``, with
``-O3 -march=native``, into ``$ADDERHW_CACHE_DIR/native`` or
``~/.cache/adderhw/native``, the file named by a hash of the sources, the
compiler's version, the flags and the CPU's feature flags).  Building takes
about half a second; later processes load the cached library.

``ADDERHW_ADDER_BACKEND`` chooses the layers' backend: ``auto`` (default:
native if it builds, else the pure-PyTorch kernels with one warning naming
the reason), ``native`` (an error if it cannot build) or ``torch``.

This package imports torch only inside the functions that take tensors, so
:mod:`quant.base.native.build` and :mod:`quant.intmodel.native` (the integer golden
model's kernels) stay importable without torch.
"""

from __future__ import annotations

import ctypes
import enum
import os
import tempfile  # noqa: F401  (the build's fallback folder; tests patch native.tempfile.tempdir)
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from quant.base.intops import conv_out_size
from quant.base.native.build import NativeUnavailable, cache_dir, compiler
from quant.base.native.build import build as _build_library  # not `build`: that name is the submodule

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "AdderBackend", "BACKENDS", "NativeUnavailable", "backend", "cache_dir", "col2im", "forward", "im2col", "input_grad",
    "library", "supports",
]

class AdderBackend(enum.StrEnum):
    """Kernels of the adder layers (``ADDERHW_ADDER_BACKEND``): ``AUTO`` is C where it builds, else PyTorch."""

    AUTO = "auto"
    NATIVE = "native"
    TORCH = "torch"


#: The values ``ADDERHW_ADDER_BACKEND`` takes.
BACKENDS = tuple(AdderBackend)
_SOURCE = "adder.c"
_HEADERS = ("adder_kernels.h", "pool.h")
_SUFFIXES = {"float32": "_f32", "float64": "_f64"}

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_error: str | None = None


def _compiler() -> list[str]:
    return compiler()


def _build(cc: list[str]) -> Path:
    return _build_library(cc, _SOURCE, _HEADERS)


def _declare(lib: ctypes.CDLL) -> None:
    ptr = ctypes.c_void_p
    i64 = ctypes.c_int64
    for suffix in _SUFFIXES.values():
        fwd = getattr(lib, "adder_forward" + suffix)
        fwd.argtypes = [ptr, ptr, ptr, i64, i64, i64, i64, ctypes.c_int]
        fwd.restype = ctypes.c_int
        bwd = getattr(lib, "adder_input_grad" + suffix)
        bwd.argtypes = [ptr, ptr, ptr, ptr, i64, i64, i64, i64, ctypes.c_int]
        bwd.restype = ctypes.c_int
        for name in ("adder_im2col", "adder_col2im"):
            fn = getattr(lib, name + suffix)
            fn.argtypes = [ptr, ptr, i64, ptr, i64, ctypes.c_int]
            fn.restype = ctypes.c_int


def library() -> ctypes.CDLL:
    """The loaded kernel library (built on first call); raises :class:`NativeUnavailable`."""
    global _lib, _error
    with _lock:
        if _lib is not None:
            return _lib
        if _error is not None:
            raise NativeUnavailable(_error)
        try:
            path = _build(_compiler())
            lib = ctypes.CDLL(str(path))
        except NativeUnavailable as exc:
            _error = str(exc)
            raise
        except OSError as exc:
            _error = f"cannot load the adder kernels: {exc}"
            raise NativeUnavailable(_error) from None
        _declare(lib)
        _lib = lib
        return lib


def backend() -> AdderBackend:
    """The backend the adder layers use now: :attr:`AdderBackend.NATIVE` or :attr:`AdderBackend.TORCH`.

    Reads ``ADDERHW_ADDER_BACKEND`` on every call (tests switch it).
    """
    choice = os.environ.get("ADDERHW_ADDER_BACKEND", "auto").strip().lower() or "auto"
    if choice not in BACKENDS:
        raise ValueError(f"ADDERHW_ADDER_BACKEND must be one of {', '.join(BACKENDS)}, not {choice!r}")
    if choice == AdderBackend.TORCH:
        return AdderBackend.TORCH
    try:
        library()
    except NativeUnavailable as exc:
        if choice == AdderBackend.NATIVE:
            raise
        _warn_once(str(exc))
        return AdderBackend.TORCH
    return AdderBackend.NATIVE


_warned = False


def _warn_once(reason: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        import warnings

        warnings.warn(f"adder layers use the slower PyTorch kernels: {reason}", RuntimeWarning, stacklevel=3)


def _suffix(dtype) -> str | None:
    return _SUFFIXES.get(str(dtype).removeprefix("torch."))


def supports(*tensors: torch.Tensor) -> bool:
    """Whether the C kernels take these tensors (CPU, float32/float64, one dtype)."""
    dtype = tensors[0].dtype
    return _suffix(dtype) is not None and all(t.device.type == "cpu" and t.dtype == dtype for t in tensors)


def forward(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``Y[p, o, l] = -sum_k |x[p, k, l] - w[o, k]|`` for ``x [P, K, L]``, ``w [O, K]``."""
    import torch

    x, w = x.contiguous(), w.contiguous()
    p, k, l = x.shape
    o = w.shape[0]
    y = torch.empty((p, o, l), dtype=x.dtype)
    fn = getattr(library(), "adder_forward" + _suffix(x.dtype))
    fn(x.data_ptr(), w.data_ptr(), y.data_ptr(), p, k, l, o, torch.get_num_threads())
    return y


def input_grad(x: torch.Tensor, w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``dX[p, k, l] = sum_o clamp(w[o, k] - x[p, k, l], -1, 1) * g[p, o, l]``."""
    import torch

    x, w, g = x.contiguous(), w.contiguous(), g.contiguous()
    p, k, l = x.shape
    o = w.shape[0]
    dx = torch.empty_like(x)
    fn = getattr(library(), "adder_input_grad" + _suffix(x.dtype))
    fn(x.data_ptr(), w.data_ptr(), g.data_ptr(), dx.data_ptr(), p, k, l, o, torch.get_num_threads())
    return dx


def _geometry(c, h, w, kernel, stride, padding):
    oh = conv_out_size(h, kernel[0], stride[0], padding[0])
    ow = conv_out_size(w, kernel[1], stride[1], padding[1])
    geom = (ctypes.c_int64 * 10)(c, h, w, *kernel, *stride, *padding, ow)
    return geom, oh, ow


def im2col(x: torch.Tensor, kernel, stride, padding) -> torch.Tensor:
    """``F.unfold(x, kernel, padding=padding, stride=stride)`` for ``x [N, C, H, W]``: ``[N, C*kh*kw, L]``."""
    import torch

    x = x.contiguous()
    n, c, h, w = x.shape
    geom, oh, ow = _geometry(c, h, w, kernel, stride, padding)
    cols = torch.empty((n, c * kernel[0] * kernel[1], oh * ow), dtype=x.dtype)
    fn = getattr(library(), "adder_im2col" + _suffix(x.dtype))
    fn(x.data_ptr(), cols.data_ptr(), n, geom, oh * ow, torch.get_num_threads())
    return cols


def col2im(cols: torch.Tensor, size, kernel, stride, padding) -> torch.Tensor:
    """``F.fold(cols, size, kernel, padding=padding, stride=stride)``, the adjoint of :func:`im2col`."""
    import torch

    cols = cols.contiguous()
    n, k, l = cols.shape
    c = k // (kernel[0] * kernel[1])
    geom, oh, ow = _geometry(c, size[0], size[1], kernel, stride, padding)
    if c * kernel[0] * kernel[1] != k or oh * ow != l:
        raise ValueError(f"col2im: columns {tuple(cols.shape)} do not match size {size}, kernel {kernel}")
    img = torch.empty((n, c, size[0], size[1]), dtype=cols.dtype)
    fn = getattr(library(), "adder_col2im" + _suffix(cols.dtype))
    fn(cols.data_ptr(), img.data_ptr(), n, geom, l, torch.get_num_threads())
    return img
