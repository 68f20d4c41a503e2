"""cocotb tests of the engine's stream ends (:mod:`verification.engine_streams`) on a small FIFO.

The design (built by ``tests/verification/test_engine_streams.py``) is a
FIFO between an input stream ``i`` and an output stream ``o`` (ports
``i__valid``, ``i__ready``, ``i__payload``, the same for ``o``), plus a
registered strobe ``odd`` (high in the cycle after an ``o`` beat with an odd
payload fired) and ``count`` (``o`` beats so far, registered).
A :class:`~verification.engine_streams.DmaDriver` feeds ``i``, a
:class:`~verification.engine_streams.ReadySink` drains ``o``, a
:class:`~verification.engine_streams.HandshakeMonitor` watches each side and
a :class:`~verification.engine_streams.PulseMonitor` watches ``odd``; each
test records what they saw and the host checks it.

Job keys (:func:`verification.runner.load_job`): ``words`` (payloads to
send), ``seed``, ``gap`` (valid-gap probability of ``back_pressure``),
``drop`` (ready-drop probability of ``back_pressure``), ``idle_cycles``
(the quiet stretch of ``idle_stretch``), ``records``.

Tests: ``straight`` (no back-pressure), ``back_pressure`` (seeded gaps and
drops), ``idle_stretch`` (two batches around a long quiet stretch, then the
driver stopped with words still queued, then restarted) and
``argument_errors`` (the constructors' refusals).
"""

from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, FallingEdge, ReadOnly, with_timeout
from cocotb.utils import get_sim_steps

from verification.engine_streams import DmaDriver, HandshakeMonitor, PulseMonitor, ReadySink
from verification.runner import append_record, load_job

__all__: list[str] = []

#: Clock period (ns); cycle numbers do not depend on it.
PERIOD_NS = 10


class FifoEnv:
    """Clock, reset, the driver of ``i``, the sink of ``o``, a monitor on each and one on ``odd``."""

    def __init__(self, dut, *, seed: int, tag: str, gap: float = 0.0, drop: float = 0.0) -> None:
        self.dut = dut
        steps = int(get_sim_steps(PERIOD_NS, "ns"))
        self.steps = steps
        cocotb.log.info("%s: seed %d, gap %.2f, drop %.2f", tag, seed, gap, drop)
        self.driver = DmaDriver(dut.clk, dut.i__valid, dut.i__ready, dut.i__payload, period_steps=steps, name="i",
                                gap=gap, rng=random.Random(f"{seed}:{tag}:i"))
        self.sink = ReadySink(dut.clk, dut.o__valid, dut.o__ready, period_steps=steps, name="o", drop=drop,
                              rng=random.Random(f"{seed}:{tag}:o"))
        self.beats: dict[str, list[list[int]]] = {"i": [], "o": []}
        self.pulses: list[dict] = []
        self.monitors = {
            s: HandshakeMonitor(dut.clk, getattr(dut, f"{s}__valid"), getattr(dut, f"{s}__ready"),
                                getattr(dut, f"{s}__payload"), period_steps=steps, name=s,
                                callback=lambda word, cycle, s=s: self._on_beat(s, word, cycle))
            for s in ("i", "o")
        }
        self.pulse = PulseMonitor(dut.clk, dut.odd, period_steps=steps, name="odd", now_signals={"count": dut.count},
                                  after_signals={"count": dut.count}, callback=self._on_pulse)
        self._target = 0
        self._done = Event()

    def _on_beat(self, stream: str, word: int, cycle: int) -> None:
        self.beats[stream].append([word, cycle])
        if stream == "o" and self._target and len(self.beats["o"]) >= self._target:
            self._done.set()

    def _on_pulse(self, cycle: int, now: dict, after: dict) -> None:
        self.pulses.append({"cycle": cycle, "now": now["count"], "after": after["count"]})

    async def start(self) -> None:
        """Clock, three cycles of reset, then every stream end."""
        cocotb.start_soon(Clock(self.dut.clk, PERIOD_NS, unit="ns").start())
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3, rising=False)
        self.dut.rst.value = 0
        for m in (*self.monitors.values(), self.pulse):
            m.start()
        self.sink.start()
        self.driver.start()

    async def drained(self, n: int, *, limit: int) -> None:
        """Return once ``n`` beats left on ``o``, plus three cycles (the last pulse and the cycle after it);
        fail after ``limit`` cycles."""
        if len(self.beats["o"]) < n:
            self._target = n
            self._done.clear()
            await with_timeout(self._done.wait(), limit * PERIOD_NS, "ns")
            self._target = 0
        await ClockCycles(self.dut.clk, 3)

    def wakeups(self) -> dict[str, int]:
        """Python wake-ups so far of the driver and of each handshake monitor."""
        return {"driver": self.driver.wakeups, **{s: m.wakeups for s, m in self.monitors.items()}}

    def record(self, name: str, words: list[int], **extra) -> None:
        """Append what the stream ends saw and counted (the host checks it)."""
        append_record(name, sent_words=words, sent=self.driver.sent, pending=self.driver.pending,
                      i=self.beats["i"], o=self.beats["o"], pulses=self.pulses,
                      monitor_beats={s: m.beats for s, m in self.monitors.items()},
                      wakeups=self.wakeups(), cycle=self.driver.cycle(), **extra)


