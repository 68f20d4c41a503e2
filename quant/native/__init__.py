"""Build and load the C kernels of the float adder layers (``adder.c``).

The kernels are compiled on first use with the system C compiler (``$CC``,
default ``cc``; the Verilator flow needs one anyway) into a per-user cache,
``$ADDERHW_CACHE_DIR/native`` or ``~/.cache/adderhw/native`` (or, when that
cannot be written, ``$TMPDIR/adderhw-native-UID``).  The file name
is a hash of the sources, the compiler's version, the flags and the CPU's
feature flags (the build uses ``-march=native``), so a cache shared between
machines never hands one of them code for another CPU.  Building takes
about half a second; later processes load the cached library.

``ADDERHW_ADDER_BACKEND`` chooses the layers' backend: ``auto`` (default:
native if it builds, else the pure-PyTorch kernels with one warning naming
the reason), ``native`` (an error if it cannot build) or ``torch``.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch

from quant.intops import conv_out_size

__all__ = [
    "BACKENDS", "NativeUnavailable", "backend", "cache_dir", "col2im", "forward", "im2col", "input_grad",
    "library", "supports",
]

BACKENDS = ("auto", "native", "torch")
_SOURCES = ("adder.c", "adder_kernels.h")
_FLAGS = ("-O3", "-fPIC", "-shared", "-pthread", "-std=gnu99")
_ARCH_FLAGS = ("-march=native",)
_SUFFIX = {torch.float32: "_f32", torch.float64: "_f64"}

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_error: str | None = None


class NativeUnavailable(RuntimeError):
    """The C kernels could not be built or loaded (the message says why)."""


def cache_dir() -> Path:
    """Folder of the compiled libraries."""
    root = os.environ.get("ADDERHW_CACHE_DIR")
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "adderhw"
    return base / "native"


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine


def _compiler() -> list[str]:
    cc = shlex.split(os.environ.get("CC", "cc"))
    if not cc or shutil.which(cc[0]) is None:
        raise NativeUnavailable(f"no C compiler: {cc[0] if cc else '$CC'} not found (install gcc, or set CC)")
    return cc


def _build(cc: list[str]) -> Path:
    here = Path(__file__).resolve().parent
    try:
        version = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise NativeUnavailable(f"C compiler {cc[0]} does not run: {exc}") from None
    digest = hashlib.sha256()
    for name in _SOURCES:
        digest.update((here / name).read_bytes())
    for part in (version, " ".join(cc), " ".join(_FLAGS + _ARCH_FLAGS), _cpu_flags()):
        digest.update(part.encode() + b"\0")
    name = f"adder-{digest.hexdigest()[:20]}.so"
    # the user cache, else a per-user folder in the temporary directory (read-only home)
    fallback = Path(tempfile.gettempdir()) / f"adderhw-native-{os.getuid()}"
    for out_dir in (cache_dir(), fallback):
        if (out_dir / name).is_file():
            return out_dir / name
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".adder-", suffix=".so", dir=out_dir)
        except OSError as exc:
            problem = f"cannot write the kernel cache {out_dir}: {exc.strerror}"
            continue
        os.close(fd)
        try:
            return _compile(cc, here, tmp, out_dir / name)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise NativeUnavailable(problem)


def _compile(cc: list[str], here: Path, tmp: str, target: Path) -> Path:
    errors: list[str] = []
    for arch in (_ARCH_FLAGS, ()):  # -march=native is not known to every compiler
        cmd = [*cc, *_FLAGS, *arch, "-o", tmp, str(here / "adder.c"), "-lm"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            raise NativeUnavailable(f"compiling {here / 'adder.c'} failed: {exc}") from None
        if proc.returncode == 0:
            os.replace(tmp, target)  # atomic: concurrent builders write the same bytes
            return target
        errors = proc.stderr.strip().splitlines()
    first = next((line for line in errors if "error" in line), errors[-1] if errors else "no output")
    raise NativeUnavailable(f"compiling {here / 'adder.c'} failed: {first.strip()}")


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
        ptr = ctypes.c_void_p
        i64 = ctypes.c_int64
        for suffix in _SUFFIX.values():
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
        _lib = lib
        return lib


def backend() -> str:
    """The backend the adder layers use now: ``"native"`` or ``"torch"``.

    Reads ``ADDERHW_ADDER_BACKEND`` on every call (tests switch it).
    """
    choice = os.environ.get("ADDERHW_ADDER_BACKEND", "auto").strip().lower() or "auto"
    if choice not in BACKENDS:
        raise ValueError(f"ADDERHW_ADDER_BACKEND must be one of {', '.join(BACKENDS)}, not {choice!r}")
    if choice == "torch":
        return "torch"
    try:
        library()
    except NativeUnavailable as exc:
        if choice == "native":
            raise
        _warn_once(str(exc))
        return "torch"
    return "native"


_warned = False


def _warn_once(reason: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        import warnings

        warnings.warn(f"adder layers use the slower PyTorch kernels: {reason}", RuntimeWarning, stacklevel=3)


def supports(*tensors: torch.Tensor) -> bool:
    """Whether the C kernels take these tensors (CPU, float32/float64, one dtype)."""
    dtype = tensors[0].dtype
    return dtype in _SUFFIX and all(t.device.type == "cpu" and t.dtype == dtype for t in tensors)


def forward(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``Y[p, o, l] = -sum_k |x[p, k, l] - w[o, k]|`` for ``x [P, K, L]``, ``w [O, K]``."""
    x, w = x.contiguous(), w.contiguous()
    p, k, l = x.shape
    o = w.shape[0]
    y = torch.empty((p, o, l), dtype=x.dtype)
    fn = getattr(library(), "adder_forward" + _SUFFIX[x.dtype])
    fn(x.data_ptr(), w.data_ptr(), y.data_ptr(), p, k, l, o, torch.get_num_threads())
    return y


