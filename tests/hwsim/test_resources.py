"""hwsim.resources: the features are the stated bit counts, the fit and the data file round-trip, BRAM is
hwsim.parts', and a part without a fitted model names the command that makes one."""

from __future__ import annotations

import pytest

from hwsim.config import EngineConfig
from hwsim.parts import bram_blocks
from hwsim.resources import FEATURES, features, fit, load_model, model_path, save_model

CFGS = [EngineConfig(rows=r, cols=c, pe=pe, mult_rows=m, bits=b, act_words=(256, 256), weight_words=64, max_k=576)
        for r, c, pe, m, b in [(2, 2, "adder", 1, 8), (4, 4, "mult", 0, 8), (2, 8, "adder", 1, 4),
                               (8, 2, "mult", 0, 6), (4, 8, "adder", 2, 8), (8, 4, "mult", 0, 4),
                               (8, 8, "adder", 4, 8), (2, 4, "mult", 0, 8), (4, 2, "adder", 2, 6),
                               (6, 6, "mult", 0, 8), (3, 5, "adder", 1, 5), (5, 3, "adder", 3, 7)]]


def test_features_are_the_stated_bit_counts():
    c = CFGS[0]  # 2x2 adder, 8-bit, a 1-row multiplier unit
    f = features(c)
    assert f["pe_add_bits"] == 4 * 9 and f["pe_mult_pp"] == 0
    assert f["row_bits"] == 2 * c.acc_bits and f["col_bits"] == 2 * 8
    assert f["mult_unit_pp"] == 1 * (2 * 9 * 8 + c.mult_acc_bits)
    m = features(CFGS[1])  # 4x4 multiplier engine
    assert m["pe_add_bits"] == 0 and m["pe_mult_pp"] == 16 * 9 * 8 and m["mult_unit_pp"] == 0
    assert tuple(f) == FEATURES


def test_fit_recovers_a_linear_truth_and_round_trips(tmp_path):
    truth = {k: float(i + 1) for i, k in enumerate(FEATURES)}
    synth = lambda c: {r: round(sum(truth[k] * v for k, v in features(c).items())) * s  # noqa: E731
                       for r, s in (("lut", 1), ("ff", 2), ("carry", 3))} | {"fmax_mhz": 50.0 + c.rows,
                                                                           "bram": bram_blocks(c, "ice40-hx8k"), "dsp": 0}
    rows = [(f"d{i}", c, synth(c)) for i, c in enumerate(CFGS)]
    model = fit("ice40-hx8k", rows[:10], rows[10:], tools={"yosys": "t"}, failed=[("bad", CFGS[0], "yosys died")])
    for name, c, s in rows[10:]:
        p = model.predict(c)
        assert (p.lut, p.ff, p.carry, p.bram) == (s["lut"], s["ff"], s["carry"], s["bram"])
    assert all(r["error_pct"] == 0 for r in model.held_out)
    assert model.fmax_mhz["adder"] == [52.0, 58.0]
    save_model(model, tmp_path)
    again = load_model("ice40-hx8k", tmp_path)
    assert again.predict(CFGS[11]) == model.predict(CFGS[11]) and again.fitted_on == model.fitted_on
    assert [d["name"] for d in again.designs] == [f"d{i}" for i in range(12)] + ["bad"]
    assert [d["role"] for d in again.designs] == ["fit"] * 10 + ["held_out"] * 2 + ["failed"]
    assert again.designs[-1]["error"] == "yosys died" and "bad" not in again.fitted_on
    assert {r["resource"] for r in again.held_out} == {"lut", "ff", "carry", "bram", "dsp"}


def test_fit_refuses_too_few_designs_and_a_held_out_design_in_the_fit():
    rows = [(f"d{i}", c, {"lut": 1, "ff": 1, "carry": 1}) for i, c in enumerate(CFGS)]
    with pytest.raises(ValueError, match=r"more synthesized designs than its 6 features, not 6"):
        fit("ice40-hx8k", rows[:6], rows[6:], tools={})
    with pytest.raises(ValueError, match=r"held-out design is also in the fit"):
        fit("ice40-hx8k", rows[:10], rows[9:], tools={})


