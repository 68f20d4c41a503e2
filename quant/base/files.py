"""Files on the ground floor: atomic writes, staged output folders, digests, tool versions.

Standard library only, so every package (``rtl`` included, DESIGN §1) may
import it.  This module is the one place where adderhw

* writes a file atomically (:func:`atomic_write_bytes`, :func:`atomic_write_text`:
  a temporary file in the same folder, then ``os.replace``);
* builds an output folder atomically (:func:`staged_dir`: a temporary
  sibling folder ``.<name>.tmp.<pid>.*`` renamed into place on success and
  removed on failure; :func:`commit_dir` does the swap), and decides whether
  an existing folder may be replaced (:func:`check_output_dir`): only when it
  is empty or holds the marker :data:`MARKER` of the same command, and never
  when it contains one of the command's inputs;
* hashes files (:func:`sha256_file`, :func:`sha256_tree`);
* looks up the versions of installed distributions (:func:`dist_version`,
  :func:`dist_versions`).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Iterator

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "staged_dir",
    "check_output_dir",
    "check_not_input",
    "clean_stale",
    "OutputBusy",
    "check_parent_folders",
    "MARKER",
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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:_NAME_KEEP]}.", dir=path.parent)
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


#: Written into every output folder an adderhw command builds: ``{"command": NAME}``.
MARKER = ".adderhw-output"


def check_parent_folders(path, what: str) -> None:
    """Refuse (``NotADirectoryError``) a ``path`` below an existing file: ``WHAT PATH: ABOVE is a file, not a folder``."""
    path = Path(path)
    above = next((p for p in path.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise NotADirectoryError(f"{what} {path}: {above} is a file, not a folder")


def _out_path(out) -> Path:
    if str(out) == "" or Path(out).name in ("", ".", ".."):
        raise ValueError(f"output folder {str(out)!r} must name a folder (not empty, '.' or '..')")
    out = Path(out)
    if out.is_symlink() and not out.exists():
        raise ValueError(f"output folder {out} is a dangling symbolic link (to {os.readlink(out)}): remove it or "
                         "choose another folder")
    check_parent_folders(out, "output folder")
    return out


#: Characters of a name kept in the names of its temporary siblings (a legal 255-byte name plus
#: ``.tmp.<pid>.<random>`` would not be one).
_NAME_KEEP = 64


def _sibling_prefix(name: str, kind: str, pid: int) -> str:
    """``.<name>.<kind>.<pid>.``, ``name`` cut to :data:`_NAME_KEEP` characters."""
    return f".{name[:_NAME_KEEP]}.{kind}.{pid}."


def _marker_command(folder: Path) -> str | None:
    try:
        rec = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return rec.get("command") if isinstance(rec, dict) else None


def check_output_dir(out, *, command: str, inputs=(), force: bool = False) -> Path:
    """Check that the folder ``out`` may be (re)built by ``command``; return it as a Path.

    Refused (``ValueError``, one line): a path that names no folder; an
    existing file; a folder that is, contains or lies inside one of ``inputs``; a
    non-empty folder that is not this command's earlier output (no
    :data:`MARKER` naming ``command``), unless ``force``.
    """
    out = _out_path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder {out} exists and is not a folder")
    check_not_input(out, inputs)
    if out.is_dir() and any(out.iterdir()) and not force:
        have = _marker_command(out)
        if have != command:
            what = f"the output of adderhw {have}" if have else "not the output of an earlier adderhw " + command
            raise ValueError(f"output folder {out} is not empty and is {what}: choose another folder "
                             "(or --force to replace it)")
    return out


def check_not_input(out, inputs) -> None:
    """Refuse (``ValueError``) an output folder ``out`` that is, contains or lies inside one of ``inputs``."""
    real = Path(out).resolve()
    for inp in inputs:
        if inp is None:
            continue
        ri = Path(inp).resolve()
        if ri == real or real in ri.parents:
            raise ValueError(f"output folder {out} contains the input {inp}: choose another output folder")
        if ri in real.parents:
            raise ValueError(f"output folder {out} is inside the input {inp}: choose another output folder")


def clean_stale(out) -> None:
    """Remove the temporary siblings of ``out`` whose processes are gone.

    They are ``.<name>.tmp.<pid>.*`` / ``.<name>.old.<pid>.*``, and the
    staging folders of commands whose ``-o`` was such a folder (a flow step's
    subcommand): ``..<name>.tmp.<pid>.<random>.tmp.<pid2>.*``.  One is removed
    when none of the processes named in it is alive.
    """
    out = Path(out)
    if not out.parent.is_dir():
        return
    pattern = re.compile(r"\.+" + re.escape(out.name[:_NAME_KEEP]) + r"\.(?:tmp|old)\.")
    for p in out.parent.iterdir():
        if not pattern.match(p.name):
            continue
        pids = [int(x) for x in re.findall(r"\.(?:tmp|old)\.(\d+)\.", p.name)]
        if any(_alive(pid) for pid in pids):
            continue
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_staging_dir(out) -> Path:
    """A new empty folder ``.<name>.tmp.<pid>.*`` beside ``out`` (parents created)."""
    out = _out_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_sibling_prefix(out.name, "tmp", os.getpid()), dir=out.parent))
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
        old = Path(tempfile.mkdtemp(prefix=_sibling_prefix(out.name, "old", os.getpid()), dir=out.parent))
        os.replace(out, old / "x")
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class OutputBusy(ValueError):
    """Another live process is building the same output folder."""


def _check_no_other_writer(out: Path, mine: Path) -> None:
    """Refuse (:class:`OutputBusy`) when a live process other than this one stages ``out`` too.

    Checked after this run's staging folder exists, so of two runs started together at least one sees
    the other (both may refuse; neither replaces the other's result unseen)."""
    prefix = f".{Path(out).name[:_NAME_KEEP]}.tmp."
    for p in Path(out).parent.glob(f"{glob.escape(prefix)}*"):
        pid = p.name[len(prefix):].split(".")[0]
        if p != mine and pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            raise OutputBusy(f"output folder {out} is being written by another adderhw run (process {pid}): "
                             "wait for it to finish or choose another folder")


@contextlib.contextmanager
def staged_dir(out, *, command: str | None = None, inputs=(), force: bool = False) -> Iterator[Path]:
    """Build the folder ``out`` atomically.

    Yields an empty temporary sibling folder; when the block finishes, it
    replaces ``out`` (:func:`commit_dir`); when the block raises (or is
    interrupted), it is removed and ``out`` stays as it was::

        with staged_dir(out, command="estimate", inputs=[model_dir]) as tmp:
            (tmp / "report.json").write_text(...)

    With ``command``, ``out`` is first checked by :func:`check_output_dir`
    (before any work is done) and the finished folder carries the
    :data:`MARKER` of ``command``.  Temporary folders of killed runs beside
    ``out`` are removed first (:func:`clean_stale`); a live run of another
    process building ``out`` is refused (:class:`OutputBusy`).
    """
    if command is not None:
        check_output_dir(out, command=command, inputs=inputs, force=force)
    clean_stale(out)
    tmp = make_staging_dir(out)
    try:
        _check_no_other_writer(out, tmp)
        yield tmp
        if command is not None:
            (tmp / MARKER).write_text(json.dumps({"command": command}) + "\n")
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
