"""scripts.flow_report: the flow report's figures (the report itself: tests/scripts/test_flow.py)."""

from __future__ import annotations

from scripts.flow_report import accuracy_figure


def test_accuracy_plot_ticks_whole_bits_only():
    from matplotlib import pyplot as plt

    rows = [{"bits": b, "int_accuracy": a, "float_accuracy": 90.5}
            for b, a in ((8, 90.1), (4, 71.0), (6, 88.0), (5, 83.2))]
    fig = accuracy_figure(rows)
    try:
        fig.canvas.draw()
        (ax,) = fig.axes
        assert list(ax.get_xticks()) == [4, 5, 6, 8]  # the swept widths; no 4.5, no 7
        assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "5", "6", "8"]
    finally:
        plt.close(fig)


def test_weight_modes_at_the_synthesized_clock(tmp_path, tiny_model_dir):
    """The flow report's per-mode table: each design's images/s at its synthesized Fmax (the estimate's clock
    where it has none), the load energy for resident weights only, the adder/mult ratios per mode."""
    import json

    from hwsim.estimate import run_estimate
    from scripts.flow_report import _modes_section

    run_estimate(tiny_model_dir(tmp_path), tmp_path / "e", rows=2, cols=2)
    est = json.loads((tmp_path / "e" / "summary.json").read_text())
    text = "\n".join(_modes_section(est, {"adder": {"fmax_mhz": 50.0}}))
    st, rs = est["weight_modes"]
    a, m = rs["designs"]["adder"], rs["designs"]["mult"]
    assert f"| resident | adder | {a['cycles_per_image']:,} | {50e6 / a['cycles_per_image']:,.1f} at 50.00 MHz |" in text
    clock = est["config"]["clock_mhz"]
    assert f"| {clock * 1e6 / m['cycles_per_image']:,.1f} at {clock:,.2f} MHz |" in text
    assert f"| {a['load_energy_pj'] / 1e6:,.3f} |" in text and "| streamed | adder/mult |" in text
    assert _modes_section({"config": est["config"]}, {}) == []
