"""Valid/ready stream driver and monitor for cocotb 2.1, with optional random back-pressure.

Sampling discipline (identical on Icarus and Verilator): every cycle, a driver
or monitor writes its outputs at the **falling** clock edge, then waits for
``ReadOnly`` of that time step and samples the handshake.  Nothing is written
at the rising edge, so the flip-flops always see stable inputs, and what is
sampled in ``ReadOnly`` is exactly what the next rising edge transfers.

Cycle numbering: cycle ``n`` is the interval ``[n*T, (n+1)*T)`` of simulation
time (``T`` the clock period, rising edge at ``n*T``).  A beat "fires in cycle
``n``" when valid and ready are high in that interval; it takes effect at the
rising edge that ends it — the convention of ``hwsim/schedule.py``.

These classes import cocotb and therefore only work inside a simulator process.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import Event, FallingEdge, ReadOnly

__all__ = ["BackPressure", "BackgroundTask", "Beat", "StreamDriver", "StreamMonitor", "cycle_now"]


def cycle_now(period_steps: int) -> int:
    """The current cycle number (see the module docstring)."""
    return get_sim_time("step") // period_steps


@dataclass(frozen=True)
class BackPressure:
    """Random stalls on the streams.

    Parameters
    ----------
    valid_gap : float
        Probability that an input driver holds ``valid`` low in a cycle in
        which it has a beat to send.
    ready_drop : float
        Probability that the output monitor holds ``ready`` low in a cycle.
    seed : int
        Seed of the random generators (each stream derives its own).
    """

    valid_gap: float = 0.0
    ready_drop: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("valid_gap", "ready_drop"):
            p = getattr(self, name)
            if not (isinstance(p, (int, float)) and 0.0 <= p < 1.0):
                raise ValueError(f"{name} must be a probability in [0, 1), not {p!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, not {self.seed!r}")

    @property
    def active(self) -> bool:
        """Whether any stall is ever inserted."""
        return self.valid_gap > 0 or self.ready_drop > 0

    def rng(self, stream: str) -> random.Random:
        """An independent, reproducible generator for one stream."""
        return random.Random(f"{self.seed}:{stream}")


@dataclass(frozen=True)
class Beat:
    """One transfer on a stream: the cycle it fired in and its payload."""

    cycle: int
    payload: int


class BackgroundTask:
    """One background coroutine per object: :meth:`start` runs ``_run`` (idempotent), :meth:`stop` cancels it."""

    _task = None

    async def _run(self) -> None:  # pragma: no cover - defined by the subclasses
        raise NotImplementedError

    def start(self) -> None:
        """Start the background task (idempotent)."""
        if self._task is None:
            self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        """Stop the background task (idempotent)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None


class _StreamEnd(BackgroundTask):
    """What a driver and a monitor share: the stream's handles, a per-stream
    random generator and one background task (:meth:`start`, :meth:`stop`)."""

    def __init__(self, clk, valid, ready, payload, period_steps: int, name: str, back_pressure: BackPressure):
        self.clk, self.valid, self.ready, self.payload = clk, valid, ready, payload
        self.period_steps = period_steps
        self.name = name
        self._rng = back_pressure.rng(name)


