"""Resident weights (hwsim.engine rule 7): the closed form, the reference and the compiler's store agree."""

import numpy as np
import pytest

from hwsim.compiler import Op, compile_model
from hwsim.config import EngineConfig, WeightMode
from hwsim.engine import EngineModel
from hwsim.reference import load_store, run_engine
from hwsim.samples import small_model
from tests.hwsim import models

MODELS = [
    (dict(c0=2, h=4, w=4, c1=3, bits=6), dict(rows=2, cols=2, bits=6, mult_rows=1)),
    (dict(c0=1, h=5, w=4, c1=5, k1=3, s1=2, p1=1, bits=5, stem="conv", mode="threshold", pool="avgpool",
          pool_pad=1, head="linear", classes=3), dict(rows=3, cols=2, bits=5, mult_rows=2, requant=("fixed", "threshold"))),
    (dict(c0=3, h=4, w=3, c1=2, k1=2, p1=0, bits=4, pool="maxpool", pool_pad=1, head="adder_linear", classes=2),
     dict(rows=1, cols=4, bits=4, mult_rows=1)),
]


def _pair(case, seed):
    rng = np.random.default_rng(seed)
    mopts, copts = MODELS[case]
    model = small_model(rng, **mopts)
    streamed = EngineConfig(act_words=(64, 64, 64), weight_words=64, max_k=256, **copts)
    resident = streamed.replace(weights="resident", weight_words=512)
    x = rng.integers(model.input.lo, model.input.hi + 1, size=model.input_shape)
    return model, streamed, resident, x


@pytest.mark.parametrize("case", range(len(MODELS)))
def test_resident_closed_form_equals_reference(case):
    model, streamed, resident, x = _pair(case, 700 + case)
    cm_s, cm_r = compile_model(model, streamed), compile_model(model, resident)
    est_s, est_r = EngineModel(streamed).estimate(model), EngineModel(resident).estimate(model)
    ld = load_store(cm_r.program, cm_r.weights)
    run = run_engine(cm_r.program, cm_r.weights, x, store=ld)
    assert list(run.ops) == list(est_r.layers)
    assert est_r.totals() == run.totals()
    # the load phase: every w beat of the streamed engine, once, into consecutive store words
    n = cm_s.weights.beats
    assert ld.counters == est_r.load.as_dict() == {"cycles": n + 1, "prog_beats": 1, "w_beats": n, "wbuf_writes": n}
    assert cm_r.program.store_words == n == len(ld.store) and est_s.load is None
    # per image: no w beat, no weight write, each tile's parameter beats read from the store instead
    conv = [o for o in cm_r.program.ops if o.op == Op.CONV]
    assert (est_r.totals()["w_beats"], est_r.totals()["wbuf_writes"]) == (0, 0)
    assert est_r.totals()["wbuf_reads"] == est_s.totals()["wbuf_reads"] + sum(o.tiles * o.param_beats for o in conv)
    assert est_r.total_cycles == est_s.total_cycles - sum(o.tiles * o.weight_words for o in conv)
    # same logits as the streamed engine, and each op's base is its first beat's address
    assert np.array_equal(run.logits, run_engine(cm_s.program, cm_s.weights, x).logits)
    assert [o.wbase for o in conv] == list(np.cumsum([0] + [o.tiles * (o.weight_words + o.param_beats)
                                                            for o in conv])[:-1])


def test_streamed_config_dict_has_no_weights_key():
    cfg = EngineConfig(rows=2, cols=2)
    assert "weights" not in cfg.to_dict() and cfg.weights == WeightMode.STREAMED
    res = cfg.replace(weights="resident")
    assert res.to_dict()["weights"] == "resident"
    assert EngineConfig.from_dict(res.to_dict()) == res and EngineConfig.from_dict(cfg.to_dict()) == cfg


def test_bad_weight_mode_refused():
    with pytest.raises(ValueError, match="^weights must be one of streamed, resident, not 'disk'$"):
        EngineConfig(rows=2, cols=2, weights="disk")


def test_store_too_small_refused_naming_sizes():
    model, _, resident, _ = _pair(0, 701)
    need = compile_model(model, resident).program.store_words
    with pytest.raises(ValueError, match=rf"^weight store too small: .* need {need} words \(\d+ bytes of 24-bit "
                                         rf"words\), the store holds {need - 1} \(\d+ bytes\)$"):
        compile_model(model, resident.replace(weight_words=need - 1))
    compile_model(model, resident.replace(weight_words=need))


def test_lenet_resident_counts():
    """LeNet-5-BN-shaped at 4x4 W8: the load phase carries the whole streamed w traffic of one image."""
    model = models.random_lenet(np.random.default_rng(3), "fixed")
    base = dict(rows=4, cols=4, bits=8, act_words=(1568, 1568), max_k=400)
    s = EngineModel(EngineConfig(weight_words=100, **base)).estimate(model)
    r = EngineModel(EngineConfig(weight_words=8192, weights="resident", **base)).estimate(model)
    assert r.load.words == s.totals()["w_beats"]
    assert r.totals()["w_beats"] == 0 and r.total_cycles < s.total_cycles


def test_sizing_chooses_by_the_part_budget():
    """LeNet-5-BN-shaped 4x4 W8: resident fits the ECP5-25K; ResNet-20's store does not (auto streams, with one
    line), forced resident is refused naming the sizes, and it fits the ECP5-85K."""
    from hwsim.parts import bram_blocks
    from hwsim.sizing import size_engine

    lenet = models.random_lenet(np.random.default_rng(3), "fixed")
    s_cfg, s_cm = size_engine(lenet, rows=4, cols=4)
    cfg, cm = size_engine(lenet, rows=4, cols=4, weights="auto", part="ecp5-25k")
    assert s_cfg.weights == "streamed" and cfg.weights == "resident"
    assert cfg.weight_words == cm.program.store_words == s_cm.weights.beats
    assert cfg.replace(weights="streamed", weight_words=s_cfg.weight_words) == s_cfg
    assert bram_blocks(cfg, "ecp5-25k") <= 56
    resnet = models.random_resnet20(np.random.default_rng(3))
    lines = []
    cfg, _ = size_engine(resnet, rows=4, cols=4, weights="auto", part="ecp5-25k", note=lines.append)
    assert cfg.weights == "streamed" and len(lines) == 1
    assert lines[0].startswith("weights streamed, not resident: the weight store needs ")
    with pytest.raises(ValueError, match=r"^resident weights do not fit: the weight store needs \d+ words \(\d+ bytes "
                                         r"of 128-bit words\): the resident engine needs \d+ BRAM blocks \(DP16KD; "
                                         r"\d+ for the store, \d+ for the activations\), ecp5-25k has 56$"):
        size_engine(resnet, rows=4, cols=4, weights="resident", part="ecp5-25k")
    cfg, _ = size_engine(resnet, rows=4, cols=4, weights="auto", part="ecp5-85k", note=lines.append)
    assert cfg.weights == "resident" and len(lines) == 1 and bram_blocks(cfg, "ecp5-85k") <= 208
    with pytest.raises(ValueError, match="^weights must be one of auto, resident, streamed, not 'x'$"):
        size_engine(lenet, rows=4, cols=4, weights="x")
