"""The writer (outputs gathered into words, or the o stream) against writer_ref, with gaps, back-pressure and a
reset in the middle."""

import random

import pytest
from amaranth.hdl import Module, Mux
from amaranth.lib import memory

from hwsim.config import EngineConfig
from rtl.engine.layouts import desc_layout
from rtl.engine.writer import Writer, writer_ref
from tests.rtl.engine.streams import STALL, run

CONV, MAX, AVG, ADD = range(4)


def _desc(op, cols, in_c, out_c, rows_u, pixels, last=0):
    g_in, g_out = -(-in_c // cols), -(-out_c // cols)
    return {"op": op, "in_c": in_c, "in_g": g_in, "out_c": out_c, "out_g": g_out, "rows_u": rows_u,
            "pixels": pixels, "tiles": -(-out_c // rows_u), "in_words": pixels * g_in, "last": last}


def _write(cfg, desc, beats, *, times=1, seed=None, reset_at=None):
    """``beats`` through a writer ``times`` over (the operation repeated) on a memory of garbage: its words
    after the run, the ``o`` beats and the number of ``done`` pulses."""
    wr = Writer(config=cfg)
    depth = desc["pixels"] * max(desc["in_g"], desc["out_g"]) + 2
    garbage = [random.Random(depth).randrange(1 << cfg.act_word_bits) for _ in range(depth)]
    top = Module()
    top.submodules.writer = wr
    top.submodules.mem = mem = memory.Memory(shape=cfg.act_word_bits, depth=depth, init=garbage)
    wp = mem.write_port(granularity=cfg.act_bits)
    top.d.comb += [wp.addr.eq(wr.wr.addr), wp.data.eq(wr.wr.data), wp.en.eq(Mux(wr.wr.en, wr.wr.mask, 0))]
    rng_i, rng_o, rng_p = [None] * 3 if seed is None else [random.Random(f"{seed}/{k}") for k in range(3)]
    items = list(beats) * times
    is_max = desc["op"] == MAX
    res = {"o": [], "done": 0}

    async def main(ctx):
        k = 0
        sampled = ctx.tick().sample(wr.o.valid, wr.o.ready, wr.o.payload, wr.done)
        cycles = 0
        async for _, _, ov, ordy, oq, done in sampled:
            if ov and ordy:
                res["o"].append(int(oq))
            res["done"] += done
            cycles += 1
            if cycles > 4 * len(items) + 40:
                break
            if is_max:  # the pool port is always ready: a beat is a cycle with valid
                put = k < len(items) and (rng_p is None or rng_p.random() >= STALL)
                ctx.set(wr.pool.valid, put)
                if put:
                    ctx.set(wr.pool.payload, items[k])
                    k += 1
        res["words"] = [ctx.get(mem.data[a]) for a in range(depth)]

    run(top, [] if is_max else [(wr.i, items, rng_i)], [(wr.o, rng_o)], main, reset_at=reset_at,
        setup=((wr.desc, desc_layout(cfg).const(desc)),), settle=1)
    return garbage, res


CASES = [  # (cols, act_bits, desc, seed, reset_at, times)
    (2, 4, _desc(CONV, 2, 3, 5, 2, 3), None, None, 1),
    (4, 5, _desc(CONV, 4, 6, 7, 3, 2), 1, None, 2),
    (3, 4, _desc(CONV, 3, 2, 8, 8, 2), 2, 9, 1),
    (3, 6, _desc(CONV, 3, 2, 5, 1, 2, last=1), 3, 4, 1),
    (3, 4, _desc(CONV, 3, 2, 5, 1, 1), None, None, 2),  # a tile's end on every beat, back to back
    (4, 4, _desc(ADD, 4, 6, 6, 1, 3), 4, 5, 2),
    (2, 4, _desc(ADD, 2, 3, 3, 1, 2, last=1), 5, None, 1),
    (4, 4, _desc(AVG, 4, 5, 5, 1, 3), 6, 6, 2),
    (3, 5, _desc(MAX, 3, 4, 4, 1, 3), 7, None, 2),
]


@pytest.mark.parametrize("cols, act_bits, desc, seed, reset_at, times", CASES)
def test_matches_writer_ref(cols, act_bits, desc, seed, reset_at, times):
    print("seed", seed)
    cfg = EngineConfig(rows=2, cols=cols, bits=4, act_bits=act_bits, out_bits=8, max_k=16)
    rng = random.Random(seed)
    n = {CONV: desc["pixels"] * desc["out_c"], MAX: desc["pixels"] * desc["in_g"]}.get(
        desc["op"], desc["pixels"] * desc["in_c"])
    if desc["op"] == MAX:
        beats = [[rng.randrange(1 << act_bits) for _ in range(cols)] for _ in range(n)]
    else:
        beats = [rng.randrange(-(1 << cfg.out_bits), 1 << cfg.out_bits) for _ in range(n)]
    garbage, res = _write(cfg, desc, beats, times=times, seed=seed, reset_at=reset_at)
    words, o = writer_ref(cfg, desc, beats)
    assert res["done"] == times
    assert res["o"] == o * times
    assert res["words"] == [words.get(a, g) for a, g in enumerate(garbage)]
    assert desc["last"] or len(words) == desc["pixels"] * (desc["out_g"] if desc["op"] == CONV else desc["in_g"])


def test_validation():
    with pytest.raises(ValueError, match="^config must be an EngineConfig, not int$"):
        Writer(config=1)
