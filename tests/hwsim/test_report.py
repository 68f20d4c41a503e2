"""hwsim.report: the typed summary, summary.json's keys, layers.csv, report.md and the plots."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from hwsim.estimate import Design, estimate_model, load_source, parse_sweep, sweep
from hwsim.preset_files import EnginePreset
from hwsim.report import (
    LAYER_COLUMNS,
    SWEEP_MAX_LABELS,
    TOTAL_KEYS,
    EstimateSummary,
    energy_figure,
    layer_rows,
    summarize,
    sweep_figure,
    write_report,
)
from hwsim.tables import load_table

DESIGN_KEYS = ["config", "total_cycles", "latency_us", *TOTAL_KEYS, "stream_beats", "ops_on_adder", "ops_on_mult",
               "ops_on_vector", "energy_pj", "on_chip_energy_pj", "energy_breakdown_pj", "energy_per_op_pj",
               "energy_host_streams_pj"]
TOP_KEYS = ["tool", "version", "dataflow", "input", "model", "config", "table", "memories", "prog_beat_bits",
            "designs", "ratios_adder_over_mult", "energy_counts", "energy_left_out"]


@pytest.fixture
def lenet_folder(tmp_path, int_models):
    from quant.intmodel.artifact import save_int_model

    save_int_model(int_models.lenet(np.random.default_rng(9)), tmp_path / "m")
    return tmp_path / "m"


def test_summary_of_a_model_keeps_the_file_contract(tmp_path, lenet_folder):
    src = load_source(lenet_folder)
    res = estimate_model(src.model, load_table("45nm"), rows=4, cols=4)
    out = tmp_path / "est"
    s = write_report(out, res, source=src)
    assert isinstance(s, EstimateSummary) and s.sweep is None and s.assumptions == ()
    d = json.loads((out / "summary.json").read_text())
    assert d == json.loads(json.dumps(s.to_dict()))
    assert list(d) == TOP_KEYS and all(list(d["designs"][x]) == DESIGN_KEYS for x in ("adder", "mult"))
    a = s.designs[Design.ADDER]
    assert d["designs"]["adder"]["energy_breakdown_pj"]["dram_pj"] == a.energy.dram_pj
    assert a.stream_beats == sum(a.totals[k] for k in ("prog_beats", "x_beats", "w_beats", "o_beats"))
    assert a.energy.total_pj == pytest.approx(sum(e.energy.total_pj for e in a.per_op) + a.host_streams.energy.total_pj)
    assert s.ratios["total_cycles"] == res.ratio("total_cycles")
    with open(out / "layers.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == LAYER_COLUMNS and len(rows) == 2 * len(res.adder.counts.layers)
    assert [r["layer"] for r in rows[:2]] == ["conv1", "pool1"]
    assert sum(int(r["busy_cycles"]) for r in rows if r["design"] == "adder") == a.totals["busy_cycles"]
    md = (out / "report.md").read_text()
    assert md.startswith("# Network engine estimate (dataflow `cp`): lenet5-bn")
    assert "## Assumptions" not in md and "## Array sweep" not in md and "![energy_breakdown.png]" in md
    assert (out / "energy_breakdown.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_of_shapes_with_a_sweep(tmp_path, topologies):
    src = load_source(topologies / "lenet5_bn.csv")
    t = load_table("45nm")
    from hwsim.estimate import estimate_topology

    res = estimate_topology(src.layers, t, rows=4, cols=4)
    pts = sweep(src, t, parse_sweep(["rows=2,4", "cols=4"]), base=EnginePreset(rows=4, cols=4))
    s = summarize(res, source=src, sweep_points=pts)
    d = s.to_dict()
    assert list(d)[-2:] == ["assumptions", "sweep"] and len(d["sweep"]) == 4
    assert d["sweep"][0] == {"rows": 2, "cols": 4, **{k: v for k, v in pts[0].as_row().items()
                                                       if k not in ("rows", "cols")}}
    s2 = write_report(tmp_path / "e", res, source=src, sweep_points=pts)
    md = (tmp_path / "e" / "report.md").read_text()
    assert "## Assumptions (an estimate from shapes alone)" in md and "## Array sweep" in md
    assert "sized to the topology's shapes" in md and "![sweep.png](sweep.png)" in md
    with open(tmp_path / "e" / "sweep.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 4
    assert s2.to_dict()["sweep"] == d["sweep"]
    assert len(layer_rows(res)) == 2 * 5


def test_output_path_that_is_a_file_is_refused(tmp_path, topologies):
    src = load_source(topologies / "lenet5_bn.csv")
    from hwsim.estimate import estimate_topology

    res = estimate_topology(src.layers, load_table("45nm"), rows=4, cols=4)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OSError, match="exists and is not a directory"):
        write_report(f, res, source=src)
    assert f.read_text() == "x"


@pytest.fixture
def shapes_summary(topologies):
    """A shapes-only estimate with a 20-point sweep (rows 1..10 x cols 4,8)."""
    from hwsim.estimate import estimate_topology

    src = load_source(topologies / "lenet5_bn.csv")
    t = load_table("45nm")
    res = estimate_topology(src.layers, t, rows=4, cols=4)
    pts = sweep(src, t, parse_sweep(["rows=1,2,3,4,5,6,7,8,9,10", "cols=4,8"]), base=EnginePreset(rows=4, cols=4))
    return summarize(res, source=src, sweep_points=pts)


def test_energy_legend_covers_no_bar(shapes_summary):
    from matplotlib import pyplot as plt
    from matplotlib.patches import Rectangle

    fig = energy_figure(shapes_summary)
    try:
        fig.canvas.draw()
        legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        assert len(legends) == 1
        box = legends[0].get_window_extent()
        bars = [p for ax in fig.axes for p in ax.patches if isinstance(p, Rectangle)]
        assert len(bars) > 10
        assert not any(box.overlaps(p.get_window_extent()) for p in bars)
        assert not any(box.overlaps(ax.get_window_extent()) for ax in fig.axes)  # outside every panel
    finally:
        plt.close(fig)


def test_sweep_axes_start_at_zero_and_label_few_points(shapes_summary):
    from matplotlib import pyplot as plt

    fig = sweep_figure(shapes_summary)
    try:
        fig.canvas.draw()
        for ax in fig.axes:
            assert ax.get_ylim()[0] == 0
            ticks = ax.get_xticks()
            labels = [t.get_text() for t in ax.get_xticklabels()]
            assert len(ticks) <= SWEEP_MAX_LABELS and list(ticks) == list(range(0, 20, 2))
            assert labels[:2] == ["1x4", "2x4"] and all(t.get_rotation() == 45 for t in ax.get_xticklabels())
    finally:
        plt.close(fig)


def test_weight_modes_and_the_load_phase_in_the_report(tmp_path, lenet_folder):
    from hwsim.estimate import estimate_modes
    from hwsim.report import MODE_COLUMNS

    src = load_source(lenet_folder)
    tab = load_table("45nm")
    res = estimate_model(src.model, tab, rows=4, cols=4, weights="resident")
    modes = estimate_modes(src, tab, rows=4, cols=4, mult_rows=None, clock_mhz=100.0)
    s = write_report(tmp_path / "est", res, source=src, modes=modes)
    d = json.loads((tmp_path / "est" / "summary.json").read_text())
    assert list(d) == [*TOP_KEYS, "weight_modes"] and d["config"]["weights"] == "resident"
    load = d["designs"]["adder"]["load_phase"]
    assert load["w_beats"] == load["wbuf_writes"] == res.adder.counts.load.words and load["cycles"] == load["w_beats"] + 1
    assert load["energy_pj"] == pytest.approx(res.adder.energy.load.total_pj)
    assert [m["mode"] for m in d["weight_modes"]] == ["streamed", "resident"]
    st, rs = d["weight_modes"]
    assert all(list(m["designs"]["adder"]) == list(MODE_COLUMNS) for m in (st, rs))
    assert st["designs"]["adder"]["load_energy_pj"] is None and rs["designs"]["adder"]["w_beats"] == 0
    assert rs["designs"]["adder"]["energy_per_image_pj"] == pytest.approx(res.adder.energy.total.total_pj)
    assert rs["ratios_adder_over_mult"]["energy_pj"] == pytest.approx(res.ratio("energy_pj"))
    assert s.modes[1].designs["adder"]["images_per_s"] == pytest.approx(100e6 / res.adder.counts.total_cycles)
    md = (tmp_path / "est" / "report.md").read_text()
    assert "## Load phase" in md and "## Weight modes" in md and "| resident | adder/mult |" in md