class StreamDriver(_StreamEnd):
    """Drives the input side of an Amaranth ``stream.Signature`` (``valid``, ``payload``; reads ``ready``).

    Parameters
    ----------
    clk, valid, ready, payload
        cocotb handles of the clock and of the stream's three signals.
    period_steps : int
        Clock period in simulator steps (for cycle numbers).
    name : str
        Stream name, used in messages and for the random generator.
    back_pressure : BackPressure
        ``valid_gap`` inserts random idle cycles between beats.

    Notes
    -----
    :meth:`send` queues payload words; a background task started by
    :meth:`start` offers them one per cycle.  :attr:`fired` lists every
    transfer with its cycle.  :meth:`flush` drops queued words (used around a
    reset).
    """

    def __init__(self, clk, valid, ready, payload, *, period_steps: int, name: str,
                 back_pressure: BackPressure = BackPressure()) -> None:
        super().__init__(clk, valid, ready, payload, period_steps, name, back_pressure)
        self._gap = back_pressure.valid_gap
        self._queue: deque[int] = deque()
        self._wake = Event()
        self._empty = Event()
        self._empty.set()
        self.fired: list[Beat] = []
        self.valid.value = 0

    def stop(self) -> None:
        """Stop the background task, drop queued words and ``valid``."""
        super().stop()
        self._queue.clear()
        self._empty.set()
        self.valid.value = 0

    def send(self, words: Iterable[int]) -> None:
        """Queue payload words (unsigned integers already packed to the payload width)."""
        words = list(words)
        if not words:
            return
        self._queue.extend(words)
        self._empty.clear()
        self._wake.set()

    def flush(self) -> None:
        """Drop every queued word; ``valid`` falls at the next falling edge."""
        self._queue.clear()
        self._empty.set()

    @property
    def pending(self) -> int:
        """Words queued and not yet transferred."""
        return len(self._queue)

    async def wait_empty(self) -> None:
        """Return once every queued word has been transferred."""
        await self._empty.wait()

    async def _run(self) -> None:
        edge = FallingEdge(self.clk)
        ro = ReadOnly()
        queue = self._queue
        while True:
            await edge
            if not queue:
                self.valid.value = 0
                self._empty.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._gap and self._rng.random() < self._gap:
                self.valid.value = 0
                continue
            word = queue[0]
            self.payload.value = word
            self.valid.value = 1
            await ro
            if self.ready.value == 1 and queue:  # (a flush may have emptied it meanwhile)
                queue.popleft()
                self.fired.append(Beat(cycle_now(self.period_steps), word))


class StreamMonitor(_StreamEnd):
    """Watches (and back-pressures) the output side of a stream.

    Parameters
    ----------
    clk, valid, ready, payload
        cocotb handles; the monitor drives ``ready``.
    period_steps : int
        Clock period in simulator steps.
    name : str
        Stream name.
    back_pressure : BackPressure
        ``ready_drop`` holds ``ready`` low in random cycles.
    callback : callable, optional
        Called with each :class:`Beat` as it fires.
    """

    def __init__(self, clk, valid, ready, payload, *, period_steps: int, name: str,
                 back_pressure: BackPressure = BackPressure(),
                 callback: Callable[[Beat], None] | None = None) -> None:
        super().__init__(clk, valid, ready, payload, period_steps, name, back_pressure)
        self._drop = back_pressure.ready_drop
        self.callback = callback
        self.beats: list[Beat] = []
        self._target = 0
        self._reached = Event()
        self.ready.value = 0

    def stop(self) -> None:
        """Stop watching and drop ``ready``."""
        super().stop()
        self.ready.value = 0

    def clear(self) -> None:
        """Forget every beat seen so far."""
        self.beats = []

    async def wait_for(self, count: int) -> list[Beat]:
        """Return once at least ``count`` beats have been seen; returns them all."""
        if len(self.beats) < count:
            self._target = count
            self._reached.clear()
            await self._reached.wait()
        return self.beats

    async def _run(self) -> None:
        edge = FallingEdge(self.clk)
        ro = ReadOnly()
        drop, rng = self._drop, self._rng
        ready_now = None
        while True:
            await edge
            r = 0 if (drop and rng.random() < drop) else 1
            if r != ready_now:
                self.ready.value = r
                ready_now = r
            await ro
            if r and self.valid.value == 1:
                beat = Beat(cycle_now(self.period_steps), self.payload.value.to_unsigned())
                self.beats.append(beat)
                if self.callback is not None:
                    self.callback(beat)
                if self._target and len(self.beats) >= self._target:
                    self._target = 0
                    self._reached.set()
