"""The engine's channel array (adder and multiplier PEs, pipelined row trees) against its reference."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.config import EngineConfig
from rtl.engine.array import ChannelArray, channel_array_ref
from tests.rtl.engine.streams import run_unit


def simulate(array, steps, **kw):
    """``steps`` through the array (:func:`run_unit`: ``seed``, ``reset_at``); the row totals taken from ``o``."""
    beats = [{"x": list(st[0]), "w": [list(r) for r in st[1]], "first": int(st[2]), "last": int(st[3]),
              **({"bank": st[4]} if array.pixel_tile > 1 else {})} for st in steps]
    out = run_unit(array, beats, sum(1 for s in steps if s[3]), **kw)
    if array.pixel_tile > 1:
        return [[[int(v[k][r]) for r in range(array.rows)] for k in range(array.pixel_tile)] for v in out]
    return [[int(v[r]) for r in range(array.rows)] for v in out]


def _steps(array, n, rng, extreme=False):
    b = array.config.bits
    if array.unit == "adder":
        xr, wr = (0, (1 << b) - 1), (0, (1 << b) - 1)
    else:
        xr, wr = (-(1 << b), (1 << b) - 1), (-(1 << (b - 1)), (1 << (b - 1)) - 1)

    def pick(r):
        return rng.choice(r) if extreme else rng.randint(*r)

    out, k = [], 0
    for i in range(n):
        x = [pick(xr) for _ in range(array.cols)]
        w = [[pick(wr) for _ in range(array.cols)] for _ in range(array.rows)]
        last = rng.random() < 0.3 or i == n - 1
        out.append((x, w, k == 0, last))
        k = 0 if last else k + 1
    return out


def _tile_steps(array, n, rng):
    """``n`` steps in pixel-tile order (rule 3): tiles of up to ``pixel_tile`` pixels, for each window step
    ``s`` every pixel ``p`` (bank ``p``), ``first`` at ``s == 0``, ``last`` on the tile's last step."""
    b, tp = array.config.bits, array.pixel_tile
    lo, hi = (0, (1 << b) - 1) if array.unit == "adder" else (-(1 << (b - 1)), (1 << (b - 1)) - 1)
    out = []
    while len(out) < n:
        pixels, steps = rng.randint(1, tp), rng.randint(1, 4)
        for s in range(steps):
            w = [[rng.randint(lo, hi) for _ in range(array.cols)] for _ in range(array.rows)]  # held for the tile
            for p in range(pixels):
                x = [rng.randint(lo, hi) for _ in range(array.cols)]
                out.append((x, w, s == 0, s == steps - 1 and p == pixels - 1, p))
    return out


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 3), st.integers(1, 9), st.sampled_from([2, 3, 8]), st.sampled_from(["adder", "mult"]),
       st.integers(0, 2**31 - 1), st.booleans())
def test_accumulator_banks_match_reference(rows, cols, tp, unit, seed, stall):
    """Pixel tiles: one accumulator per pixel, every bank handed over at the tile's last step."""
    print("seed", seed)
    rng = random.Random(seed)
    cfg = EngineConfig(rows=rows, cols=cols, bits=5, max_k=64, mult_rows=rows, pixel_tile=tp)
    array = ChannelArray(config=cfg, unit=unit)
    steps = _tile_steps(array, 30, rng)
    assert simulate(array, steps, seed=seed if stall else None) == channel_array_ref(array, steps)


@pytest.mark.parametrize("reset_at", [0, 7])
def test_accumulator_banks_reset_in_the_middle(reset_at):
    seed = 75 + reset_at
    print("seed", seed)
    rng = random.Random(seed)
    cfg = EngineConfig(rows=2, cols=16, bits=6, max_k=64, pixel_tile=4)  # two tree stages: the bank travels
    array = ChannelArray(config=cfg)
    steps = _tile_steps(array, 25, rng)
    want = channel_array_ref(array, steps)
    assert simulate(array, steps, seed=seed, reset_at=reset_at) == want
    # the reference is not blind to the bank: the same steps into the next bank differ
    moved = [st[:4] + ((st[4] + 1) % 4,) for st in steps]
    assert channel_array_ref(array, moved) != want


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 4), st.integers(1, 10), st.integers(4, 8), st.sampled_from(["adder", "mult"]),
       st.integers(0, 2**31 - 1), st.booleans())
def test_matches_reference(rows, cols, bits, unit, seed, stall):
    print("seed", seed)
    rng = random.Random(seed)
    cfg = EngineConfig(rows=rows, cols=cols, bits=bits, max_k=64, pe="adder", mult_rows=rows)
    array = ChannelArray(config=cfg, unit=unit)
    steps = _steps(array, 30, rng, extreme=rng.random() < 0.5)
    assert simulate(array, steps, seed=seed if stall else None) == channel_array_ref(array, steps)


