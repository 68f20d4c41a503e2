"""Stream test helpers for the engine's units and the whole engine in the Amaranth simulator.

``stream_put``/``stream_get`` are the put/get testbench helpers of Amaranth's
stream guide, with optional random back-pressure (an ``rng``: idle cycles
before each beat).  :func:`run_unit` feeds a unit's ``i`` stream and takes
``count`` beats from its ``o``; :func:`simulate_engine` runs images through
the engine's four streams and reads its counters.  Both take ``seed``
(random gaps on every input and back-pressure on the output) and
``reset_at`` (the run is started, the domain reset ``reset_at`` cycles in,
then the clean run follows; its result is returned).
"""

from __future__ import annotations

import random

import numpy as np
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

#: Chance of an idle cycle before each beat (repeated), with an ``rng``.
STALL = 0.3


async def stream_put(ctx, stream, payload, rng=None):
    """Offer ``payload`` on ``stream`` until it is taken."""
    while rng is not None and rng.random() < STALL:
        await ctx.tick()
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, rng=None):
    """Take one beat from ``stream``; its payload."""
    while rng is not None and rng.random() < STALL:
        await ctx.tick()
    ctx.set(stream.ready, 1)
    (payload,) = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


def run(dut, feeds, drains, main, *, reset_at=None, setup=(), settle=0):
    """Simulate ``dut`` in a ``sync`` domain made here: ``main`` in the foreground; in the background
    each ``(stream, beats, rng)`` of ``feeds`` put and each ``(stream, rng)`` of ``drains`` kept ready
    (dropped at random with an ``rng``).

    With ``reset_at`` the beats of ``feeds`` (or, for a feed given as
    ``(stream, beats, rng, first)``, its ``first`` beats) are first offered
    back to back (every drain ready) for ``reset_at`` cycles, the domain
    reset, and only then do ``main``, the feeds and the drains start.  ``settle`` cycles pass
    after ``setup`` and after the reset before any beat is offered (a unit
    whose registers follow its descriptor one cycle later, as in the engine).
    """
    top = Module()
    top.domains.sync = cd = ClockDomain("sync")
    top.submodules.dut = dut
    clean = [reset_at is None and not settle]

    async def first_pass_then_reset(ctx):
        for sig, value in setup:
            ctx.set(sig, value)
        for _ in range(settle):
            await ctx.tick()
        clean[0] = reset_at is None
        if reset_at is not None:
            queues = [(f[0], list(f[3] if len(f) > 3 else f[1])) for f in feeds]
            for s, _ in drains:
                ctx.set(s.ready, 1)
            for _ in range(reset_at):
                took = []
                for s, q in queues:
                    ctx.set(s.valid, bool(q))
                    if q:
                        ctx.set(s.payload, q[0])
                        took.append(q if ctx.get(s.ready) else [])
                await ctx.tick()
                for q in took:
                    if q:
                        q.pop(0)
            for s, _ in queues:
                ctx.set(s.valid, 0)
            ctx.set(cd.rst, 1)
            await ctx.tick()
            ctx.set(cd.rst, 0)
            for _ in range(settle):
                await ctx.tick()
            clean[0] = True
        await main(ctx)

    async def after_reset(ctx):
        while not clean[0]:
            await ctx.tick()

    def feeder(stream, beats, rng):
        async def feed(ctx):
            await after_reset(ctx)
            for b in beats:
                await stream_put(ctx, stream, b, rng)
        return feed

    def drainer(stream, rng):
        async def drain(ctx):  # ready, dropped at random; the beats are main's to sample
            await after_reset(ctx)
            while True:
                ctx.set(stream.ready, rng is None or rng.random() >= STALL)
                await ctx.tick()
        return drain

    sim = Simulator(top)
    sim.add_clock(1e-8)
    for s, beats, rng, *_ in feeds:
        sim.add_testbench(feeder(s, beats, rng), background=True)
    for s, rng in drains:
        sim.add_testbench(drainer(s, rng), background=True)
    sim.add_testbench(first_pass_then_reset)
    sim.run()


def _rngs(seed, n):
    return [None] * n if seed is None else [random.Random(f"{seed}/{k}") for k in range(n)]


def run_unit(dut, beats, count, *, seed=None, reset_at=None, setup=(), i="i", o="o") -> list:
    """``beats`` into stream ``i`` of ``dut``, the first ``count`` payloads out of its stream ``o``
    (``setup``: (signal, value) pairs set before the first cycle)."""
    rng_in, rng_out = _rngs(seed, 2)
    src, sink = getattr(dut, i), getattr(dut, o)
    out = []

    async def main(ctx):
        while len(out) < count:
            out.append(await stream_get(ctx, sink, rng_out))

    run(dut, [(src, beats, rng_in)], [], main, reset_at=reset_at, setup=setup)
    return out


