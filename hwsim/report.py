"""Reports of an engine estimate: the summary (``summary.json``), ``report.md``, ``layers.csv``,
``sweep.csv`` and PNG plots.

:func:`summarize` turns a :class:`hwsim.estimate.Comparison` into an
:class:`EstimateSummary` (typed; :meth:`EstimateSummary.to_dict` is the
``summary.json`` contract, its keys unchanged); :func:`write_report` writes
every file, each to a temporary name in the output folder and renamed into
place.  Columns carry their units (``total_cycles``, ``energy_pj``,
``util_pct``, ...); ``summary.json`` names the tool version, the table and
its source.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from hwsim.compiler import Unit
from hwsim.config import EngineConfig
from hwsim.energy import ENGINE_COMPONENTS, EngineEnergy
from hwsim.engine import COUNTER_NAMES, DATAFLOW
from hwsim.estimate import SWEEP_COLUMNS, Comparison, Design, InputKind, ModeEstimate, Source
from quant.base.files import atomic_write_bytes, dist_version

__all__ = [
    "LAYER_COLUMNS",
    "TOTAL_KEYS",
    "OpEnergy",
    "DesignSummary",
    "ModeSummary",
    "MODE_COLUMNS",
    "EstimateSummary",
    "layer_rows",
    "summarize",
    "render_markdown",
    "energy_figure",
    "sweep_figure",
    "SWEEP_MAX_LABELS",
    "write_report",
]

#: Columns of ``layers.csv``: one row per (design, operation).
LAYER_COLUMNS = (
    "design", "layer", "op", "unit", "start_cycle", "end_cycle", "total_cycles", "busy_cycles", "util_pct",
    "act_reads", "act_writes", "wbuf_reads", "wbuf_writes", "w_beats", "o_beats", "requant_ops",
    "latency_us", *ENGINE_COMPONENTS, "energy_pj",
)

#: Run-level counts of a design in ``summary.json`` (beside the per-op sums).
TOTAL_KEYS = ("busy_cycles", "act_reads", "act_writes", "wbuf_reads", "wbuf_writes", "w_beats", "o_beats",
              "requant_ops", "prog_beats", "x_beats")

#: What the energy counts and leaves out (``summary.json`` ``energy_counts``, ``report.md``).
ENERGY_COUNTED = (
    "activation SRAM: every act_read and act_write (a word of cols*act_bits bits) at the energy per bit "
    "of the region it touches, by that region's size; the image's x beats are writes into the input's region",
    "weight SRAM: every wbuf_read and wbuf_write (rows*cols*bits bits) at the weight buffer's size",
    "DRAM: every stream beat at the table's DRAM energy per bit x beat width (w: rows*cols*bits, "
    "x: cols*act_bits, o: out_bits+1, prog: the descriptor width)",
    "PE arithmetic: busy_cycles x one step of the unit that runs the op (rows x cols terms: adder "
    "(bits+1)-bit subtract + abs, multiplier (bits+1) x bits multiply; each row's tree adds and its "
    "accumulate); the adder engine's multiply layers on its mult_rows multiplier unit",
    "vector unit: per pool step cols lane operations of the lane accumulator's width (a max as a compare)",
    "requant: per output one a x mult_bits multiply (and the add's second one), two adds and two clamp "
    "compares (fixed point), or 2**bits - 1 threshold compares",
    "registers: per conv step the PE term registers, the tree pipeline registers and the row "
    "accumulators; per output its shadow entry; the requant parameter beats into the parameter bank; "
    "the prog beats into the descriptor registers; per pool step the lane accumulators",
)
ENERGY_LEFT_OUT = (
    "the controller, address generator and handshake flags; the requant and vector pipelines' own "
    "registers; the memories' output latches; clock tree; leakage (static energy over the run's cycles)",
    "data-dependent activity: every counted operation is charged its full width, zero operands "
    "(padding, the idle rows of a partial tile) included",
    "SRAM energy by size is the table's sqrt(size) model assumption (its size_source), not a "
    "measurement of these memories",
)


@dataclass(frozen=True)
class OpEnergy:
    """The energy of one operation (or, with ``layer`` None, of the host's ``prog`` and ``x`` streams)."""

    layer: str | None
    unit: str | None
    energy: EngineEnergy

    def to_dict(self) -> dict:
        head = {} if self.layer is None else {"layer": self.layer, "unit": self.unit}
        return {**head, **self.energy.as_dict(), "energy_pj": self.energy.total_pj}


@dataclass(frozen=True)
class DesignSummary:
    """One engine's run: config, cycles, counts (:data:`TOTAL_KEYS`), energy."""

    config: EngineConfig
    total_cycles: int
    latency_us: float
    totals: dict
    ops_on_adder: int
    ops_on_mult: int
    ops_on_vector: int
    energy: EngineEnergy
    per_op: tuple
    host_streams: OpEnergy
    load: dict | None = None  # the load phase's counts (resident weights), apart from the image's
    load_energy: EngineEnergy | None = None

    @property
    def stream_beats(self) -> int:
        t = self.totals
        return t["prog_beats"] + t["x_beats"] + t["w_beats"] + t["o_beats"]

    @property
    def on_chip_energy_pj(self) -> float:
        return self.energy.total_pj - self.energy.dram_pj

    def to_dict(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "total_cycles": self.total_cycles,
            "latency_us": self.latency_us,
            **{k: self.totals[k] for k in TOTAL_KEYS},
            "stream_beats": self.stream_beats,
            "ops_on_adder": self.ops_on_adder,
            "ops_on_mult": self.ops_on_mult,
            "ops_on_vector": self.ops_on_vector,
            "energy_pj": self.energy.total_pj,
            "on_chip_energy_pj": self.on_chip_energy_pj,
            "energy_breakdown_pj": self.energy.as_dict(),
            "energy_per_op_pj": [e.to_dict() for e in self.per_op],
            "energy_host_streams_pj": self.host_streams.to_dict(),
            **({} if self.load is None else {"load_phase": {
                **self.load, "energy_pj": self.load_energy.total_pj,
                "energy_breakdown_pj": self.load_energy.as_dict()}}),
        }


#: Columns of one (mode, design) row of the weight-mode table (:class:`ModeSummary`).
MODE_COLUMNS = ("cycles_per_image", "images_per_s", "energy_per_image_pj", "on_chip_energy_pj", "pe_pj",
                "wbuf_sram_pj", "dram_pj", "wbuf_reads", "w_beats", "weight_words", "load_energy_pj")


@dataclass(frozen=True)
class ModeSummary:
    """One weight mode (:class:`hwsim.config.WeightMode`) of the estimate: per design the
    :data:`MODE_COLUMNS` (per image, at the config's clock; ``load_energy_pj`` once per weight load,
    None when streamed), the adder/mult ratios; or ``why_not`` (the store does not fit)."""

    mode: str
    designs: dict
    ratios: dict
    why_not: str | None = None

    @classmethod
    def of(cls, m: ModeEstimate) -> "ModeSummary":
        if m.comparison is None:
            return cls(mode=m.mode.value, designs={}, ratios={}, why_not=m.why_not)
        designs = {}
        for d, est in m.comparison.designs.items():
            c, e = est.counts, est.energy
            tot = c.totals()
            designs[d.value] = {
                "cycles_per_image": c.total_cycles, "images_per_s": c.config.clock_mhz * 1e6 / c.total_cycles,
                "energy_per_image_pj": e.total.total_pj, "on_chip_energy_pj": e.total.total_pj - e.total.dram_pj,
                "pe_pj": e.total.pe_pj, "wbuf_sram_pj": e.total.wbuf_sram_pj, "dram_pj": e.total.dram_pj,
                "wbuf_reads": tot["wbuf_reads"], "w_beats": tot["w_beats"], "weight_words": c.config.weight_words,
                "load_energy_pj": None if e.load is None else e.load.total_pj}
        ratios = {k: m.comparison.ratio(k) for k in ("energy_pj", "on_chip_energy_pj", "pe_pj")}
        return cls(mode=m.mode.value, designs=designs, ratios=ratios)

    def to_dict(self) -> dict:
        if self.why_not is not None:
            return {"mode": self.mode, "why_not": self.why_not}
        return {"mode": self.mode, "designs": self.designs, "ratios_adder_over_mult": self.ratios}


@dataclass(frozen=True)
class EstimateSummary:
    """Everything ``summary.json`` holds (:meth:`to_dict`), typed."""

    version: str
    input: str
    model: str
    kind: InputKind
    config: EngineConfig
    table: object
    memories: dict
    prog_beat_bits: int
    designs: dict
    ratios: dict
    assumptions: tuple = ()
    sweep: tuple | None = None
    modes: tuple = ()

    def to_dict(self) -> dict:
        tab = self.table
        out = {
            "tool": "adderhw estimate",
            "version": self.version,
            "dataflow": DATAFLOW,
            "input": self.input,
            "model": self.model,
            "config": self.config.to_dict(),
            "table": {"name": tab.name, "title": tab.title, "source": tab.source,
                      "sram_size_source": tab.sram_size_source, "sram_ref_bytes": tab.sram_ref_bytes,
                      "sram_size_exponent": tab.sram_size_exponent, "area_unit": tab.area_unit},
            "memories": self.memories,
            "prog_beat_bits": self.prog_beat_bits,
            "designs": {d.value: s.to_dict() for d, s in self.designs.items()},
            "ratios_adder_over_mult": dict(self.ratios),
            "energy_counts": list(ENERGY_COUNTED),
            "energy_left_out": list(ENERGY_LEFT_OUT),
        }
        if self.assumptions:
            out["assumptions"] = list(self.assumptions)
        if self.sweep is not None:
            out["sweep"] = [p.as_row() for p in self.sweep]
        if self.modes:
            out["weight_modes"] = [m.to_dict() for m in self.modes]
        return out


def layer_rows(result: Comparison) -> list[dict]:
    """One row per (design, operation) with :data:`LAYER_COLUMNS`."""
    rows = []
    for design, est in result.designs.items():
        counts = est.counts
        clock = counts.config.clock_mhz
        for l, e in zip(counts.layers, est.energy.ops):
            rows.append({
                "design": design.value, "layer": l.name, "op": l.op, "unit": l.unit,
                "start_cycle": l.start, "end_cycle": l.end, "total_cycles": l.cycles,
                "busy_cycles": l.busy_cycles, "util_pct": 100.0 * l.util,
                **{k: getattr(l, k) for k in COUNTER_NAMES if k not in ("cycles", "busy_cycles")},
                "latency_us": l.cycles / clock,
                **{c: getattr(e, c) for c in ENGINE_COMPONENTS},
                "energy_pj": e.total_pj,
            })
    return rows


def summarize(result: Comparison, *, source: Source, sweep_points=None, modes=()) -> EstimateSummary:
    """The summary of ``result`` on ``source`` (with the sweep's points and the weight modes
    (:func:`hwsim.estimate.estimate_modes`), if any)."""
    designs = {}
    for d, est in result.designs.items():
        c = est.counts
        designs[d] = DesignSummary(
            config=c.config, total_cycles=c.total_cycles, latency_us=c.latency_us, totals=c.totals(),
            ops_on_adder=sum(1 for l in c.layers if l.unit == Unit.ADDER),
            ops_on_mult=sum(1 for l in c.layers if l.unit == Unit.MULT),
            ops_on_vector=sum(1 for l in c.layers if l.unit == Unit.VECTOR),
            energy=est.energy.total,
            per_op=tuple(OpEnergy(layer=l.name, unit=l.unit, energy=e) for l, e in zip(c.layers, est.energy.ops)),
            host_streams=OpEnergy(layer=None, unit=None, energy=est.energy.streams),
            load=None if c.load is None else c.load.as_dict(), load_energy=est.energy.load)
    ratios = {k: result.ratio(k) for k in ("total_cycles", "energy_pj", "on_chip_energy_pj", *ENGINE_COMPONENTS)}
    return EstimateSummary(
        version=dist_version("adderhw", "0+unknown"), input=source.path, model=source.name, kind=source.kind,
        config=result.config, table=result.table, memories=result.adder.energy.memories,
        prog_beat_bits=result.prog_beat_bits, designs=designs, ratios=ratios,
        assumptions=tuple(source.assumptions), sweep=None if sweep_points is None else tuple(sweep_points),
        modes=tuple(ModeSummary.of(m) for m in modes))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(result: Comparison, summary: EstimateSummary, *, plots=()) -> str:
    """The text of ``report.md``."""
    c = summary.config
    tab = summary.table
    sized = ("sized to the model as `adderhw generate --model` sizes it"
             if summary.kind is not InputKind.TOPOLOGY else "sized to the topology's shapes (assumptions below)")
    out = [
        f"# Network engine estimate (dataflow `cp`): {summary.model}",
        "",
        f"Input: `{summary.input}`; adderhw {summary.version}.",
        "",
        f"Engine {c.rows}x{c.cols} (Tm output x Tn input channels), {c.bits}-bit, "
        f"multiplier unit {c.mult_rows} rows, requant {', '.join(c.requant)}, weights {c.weights}, "
        f"{c.clock_mhz:g} MHz, {sized}. "
        "Cycles and counts are the exact closed form of `hwsim/engine.py` (equal to the RTL's "
        "counters); `mult` is the same engine with multiplier PEs everywhere (no separate "
        "multiplier unit, the same memories).",
        "",
        f"Energy table **{tab.name}**: {tab.title}.  Source: {tab.source}",
        "",
        f"SRAM energy by size: {tab.sram_size_source}.",
        "",
    ]
    if summary.assumptions:
        out += ["## Assumptions (an estimate from shapes alone)", ""]
        out += [f"* {t}" for t in summary.assumptions] + [""]
    out += ["## Memories", ""]
    mem_rows = [(k, v["words"], v["word_bits"], v["bytes"], v["pj_per_access"], v["pj_per_access"] / v["word_bits"])
                for k, v in summary.memories.items()]
    out += [_table(("memory", "words", "word_bits", "bytes", "pj_per_access", "pj_per_bit"), mem_rows), ""]
    out += ["## Totals", ""]
    hdr = ("design", "total_cycles", "latency_us", "busy_cycles", "act_reads", "act_writes", "wbuf_reads",
           "wbuf_writes", "prog_beats", "x_beats", "w_beats", "o_beats", "requant_ops")
    out += [_table(hdr, [(d.value, r.total_cycles, r.latency_us, *(r.totals[k] for k in hdr[3:]))
                         for d, r in summary.designs.items()]), ""]
    out += [f"adder/mult cycles: {summary.ratios['total_cycles']:.4g}.", ""]
    out += ["## Energy per image", ""]
    hdr = ("design", "energy_pj", "on_chip_energy_pj", *ENGINE_COMPONENTS)
    rows = [(d.value, r.energy.total_pj, r.on_chip_energy_pj, *(getattr(r.energy, k) for k in ENGINE_COMPONENTS))
            for d, r in summary.designs.items()]
    rt = summary.ratios
    rows.append(("adder/mult", *("" if rt[k] is None else rt[k] for k in hdr[1:])))
    out += [_table(hdr, rows), ""]
    loads = [(d.value, r) for d, r in summary.designs.items() if r.load is not None]
    if loads:
        out += ["## Load phase (resident weights: once, before any number of images)", ""]
        hdr = ("design", "cycles", "prog_beats", "w_beats", "wbuf_writes", "energy_pj", *ENGINE_COMPONENTS)
        out += [_table(hdr, [(d, *(r.load[k] for k in hdr[1:5]), r.load_energy.total_pj,
                              *(getattr(r.load_energy, k) for k in ENGINE_COMPONENTS)) for d, r in loads]), ""]
    if summary.modes:
        out += _modes_markdown(summary)
    out += ["Counted (every access of the exact counters, each at its own cost):", ""]
    out += [f"* {t}" for t in ENERGY_COUNTED] + ["", "Not counted:", ""]
    out += [f"* {t}" for t in ENERGY_LEFT_OUT] + [""]
    out += ["## Energy per operation", ""]
    hdr = ("design", "layer", "unit", *ENGINE_COMPONENTS, "energy_pj")
    rows = []
    for d, r in summary.designs.items():
        rows += [(d.value, e.layer, e.unit, *(getattr(e.energy, k) for k in ENGINE_COMPONENTS), e.energy.total_pj)
                 for e in r.per_op]
        hs = r.host_streams.energy
        rows.append((d.value, "(prog + x streams)", "host", *(getattr(hs, k) for k in ENGINE_COMPONENTS),
                     hs.total_pj))
    out += [_table(hdr, rows), ""]
    out += ["## Per operation", ""]
    cols = ("design", "layer", "op", "unit", "total_cycles", "util_pct", "act_reads", "act_writes",
            "wbuf_reads", "wbuf_writes", "w_beats", "o_beats", "requant_ops")
    out += [_table(cols, [tuple(r[k] for k in cols) for r in layer_rows(result)]), "",
            "Data: `layers.csv`.", ""]
    if summary.sweep:
        keys = [k for k, _ in summary.sweep[0].point]
        out += ["## Array sweep", ""]
        hdr = (*keys, *SWEEP_COLUMNS)
        out += [_table(hdr, [tuple(p.as_row()[k] for k in hdr) for p in summary.sweep]), "",
                "Data: `sweep.csv`.", ""]
    if plots:
        out += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(out)


def _modes_markdown(summary: EstimateSummary) -> list:
    """The weight-mode section of ``report.md``: both modes, both designs, per image at the config's clock."""
    clock = summary.config.clock_mhz
    out = ["## Weight modes", "",
           f"The same engine with its weights streamed on `w` every image and resident (loaded once; the "
           f"load's energy is paid once per weight load, not per image), at {clock:g} MHz.", ""]
    hdr = ("mode", "design", "cycles/image", "images/s", "energy/image (uJ)", "on chip (uJ)", "PE (uJ)",
           "weight SRAM (uJ)", "DRAM (uJ)", "wbuf reads", "w beats", "store words", "weight load (uJ)")
    rows = []
    uj = lambda v: "" if v is None else f"{v / 1e6:.4f}"  # noqa: E731
    for m in summary.modes:
        if m.why_not is not None:
            rows.append((m.mode, "", *([""] * (len(hdr) - 3)), f"not possible: {m.why_not}"))
            continue
        for d, r in m.designs.items():
            rows.append((m.mode, d, f"{r['cycles_per_image']:,}", f"{r['images_per_s']:,.1f}",
                         uj(r["energy_per_image_pj"]), uj(r["on_chip_energy_pj"]), uj(r["pe_pj"]),
                         uj(r["wbuf_sram_pj"]), uj(r["dram_pj"]), f"{r['wbuf_reads']:,}", f"{r['w_beats']:,}",
                         f"{r['weight_words']:,}", uj(r["load_energy_pj"])))
        rt = m.ratios
        rows.append((m.mode, "adder/mult", "", "", f"{rt['energy_pj']:.3f}", f"{rt['on_chip_energy_pj']:.3f}",
                     f"{rt['pe_pj']:.3f}", *([""] * (len(hdr) - 7))))
    return out + [_table(hdr, rows), ""]


def _csv_bytes(rows: list[dict], columns) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue().encode()


def _png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


#: At most this many labelled ticks on a sweep plot's x axis; a larger sweep labels every k-th point.
SWEEP_MAX_LABELS = 12

_COLORS = {"act_sram_pj": "tab:blue", "wbuf_sram_pj": "tab:cyan", "dram_pj": "tab:gray", "pe_pj": "tab:red",
           "vector_pj": "tab:purple", "requant_pj": "tab:green", "reg_pj": "tab:orange"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def energy_figure(summary: EstimateSummary):
    """The figure of ``energy_breakdown.png``: energy per operation by component, adder beside mult.

    Two panels (all components; on chip, DRAM left out), stacked bars per operation;
    one legend, right of the panels, so it covers no bar.  The caller closes the figure.
    """
    import numpy as np
    from matplotlib.ticker import ScalarFormatter

    plt = _pyplot()
    des = summary.designs
    adder, mult = des[Design.ADDER], des[Design.MULT]
    names = [e.layer for e in adder.per_op] + ["prog+x"]
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 2, figsize=(max(11.0, 1.3 * len(names) + 3), 4.8))
    for ax, comps, title in ((axes[0], ENGINE_COMPONENTS, "all components"),
                             (axes[1], [c for c in ENGINE_COMPONENTS if c != "dram_pj"], "on chip (DRAM left out)")):
        for off, d, hatch in ((-0.2, adder, ""), (0.2, mult, "//")):
            per = [e.energy for e in d.per_op] + [d.host_streams.energy]
            bottom = np.zeros(len(names))
            for c in comps:
                vals = np.array([getattr(e, c) for e in per]) / 1e3
                ax.bar(x + off, vals, 0.38, bottom=bottom, color=_COLORS[c], hatch=hatch, edgecolor="black",
                       linewidth=0.3, label=c[:-3].replace("_", " ") if d is adder else None)
                bottom += vals
        ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("energy per image (nJ)")
        ax.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
        ax.ticklabel_format(axis="y", style="plain")
        ax.set_title(title, fontsize=10)
    # the left panel has every component: its handles, in a legend outside the right panel
    axes[1].legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="upper left",
                   bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                   title="left: adder\nright (hatched): mult", title_fontsize=7)
    fig.suptitle(f"energy per operation, {summary.model}, engine {summary.config.rows}x"
                 f"{summary.config.cols} (table {summary.table.name})")
    return fig


