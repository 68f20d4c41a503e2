"""The engine's vector unit (max, sum, pair) against its reference: padding, stalls, reset."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.config import EngineConfig
from rtl.engine.vector import VECTOR_OPS, VectorUnit, vector_ref
from tests.rtl.engine.streams import run_unit


def simulate_vector(unit, op, lowest, steps, **kw):
    """``steps`` through the unit set to ``op`` and ``lowest`` (:func:`run_unit`); ``(a, b)`` of each ``o`` beat."""
    beats = [{"x": list(x), "y": list(y), "pad": pad, "first": first, "last": last}
             for x, y, pad, first, last in steps]
    out = run_unit(unit, beats, sum(1 for s in steps if s[4]),
                   setup=((unit.op, VECTOR_OPS.index(op)), (unit.lowest, lowest)), **kw)
    cols = unit.config.cols
    return [([int(v.a[n]) for n in range(cols)], [int(v.b[n]) for n in range(cols)]) for v in out]


def _steps(unit, n, rng, signed_codes):
    b = unit.config.act_bits
    lo, hi = (-(1 << (b - 1)), (1 << (b - 1)) - 1) if signed_codes else (0, (1 << b) - 1)
    cols = unit.config.cols
    out, k = [], 0
    for i in range(n):
        last = rng.random() < 0.3 or i == n - 1
        out.append(([rng.randint(lo, hi) for _ in range(cols)], [rng.randint(lo, hi) for _ in range(cols)],
                    int(rng.random() < 0.3), int(k == 0), int(last)))
        k = 0 if last else k + 1
    return out


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 6), st.integers(4, 12), st.sampled_from(["max", "sum", "pair"]), st.booleans(),
       st.integers(0, 2**31 - 1), st.booleans())
def test_matches_reference(cols, act_bits, op, signed_codes, seed, stall):
    print("seed", seed)
    rng = random.Random(seed)
    unit = VectorUnit(config=EngineConfig(rows=1, cols=cols, bits=4, act_bits=act_bits, max_k=16))
    lowest = -(1 << (act_bits - 1)) if signed_codes else 0
    steps = _steps(unit, 30, rng, signed_codes)
    assert simulate_vector(unit, op, lowest, steps, seed=seed if stall else None) == vector_ref(unit, op, lowest, steps)


@pytest.mark.parametrize("op", ["max", "sum"])
def test_reset_in_the_middle(op):
    seed = 61
    print("seed", seed)
    rng = random.Random(seed)
    unit = VectorUnit(config=EngineConfig(rows=1, cols=3, bits=8, max_k=16))
    steps = _steps(unit, 25, rng, False)
    assert simulate_vector(unit, op, 0, steps, seed=seed, reset_at=4) == vector_ref(unit, op, 0, steps)


def test_a_window_of_max_k_largest_codes_fits_the_sum():
    unit = VectorUnit(config=EngineConfig(rows=1, cols=2, bits=4, act_bits=4, max_k=9))
    steps = [([15, 15], [0, 0], 0, int(k == 0), int(k == 8)) for k in range(9)]
    assert simulate_vector(unit, "sum", 0, steps) == [([135, 135], [0, 0])] == vector_ref(unit, "sum", 0, steps)


def test_validation():
    with pytest.raises(ValueError, match="^config must be an EngineConfig, not NoneType$"):
        VectorUnit(config=None)
