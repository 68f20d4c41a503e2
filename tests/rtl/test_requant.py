"""Requant (fixed point, thresholds) against its reference, with and without stalls."""

import random

import pytest

from hwsim.config import ArrayConfig
from rtl.layout import fixed_widths
from rtl.requant import Requant, requant_ref, simulate_requant


def _columns(cfg, n, rng):
    a = cfg.acc_bits
    if cfg.pe == "adder":
        return [[rng.choice([0, (1 << a) - 1, rng.randrange(1 << a)]) for _ in range(cfg.rows)]
                for _ in range(n)]
    h = 1 << (a - 1)
    return [[rng.choice([-h, h - 1, rng.randrange(-h, h)]) for _ in range(cfg.rows)]
            for _ in range(n)]


def _fixed_params(cfg, rng):
    fw = fixed_widths(cfg)
    mh, nh = 1 << (fw["mult_bits"] - 1), 1 << (fw["n_bits"] - 1)
    bh = 1 << (fw["bound_bits"] - 1)
    lo = rng.randrange(-bh, 0)
    return {
        "shift": rng.choice([0, rng.randrange(fw["prod_bits"] + 1), fw["prod_bits"]]),
        "lo": lo,
        "hi": rng.randrange(lo, bh),
        "m": [rng.choice([-mh, mh - 1, rng.randrange(-mh, mh)]) for _ in range(cfg.rows)],
        "n": [rng.choice([-nh, nh - 1, rng.randrange(-nh, nh)]) for _ in range(cfg.rows)],
    }


def _thr_params(cfg, rng):
    t = cfg.threshold_count
    if cfg.pe == "adder":
        lo, hi = 0, 1 << (cfg.acc_bits + 1)
    else:
        lo, hi = -(1 << cfg.acc_bits), 1 << cfg.acc_bits
    return {
        "neg": [rng.randrange(2) for _ in range(cfg.rows)],
        "thr": [[rng.randrange(lo, hi) for _ in range(t)] for _ in range(cfg.rows)],
    }


@pytest.mark.parametrize("pe", ["adder", "mult"])
@pytest.mark.parametrize("stall_seed", [None, 11])
def test_fixed_point(pe, stall_seed):
    seed = 31 if pe == "adder" else 32
    print("seed", seed, "stall seed", stall_seed)
    rng = random.Random(seed)
    cfg = ArrayConfig(rows=3, cols=1, pe=pe, bits=6, max_k=64, requant="fixed", out_bits=8,
                      mult_bits=10)
    rq = Requant(config=cfg)
    assert rq.latency == cfg.requant_latency - 1 == 2
    for _ in range(3):
        params = _fixed_params(cfg, rng)
        cols = _columns(cfg, 25, rng)
        assert simulate_requant(rq, cols, params, seed=stall_seed) == requant_ref(rq, cols, params)


def test_fixed_point_floor_shift_and_clamp():
    cfg = ArrayConfig(rows=2, cols=1, pe="adder", bits=4, max_k=4, out_bits=4)
    rq = Requant(config=cfg)
    params = {"shift": 2, "lo": -3, "hi": 9, "m": [-1, 3], "n": [1, -2]}
    cols = [[0, 0], [6, 1], [20, 13], [63, 63]]
    # row 0: (-a + 1) >> 2 floors toward -inf; row 1: (3a - 2) >> 2
    want = [[0, -1], [-2, 0], [-3, 9], [-3, 9]]
    assert requant_ref(rq, cols, params) == want
    assert simulate_requant(rq, cols, params) == want


@pytest.mark.parametrize("pe", ["adder", "mult"])
@pytest.mark.parametrize("stall_seed", [None, 5])
def test_thresholds(pe, stall_seed):
    seed = 41 if pe == "adder" else 42
    print("seed", seed, "stall seed", stall_seed)
    rng = random.Random(seed)
    cfg = ArrayConfig(rows=2, cols=1, pe=pe, bits=3, max_k=8, requant="threshold")
    rq = Requant(config=cfg)
    assert rq.latency == cfg.requant_latency - 1 == 1
    for _ in range(3):
        params = _thr_params(cfg, rng)
        cols = _columns(cfg, 25, rng)
        assert simulate_requant(rq, cols, params, seed=stall_seed) == requant_ref(rq, cols, params)


def test_threshold_count_and_negation():
    cfg = ArrayConfig(rows=2, cols=1, bits=2, max_k=4, requant="threshold")
    rq = Requant(config=cfg)
    params = {"neg": [0, 1], "thr": [[2, 5, 5], [1, 100, 3]]}
    cols = [[1, 0], [2, 1], [5, 3], [40, 100]]
    want = [[0, 3], [1, 2], [3, 1], [3, 0]]
    assert requant_ref(rq, cols, params) == want
    assert simulate_requant(rq, cols, params) == want


def test_requant_rejects_missing_params_and_bad_config():
    cfg = ArrayConfig(rows=1, cols=1, bits=4, max_k=4)
    rq = Requant(config=cfg)
    with pytest.raises(ValueError, match="^requant parameters missing: hi, n$"):
        requant_ref(rq, [[1]], {"shift": 0, "lo": 0, "m": [1]})
    assert simulate_requant(rq, [[3]], {"shift": 0, "lo": 0, "hi": 7, "m": [1], "n": [0]}) == [[3]]
    with pytest.raises(ValueError, match="config must be an hwsim.config.ArrayConfig"):
        Requant(config={"rows": 1})