def sweep_figure(summary: EstimateSummary):
    """The figure of ``sweep.png``: latency and energy per image against the swept engine sizes.

    Both y axes start at 0; the x axis labels at most :data:`SWEEP_MAX_LABELS` points
    (every k-th on a larger sweep), rotated.  ``summary`` must have a sweep.  The caller
    closes the figure.
    """
    from matplotlib.ticker import ScalarFormatter

    plt = _pyplot()
    keys = [k for k, _ in summary.sweep[0].point]
    labels = []
    for p in summary.sweep:
        lab = "x".join(f"{v:g}" for _, v in p.point)
        if lab not in labels:
            labels.append(lab)
    step = -(-len(labels) // SWEEP_MAX_LABELS)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for d, style in ((Design.ADDER, "o-"), (Design.MULT, "s--")):
        ps = [p for p in summary.sweep if p.design is d]
        axes[0].plot(range(len(ps)), [p.latency_us for p in ps], style, label=d.value)
        axes[1].plot(range(len(ps)), [p.energy_pj / 1e6 for p in ps], style, label=d.value)
    for axx, lab in ((axes[0], "latency per image (us)"), (axes[1], "energy per image (uJ)")):
        axx.set_xticks(range(0, len(labels), step), labels[::step], rotation=45, ha="right", fontsize=8)
        axx.set_xlabel(" x ".join(keys) + (f" (one point in {step} labelled)" if step > 1 else ""))
        axx.set_ylabel(lab)
        axx.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
        axx.ticklabel_format(axis="y", style="plain")
        axx.set_ylim(bottom=0)
        axx.grid(axis="y", alpha=0.3)
        axx.legend()
    fig.suptitle(f"latency and energy against engine size (table {summary.table.name})")
    return fig


def _plots(summary: EstimateSummary) -> dict[str, bytes]:
    plt = _pyplot()
    out = {}
    figures = [("energy_breakdown.png", energy_figure)] + ([("sweep.png", sweep_figure)] if summary.sweep else [])
    for name, make in figures:
        fig = make(summary)
        try:
            out[name] = _png_bytes(fig)
        finally:
            plt.close(fig)
    return out


def write_report(out_dir: str | os.PathLike, result: Comparison, *, source: Source,
                 sweep_points=None, modes=()) -> EstimateSummary:
    """Write ``report.md``, ``layers.csv``, ``summary.json``, ``energy_breakdown.png`` and, with a
    sweep, ``sweep.csv`` and ``sweep.png`` into ``out_dir`` (created); return the summary.  ``modes``
    (:func:`hwsim.estimate.estimate_modes`) adds the weight-mode table."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OSError(f"output path {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(result, source=source, sweep_points=sweep_points, modes=modes)
    plots = _plots(summary)
    files = {
        "layers.csv": _csv_bytes(layer_rows(result), LAYER_COLUMNS),
        "summary.json": (json.dumps(summary.to_dict(), indent=2) + "\n").encode(),
    }
    if summary.sweep:
        keys = [k for k, _ in summary.sweep[0].point]
        files["sweep.csv"] = _csv_bytes([p.as_row() for p in summary.sweep], [*keys, *SWEEP_COLUMNS])
    files.update(plots)
    files["report.md"] = render_markdown(result, summary, plots=list(plots)).encode()
    for name, data in files.items():
        atomic_write_bytes(out / name, data)
    return summary