def input_grad(x: torch.Tensor, w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``dX[p, k, l] = sum_o clamp(w[o, k] - x[p, k, l], -1, 1) * g[p, o, l]``."""
    x, w, g = x.contiguous(), w.contiguous(), g.contiguous()
    p, k, l = x.shape
    o = w.shape[0]
    dx = torch.empty_like(x)
    fn = getattr(library(), "adder_input_grad" + _SUFFIX[x.dtype])
    fn(x.data_ptr(), w.data_ptr(), g.data_ptr(), dx.data_ptr(), p, k, l, o, torch.get_num_threads())
    return dx


def _geometry(c, h, w, kernel, stride, padding):
    oh = conv_out_size(h, kernel[0], stride[0], padding[0])
    ow = conv_out_size(w, kernel[1], stride[1], padding[1])
    geom = (ctypes.c_int64 * 10)(c, h, w, *kernel, *stride, *padding, ow)
    return geom, oh, ow


def im2col(x: torch.Tensor, kernel, stride, padding) -> torch.Tensor:
    """``F.unfold(x, kernel, padding=padding, stride=stride)`` for ``x [N, C, H, W]``: ``[N, C*kh*kw, L]``."""
    x = x.contiguous()
    n, c, h, w = x.shape
    geom, oh, ow = _geometry(c, h, w, kernel, stride, padding)
    cols = torch.empty((n, c * kernel[0] * kernel[1], oh * ow), dtype=x.dtype)
    fn = getattr(library(), "adder_im2col" + _SUFFIX[x.dtype])
    fn(x.data_ptr(), cols.data_ptr(), n, geom, oh * ow, torch.get_num_threads())
    return cols


def col2im(cols: torch.Tensor, size, kernel, stride, padding) -> torch.Tensor:
    """``F.fold(cols, size, kernel, padding=padding, stride=stride)``, the adjoint of :func:`im2col`."""
    cols = cols.contiguous()
    n, k, l = cols.shape
    c = k // (kernel[0] * kernel[1])
    geom, oh, ow = _geometry(c, size[0], size[1], kernel, stride, padding)
    if c * kernel[0] * kernel[1] != k or oh * ow != l:
        raise ValueError(f"col2im: columns {tuple(cols.shape)} do not match size {size}, kernel {kernel}")
    img = torch.empty((n, c, size[0], size[1]), dtype=cols.dtype)
    fn = getattr(library(), "adder_col2im" + _SUFFIX[cols.dtype])
    fn(cols.data_ptr(), img.data_ptr(), n, geom, l, torch.get_num_threads())
    return img
