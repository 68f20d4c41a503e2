"""A live line for long steps: what runs, for how long, and where its log is (on a terminal only).

Standard library only (the ground floor, DESIGN §1), so every package may use
it.  Off a terminal (a pipe, a file, the tests' captured stderr) it writes
nothing, so outputs and logs stay what they were::

    with progress("yosys: synthesising eng_adder_r4c4", log=work / "yosys.log"):
        subprocess.run(...)

shows ``yosys: synthesising eng_adder_r4c4: 12 s (log build/…/yosys.log)``,
rewritten in place every second, and ends the line when the step ends.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Iterator

__all__ = ["progress"]


@contextlib.contextmanager
def progress(what: str, log=None, *, stream=None, interval: float = 1.0, force: bool | None = None) -> Iterator[None]:
    """Show ``WHAT: N s (log LOG)`` on ``stream`` (default stderr) while the block runs.

    Parameters
    ----------
    what : str
        The step, as the user should read it.
    log : path, optional
        Where the step's log goes (named in the line).
    stream : text stream, optional
        Default ``sys.stderr``.
    interval : float
        Seconds between updates.
    force : bool, optional
        Show (True) or not (False) regardless of whether ``stream`` is a terminal.
    """
    stream = sys.stderr if stream is None else stream
    shown = stream.isatty() if force is None else force
    if not shown:
        yield
        return
    t0 = time.monotonic()
    tail = f" (log {log})" if log is not None else ""
    stop = threading.Event()

    def show(end: str = "") -> None:
        stream.write(f"\r{what}: {time.monotonic() - t0:.0f} s{tail}{end}")
        stream.flush()

    def tick() -> None:
        while not stop.wait(interval):
            show()

    show()
    ticker = threading.Thread(target=tick, name="adderhw-progress", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()
        show("\n")
