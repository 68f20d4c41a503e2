"""verification.engine_streams: the engine testbench's stream ends on a small FIFO, on Icarus and Verilator.

:class:`StreamFifo` (Amaranth's ``SyncFIFOBuffered`` between two
``stream`` interfaces, a strobe and a counter) is emitted like the rtl
designs (:func:`rtl.design.emit`) and run under :mod:`verification.tb.tb_streams`
once per simulator (builds cached per session); each test below checks one
property of what the stream ends recorded: every beat the ``DmaDriver``
sent arrives once and in order through the ``ReadySink``, both
``HandshakeMonitor`` s saw exactly the sent words, the ``PulseMonitor``
counted every pulse with the counter's values, with and without seeded
random back-pressure; the ends sleep through idle stretches; stop, restart
and the constructors' refusals.
"""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from quant.base.files import atomic_write_text
from rtl.design import emit
from verification.runner import VerilogSource, run_tests

pytestmark = pytest.mark.sim

SIMS = ("icarus", "verilator")
SEED = 20261206
#: cocotb module and its tests
STREAMS_TB = "verification.tb.tb_streams"
STREAMS_TESTS = ("straight", "back_pressure", "idle_stretch", "argument_errors")
#: payload width, FIFO depth, words per batch, back-pressure, quiet stretch
WIDTH, DEPTH, N_WORDS = 16, 4, 200
GAP, DROP = 0.3, 0.5
IDLE_CYCLES = 2000
_RNG = random.Random(SEED)
#: the words sent (both extremes first)
WORDS = [0, (1 << WIDTH) - 1] + [_RNG.getrandbits(WIDTH) for _ in range(N_WORDS - 2)]


class StreamFifo(wiring.Component):
    """``i`` -> ``SyncFIFOBuffered(depth)`` -> ``o``; ``odd`` is high in the cycle after an ``o`` beat with an odd
    payload fired and ``count`` counts the ``o`` beats (both registered)."""

    def __init__(self, *, width: int, depth: int) -> None:
        self.width, self.depth = width, depth
        super().__init__({"i": In(stream.Signature(unsigned(width))), "o": Out(stream.Signature(unsigned(width))),
                          "odd": Out(1), "count": Out(16)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=self.width, depth=self.depth)
        wiring.connect(m, wiring.flipped(self.i), fifo.w_stream)
        wiring.connect(m, fifo.r_stream, wiring.flipped(self.o))
        fire = self.o.valid & self.o.ready
        m.d.sync += self.odd.eq(fire & self.o.payload[0])
        with m.If(fire):
            m.d.sync += self.count.eq(self.count + 1)
        return m


@pytest.fixture(scope="session")
def fifo_design(build_root) -> VerilogSource:
    """:class:`StreamFifo` emitted once per session into the build cache."""
    path = build_root / "streams_src" / "stream_fifo.v"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, emit(StreamFifo(width=WIDTH, depth=DEPTH), "stream_fifo"))
    return VerilogSource(path, "stream_fifo")




@pytest.fixture(scope="module", params=SIMS)
def run(request, fifo_design, build_root, tmp_path_factory):
    """Every test of :data:`STREAMS_TB` in one simulator process; all must pass in the simulator."""
    sim = request.param
    print(f"seed {SEED}")
    job = {"words": WORDS, "seed": SEED, "gap": GAP, "drop": DROP, "idle_cycles": IDLE_CYCLES}
    result = run_tests(fifo_design, sim, module=STREAMS_TB, job=job, test_dir=tmp_path_factory.mktemp(f"streams_{sim}"),
                       build_root=build_root, seed=SEED)
    assert sorted(c.name for c in result.cases) == sorted(STREAMS_TESTS)
    failed = [f"{c.name}: {c.message[:1500]}" for c in result.cases if not c.passed]
    assert not failed, f"{sim}: failed tests (log {result.log}):\n" + "\n".join(failed)
    return result


def _cycles(beats) -> list[int]:
    return [c for _, c in beats]


