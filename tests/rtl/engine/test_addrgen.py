"""The engine's address generator against its reference: any kernel, stride, padding; stalls; reset."""

from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtl.engine.addrgen import AddrGen, addrgen_command, addrgen_ref
from tests.rtl.engine.streams import run_unit


def simulate_addrgen(gen, commands, **kw):
    """``commands`` through the generator (:func:`run_unit`); its steps as :func:`addrgen_ref` writes them."""
    tiles = gen.pixel_tile > 1
    if tiles:  # the `tiled` input (one value for the run), not a command field
        (tiled,) = {c.get("tiled", 0) for c in commands}
        kw["setup"] = ((gen.tiled, tiled),)
    plain = [{k: v for k, v in c.items() if k != "tiled"} for c in commands]
    out = run_unit(gen, plain, len(addrgen_ref(gen, commands)), i="cmd", **kw)
    return [(None if p.pad else int(p.addr), int(p.s), int(p.g), int(p.last), int(p.end))
            + ((int(p.p),) if tiles else ()) for p in out]


@st.composite
def _command(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    pad = draw(st.integers(0, max(kh, kw) - 1))
    h = draw(st.integers(max(1, kh - 2 * pad), 6))
    w = draw(st.integers(max(1, kw - 2 * pad), 6))
    return addrgen_command(h, w, draw(st.integers(1, 3)), (kh, kw), draw(st.integers(1, 3)), pad)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_command(), min_size=1, max_size=2), st.integers(0, 2**31 - 1), st.booleans(),
       st.sampled_from([1, 1, 2, 3, 8]), st.sampled_from([0, 1, 1]))
def test_matches_reference_with_stalls(commands, seed, stall, pixel_tile, tiled):
    print("seed", seed, "stall", stall, "pixel_tile", pixel_tile, "tiled", tiled, commands)
    gen = AddrGen(addr_bits=9, dim_bits=5, pixel_tile=pixel_tile)
    if pixel_tile > 1:
        commands = [dict(c, tiled=tiled) for c in commands]
    want = addrgen_ref(gen, commands)
    assert simulate_addrgen(gen, commands, seed=seed if stall else None) == want


def test_padded_positions_and_linear_window():
    gen = AddrGen(addr_bits=8, dim_bits=4)
    # 3x3 stride 1 pad 1 over 2x2, one group: pixel (0, 0) reads only (0,0),(0,1),(1,0),(1,1)
    steps = addrgen_ref(gen, [addrgen_command(2, 2, 1, (3, 3), 1, 1)])
    assert [a for a, *_ in steps[:9]] == [None, None, None, None, 0, 1, None, 2, 3]
    # a linear layer after flatten: a kernel as large as the input, one pixel, every word once
    lin = addrgen_command(3, 2, 2, (3, 2), 1, 0)
    steps = simulate_addrgen(gen, [lin])
    assert [a for a, *_ in steps] == list(range(12)) and steps[-1][3:] == (1, 1)


@pytest.mark.parametrize("reset_at, pixel_tile", [(0, 1), (5, 1), (30, 1), (23, 3), (41, 8)])
def test_reset_in_the_middle(reset_at, pixel_tile):
    seed = 40 + reset_at
    print("seed", seed)
    gen = AddrGen(addr_bits=9, dim_bits=5, pixel_tile=pixel_tile)
    cmds = [addrgen_command(4, 5, 2, (3, 3), 2, 1)]
    if pixel_tile > 1:
        cmds = [dict(cmds[0], tiled=1)]
    assert simulate_addrgen(gen, cmds, seed=seed, reset_at=reset_at) == addrgen_ref(gen, cmds)


