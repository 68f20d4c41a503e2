"""hwsim.report: the files of an estimate."""

from __future__ import annotations

import csv
import json

import pytest

from hwsim.config import ArrayConfig
from hwsim.tables import load_table
from hwsim.estimate import estimate, parse_sweep, sweep
from hwsim.layers import read_topology_csv
from hwsim.report import LAYER_COLUMNS, write_report


def test_report_files(tmp_path, topologies):
    layers = read_topology_csv(topologies / "lenet5_bn.csv")
    cfg = ArrayConfig(rows=4, cols=4, max_k=400)
    t = load_table("45nm")
    est = estimate(layers, cfg, t)
    rows = sweep(layers, cfg, t, parse_sweep(["rows=2,4", "cols=4"]))
    out = tmp_path / "est"
    s = write_report(out, est, source="lenet5_bn.csv", model_name="lenet5-bn", sweep_rows=rows)
    assert sorted(p.name for p in out.iterdir()) == [
        "energy_breakdown.png", "layers.csv", "report.md", "summary.json", "sweep.csv", "sweep.png"]
    with open(out / "layers.csv") as fh:
        table = list(csv.DictReader(fh))
    assert tuple(table[0]) == LAYER_COLUMNS
    assert len(table) == 2 * 5
    assert sum(int(r["total_cycles"]) for r in table if r["design"] == "adder") == est.designs["adder"].total_cycles
    summary = json.loads((out / "summary.json").read_text())
    assert summary == json.loads(json.dumps(s))
    for d in ("adder", "mult"):
        for key in ("total_cycles", "energy_pj", "area_um2", "utilization"):
            assert key in summary["designs"][d]
    assert summary["ratios_adder_over_mult"]["energy_pj"] == pytest.approx(est.ratio("energy_pj"))
    assert summary["op_counts"] == {"macs": 416_520, "adder_layer_terms": 416_520, "mult_layer_macs": 0,
                                    "group_rescales": 0, "paper_mults": 435_000}
    assert summary["cpu_latency_model"]["addernet"]["cycles"] == 1_666_080
    assert summary["version"] and summary["table"]["source"]
    md = (out / "report.md").read_text()
    assert "416,520" in md and "435,000" in md and "![sweep.png](sweep.png)" in md
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / "sweep.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 4


def test_output_path_that_is_a_file_is_refused(tmp_path, topologies):
    layers = read_topology_csv(topologies / "lenet5_bn.csv")
    est = estimate(layers, ArrayConfig(rows=4, cols=4, max_k=400), load_table("45nm"))
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OSError, match="exists and is not a directory"):
        write_report(f, est, source="x", model_name="x")
    assert f.read_text() == "x"


def test_report_shows_group_rescale(tmp_path):
    """Group-shared scales (issue 14): the re-scale's count and energy in layers.csv, summary.json and
    report.md."""
    import numpy as np

    from hwsim.layers import shapes_from_int_model
    from tests.quant.int_models import every_kind_model

    layers = shapes_from_int_model(every_kind_model(np.random.default_rng(5), groups=2))
    est = estimate(layers, ArrayConfig(rows=4, cols=4, max_k=128), load_table("45nm"))
    a = est.designs["adder"]
    assert a.rescales > 0
    s = write_report(tmp_path / "est", est, source="m", model_name="m")
    with open(tmp_path / "est" / "layers.csv") as fh:
        table = list(csv.DictReader(fh))
    adder = [r for r in table if r["design"] == "adder"]
    assert sum(int(r["rescales"]) for r in adder) == a.rescales
    assert [int(r["groups"]) for r in adder] == [l.groups for l in layers]
    assert all(int(r["rescales"]) == 0 for r in table if r["design"] == "mult")
    assert s["designs"]["adder"]["rescales"] == a.rescales and s["designs"]["mult"]["rescales"] == 0
    assert a.energy.rescale_pj > 0
    assert s["designs"]["adder"]["energy_breakdown_pj"]["rescale_pj"] == pytest.approx(a.energy.rescale_pj)
    assert s["op_counts"]["group_rescales"] == a.rescales
    md = (tmp_path / "est" / "report.md").read_text()
    assert "rescale_pj" in md and f"{a.rescales}" in md