def _check_transfer(rec: dict, expected: list[int]) -> None:
    """Every sent word arrived once, in order; both monitors saw exactly it, one beat per cycle at most."""
    assert [w for w, _ in rec["i"]] == expected
    assert [w for w, _ in rec["o"]] == expected
    assert rec["sent"] == len(expected) and rec["pending"] == 0
    assert rec["monitor_beats"] == {"i": len(expected), "o": len(expected)}
    for side in ("i", "o"):
        cycles = _cycles(rec[side])
        assert all(a < b for a, b in zip(cycles, cycles[1:])), side
    assert all(ci < co for ci, co in zip(_cycles(rec["i"]), _cycles(rec["o"])))  # a beat leaves after it came in


def _occupancy(rec: dict) -> int:
    """The most words the FIFO held at the end of a cycle, from the two monitors' cycles."""
    events = sorted([(c, 1) for c in _cycles(rec["i"])] + [(c, -1) for c in _cycles(rec["o"])])
    level = top = 0
    for _, step in events:
        level += step
        top = max(top, level)
    return top


def _check_pulses(rec: dict) -> None:
    """One pulse per odd ``o`` beat, in the next cycle, with ``count`` then and one cycle later."""
    o = rec["o"]
    o_cycles = set(_cycles(o))
    expected = [{"cycle": c + 1, "now": k + 1, "after": k + 1 + (c + 1 in o_cycles)}
                for k, (w, c) in enumerate(o) if w % 2]
    assert rec["pulses"] == expected
    assert len(expected) > 10


def test_beats_arrive_once_in_order_without_back_pressure(run):
    rec = run.case("straight").record
    _check_transfer(rec, WORDS)
    # full rate: one beat per cycle on both sides
    for side in ("i", "o"):
        cycles = _cycles(rec[side])
        assert cycles == list(range(cycles[0], cycles[0] + N_WORDS)), side
    assert rec["wakeups"]["driver"] <= N_WORDS + 2


def test_beats_arrive_once_in_order_under_back_pressure(run):
    straight, rec = run.case("straight").record, run.case("back_pressure").record
    assert (rec["gap"], rec["drop"]) == (GAP, DROP)
    _check_transfer(rec, WORDS)
    span = _cycles(rec["o"])[-1] - _cycles(rec["i"])[0]
    assert span > 1.5 * (_cycles(straight["o"])[-1] - _cycles(straight["i"])[0])  # the gaps and drops happened
    assert _occupancy(rec) == DEPTH  # the FIFO filled: the driver held beats while not ready
    assert _occupancy(straight) < DEPTH


def test_pulse_monitor_counts_every_pulse(run):
    for name in ("straight", "back_pressure", "idle_stretch"):
        _check_pulses(run.case(name).record)


def test_stream_ends_sleep_through_idle_stretches(run):
    rec = run.case("idle_stretch").record
    assert rec["wakeups_idle"]["after"] == rec["wakeups_idle"]["before"]
    assert rec["idle_cycles"] == IDLE_CYCLES


def test_stop_drops_the_queue_and_restart_continues(run):
    """Sink stopped: the FIFO fills (``held`` beats), the driver is stopped with words queued (valid low, queue
    empty), both started twice (idempotent) and a last batch follows the held words."""
    rec = run.case("idle_stretch").record
    assert rec["held"] == DEPTH
    assert rec["stopped"] == {"valid": 0, "pending": 0}
    half = N_WORDS // 2
    _check_transfer(rec, WORDS + WORDS[:DEPTH] + WORDS[:half])


def test_constructors_refuse_bad_back_pressure(run):
    assert run.case("argument_errors").record["messages"] == {
        "gap_one": "gap must be a probability in [0, 1), not 1.0",
        "gap_negative": "gap must be a probability in [0, 1), not -0.1",
        "gap_without_rng": "a driver with gaps needs a seeded rng",
        "drop_one": "drop must be a probability in [0, 1), not 1.0",
        "drop_without_rng": "a sink with drops needs a seeded rng",
        "no_gap_without_rng": None,
        "no_drop_without_rng": None,
    }
