"""Task functions for tests/rtl/test_cluster.py (a module Ray's workers import by name)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def square(x: int) -> int:
    return x * x


def slow_square(x: int, folder: str, pause_s: float) -> int:
    """``x * x`` after ``pause_s``; writes ``<x>.pid`` (this worker's PID) on the way in and
    counts its attempts in ``<x>.attempts``, so a test can kill the worker and see the retry."""
    d = Path(folder)
    attempts = d / f"{x}.attempts"
    n = int(attempts.read_text()) + 1 if attempts.exists() else 1
    attempts.write_text(str(n))
    (d / f"{x}.pid.tmp").write_text(str(os.getpid()))
    os.replace(d / f"{x}.pid.tmp", d / f"{x}.pid")
    time.sleep(pause_s)
    return x * x


def fail(x: int) -> int:
    raise ValueError(f"task {x} refuses")
