"""Cached, atomic pipeline steps for ``adderhw flow``.

A :class:`Step` writes one output folder, either by running ``adderhw``
command lines (``argv``: the placeholder :data:`OUT` stands for the folder
being built) or by a Python callable.  The step's *key* hashes what the result
depends on: the command lines it runs (or, for a callable, its ``params``),
the bytes of its input files and the adderhw version.  After the step
succeeds, ``<out>/.step.json`` records the key **and a digest of the outputs**.

A re-run reuses the folder only when the key is the same *and* the outputs
still have their recorded digest; a hand-edited or corrupted output is
reported in one line and the step runs again.

Each step writes into a temporary sibling folder (:func:`quant.base.files.staged_dir`)
renamed into place only on success, so a failing or interrupted step leaves
the finished steps' folders intact and never a half-written folder of its
own; temporary folders left by a killed run are removed by the next one.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from quant.base.files import clean_stale, sha256_tree, staged_dir

__all__ = ["Step", "StepResult", "OUT", "STAMP", "run_step", "outputs_digest"]

STAMP = ".step.json"

#: Placeholder for the step's output folder in :attr:`Step.argv`.
OUT = "{out}"


def outputs_digest(folder: Path) -> str:
    """SHA-256 over every file of ``folder`` except the stamp."""
    return sha256_tree(folder, skip=(STAMP,))


@dataclass(frozen=True)
class Step:
    """One step of the flow.

    Parameters
    ----------
    name : str
        Shown in progress lines and errors.
    out : Path
        The folder the step produces.
    argv : callable or None
        ``argv() -> list of command lines`` (each a list of strings, in which
        :data:`OUT` stands for the output folder); called when the step is about to
        run, so it may read the outputs of earlier steps.  The command lines
        are the step's key.
    execute : callable
        ``execute(argv_list, tmp_out) -> None`` runs the command lines
        (required with ``argv``), or with ``argv=None`` ``execute(None, tmp_out)``
        does the whole step.
    params : sequence of str
        With ``argv=None``: what the callable's result depends on besides the inputs.
    inputs : sequence of Path
        Files or folders whose bytes the result depends on.
    """

    name: str
    out: Path
    execute: Callable[[list | None, Path], None]
    argv: Callable[[], list] | None = None
    params: Sequence[str] = ()
    inputs: Sequence[Path] = ()

    def commands(self) -> list | None:
        return None if self.argv is None else [list(map(str, a)) for a in self.argv()]

    def key(self, version: str, commands: list | None = None) -> str:
        h = hashlib.sha256()
        h.update(version.encode())
        what = commands if self.argv is not None else list(self.params)
        h.update(json.dumps([self.name, what]).encode())
        for p in self.inputs:
            h.update(str(p).encode())
            h.update(sha256_tree(Path(p)).encode())
        return h.hexdigest()


@dataclass(frozen=True)
class StepResult:
    name: str
    out: Path
    reused: bool
    seconds: float
    #: Why a step with an existing result ran again ("" when it did not exist or was reused).
    rerun_reason: str = ""


def _stamp_state(step: Step, key: str) -> tuple[bool, str]:
    """``(reusable, reason)`` for the folder ``step.out`` and the key ``key``."""
    stamp = step.out / STAMP
    if not stamp.exists():
        return False, ""
    try:
        rec = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False, "its stamp is unreadable"
    if not isinstance(rec, dict) or rec.get("key") != key:
        return False, ""
    if rec.get("outputs") != outputs_digest(step.out):
        return False, "its outputs changed since they were made (edited or corrupt)"
    return True, ""


def run_step(step: Step, version: str) -> StepResult:
    """Run ``step`` unless its output folder already holds an intact result for the same key."""
    clean_stale(step.out)
    commands = step.commands()
    key = step.key(version, commands)
    reusable, reason = _stamp_state(step, key)
    if reusable:
        return StepResult(step.name, step.out, True, 0.0)
    t0 = time.perf_counter()
    with staged_dir(step.out) as tmp:
        if commands is not None:
            commands = [[a.replace(OUT, str(tmp)) for a in cmd] for cmd in commands]
        step.execute(commands, tmp)
        seconds = time.perf_counter() - t0
        (tmp / STAMP).write_text(json.dumps({
            "key": key, "step": step.name, "seconds": seconds, "outputs": outputs_digest(tmp),
        }))
    return StepResult(step.name, step.out, False, seconds, reason)