@pytest.mark.parametrize("unit", ["adder", "mult"])
@pytest.mark.parametrize("reset_at", [0, 4])
def test_reset_in_the_middle(unit, reset_at):
    seed = 70 + reset_at
    print("seed", seed)
    rng = random.Random(seed)
    cfg = EngineConfig(rows=3, cols=4, bits=6, max_k=64, mult_rows=2)
    array = ChannelArray(config=cfg, unit=unit)
    steps = _steps(array, 25, rng)
    assert simulate(array, steps, seed=seed, reset_at=reset_at) == channel_array_ref(array, steps)


def test_the_largest_sums_fit_the_accumulator():
    """max_k steps of the largest term: the accumulator of acc_bits holds it exactly."""
    cfg = EngineConfig(rows=1, cols=4, bits=5, max_k=8)
    array = ChannelArray(config=cfg)
    steps = [([31] * 4, [[0] * 4], k == 0, k == 1) for k in range(2)]  # K = 8 terms of 31
    assert simulate(array, steps) == [[8 * 31]] == channel_array_ref(array, steps)


@pytest.mark.parametrize("cols, stages", [(8, 1), (16, 2)])
def test_latency_and_only_a_full_skid_stalls(cols, stages):
    from amaranth.sim import Simulator

    cfg = EngineConfig(rows=2, cols=cols, bits=4, max_k=64)
    array = ChannelArray(config=cfg)
    assert array.latency == 1 + stages == cfg.step_latency
    log = []

    async def bench(ctx):
        ctx.set(array.o.ready, 0)  # the shadow is never taken
        ctx.set(array.i.payload, {"x": [1] * cols, "w": [[0] * cols] * 2, "first": 1, "last": 1})
        ctx.set(array.i.valid, 1)
        for cycle in range(8):
            log.append((ctx.get(array.i.ready), ctx.get(array.o.valid)))
            await ctx.tick()

    sim = Simulator(array)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # step 0 is taken in cycle 0 and lands `latency` cycles later; step 1 lands a cycle after it in
    # the skid, and from then on (the skid's valid, a register) the array takes nothing more
    assert [v for _, v in log[: array.latency + 1]] == [0] * array.latency + [1]
    assert [r for r, _ in log] == [1] * (array.latency + 1) + [0] * (7 - array.latency)


@pytest.mark.parametrize("kwargs, message", [
    (dict(config=EngineConfig(rows=1, cols=1), unit="xor"), "unit must be one of adder, mult, not 'xor'"),
    (dict(config=EngineConfig(rows=1, cols=1), unit="mult"), "unit mult of an adder engine needs mult_rows >= 1"),
    (dict(config=EngineConfig(rows=1, cols=1, pe="mult"), unit="adder"),
     "unit adder needs an adder engine \\(config.pe == 'adder'\\)"),
    (dict(config={"rows": 1}), "config must be an EngineConfig, not dict"),
])
def test_validation(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        ChannelArray(**kwargs)


def test_banks_are_the_skid():
    """Pixel tiles: a tile that lands on a full shadow waits in the banks (the pipeline frozen, i.ready low)
    and reaches the shadow, unchanged, when the shadow is taken; the steps behind it are not lost."""
    from amaranth.sim import Simulator

    rng = random.Random(77)
    cfg = EngineConfig(rows=2, cols=2, bits=4, max_k=64, pixel_tile=2)
    array = ChannelArray(config=cfg)
    steps = _tile_steps(array, 12, rng)
    want = channel_array_ref(array, steps)
    got, ready_log = [], []

    async def bench(ctx):
        k = 0
        for cycle in range(80):
            hold = cycle < 30  # the shadow is not taken for 30 cycles: later tiles pend in the banks
            ctx.set(array.o.ready, not hold)
            if k < len(steps):
                x, w, first, last, bank = steps[k]
                ctx.set(array.i.payload, {"x": x, "w": w, "first": first, "last": last, "bank": bank})
            ctx.set(array.i.valid, k < len(steps))
            i_ready, o_valid, o_payload = ctx.get(array.i.ready), ctx.get(array.o.valid), ctx.get(array.o.payload)
            ready_log.append(i_ready)
            if o_valid and not hold:
                got.append([[int(o_payload[b][r]) for r in range(2)] for b in range(2)])
            if k < len(steps) and i_ready:
                k += 1
            await ctx.tick()

    sim = Simulator(array)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == want and len(want) > 2
    assert 0 in ready_log[:30] and ready_log[30:].count(1) > 0
