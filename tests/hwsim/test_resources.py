"""hwsim.resources: the features are the stated bit counts, the fit and the data file round-trip, BRAM is
hwsim.parts', and a part without a fitted model names the command that makes one."""

from __future__ import annotations

import pytest

from hwsim.config import EngineConfig
from hwsim.parts import bram_blocks
from hwsim.resources import FEATURES, features, fit, load_model, save_model

CFGS = [EngineConfig(rows=r, cols=c, pe=pe, mult_rows=m, bits=b, act_words=(256, 256), weight_words=64, max_k=576)
        for r, c, pe, m, b in [(2, 2, "adder", 1, 8), (4, 4, "mult", 0, 8), (2, 8, "adder", 1, 4),
                               (8, 2, "mult", 0, 6), (4, 8, "adder", 2, 8), (8, 4, "mult", 0, 4),
                               (8, 8, "adder", 4, 8), (2, 4, "mult", 0, 8), (4, 2, "adder", 2, 6),
                               (6, 6, "mult", 0, 8), (3, 5, "adder", 1, 5), (5, 3, "adder", 3, 7)]]


def test_features_are_the_stated_bit_counts():
    c = CFGS[0]  # 2x2 adder, 8-bit, a 1-row multiplier unit
    f = features(c)
    assert f["pe_sub_bits"] == 4 * 9 and f["pe_mult_pp"] == 0
    assert f["tree_bits"] == 2 * 1 * (9 + 1)
    assert f["acc_bits"] == 2 * c.acc_bits
    assert f["mult_unit_pp"] == 1 * 2 * 9 * 8 + 1 * c.mult_acc_bits
    m = features(CFGS[1])  # 4x4 multiplier engine
    assert m["pe_sub_bits"] == 0 and m["pe_mult_pp"] == 16 * 9 * 8
    assert tuple(f) == FEATURES


def test_fit_recovers_a_linear_truth_and_round_trips(tmp_path):
    truth = {k: float(i + 1) for i, k in enumerate(FEATURES)}
    synth = lambda c: {r: round(sum(truth[k] * v for k, v in features(c).items())) * s  # noqa: E731
                       for r, s in (("lut", 1), ("ff", 2), ("carry", 3))} | {"fmax_mhz": 50.0 + c.rows,
                                                                           "bram": bram_blocks(c, "ice40-hx8k")}
    rows = [(f"d{i}", c, synth(c)) for i, c in enumerate(CFGS)]
    model = fit("ice40-hx8k", rows[:10], rows[10:], tools={"yosys": "t"})
    for name, c, s in rows[10:]:
        p = model.predict(c)
        assert (p.lut, p.ff, p.carry, p.bram) == (s["lut"], s["ff"], s["carry"], s["bram"])
    assert all(r["error_pct"] == 0 for r in model.held_out)
    assert model.fmax_mhz["adder"] == [52.0, 58.0]
    save_model(model, tmp_path)
    again = load_model("ice40-hx8k", tmp_path)
    assert again.predict(CFGS[11]) == model.predict(CFGS[11]) and again.fitted_on == model.fitted_on


def test_missing_model_names_calibrate(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"run `adderhw explore --calibrate ecp5-25k`"):
        load_model("ecp5-25k", tmp_path)
    with pytest.raises(ValueError, match=r"part must be one of"):
        load_model("ecp5-12k", tmp_path)
