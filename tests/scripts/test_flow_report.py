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
