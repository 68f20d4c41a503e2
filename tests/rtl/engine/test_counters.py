"""The counters (the verification build's observer) against counters_ref: random events, a reset in the middle."""

import random

from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from rtl.engine.core import EVENTS
from rtl.engine.counters import COUNTERS, Counters, counters_ref


def _events(rng, n):
    return [{name: rng.randrange(1 << width) if rng.random() < 0.4 else 0 for name, width in EVENTS.items()}
            | {"op_done": int(rng.random() < 0.1), "op_index": rng.randrange(4)} for _ in range(n)]


def test_counts_every_event_and_reset_clears_them():
    seed = 77
    print("seed", seed)
    rng = random.Random(seed)
    before, after = _events(rng, 20), _events(rng, 40)
    dut = Counters(max_ops=4)
    top = Module()
    top.domains.sync = cd = ClockDomain("sync")
    top.submodules.dut = dut
    seen = []

    async def bench(ctx):
        for k, ev in enumerate(before + [None] + after):
            if ev is None:  # the reset, between the two runs
                ctx.set(cd.rst, 1)
                await ctx.tick()
                ctx.set(cd.rst, 0)
                continue
            for name, value in ev.items():
                ctx.set(getattr(dut.events, name), value)
            assert (ctx.get(dut.op_done), ctx.get(dut.op_index)) == (ev["op_done"], ev["op_index"])
            await ctx.tick()
            if k > len(before):
                seen.append({name: ctx.get(getattr(dut, name)) for name in COUNTERS})

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    want = counters_ref(after)
    assert seen == want and want[-1]["cycles"] > 0 and want[-1]["act_reads"] > 0
    assert counters_ref([{"x_beats": 1}])[0]["cycles"] == 0  # cycles count from the first prog beat
