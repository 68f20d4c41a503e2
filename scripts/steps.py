"""Cached, atomic pipeline steps for ``adderhw flow``.

A :class:`Step` runs a command that writes one output folder.  The step's
*key* hashes everything its result depends on (the command line, the bytes of
its input files, the adderhw version); the key is stored in
``<out>/.step.json`` after the step succeeds.  A re-run with the same key
reuses the folder; any change reruns the step.

Each step writes into a temporary sibling folder and renames it into place
only on success, so a failing step leaves the outputs of the finished steps
intact and never a half-written folder of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["Step", "StepResult", "file_digest", "run_step"]

STAMP = ".step.json"


def file_digest(path: Path) -> str:
    """sha256 of a file, or of every file under a folder (names and bytes)."""
    h = hashlib.sha256()
    path = Path(path)
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file() and p.name != STAMP:
                h.update(str(p.relative_to(path)).encode())
                h.update(file_digest(p).encode())
        return h.hexdigest()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Step:
    """One step of the flow.

    Parameters
    ----------
    name : str
        Shown in progress lines and errors.
    out : Path
        The folder the step produces.
    run : callable
        ``run(tmp_out) -> None``; writes the step's results into ``tmp_out``
        and raises on failure.
    params : sequence of str
        Everything besides input files the result depends on (e.g. argv).
    inputs : sequence of Path
        Files or folders whose bytes the result depends on.
    """

    name: str
    out: Path
    run: Callable[[Path], None]
    params: Sequence[str] = ()
    inputs: Sequence[Path] = field(default_factory=tuple)

    def key(self, version: str) -> str:
        h = hashlib.sha256()
        h.update(version.encode())
        h.update(json.dumps([self.name, list(self.params)]).encode())
        for p in self.inputs:
            h.update(str(p).encode())
            h.update(file_digest(Path(p)).encode())
        return h.hexdigest()


@dataclass(frozen=True)
class StepResult:
    name: str
    out: Path
    reused: bool
    seconds: float


def run_step(step: Step, version: str) -> StepResult:
    """Run ``step`` unless its output folder already holds a result for the same key."""
    key = step.key(version)
    stamp = step.out / STAMP
    if stamp.exists():
        try:
            if json.loads(stamp.read_text()).get("key") == key:
                return StepResult(step.name, step.out, True, 0.0)
        except (OSError, ValueError):
            pass
    tmp = step.out.with_name(f".{step.out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    try:
        step.run(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.perf_counter() - t0
    (tmp / STAMP).write_text(json.dumps({"key": key, "step": step.name, "seconds": seconds}))
    if step.out.exists():
        old = step.out.with_name(f".{step.out.name}.old-{os.getpid()}")
        step.out.rename(old)
        tmp.rename(step.out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(step.out)
    return StepResult(step.name, step.out, False, seconds)