def simulate_engine(engine, compiled, images, *, seed=None, reset_at=None, reload=True,
                    max_cycles=1_000_000) -> list:
    """Run ``images`` (input codes) through ``engine`` (a ``Build.VERIFY`` engine) in the Amaranth simulator.

    The ``prog`` beats (once per image), the ``w`` beats (once per image) and
    each image's ``x`` beats are put on their streams, ``o`` is taken; a
    monitor samples every handshake, ``op_done`` and the counters.

    Returns one dict per image: ``logits`` (int64), ``ops`` (per operation:
    ``start``, ``end``, ``cycles`` and the counters of
    :data:`hwsim.engine.COUNTER_NAMES`, read from the counter ports),
    ``total_cycles``, ``prog_beats``, ``x_beats``, ``traces`` (with
    ``config.trace``: operation name -> its ``o`` beats, raw lane bits;
    :func:`rtl.engine.top.trace_codes` decodes them).  Cycles count from the
    first ``prog`` beat (the ``cycles`` port; image ``i > 0`` counts on).
    An operation starts the cycle after its ``prog`` beat, operation 0 the
    cycle after the image's last ``x`` beat.

    A resident engine (``hwsim.engine`` rule 7) first gets its load phase
    (the load descriptor, every ``w`` beat once) and then only ``prog`` and
    ``x``; each image's dict has ``load``: the load phase's counters
    (:data:`hwsim.engine.LOAD_COUNTERS`, ``cycles`` its last beat's cycle + 1).
    With ``reload=False`` the load comes only before the reset (``reset_at``):
    the clean run uses the store the first pass filled.
    """
    from hwsim.engine import COUNTER_NAMES
    from hwsim.engine import LOAD_COUNTERS
    from rtl.engine.top import COUNTERS, encode_load, encode_program, w_beats, x_beats

    e = engine
    program = compiled.program
    prog = encode_program(program)
    xs = [x_beats(program, im) for im in images]
    n_ops = len(program.ops)
    lane_mask = (1 << e.config.act_bits) - 1
    rngs = _rngs(seed, 4)
    ws = w_beats(program, compiled.weights)
    resident = e.config.resident
    if resident:
        loaded = ([encode_load(program)] + prog * len(xs), ws)
        feeds = [(e.prog, *((loaded[0], rngs[0]) if reload else (prog * len(xs), rngs[0], loaded[0]))),
                 (e.w, *((ws, rngs[1]) if reload else ([], rngs[1], ws)))]
    else:
        feeds = [(e.prog, prog * len(xs), rngs[0]), (e.w, ws * len(xs), rngs[1])]
    feeds.append((e.x, [b for beats in xs for b in beats], rngs[2]))
    counters = [getattr(e, n) for n in COUNTERS]
    results: list = []

    async def main(ctx):
        prev = dict.fromkeys(COUNTERS, 0)
        ops, op_beats, beats, start, x_taken, cycle = [], [], [], None, 0, 0
        load = [None if resident and reload else {}]
        sampled = ctx.tick().sample(e.prog.valid, e.prog.ready, e.x.valid, e.x.ready, e.o.valid, e.o.ready,
                                    e.o.payload, e.op_done, e.cycles)
        async for _, _, pv, pr, xv, xr, ov, orr, oq, done, now in sampled:
            if pv and pr:
                start = now + 1
            if xv and xr:
                x_taken += 1
                if x_taken == len(xs[len(results)]):
                    start, x_taken = now + 1, 0
            if ov and orr:
                beats.append(int(oq))
            if done and load[0] is None:  # the load phase's end: its last w beat
                vals = dict(zip(COUNTERS, (ctx.get(c) for c in counters)))
                load[0] = {k: vals[k] for k in LOAD_COUNTERS}
                load[0]["cycles"] = now + 1
                prev = vals
                done = False
            if done:
                vals = dict(zip(COUNTERS, (ctx.get(c) for c in counters)))
                op = {k: vals[k] - prev[k] for k in COUNTER_NAMES if k != "cycles"}
                op.update(start=start, end=now, cycles=now - start + 1)
                ops.append(op)
                op_beats.append(beats)
                beats, prev = [], vals
                if len(ops) == n_ops:
                    results.append({
                        "logits": np.asarray(op_beats[-1], dtype=np.int64), "ops": ops,
                        "traces": {program.ops[j].name: [b & lane_mask for b in tb]
                                   for j, tb in enumerate(op_beats[:-1]) if tb},
                        "total_cycles": now + 1, "prog_beats": vals["prog_beats"],
                        "x_beats": len(xs[len(results)]), "load": load[0],
                    })
                    ops, op_beats = [], []
                    if len(results) == len(xs):
                        return
            cycle += 1
            if cycle > max_cycles:
                raise RuntimeError(f"the engine did not finish within {max_cycles} cycles")

    run(e, feeds, [(e.o, rngs[3])], main, reset_at=reset_at)
    return results
