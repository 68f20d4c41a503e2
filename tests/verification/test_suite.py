"""verification.suite: design matrix, model config, report and table (no simulator)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quant.artifact import load_int_model
from verification.runner import CaseResult, RunResult
from verification.suite import MATRIX, MUTANT, config_for_model, report_entries, summary_table, write_report


def _run(sim, *cases):
    return RunResult(simulator=sim, cases=tuple(cases), log=Path("sim.log"),
                     results_xml=Path("results.xml"), waves=None)


def test_matrix_covers_every_pair():
    cfgs = [s.config for s in MATRIX]
    pairs = {(c.pe, c.requant) for c in cfgs}
    assert pairs == {("adder", "fixed"), ("adder", "threshold"), ("mult", "fixed"), ("mult", "threshold")}
    assert {(c.pe, c.bits) for c in cfgs} == {("adder", 8), ("adder", 4), ("mult", 8), ("mult", 4)}
    assert {(c.rows, c.cols) for c in cfgs} == {(4, 4), (8, 4)}
    assert MUTANT.mutation == "acc_minus_one" and MUTANT.config == MATRIX[0].config


def test_config_for_model(lenet_dir):
    model = load_int_model(lenet_dir)
    cfg = config_for_model(model, rows=8, cols=4)
    ks = [ly.weight.shape[1] for ly in model.layers if ly.pe is not None]
    assert (cfg.rows, cfg.cols, cfg.pe, cfg.bits, cfg.max_k) == (8, 4, "adder", 8, max(ks))
    assert cfg.out_bits == max(ly.requant.out_bits for ly in model.layers if ly.pe is not None)


def test_report_entries_and_table(tmp_path):
    ok = CaseResult("random_tiles", "icarus", True, record={"cycles_measured": 10, "cycles_predicted": 10, "mismatches": 0})
    bp = CaseResult("back_pressure", "icarus", True, record={"cycles_measured": 30, "cycles_predicted": None})
    bad = CaseResult("extremes", "icarus", False, message="o: 0 matched, 8 mismatched\nbeat 0 ...")
    entries = report_entries(_run("icarus", ok, bp, bad), "d")
    assert [e["name"] for e in entries] == ["d/random_tiles", "d/back_pressure", "d/extremes"]
    assert entries[0] | {} == {**entries[0], "passed": True, "cycles_measured": 10, "cycles_predicted": 10}
    assert entries[1]["cycles_predicted"] is None
    assert entries[2]["passed"] is False and entries[2]["message"] == "o: 0 matched, 8 mismatched"
    mut = report_entries(_run("verilator", ok, bad), "m", expect_fail=True)
    assert mut == [{**mut[0], "name": "m/caught", "passed": True, "message": "caught by extremes"}]
    missed = report_entries(_run("verilator", ok), "m", expect_fail=True)
    assert missed[0]["passed"] is False and "NOT caught" in missed[0]["message"]
    table = summary_table(entries + mut + missed)
    assert "d/extremes" in table and "FAIL" in table and "pass (caught)" in table and "FAIL (NOT caught)" in table
    assert table.splitlines()[-1] == "3 of 5 passed"
    path = tmp_path / "sub" / "verify.json"
    write_report(entries, path)
    data = json.loads(path.read_text())
    assert data == entries
    assert {"name", "simulator", "passed", "cycles_measured", "cycles_predicted"} <= set(data[0])
    assert [p.name for p in path.parent.iterdir()] == ["verify.json"]  # no temp file left


def test_config_for_model_refuses_mixed_models():
    from types import SimpleNamespace as NS

    import numpy as np

    def layer(pe, bits, mode="fixed"):
        return NS(name="l", pe=pe, bits=bits, weight=np.zeros((3, 9)), requant=NS(mode=mode, out_bits=bits))

    with pytest.raises(ValueError, match=r"mixes operand widths \(4, 8\)"):
        config_for_model(NS(name="m", layers=[layer("adder", 8), layer("adder", 4)]))
    with pytest.raises(ValueError, match=r"mixes PE kinds \(adder, mult\)"):
        config_for_model(NS(name="m", layers=[layer("adder", 8), layer("mult", 8)]))
    with pytest.raises(ValueError, match=r"mixes requant modes"):
        config_for_model(NS(name="m", layers=[layer("adder", 8), layer("adder", 8, "threshold")]))
    with pytest.raises(ValueError, match="has no compute layers"):
        config_for_model(NS(name="m", layers=[NS(pe=None)]))
    cfg = config_for_model(NS(name="m", layers=[layer("adder", 8), NS(pe=None)]), rows=2, cols=3)
    assert (cfg.rows, cfg.cols, cfg.max_k, cfg.bits) == (2, 3, 9, 8)