def test_a_data_file_of_other_features_names_calibrate(tmp_path):
    import json

    (tmp_path / "resources_ice40-hx8k.json").write_text(json.dumps({"part": "ice40-hx8k", "features": ["const"]}))
    with pytest.raises(ValueError, match=r"fitted on other features \(const\): run `adderhw explore --calibrate"):
        load_model("ice40-hx8k", tmp_path)


def test_missing_model_names_calibrate(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"run `adderhw explore --calibrate ecp5-25k`"):
        load_model("ecp5-25k", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no resource model for ecp5-85k .*--calibrate ecp5-25k`"):
        load_model("ecp5-85k", tmp_path)
    with pytest.raises(ValueError, match=r"part must be one of"):
        load_model("ecp5-12k", tmp_path)


@pytest.mark.parametrize("part_name", ["ice40-hx8k", "ecp5-25k"])
def test_the_shipped_model_is_the_fit_of_its_own_designs(part_name):
    """The committed data file names its tools, engine build and designs; refitting its fitted designs gives
    its coefficients and error table, no held-out design is in the fit, and BRAM/DSP are exact on all."""
    model = load_model(part_name)
    assert model.tools.get("yosys") and model.tools.get("nextpnr") and model.engine_build == "deploy"
    rows = {role: [(d["name"], EngineConfig.from_dict(d["config"]), d["synthesized"]) for d in model.designs
                   if d["role"] == role] for role in ("fit", "held_out")}
    assert len(rows["held_out"]) >= 4 and not {n for n, _, _ in rows["held_out"]} & set(model.fitted_on)
    again = fit(part_name, rows["fit"], rows["held_out"], tools=model.tools, engine_build=model.engine_build)
    assert again.fitted_on == model.fitted_on and list(again.held_out) == list(model.held_out)
    for res in again.coefficients:
        assert again.coefficients[res] == pytest.approx(model.coefficients[res], rel=1e-9, abs=1e-9)
    for _, c, s in rows["fit"] + rows["held_out"]:
        assert (bram_blocks(c, part_name), 0) == (s["bram"], s["dsp"])


@pytest.mark.parametrize("part_name, src", [("ecp5-45k", "ecp5-25k"), ("ecp5-85k", "ecp5-25k"),
                                            ("ice40-up5k", "ice40-hx8k")])
def test_a_family_shares_its_calibration_with_each_part_s_own_bram_and_capacities(part_name, src):
    """yosys' cell counts do not depend on the part's size: every part of a family reads its calibration part's
    coefficients (one data file), while BRAM and the capacities fits() checks stay the part's own."""
    own, cal = load_model(part_name), load_model(src)
    assert model_path(part_name) == model_path(src) and (own.part, own.calibrated_on) == (part_name, src)
    assert own.coefficients == cal.coefficients and own.fitted_on == cal.fitted_on
    for c in CFGS:
        p, q = own.predict(c), cal.predict(c)
        assert (p.lut, p.ff, p.carry, p.dsp) == (q.lut, q.ff, q.carry, q.dsp) and p.part == part_name
        assert p.bram == bram_blocks(c, part_name)
    big = EngineConfig(rows=12, cols=8, pe="mult", act_words=(256, 256), weight_words=64, max_k=576)
    if part_name.startswith("ecp5"):  # ~36k LUTs: more than the 25K has, fewer than the 45K's and 85K's
        assert not cal.predict(big).fits() and own.predict(big).fits()


def test_only_a_calibration_part_is_fitted_or_saved(tmp_path):
    rows = [(f"d{i}", c, {"lut": 1, "ff": 1, "carry": 1}) for i, c in enumerate(CFGS)]
    with pytest.raises(ValueError, match=r"--calibrate: ecp5-85k reads ecp5-25k's resource model"):
        fit("ecp5-85k", rows[:10], rows[10:], tools={})
    with pytest.raises(ValueError, match=r"save_model: ecp5-45k reads ecp5-25k's calibration"):
        save_model(load_model("ecp5-45k"), tmp_path)
