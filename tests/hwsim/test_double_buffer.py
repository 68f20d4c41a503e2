"""Two weight buffers (hwsim.engine rule 2): tile loads overlap the previous tile's steps; the closed form, the
reference and the compiler agree, only the cycles change, and the config field leaves today's engine as it was."""

import numpy as np
import pytest

from hwsim.compiler import compile_model
from hwsim.config import EngineConfig
from hwsim.engine import COUNTER_NAMES, EngineModel
from hwsim.reference import run_engine
from hwsim.samples import small_model
from hwsim.sizing import size_engine
from quant.intmodel import golden
from tests.hwsim import models

#: (model options, config options); the last one has S = 1 and one parameter beat per tile, so a tile's
#: parameter beats wait for the drain of the bank's previous tile (rule 2).
MODELS = [
    (dict(c0=2, h=4, w=4, c1=3, bits=6), dict(rows=2, cols=2, bits=6, mult_rows=1)),
    (dict(c0=2, h=4, w=4, c1=5, k1=1, p1=0, bits=6, head="linear"), dict(rows=1, cols=2, bits=6, mult_rows=1)),
    (dict(c0=1, h=5, w=4, c1=5, k1=3, s1=2, p1=1, bits=5, stem="conv", mode="threshold", pool="avgpool",
          pool_pad=1, head="linear", classes=3), dict(rows=3, cols=2, bits=5, mult_rows=2, requant=("fixed", "threshold"))),
    (dict(c0=2, h=2, w=2, c1=3, k1=1, p1=0, bits=8, classes=9), dict(rows=2, cols=16, bits=8, weight_words=18)),
]


def _estimates(case, seed):
    rng = np.random.default_rng(seed)
    mopts, copts = MODELS[case]
    model = small_model(rng, **mopts)
    copts = {"weight_words": 75, **copts}  # halves of 37 words (9 in the last case): no power of two
    two = EngineConfig(act_words=(64, 64, 64), max_k=256, weight_buffers=2, **copts)
    x = rng.integers(model.input.lo, model.input.hi + 1, size=model.input_shape)
    return model, two, x


@pytest.mark.parametrize("case", range(len(MODELS)))
def test_closed_form_equals_reference(case):
    model, two, x = _estimates(case, 900 + case)
    one = two.replace(weight_buffers=1)
    cm = compile_model(model, two)
    est, est1 = EngineModel(two).estimate(model), EngineModel(one).estimate(model)
    run = run_engine(cm.program, cm.weights, x)
    assert [l.as_dict() for l in run.ops] == [l.as_dict() for l in est.layers]
    assert [(l.start, l.end) for l in run.ops] == [(l.start, l.end) for l in est.layers]
    assert run.totals() == est.totals()
    assert np.array_equal(run.logits, golden.run_codes(model, x[None])[model.output.name][0].reshape(-1))
    # the same w stream, the same accesses: only the cycles change; fewer, but where the bank wait binds
    # (case 3: a tile of one step and one parameter beat, rule 2) a layer may take a few more
    for a, b in zip(est.layers, est1.layers):
        assert {k: v for k, v in a.as_dict().items() if k != "cycles"} == \
            {k: v for k, v in b.as_dict().items() if k != "cycles"}
        assert a.cycles <= b.cycles or case == 3
    tiles = {o.name: o.tiles for o in cm.program.ops}
    assert any(a.cycles < b.cycles for a, b in zip(est.layers, est1.layers) if tiles[a.name] > 1)
    assert est.total_cycles < est1.total_cycles


def test_parameter_beats_wait_for_the_drain():
    """Case 3 (S = 1, one parameter beat): without rule 2's bank wait the fc layer would take fewer cycles, so
    the wait is in the schedule; the reference (beat by beat) agrees with the closed form on it."""
    model, two, x = _estimates(3, 903)
    fc = EngineModel(two).estimate(model).layer("fc")
    cm = compile_model(model, two)
    op = next(o for o in cm.program.ops if o.name == "fc")
    assert (op.steps, op.param_beats, op.tiles) == (1, 1, 5)
    # without the wait: loads back to back (S + n_p = 2 cycles a tile), each tile's last step gated only by
    # the previous one's shadow (rows = 2): tile t's last step at a + 2t + 2, the last event D + rows_T + L_q
    # after the last tile's
    T, D = op.tiles, two.step_latency
    no_wait_end = fc.start + 2 * (T - 1) + 2 + D + (9 - 2 * (T - 1)) + two.requant_latency
    assert fc.end > no_wait_end


def test_lenet_fc_layers_busy():
    """The LeNet-5-BN shapes at 4x4 W8: the fc layers were 44-49 % busy with one buffer."""
    model = models.random_lenet(np.random.default_rng(5), "fixed")
    busy = {}
    for wb in (1, 2):
        cfg, _ = size_engine(model, rows=4, cols=4, weight_buffers=wb)
        assert cfg.weight_words == (100, 256)[wb - 1]  # fc1's 400 / 4 words; two halves of 128 words
        est = EngineModel(cfg).estimate(model)
        busy[wb] = {n: est.layer(n).util for n in ("fc1", "fc2", "fc3")}
    assert all(v < 0.5 for v in busy[1].values())
    assert busy[2]["fc1"] > 0.94 and busy[2]["fc2"] > 0.88 and busy[2]["fc3"] > 0.62


def test_config_field():
    cfg = EngineConfig(rows=2, cols=2, weight_words=9)
    assert "weight_buffers" not in cfg.to_dict() and cfg.half_words == 9
    two = cfg.replace(weight_buffers=2)
    assert two.to_dict()["weight_buffers"] == 2 and two.half_words == 4
    assert EngineConfig.from_dict(two.to_dict()) == two
    for bad, msg in ((3, "weight_buffers must be an integer in 1..2, not 3"),
                     (True, "weight_buffers must be an integer, not True")):
        with pytest.raises(ValueError, match=msg):
            cfg.replace(weight_buffers=bad)
    with pytest.raises(ValueError, match="weight_buffers must be 1 with resident weights"):
        cfg.replace(weights="resident", weight_buffers=2)
    assert two.replace(weights="resident").weight_buffers == 1  # made resident: one buffer, the store


def test_compiler_refuses_a_tile_larger_than_a_half():
    model = small_model(np.random.default_rng(1), c0=2, h=4, w=4, c1=3, bits=6)
    cfg = EngineConfig(rows=2, cols=2, bits=6, act_words=(64, 64, 64), weight_words=17, max_k=256, weight_buffers=2)
    with pytest.raises(ValueError, match="each of the buffer's two halves holds 8"):
        compile_model(model, cfg)


def test_sizing_resident_has_one_buffer():
    model = small_model(np.random.default_rng(2), c0=2, h=4, w=4, c1=3, bits=6)
    cfg, cm = size_engine(model, rows=2, cols=2, weights="resident", weight_buffers=2)
    assert cfg.resident and cfg.weight_buffers == 1 and cfg.weight_words == cm.program.store_words
    cfg, cm = size_engine(model, rows=2, cols=2, weight_buffers=2)
    peak = cm.program.memory_map()["weights"]["peak_words"]
    assert cfg.weight_buffers == 2 and cfg.half_words >= peak > cfg.half_words // 2  # a power of two
    assert cfg.weight_words == 2 * cfg.half_words and cfg.half_words & (cfg.half_words - 1) == 0
    assert set(COUNTER_NAMES) <= set(EngineModel(cfg).estimate(model).layers[0].as_dict())
