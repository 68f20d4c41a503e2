"""verification.model: tile reference against the golden model, tiling round trips, test-data generators."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.config import ArrayConfig
from hwsim.schedule import tile_grid
from verification.model import (
    Tile,
    TileRequant,
    assemble,
    extreme_tile,
    plan_layer,
    random_tile,
    tile_acc,
    tile_outputs,
)

FIXED = ArrayConfig(rows=4, cols=3, pe="adder", bits=8, max_k=64, requant="fixed")
FB = {"m": 16, "n": 31, "shift": 5, "lo": 9, "lo_signed": True, "k": 7, "thr": 15, "thr_signed": False}


def _pe_loop_acc(x, w, pe):
    """Independent model of the array: one reduction step per cycle, every PE ``acc += |x - w|`` or ``x*w``."""
    rows, k = w.shape
    cols = x.shape[1]
    acc = [[0] * cols for _ in range(rows)]
    for step in range(k):
        for r in range(rows):
            for c in range(cols):
                xv, wv = int(x[step, c]), int(w[r, step])
                acc[r][c] += abs(xv - wv) if pe == "adder" else xv * wv
    return np.array(acc, dtype=np.int64)


def _naive_requant(acc, rq, bits):
    """Per-value requant written from the contract (python ints, floor shift, counted thresholds)."""
    out = np.empty(acc.shape, dtype=np.int64)
    qmax = (1 << bits) - 1
    for (r, c), a in np.ndenumerate(acc):
        a = int(a)
        if rq.mode == "fixed":
            v = (int(rq.m[r]) * a + int(rq.n[r])) // (1 << rq.shift)
            out[r, c] = min(max(v, rq.lo), rq.hi)
        else:
            cnt = sum(a >= int(t) for t in rq.thr[r])
            out[r, c] = qmax - cnt if rq.neg[r] else cnt
    return out


def test_tile_acc_equals_a_per_step_pe_loop():
    rng = np.random.default_rng(1)
    w = rng.integers(0, 256, (4, 17))
    x = rng.integers(0, 256, (17, 3))
    t = Tile(w=w, x=x, rq=TileRequant(mode="fixed", m=np.zeros(4), n=np.zeros(4)))
    assert np.array_equal(tile_acc(t, "adder"), _pe_loop_acc(x, w, "adder"))
    xs, ws = x - 128, w - 128
    ts = Tile(w=ws, x=xs, rq=t.rq)
    assert np.array_equal(tile_acc(ts, "mult"), _pe_loop_acc(xs, ws, "mult"))


def test_tile_outputs_equal_a_naive_requant():
    rng = np.random.default_rng(2)
    t = random_tile(FIXED, 20, rng, FB)
    exp = _naive_requant(_pe_loop_acc(t.x, t.w, "adder"), t.rq, FIXED.bits)
    assert np.array_equal(tile_outputs(t, FIXED), exp.T)
    assert len(np.unique(exp)) > 1
    thr_cfg = FIXED.replace(requant="threshold", bits=4)
    tt = random_tile(thr_cfg, 9, rng, FB)
    exp = _naive_requant(_pe_loop_acc(tt.x, tt.w, "adder"), tt.rq, 4)
    assert np.array_equal(tile_outputs(tt, thr_cfg), exp.T)
    assert len(np.unique(exp)) > 1


@pytest.mark.parametrize("o_ch,p_n", [(4, 3), (5, 7), (1, 1), (9, 2)])
def test_plan_and_assemble_round_trip(o_ch, p_n):
    """Row-tile-major tiles, padded, reassemble into the untiled layer's requantised output."""
    rng = np.random.default_rng(o_ch * 10 + p_n)
    k = 11
    w = rng.integers(0, 256, (o_ch, k))
    x = rng.integers(0, 256, (k, p_n))
    rq = TileRequant(mode="fixed", shift=6, lo=0, hi=255, m=rng.integers(-300, 300, o_ch),
                     n=rng.integers(-5000, 5000, o_ch))
    tiles = plan_layer(w, x, rq, FIXED, pad_value=7)
    tr, tc = tile_grid(o_ch, p_n, FIXED)
    assert len(tiles) == tr * tc
    assert [(t.o0, t.p0) for t in tiles] == [(i * 4, j * 3) for i in range(tr) for j in range(tc)]
    assert all(t.w.shape == (4, k) and t.x.shape == (k, 3) for t in tiles)
    got = assemble(tiles, [tile_outputs(t, FIXED) for t in tiles], o_ch, p_n)
    exp = _naive_requant(_pe_loop_acc(x, w, "adder"), rq, FIXED.bits)
    assert np.array_equal(got, exp)
    if p_n % 3:
        assert np.all(tiles[tc - 1].x[:, p_n % 3:] == 7)  # padded columns hold the zero point


def test_plan_refuses_bad_shapes():
    rq = TileRequant(mode="fixed", m=np.zeros(2), n=np.zeros(2))
    with pytest.raises(ValueError, match="weights have K=3 but the activations 4"):
        plan_layer(np.zeros((2, 3)), np.zeros((4, 1)), rq, FIXED, 0)
    with pytest.raises(ValueError, match="exceeds the array's max_k=64"):
        plan_layer(np.zeros((2, 65)), np.zeros((65, 1)), rq, FIXED, 0)
    with pytest.raises(ValueError, match="requant mode must be"):
        TileRequant(mode="float")


@pytest.mark.parametrize("pe,bits,requant", [("adder", 8, "fixed"), ("adder", 4, "threshold"),
                                             ("mult", 8, "fixed"), ("mult", 4, "threshold")])
def test_extreme_tile_hits_the_largest_accumulator(pe, bits, requant):
    cfg = ArrayConfig(rows=4, cols=2, pe=pe, bits=bits, max_k=32, requant=requant)
    fb = dict(FB, thr=cfg.acc_bits + 1, thr_signed=pe == "mult", n=40)
    t = extreme_tile(cfg, cfg.max_k, fb)
    assert t.k == cfg.max_k
    acc = tile_acc(t, pe)
    if pe == "adder":
        assert np.all(acc == cfg.max_k * ((1 << bits) - 1))
    else:
        big = 1 << (bits - 1)
        assert set(np.unique(acc)) == {cfg.max_k * big * big, -cfg.max_k * big * (big - 1)}
    # what an accumulator one bit narrower would hold
    n = cfg.acc_bits - 1
    wacc = (acc + (1 << (n - 1))) % (1 << n) - (1 << (n - 1)) if pe == "mult" else acc % (1 << n)
    wraps = wacc != acc
    assert wraps.any()
    out = tile_outputs(t, cfg)
    assert np.all((t.rq.apply(wacc, bits).T != out)[wraps.T])


def test_random_tile_requant_is_sensitive():
    """Fitted parameters spread outputs over the range, so wrong accumulators show."""
    rng = np.random.default_rng(3)
    for cfg in (FIXED, FIXED.replace(requant="threshold", bits=4)):
        t = random_tile(cfg, 30, rng, FB)
        out = tile_outputs(t, cfg)
        acc = tile_acc(t, cfg.pe)
        assert len(np.unique(out)) >= 4
        delta = max(1, int(np.ptp(acc)) // 4)
        assert np.any(t.rq.apply(acc + delta, cfg.bits).T != out)
