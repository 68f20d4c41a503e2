"""The whole engine with one weight buffer where rule 2's bank wait binds (hwsim.engine: a tile's parameter
beats wait for the drain's last read of their bank for the tile two before), in the Amaranth simulator:
streamed, resident, with pixel tiles; logits == golden, cycles and every counter == hwsim; without the wait
(the ``no_bank_wait`` mutant) the parameters of the tile two before are overwritten and the logits go wrong."""

import numpy as np
import pytest

from hwsim.engine import COUNTER_NAMES, EngineModel
from rtl.engine.top import Build, Engine
from tests.hwsim.test_bank_wait import CASES, check_closed_form_and_reference, setup_case
from tests.rtl.engine.streams import simulate_engine


def _run(case, mutation=None):
    seed, mopts, copts = CASES[case]
    model, cfg, cm, x, want = setup_case(seed, mopts, copts)
    assert check_closed_form_and_reference(model, cfg, cm, x, want)  # the wait binds
    (got,) = simulate_engine(Engine(config=cfg, max_ops=8, build=Build.VERIFY, mutation=mutation), cm, [x])
    return got, EngineModel(cfg).estimate(model), want


@pytest.mark.parametrize("case", range(len(CASES)))
def test_engine_equals_golden_and_hwsim(case):
    got, est, want = _run(case)
    assert np.array_equal(got["logits"], want)
    at = est.load.cycles if est.load is not None else 0  # a resident engine's image starts after its load
    assert [(o["start"] - at, o["end"] - at) for o in got["ops"]] == [(l.start, l.end) for l in est.layers]
    for op, layer in zip(got["ops"], est.layers):
        assert {k: op[k] for k in COUNTER_NAMES} == layer.as_dict(), layer.name
    assert got["total_cycles"] == at + est.total_cycles


@pytest.mark.parametrize("case", [0, 1])
def test_missing_bank_wait_is_caught(case):
    """Streamed (the case found) and resident: the mutant's logits differ from golden."""
    got, _, want = _run(case, mutation="no_bank_wait")
    assert not np.array_equal(got["logits"], want)


@pytest.mark.parametrize("case", [0, 1])
def test_stalls_and_a_reset(case):
    """Gaps on every input and ``o`` back-pressure, a reset in the middle, two images: the wait follows the
    drain's events, so the logits stay golden and only the cycles change."""
    seed, mopts, copts = CASES[case]
    model, cfg, cm, x, want = setup_case(seed, mopts, copts)
    est = EngineModel(cfg).estimate(model)
    got = simulate_engine(Engine(config=cfg, max_ops=8, build=Build.VERIFY), cm, [x, x], seed=seed,
                          reset_at=est.total_cycles // 2)
    for g in got:
        assert np.array_equal(g["logits"], want)
        for op, layer in zip(g["ops"], est.layers):
            assert {k: op[k] for k in COUNTER_NAMES if k != "cycles"} == \
                {k: v for k, v in layer.as_dict().items() if k != "cycles"}, layer.name
    at = est.load.cycles if est.load is not None else 0
    assert got[0]["total_cycles"] > at + est.total_cycles  # the stalls cost cycles
