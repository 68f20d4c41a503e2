"""Files on the ground floor: atomic writes, staged output folders, digests, tool versions.

Standard library only, so every package (``rtl`` included, DESIGN §1) may
import it.  This module is the one place where adderhw

* writes a file atomically (:func:`atomic_write_bytes`, :func:`atomic_write_text`:
  a temporary file in the same folder, then ``os.replace``);
* builds an output folder atomically (:func:`staged_dir`: a temporary
  sibling folder ``.<name>.tmp.*`` renamed into place on success and removed
  on failure; :func:`commit_dir` does the swap);
* hashes files (:func:`sha256_file`, :func:`sha256_tree`);
* looks up the versions of installed distributions (:func:`dist_version`,
  :func:`dist_versions`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Iterator

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "staged_dir",
    "make_staging_dir",
    "commit_dir",
    "sha256_file",
    "sha256_tree",
    "dist_version",
    "dist_versions",
    "UNKNOWN_VERSION",
]

#: What :func:`dist_version` returns for a distribution that is not installed.
UNKNOWN_VERSION = "unknown"

_BLOCK = 1 << 20


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, then rename).

    The file gets the usual permissions (``0o666`` less the umask); on any
    failure, including KeyboardInterrupt, the temporary file is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` as UTF-8 with ``\\n`` line ends as written."""
    atomic_write_bytes(path, text.encode("utf-8"))


def make_staging_dir(out) -> Path:
    """A new empty folder ``.<name>.tmp.*`` beside ``out`` (parents created)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp.", dir=out.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def commit_dir(tmp, out) -> None:
    """Move the finished folder ``tmp`` to ``out``, replacing a previous ``out``.

    The previous folder is first renamed aside (``.<name>.old.*``) and removed
    only after the new one is in place, so ``out`` is never half-written.
    """
    tmp, out = Path(tmp), Path(out)
    old = None
    if out.exists():
        if not out.is_dir():
            raise ValueError(f"{out} exists and is not a folder")
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        os.replace(out, old / "x")
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_dir(out) -> Iterator[Path]:
    """Build the folder ``out`` atomically.

    Yields an empty temporary sibling folder; when the block finishes, it
    replaces ``out`` (:func:`commit_dir`); when the block raises (or is
    interrupted), it is removed and ``out`` stays as it was::

        with staged_dir(out) as tmp:
            (tmp / "report.json").write_text(...)
    """
    tmp = make_staging_dir(out)
    try:
        yield tmp
        commit_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def sha256_tree(path, *, skip: tuple = ()) -> str:
    """Hex SHA-256 of a file, or of a folder: every file's relative name and digest, sorted.

    Files whose name is in ``skip`` are left out (e.g. a stamp file that
    records the digest itself).
    """
    path = Path(path)
    if not path.is_dir():
        return sha256_file(path)
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file() and p.name not in skip:
            h.update(str(p.relative_to(path)).encode())
            h.update(sha256_tree(p).encode())
    return h.hexdigest()


def dist_version(name: str, default: str = UNKNOWN_VERSION) -> str:
    """Installed version of the distribution ``name``, or ``default``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return default


def dist_versions(names) -> dict[str, str]:
    """``{name: dist_version(name)}`` for each name, in order."""
    return {n: dist_version(n) for n in names}
