"""Event-driven stream ends for the engine testbench: Python wakes on handshakes, not on every cycle.

The engine's inputs are ready only in some states (``w`` while a tile loads,
``x`` while an image loads, ``prog`` before the program): most of a run is
stretches of thousands of cycles in which nothing is transferred.  These
drivers and monitors sleep across them (``RisingEdge`` of ``ready`` or
``valid``) and run cycle by cycle only while a transfer is possible, so a
whole network costs about two Python wake-ups per beat (DESIGN §6).

Sampling discipline (identical on Icarus and Verilator): inputs are written at the **falling** clock edge and
handshakes are sampled in ``ReadOnly`` after it; a beat "fires in cycle
``n``" when ``valid`` and ``ready`` are high in ``[n*T, (n+1)*T)``.

* :class:`DmaDriver` -- feeds queued words whenever the sink is ready (a
  DMA engine in front of DRAM); optional random valid gaps.
* :class:`HandshakeMonitor` -- passive: reports every beat that fires on a
  stream (input or output) to a callback, with its cycle.
* :class:`ReadySink` -- drives ``ready`` of an output stream (always high,
  or randomly dropped while ``valid`` is high).
* :class:`PulseMonitor` -- reports each cycle a one-bit strobe is high, and
  the values of some signals in that cycle and in the next one.

Imports cocotb: only usable inside a simulator process.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Callable, Iterable

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import Event, FallingEdge, ReadOnly, RisingEdge

__all__ = ["BackgroundTask", "DmaDriver", "HandshakeMonitor", "ReadySink", "PulseMonitor", "StreamEnd"]


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


class StreamEnd(BackgroundTask):
    """A background task (:class:`BackgroundTask`) and the cycle arithmetic every stream end shares."""

    def __init__(self, clk, period_steps: int, name: str) -> None:
        self.clk = clk
        self.period_steps = int(period_steps)
        self.name = name
        self._fe = FallingEdge(clk)
        self._ro = ReadOnly()

    def cycle(self) -> int:
        """The current cycle number (``sim_time // period``)."""
        return get_sim_time("step") // self.period_steps

    async def to_falling(self) -> None:
        """Move to this cycle's falling edge (nothing to do if already there or past it)."""
        if get_sim_time("step") % self.period_steps < self.period_steps // 2:
            await self._fe



class DmaDriver(StreamEnd):
    """Offers queued words on ``valid``/``payload`` and transfers one per cycle while ``ready`` is high.

    While the sink is not ready the driver holds its beat and sleeps until
    ``ready`` rises; with an empty queue it sleeps until :meth:`send`.

    Parameters
    ----------
    clk, valid, ready, payload
        cocotb handles of the clock and of the stream.
    period_steps : int
        Clock period in simulator steps.
    name : str
        Stream name (messages).
    gap : float
        Probability of holding ``valid`` low in a cycle in which a beat could
        transfer (random back-pressure from the source side).
    rng : random.Random, optional
        Generator of the gaps (required when ``gap > 0``).
    """

    def __init__(self, clk, valid, ready, payload, *, period_steps: int, name: str, gap: float = 0.0,
                 rng: random.Random | None = None) -> None:
        super().__init__(clk, period_steps, name)
        if not 0.0 <= gap < 1.0:
            raise ValueError(f"gap must be a probability in [0, 1), not {gap!r}")
        if gap and rng is None:
            raise ValueError("a driver with gaps needs a seeded rng")
        self.valid, self.ready, self.payload = valid, ready, payload
        self.gap, self.rng = gap, rng
        self._queue: deque[int] = deque()
        self._wake = Event()
        self.sent = 0
        self.wakeups = 0
        self.valid.value = 0

    def send(self, words: Iterable[int]) -> None:
        """Queue payload words (unsigned integers of the payload width)."""
        self._queue.extend(int(w) for w in words)
        if self._queue:
            self._wake.set()

    def flush(self) -> None:
        """Drop every queued word (around a reset); ``valid`` falls at the next falling edge."""
        self._queue.clear()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def stop(self) -> None:
        super().stop()
        self._queue.clear()
        self.valid.value = 0

    async def _run(self) -> None:
        fe, ro = self._fe, self._ro
        queue, valid, ready, payload = self._queue, self.valid, self.ready, self.payload
        gap, rng = self.gap, self.rng
        await self.to_falling()
        while True:
            self.wakeups += 1
            if not queue:
                valid.value = 0
                self._wake.clear()
                await self._wake.wait()
                await fe  # never write in the phase the sender woke us in
                continue
            if gap and rng.random() < gap:
                valid.value = 0
                await fe
                continue
            payload.value = queue[0]
            valid.value = 1
            await ro
            if ready.value == 1:
                if queue:  # (a flush may have emptied it meanwhile)
                    queue.popleft()
                    self.sent += 1
                await fe
            else:
                await RisingEdge(ready)
                await self.to_falling()


class HandshakeMonitor(StreamEnd):
    """Reports every beat that fires on a stream: ``callback(payload, cycle)``.

    Passive (drives nothing).  Sleeps on ``RisingEdge(ready)`` while the sink
    is not ready and on ``RisingEdge(valid)`` while the source offers nothing.

    Parameters
    ----------
    clk, valid, ready, payload
        cocotb handles.
    period_steps : int
    name : str
    callback : callable
        ``callback(payload: int, cycle: int)``; the payload as an unsigned integer.
    """

    def __init__(self, clk, valid, ready, payload, *, period_steps: int, name: str,
                 callback: Callable[[int, int], None]) -> None:
        super().__init__(clk, period_steps, name)
        self.valid, self.ready, self.payload = valid, ready, payload
        self.callback = callback
        self.beats = 0
        self.wakeups = 0

    async def _run(self) -> None:
        fe, ro = self._fe, self._ro
        valid, ready, payload = self.valid, self.ready, self.payload
        await self.to_falling()
        while True:
            self.wakeups += 1
            await ro
            v, r = valid.value == 1, ready.value == 1
            if v and r:
                self.beats += 1
                self.callback(int(payload.value.to_unsigned()), self.cycle())
                await fe
            elif not r:
                await RisingEdge(ready)
                await self.to_falling()
            else:
                await RisingEdge(valid)
                await self.to_falling()


class ReadySink(StreamEnd):
    """Drives ``ready`` of an output stream: high, or dropped at random while ``valid`` is high.

    Parameters
    ----------
    clk, valid, ready
        cocotb handles.
    period_steps : int
    name : str
    drop : float
        Probability of holding ``ready`` low in a cycle in which ``valid`` is high.
    rng : random.Random, optional
        Required when ``drop > 0``.
    """

    def __init__(self, clk, valid, ready, *, period_steps: int, name: str, drop: float = 0.0,
                 rng: random.Random | None = None) -> None:
        super().__init__(clk, period_steps, name)
        if not 0.0 <= drop < 1.0:
            raise ValueError(f"drop must be a probability in [0, 1), not {drop!r}")
        if drop and rng is None:
            raise ValueError("a sink with drops needs a seeded rng")
        self.valid, self.ready = valid, ready
        self.drop, self.rng = drop, rng
        self.ready.value = 0

    def stop(self) -> None:
        super().stop()
        self.ready.value = 0

    async def _run(self) -> None:
        fe, ro = self._fe, self._ro
        valid, ready = self.valid, self.ready
        drop, rng = self.drop, self.rng
        await self.to_falling()
        ready.value = 1
        if not drop:
            return  # always ready: nothing more to do
        while True:
            ready.value = 0 if rng.random() < drop else 1
            await ro
            if valid.value == 1:
                await fe
            else:
                await RisingEdge(valid)
                await self.to_falling()


class PulseMonitor(StreamEnd):
    """Reports every cycle in which ``strobe`` is high.

    ``callback(cycle, now, after)``: ``now`` holds the values of
    ``now_signals`` in the strobe's cycle, ``after`` those of
    ``after_signals`` in the next cycle (registered counters then include the
    strobe cycle's events).  Sleeps on ``RisingEdge(strobe)`` between pulses.
    """

    def __init__(self, clk, strobe, *, period_steps: int, name: str, now_signals: dict,
                 after_signals: dict, callback: Callable[[int, dict, dict], None]) -> None:
        super().__init__(clk, period_steps, name)
        self.strobe = strobe
        self.now_signals, self.after_signals = dict(now_signals), dict(after_signals)
        self.callback = callback

    async def _run(self) -> None:
        fe, ro = self._fe, self._ro
        strobe = self.strobe
        while True:
            await RisingEdge(strobe)
            await self.to_falling()
            await ro
            while strobe.value == 1:
                cyc = self.cycle()
                now = {k: int(h.value) for k, h in self.now_signals.items()}
                await fe
                await ro
                after = {k: int(h.value) for k, h in self.after_signals.items()}
                self.callback(cyc, now, after)
