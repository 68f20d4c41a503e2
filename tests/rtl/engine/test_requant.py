"""The engine's shared requant unit against its reference: both forms, the add form, stalls, reset."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.config import EngineConfig
from rtl.engine.requant import SerialRequant, requant_entry_ref, serial_requant_ref
from tests.rtl.engine.streams import run_unit


def simulate_serial_requant(unit, entries, **kw):
    """``entries`` (missing fields 0) through the unit (:func:`run_unit`); the outputs taken from ``o``."""
    blank = {n: 0 for n, _ in unit.entry_layout}
    if "thr" in blank:
        blank["thr"] = [0] * unit.config.threshold_count
    return [int(v) for v in run_unit(unit, [{**blank, **e} for e in entries], len(entries), **kw)]


def _entries(unit, n, rng):
    cfg = unit.config
    out = []
    ah = 1 << (unit.a_bits - 1)
    for _ in range(n):
        kind = rng.choice(["conv", "add", "thr"] if "threshold" in cfg.requant and "fixed" in cfg.requant
                          else (["thr"] if "fixed" not in cfg.requant else ["conv", "add"]))
        if kind == "thr":
            thr = sorted(rng.randrange(1 << cfg.thr_bits) for _ in range(cfg.threshold_count))
            out.append({"threshold": 1, "a": min(rng.choice([0, rng.randrange(1 << cfg.acc_bits), thr[0], thr[-1]]),
                                               (1 << cfg.acc_bits) - 1),
                        "thr": thr, "neg": rng.randrange(2), "top": (1 << rng.randint(2, cfg.bits)) - 1})
            continue
        mh, nh = 1 << (cfg.mult_bits - 1), 1 << (cfg.n_bits - 1)
        lo = rng.randrange(-(1 << cfg.out_bits), 1)
        e = {"a": rng.choice([-ah, ah - 1, rng.randrange(-ah, ah)]),
             "m0": rng.choice([-mh, mh - 1, rng.randrange(-mh, mh)]),
             "n": rng.choice([-nh, nh - 1, rng.randrange(-nh, nh)]),
             "shift": rng.randrange(unit.sum_bits), "lo": lo, "hi": rng.randrange(lo, 1 << cfg.out_bits)}
        if rng.random() < 0.1:  # lo > hi: the clamp gives hi
            e["lo"], e["hi"] = e["hi"], e["lo"]
        if kind == "add":
            bh = 1 << cfg.act_bits
            e.update(b=rng.randrange(-bh, bh), m1=rng.randrange(-mh, mh), a=rng.randrange(-bh, bh))
        out.append(e)
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(4, 6), st.sampled_from([("fixed",), ("threshold",), ("fixed", "threshold")]),
       st.integers(0, 2**31 - 1), st.booleans())
def test_matches_reference(bits, modes, seed, stall):
    print("seed", seed)
    rng = random.Random(seed)
    cfg = EngineConfig(rows=2, cols=2, bits=bits, max_k=64, requant=modes, mult_bits=10, n_bits=24, out_bits=12)
    unit = SerialRequant(config=cfg)
    assert unit.latency == (6 if "fixed" in modes else 4)
    entries = _entries(unit, 30, rng)
    assert simulate_serial_requant(unit, entries, seed=seed if stall else None) == serial_requant_ref(unit, entries)


def test_eight_bit_fixed_point():
    seed = 88
    print("seed", seed)
    rng = random.Random(seed)
    unit = SerialRequant(config=EngineConfig(rows=1, cols=1, bits=8))
    entries = _entries(unit, 30, rng)
    assert simulate_serial_requant(unit, entries, seed=seed) == serial_requant_ref(unit, entries)


@pytest.mark.parametrize("reset_at", [0, 3])
def test_reset_in_the_middle(reset_at):
    seed = 90 + reset_at
    print("seed", seed)
    rng = random.Random(seed)
    unit = SerialRequant(config=EngineConfig(rows=1, cols=1, bits=4, requant=("fixed", "threshold")))
    entries = _entries(unit, 20, rng)
    assert simulate_serial_requant(unit, entries, seed=seed, reset_at=reset_at) == serial_requant_ref(unit, entries)


def test_formula_floors_and_clamps():
    cfg = EngineConfig(rows=1, cols=1, bits=4, requant=("fixed", "threshold"))
    unit = SerialRequant(config=cfg)
    entries = [
        {"a": 7, "m0": -3, "n": 1, "shift": 2, "lo": -5, "hi": 5},  # (-21 + 1) >> 2 = -5
        {"a": 7, "m0": -3, "n": 0, "shift": 2, "lo": -5, "hi": 5},  # -21 >> 2 = -6 -> -5
        {"a": 2, "b": 3, "m0": 4, "m1": -1, "n": 1, "shift": 1, "lo": 0, "hi": 15},  # (8 - 3 + 1) >> 1 = 3
        {"threshold": 1, "a": 5, "thr": [0, 5, 6] + [1 << cfg.acc_bits] * 12, "neg": 0, "top": 15},
        {"threshold": 1, "a": 5, "thr": [0, 5, 6] + [1 << cfg.acc_bits] * 12, "neg": 1, "top": 15},
    ]
    want = [-5, -5, 3, 2, 13]
    assert [requant_entry_ref(cfg, e) for e in entries] == want
    assert simulate_serial_requant(unit, entries) == want


def test_validation():
    with pytest.raises(ValueError, match="^config must be an EngineConfig, not int$"):
        SerialRequant(config=3)
