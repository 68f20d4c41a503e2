"""Build, cache and load the C kernels (stdlib + ctypes only: no torch, no numpy).

One machinery for every C library of the package: the float adder layers'
kernels (``adder.c``, loaded by :mod:`quant.net.native`) and the integer golden
model's (``golden.c``, :mod:`quant.intmodel.native`).

A library is compiled on first use with the system C compiler (``$CC``,
default ``cc``) with ``-O3 -march=native`` (retried without ``-march=native``
for compilers that do not know it) into a per-user cache,
``$ADDERHW_CACHE_DIR/native`` or ``~/.cache/adderhw/native`` (or, when that
cannot be written, ``$TMPDIR/adderhw-native-UID``).  The file name is
``<stem>-<hash>.so``, the hash of the sources (the C file and the headers it
includes), the compiler's version, the flags and the CPU's feature flags, so
a cache shared between machines never hands one of them code for another
CPU.  The library is written to a temporary file and renamed into place, so
concurrent builders never see half a library.  Building takes about half a
second; later processes load the cached file.

Every failure (no compiler, a compile error, a cache that cannot be written,
a library that does not load) raises :class:`NativeUnavailable` with the
reason; callers fall back to their pure Python kernels with one warning.
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
from typing import Callable

__all__ = ["FLAGS", "HERE", "Library", "NativeUnavailable", "build", "cache_dir", "compiler", "default_threads"]

#: Folder of the C sources.
HERE = Path(__file__).resolve().parent
#: Flags of every build (``-march=native`` is added first, then dropped if refused).
FLAGS = ("-O3", "-fPIC", "-shared", "-pthread", "-std=gnu99")
_ARCH_FLAGS = ("-march=native",)


class NativeUnavailable(RuntimeError):
    """The C kernels could not be built or loaded (the message says why)."""


def cache_dir() -> Path:
    """Folder of the compiled libraries."""
    root = os.environ.get("ADDERHW_CACHE_DIR")
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "adderhw"
    return base / "native"


def default_threads() -> int:
    """CPUs this process may run on (``os.sched_getaffinity``, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine


def compiler() -> list[str]:
    """The C compiler command (``$CC`` split like a shell, default ``cc``)."""
    cc = shlex.split(os.environ.get("CC", "cc"))
    if not cc or shutil.which(cc[0]) is None:
        raise NativeUnavailable(f"no C compiler: {cc[0] if cc else '$CC'} not found (install gcc, or set CC)")
    return cc


def build(cc: list[str], source: str, headers: tuple[str, ...] = (), *, stem: str | None = None) -> Path:
    """Compile ``HERE/source`` (which includes ``headers``) with ``cc``; the cached library's path.

    Reuses ``<stem>-<hash>.so`` from the cache when it exists; ``stem``
    defaults to the source's name without ``.c``.
    """
    stem = stem or Path(source).stem
    try:
        version = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise NativeUnavailable(f"C compiler {cc[0]} does not run: {exc}") from None
    digest = hashlib.sha256()
    for name in (source, *headers):
        digest.update((HERE / name).read_bytes())
    for part in (version, " ".join(cc), " ".join(FLAGS + _ARCH_FLAGS), _cpu_flags()):
        digest.update(part.encode() + b"\0")
    name = f"{stem}-{digest.hexdigest()[:20]}.so"
    # the user cache, else a per-user folder in the temporary directory (read-only home)
    fallback = Path(tempfile.gettempdir()) / f"adderhw-native-{os.getuid()}"
    problem = "no cache folder"
    for out_dir in (cache_dir(), fallback):
        if (out_dir / name).is_file():
            return out_dir / name
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{stem}-", suffix=".so", dir=out_dir)
        except OSError as exc:
            problem = f"cannot write the kernel cache {out_dir}: {exc.strerror}"
            continue
        os.close(fd)
        try:
            return _compile(cc, HERE / source, tmp, out_dir / name)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise NativeUnavailable(problem)


def _compile(cc: list[str], source: Path, tmp: str, target: Path) -> Path:
    errors: list[str] = []
    for arch in (_ARCH_FLAGS, ()):  # -march=native is not known to every compiler
        cmd = [*cc, *FLAGS, *arch, "-o", tmp, str(source), "-lm"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            raise NativeUnavailable(f"compiling {source} failed: {exc}") from None
        if proc.returncode == 0:
            os.replace(tmp, target)  # atomic: concurrent builders write the same bytes
            return target
        errors = proc.stderr.strip().splitlines()
    first = next((line for line in errors if "error" in line), errors[-1] if errors else "no output")
    raise NativeUnavailable(f"compiling {source} failed: {first.strip()}")


class Library:
    """A C library built and loaded on first use, then kept (thread safe).

    Parameters
    ----------
    source, headers
        The C file under :data:`HERE` and the headers it includes (all hashed).
    declare
        ``declare(lib)`` sets the ``argtypes``/``restype`` of its functions.
    what
        How failure messages name the library (``"the golden kernels"``).

    A failure is remembered: later calls raise the same
    :class:`NativeUnavailable` without trying again.
    """

    def __init__(self, source: str, headers: tuple[str, ...], declare: Callable[[ctypes.CDLL], None], *,
                 what: str) -> None:
        self.source, self.headers, self.declare, self.what = source, tuple(headers), declare, what
        self._lock = threading.Lock()
        self._lib: ctypes.CDLL | None = None
        self._error: str | None = None

    def build(self, cc: list[str] | None = None) -> Path:
        """Compile (or find in the cache) the library; its path."""
        return build(compiler() if cc is None else cc, self.source, self.headers)

    def load(self) -> ctypes.CDLL:
        """The loaded library (built on first call); raises :class:`NativeUnavailable`."""
        with self._lock:
            if self._lib is not None:
                return self._lib
            if self._error is not None:
                raise NativeUnavailable(self._error)
            try:
                lib = ctypes.CDLL(str(self.build()))
                self.declare(lib)
            except NativeUnavailable as exc:
                self._error = str(exc)
                raise
            except (OSError, AttributeError) as exc:
                self._error = f"cannot load {self.what}: {exc}"
                raise NativeUnavailable(self._error) from None
            self._lib = lib
            return lib

    def reset(self, error: str | None = None) -> None:
        """Forget the loaded library (or set a remembered failure, for tests)."""
        with self._lock:
            self._lib, self._error = None, error