@cocotb.test()
async def straight(dut):
    """Every word through, the sink always ready, no gaps."""
    job = load_job()
    env = FifoEnv(dut, seed=job["seed"], tag="straight")
    await env.start()
    env.driver.send(job["words"])
    await env.drained(len(job["words"]), limit=4 * len(job["words"]) + 50)
    env.record("straight", job["words"])


@cocotb.test()
async def back_pressure(dut):
    """Every word through with seeded random valid gaps on ``i`` and ready drops on ``o``."""
    job = load_job()
    env = FifoEnv(dut, seed=job["seed"], tag="back_pressure", gap=job["gap"], drop=job["drop"])
    await env.start()
    env.driver.send(job["words"])
    await env.drained(len(job["words"]), limit=40 * len(job["words"]) + 50)
    env.record("back_pressure", job["words"], gap=job["gap"], drop=job["drop"])


@cocotb.test()
async def idle_stretch(dut):
    """Two batches around ``idle_cycles`` quiet cycles; then the sink stops, the driver is stopped with words
    queued (valid falls, the queue empties) and started again (twice: idempotent) for a last batch."""
    job = load_job()
    words = job["words"]
    half = len(words) // 2
    env = FifoEnv(dut, seed=job["seed"], tag="idle_stretch")
    await env.start()
    env.driver.send(words[:half])
    await env.drained(half, limit=4 * half + 50)
    before = env.wakeups()
    await ClockCycles(dut.clk, job["idle_cycles"])
    after = env.wakeups()
    env.driver.send(words[half:])
    await env.drained(len(words), limit=4 * len(words) + 50)
    # stop the sink: the FIFO fills, the driver holds a beat; stop it with words left in its queue
    await FallingEdge(dut.clk)
    env.sink.stop()
    env.driver.send(words)
    await ClockCycles(dut.clk, 20, rising=False)
    held = len(env.beats["i"]) - len(words)
    env.driver.stop()
    await FallingEdge(dut.clk)
    await ReadOnly()
    stopped = {"valid": int(dut.i__valid.value), "pending": env.driver.pending}
    await FallingEdge(dut.clk)
    env.driver.start()
    env.driver.start()
    env.sink.start()
    env.sink.start()
    env.driver.send(words[:half])
    await env.drained(len(words) + held + half, limit=4 * len(words) + 100)
    env.record("idle_stretch", words, idle_cycles=job["idle_cycles"], wakeups_idle={"before": before, "after": after},
               held=held, stopped=stopped)


def _refusal(make) -> str | None:
    """The ValueError's message of ``make()`` (None when it does not raise)."""
    try:
        make()
    except ValueError as exc:
        return str(exc)
    return None


@cocotb.test()
async def argument_errors(dut):
    """Probabilities outside [0, 1) and random back-pressure without a generator are refused."""
    steps = int(get_sim_steps(PERIOD_NS, "ns"))
    rng = random.Random(0)

    def driver(**kw):
        return DmaDriver(dut.clk, dut.i__valid, dut.i__ready, dut.i__payload, period_steps=steps, name="i", **kw)

    def sink(**kw):
        return ReadySink(dut.clk, dut.o__valid, dut.o__ready, period_steps=steps, name="o", **kw)

    append_record("argument_errors", messages={
        "gap_one": _refusal(lambda: driver(gap=1.0, rng=rng)),
        "gap_negative": _refusal(lambda: driver(gap=-0.1, rng=rng)),
        "gap_without_rng": _refusal(lambda: driver(gap=0.5)),
        "drop_one": _refusal(lambda: sink(drop=1.0, rng=rng)),
        "drop_without_rng": _refusal(lambda: sink(drop=0.5)),
        "no_gap_without_rng": _refusal(lambda: driver()),
        "no_drop_without_rng": _refusal(lambda: sink()),
    })