def test_latency_is_one_cycle_and_passes_run_back_to_back():
    from amaranth.sim import Simulator

    gen = AddrGen(addr_bits=6, dim_bits=4)
    cmd = addrgen_command(2, 1, 1, (1, 1), 1, 0)  # two steps
    seen = []

    async def bench(ctx):
        ctx.set(gen.o.ready, 1)
        ctx.set(gen.cmd.payload, cmd)
        ctx.set(gen.cmd.valid, 1)
        for cycle in range(6):
            seen.append((cycle, ctx.get(gen.cmd.ready), ctx.get(gen.o.valid)))
            await ctx.tick()

    sim = Simulator(gen)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # cmd taken in cycle 0; steps in cycles 1, 2 (the next cmd is taken in cycle 2, the last step)
    assert seen[0] == (0, 1, 0)
    assert [v for _, _, v in seen[1 : 1 + gen.latency + 4]] == [1, 1, 1, 1, 1]
    assert seen[2][1] == 1 and seen[1][1] == 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(addr_bits=0), "addr_bits must be an integer in 1..32, not 0"),
    (dict(addr_bits=8, dim_bits=17), "dim_bits must be an integer in 1..16, not 17"),
])
def test_validation(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        AddrGen(**kwargs)


def test_one_group_of_a_wider_tensor():
    """A pool walks group g of a tensor with G words per pixel: every address is p*G + g."""
    gen = AddrGen(addr_bits=8, dim_bits=4)
    cmd = addrgen_command(4, 4, 1, (2, 2), 2, 0, pixel_words=3, offset=2)
    steps = simulate_addrgen(gen, [cmd])
    assert steps == addrgen_ref(gen, [cmd])
    assert [a for a, *_ in steps[:4]] == [2, 5, 14, 17]
    with pytest.raises(ValueError, match="groups 3..3 are outside the 3 words of a pixel"):
        addrgen_command(4, 4, 1, (2, 2), 2, 0, pixel_words=3, offset=3)


def test_command_refuses_a_kernel_larger_than_the_input():
    with pytest.raises(ValueError, match="kernel 5x5 does not fit the padded input 2x2"):
        addrgen_command(2, 2, 1, (5, 5), 1, 1)


def test_pad_edge_mutant_differs_only_at_the_right_edge():
    """The test-only off-by-one generator reads a word where the real one pads (right edge only)."""
    good, bad = AddrGen(addr_bits=8, dim_bits=4), AddrGen(addr_bits=8, dim_bits=4, mutation="pad_edge")
    cmd = [addrgen_command(3, 3, 1, (3, 3), 1, 1)]
    want, got = simulate_addrgen(good, cmd), simulate_addrgen(bad, cmd)
    assert want == addrgen_ref(good, cmd) and got != want
    diff = [(w, g) for w, g in zip(want, got) if w != g]
    assert diff and all(w[0] is None and g[0] is not None for w, g in diff)
    with pytest.raises(ValueError, match="^mutation must be one of None, pad_edge, bank_off, not 'x'$"):
        AddrGen(addr_bits=8, mutation="x")


def test_pixel_tile_order_reuses_each_window_position():
    """Pixel tiles of 3 over a 2x3 output (a 3x3 kernel, pad 1, 1 group): every window position s is issued
    for the tile's 3 pixels in a row (the weight word is read at p == 0 and held), pixels 3..5 follow; the
    padding test is per pixel."""
    gen = AddrGen(addr_bits=8, dim_bits=4, pixel_tile=3)
    cmd = [dict(addrgen_command(2, 3, 1, (3, 3), 1, 1), tiled=1)]
    steps = simulate_addrgen(gen, cmd)
    assert steps == addrgen_ref(gen, cmd)
    assert [(s, p) for _, s, _, _, _, p in steps[:6]] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert [a for a, *_ in steps[9:12]] == [None, 0, 1]  # s = 3 (i=1, j=0): pixel 0 pads on the left
    assert [a for a, *_ in steps[12:15]] == [0, 1, 2]  # s = 4 (the centre)
    assert [a for a, *_ in steps[27:30]] == [None, 0, 1]  # pixels 3..5 (row 1), s = 0: input row 0
    assert [a for a, *_ in steps[51:54]] == [None] * 3  # ... s = 8: below the input
    assert [last for *_, last, _, _ in steps].count(1) == 2 and steps[-1][3:5] == (1, 1)
    bad = AddrGen(addr_bits=8, dim_bits=4, pixel_tile=3, mutation="bank_off")
    assert [st[:5] for st in simulate_addrgen(bad, cmd)] == [st[:5] for st in steps]
    assert [st[5] for st in simulate_addrgen(bad, cmd)] != [st[5] for st in steps]
    # a pass without `tiled` (a pool) goes pixel by pixel, p 0
    plain = [dict(cmd[0], tiled=0)]
    assert simulate_addrgen(gen, plain) == [st + (0,) for st in addrgen_ref(SimpleNamespace(pixel_tile=1), plain)]
    with pytest.raises(ValueError, match="^mutation 'bank_off' needs pixel_tile > 1$"):
        AddrGen(addr_bits=8, mutation="bank_off")
    with pytest.raises(ValueError, match="^pixel_tile must be an integer in 1..64, not 65$"):
        AddrGen(addr_bits=8, pixel_tile=65)
