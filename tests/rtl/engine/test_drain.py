"""The drain (shadow entries into the requant unit, a max pool's items to the writer) against drain_ref, with
gaps, back-pressure and a reset in the middle."""

import random

import pytest

from hwsim.compiler import Unit
from hwsim.config import EngineConfig
from rtl.engine.controller import bank_bits
from rtl.engine.drain import Drain, drain_ref
from rtl.engine.layouts import desc_layout
from rtl.engine.requant import requant_entry_layout
from tests.rtl.engine.streams import STALL, run

CONV, MAX, AVG, ADD = range(4)
CFG = EngineConfig(rows=3, cols=3, bits=2, max_k=16, act_words=(16, 16), weight_words=4, mult_rows=2,
                   requant=("fixed", "threshold"))


def _desc(op, in_c, out_c, rows_u, pixels, mult=0, **kw):
    g_in, g_out = -(-in_c // CFG.cols), -(-out_c // CFG.cols)
    return {"op": op, "in_c": in_c, "in_g": g_in, "out_c": out_c, "out_g": g_out, "rows_u": rows_u,
            "pixels": pixels, "tiles": -(-out_c // rows_u), "mult": mult, "shift": 3, "lo": -5, "hi": 9,
            "m0": -7, "m1": 5, "n": 2, **kw}


def _drain(desc, banks, items, *, seed=None, reset_at=None, cfg=CFG):
    """``items`` into the drain's unit stream (random gaps), its ``o`` taken with random back-pressure:
    the entries (integers of the entry layout) or, for a max pool, the ``pool`` items."""
    dr = Drain(config=cfg)
    unit = {CONV: (Unit.MULT if desc["mult"] else Unit.ADDER).value}.get(desc["op"], "vec")
    src = getattr(dr, unit)
    rng_i, rng_o = [None] * 2 if seed is None else [random.Random(f"{seed}/{k}") for k in range(2)]
    is_max = desc["op"] == MAX
    out = []

    async def main(ctx):
        k, cycles = 0, 0
        await ctx.tick()  # dr_last (a register) reads the descriptor a cycle late, as in the engine
        sampled = ctx.tick().sample(src.valid, src.ready, dr.o.valid, dr.o.ready, dr.o.payload, dr.pool.valid,
                                    dr.pool.payload)
        async for _, _, iv, ir, ov, orr, oq, pv, pq in sampled:
            if ov and orr:
                out.append(oq.as_value().value)
            if pv:
                out.append([int(v) for v in pq])
            k += bool(iv and ir)
            cycles += 1
            if cycles > 8 * len(items) * cfg.cols * cfg.pixel_tile + 40:
                break
            if not iv or ir:  # a beat is held until taken
                put = k < len(items) and (rng_i is None or rng_i.random() >= STALL)
                ctx.set(src.valid, put)
                if put:
                    ctx.set(src.payload, items[k])

    setup = ((dr.desc, desc_layout(cfg).const(desc)), (dr.banks, banks))
    run(dr, [(src, items, None)] if reset_at else [], [(dr.o, rng_o)], main, reset_at=reset_at, setup=setup)
    return out


CASES = [  # (desc, seed, reset_at)
    (_desc(CONV, 2, 5, 3, 2), None, None),
    (_desc(CONV, 2, 7, 2, 3, mult=1), 1, 3),
    (_desc(CONV, 2, 4, 3, 3, threshold=1, top=3), 2, 5),
    (_desc(AVG, 7, 7, 1, 3), 3, 4),
    (_desc(ADD, 5, 5, 1, 2), 4, 2),
    (_desc(MAX, 7, 7, 1, 2), 5, None),
]


@pytest.mark.parametrize("desc, seed, reset_at", CASES)
def test_matches_drain_ref(desc, seed, reset_at):
    print("seed", seed)
    rng = random.Random(seed)
    banks = [rng.randrange(1 << bank_bits(CFG)) for _ in range(2)]
    op = desc["op"]
    if op == CONV:
        rows, bits = (CFG.mult_rows, CFG.mult_acc_bits) if desc["mult"] else (CFG.rows, CFG.acc_bits)
        lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if desc["mult"] else (0, 1 << bits)
        items = [[rng.randrange(lo, hi) for _ in range(rows)] for _ in range(desc["tiles"] * desc["pixels"])]
        desc = dict(desc, rows_u=min(desc["rows_u"], rows))
    else:
        items = [{"a": [rng.randrange(-60, 60) for _ in range(CFG.cols)],
                  "b": [rng.randrange(-(1 << CFG.act_bits), 1 << CFG.act_bits) for _ in range(CFG.cols)]}
                 for _ in range(desc["pixels"] * desc["in_g"])]
    want = drain_ref(CFG, desc, banks, items)
    if op != MAX:
        want = [requant_entry_layout(CFG).const(e).as_value().value for e in want]
    assert _drain(desc, banks, items, seed=seed, reset_at=reset_at) == want


@pytest.mark.parametrize("tp, desc, seed, reset_at", [
    (2, _desc(CONV, 2, 5, 3, 5), 11, None),  # 5 pixels: tiles of 2, 2, 1
    (3, _desc(CONV, 2, 7, 2, 4, mult=1), 12, 4),
    (4, _desc(CONV, 2, 4, 3, 3, threshold=1, top=3), 13, 7),
    (3, _desc(AVG, 7, 7, 1, 3), 14, 4),  # a vector operation is not tiled
])
def test_pixel_tiles_drain_pixel_by_pixel(tp, desc, seed, reset_at):
    """Pixel tiles: one item per pixel tile (every bank's totals), its pixels' entries in order, rows within."""
    print("seed", seed)
    cfg = CFG.replace(pixel_tile=tp)
    rng = random.Random(seed)
    banks = [rng.randrange(1 << bank_bits(cfg)) for _ in range(2)]
    if desc["op"] == CONV:
        rows, bits = (cfg.mult_rows, cfg.mult_acc_bits) if desc["mult"] else (cfg.rows, cfg.acc_bits)
        lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if desc["mult"] else (0, 1 << bits)
        n = desc["tiles"] * -(-desc["pixels"] // tp)
        items = [[[rng.randrange(lo, hi) for _ in range(rows)] for _ in range(tp)] for _ in range(n)]
        desc = dict(desc, rows_u=min(desc["rows_u"], rows))
    else:
        items = [{"a": [rng.randrange(-60, 60) for _ in range(cfg.cols)],
                  "b": [rng.randrange(-(1 << cfg.act_bits), 1 << cfg.act_bits) for _ in range(cfg.cols)]}
                 for _ in range(desc["pixels"] * desc["in_g"])]
    want = [requant_entry_layout(cfg).const(e).as_value().value for e in drain_ref(cfg, desc, banks, items)]
    assert _drain(desc, banks, items, seed=seed, reset_at=reset_at, cfg=cfg) == want
    if desc["op"] == CONV:  # one entry per pixel and row: the partial tile's unused banks are not sent
        assert len(want) == desc["pixels"] * sum(min(desc["rows_u"], desc["out_c"] - t * desc["rows_u"])
                                                 for t in range(desc["tiles"]))


def test_validation():
    with pytest.raises(ValueError, match="^config must be an EngineConfig, not int$"):
        Drain(config=1)
