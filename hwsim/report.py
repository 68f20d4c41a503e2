"""Reports of an estimate: ``report.md``, ``layers.csv``, ``sweep.csv``, ``summary.json``, PNG plots.

Every file is written to a temporary name in the output folder and renamed
into place, so a failed run leaves no half-written file.  Columns carry their
units (``total_cycles``, ``energy_pj``, ``util_pct``, ...); ``summary.json``
names the tool version, the table and its source.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from hwsim.cpu import PAPER_LENET5_BN
from hwsim.energy import COMPONENTS
from hwsim.estimate import SWEEP_COLUMNS, Estimate
from quant.files import atomic_write_bytes, dist_version

__all__ = [
    "LAYER_COLUMNS",
    "PAPER_OPS",
    "layer_rows",
    "summary_dict",
    "render_markdown",
    "write_report",
    "engine_summary_dict",
    "render_engine_markdown",
    "write_engine_report",
]

LAYER_COLUMNS = (
    "design", "layer", "kind", "pe", "out_channels", "out_pixels", "k", "tiles",
    "fill_cycles", "steady_cycles", "drain_cycles", "shadow_stall_cycles",
    "stream_stall_cycles", "total_cycles", "latency_us", "dram_cycles", "dram_bound_cycles",
    "macs", "pe_ops", "util_pct", "dram_bytes", "groups", "rescales", "pe_pj", "reg_pj", "buffer_pj",
    "dram_pj", "rescale_pj", "energy_pj",
)

#: Multiplications per image the AdderNet paper (Chen et al., CVPR 2020) reports.
PAPER_OPS = {"lenet5-bn": 435_000, "resnet20": 41_170_000}


def layer_rows(est: Estimate) -> list[dict]:
    """One row per (design, layer) with :data:`LAYER_COLUMNS`."""
    rows = []
    for design, res in est.designs.items():
        for m, e in zip(res.mappings, res.energies):
            rows.append({
                "design": design,
                "layer": m.layer.name,
                "kind": m.layer.kind,
                "pe": m.cfg.pe,
                "out_channels": m.layer.out_channels,
                "out_pixels": m.layer.out_pixels,
                "k": m.layer.k,
                "tiles": m.tiles,
                "fill_cycles": m.fill_cycles,
                "steady_cycles": m.steady_cycles,
                "drain_cycles": m.drain_cycles,
                "shadow_stall_cycles": m.shadow_stall_cycles,
                "stream_stall_cycles": m.stream_stall_cycles,
                "total_cycles": m.total_cycles,
                "latency_us": m.latency_us,
                "dram_cycles": m.dram_cycles,
                "dram_bound_cycles": m.dram_bound_cycles,
                "macs": m.layer.macs,
                "pe_ops": m.pe_ops,
                "util_pct": 100.0 * m.utilization,
                "dram_bytes": m.dram_bytes,
                "groups": m.layer.groups,
                "rescales": m.rescales,
                "pe_pj": e.pe_pj,
                "reg_pj": e.reg_pj,
                "buffer_pj": e.buffer_pj,
                "dram_pj": e.dram_pj,
                "rescale_pj": e.rescale_pj,
                "energy_pj": e.total_pj,
            })
    return rows


def summary_dict(est: Estimate, *, source: str, model_name: str, sweep_rows=None) -> dict:
    """The content of ``summary.json``."""
    unit = est.table.area_unit
    designs = {}
    for d, res in est.designs.items():
        e = res.energy
        designs[d] = {
            "total_cycles": res.total_cycles,
            "latency_us": res.latency_us,
            "dram_bound_cycles": res.dram_bound_cycles,
            "dram_bound_layers": [m.layer.name for m in res.mappings if m.dram_cycles > m.total_cycles],
            "energy_pj": e.total_pj,
            "energy_breakdown_pj": {c: getattr(e, c) for c in COMPONENTS},
            "rescales": res.rescales,
            f"area_{unit}": res.area,
            f"mult_path_area_{unit}": res.mult_path_area,
            "utilization": res.utilization,
            "layers_on_adder_pes": sum(1 for m in res.mappings if m.cfg.pe == "adder"),
            "layers_on_mult_pes": sum(1 for m in res.mappings if m.cfg.pe == "mult"),
        }
    cpu = {
        name: {"mults": oc.multiplications, "adds": oc.additions, "cycles": est.cpu_latency.cycles(oc)}
        for name, oc in est.cpu.items()
    }
    out = {
        "tool": "adderhw estimate",
        "version": dist_version("adderhw", "0+unknown"),
        "input": source,
        "model": model_name,
        "config": est.cfg.to_dict(),
        "table": {"name": est.table.name, "title": est.table.title, "source": est.table.source,
                  "area_unit": unit},
        "designs": designs,
        "ratios_adder_over_mult": {
            "total_cycles": est.ratio("total_cycles"),
            "energy_pj": est.ratio("energy_pj"),
            f"area_{unit}": est.ratio("area"),
        },
        "op_counts": {
            "macs": sum(l.macs for l in est.layers),
            "adder_layer_terms": sum(l.macs for l in est.layers if l.is_adder),
            "mult_layer_macs": sum(l.macs for l in est.layers if not l.is_adder),
            "group_rescales": sum(l.rescales for l in est.layers),
            "paper_mults": PAPER_OPS.get(model_name),
        },
        "cpu_latency_model": {
            "mult_cycles": est.cpu_latency.mult_cycles,
            "add_cycles": est.cpu_latency.add_cycles,
            **cpu,
        },
    }
    if sweep_rows is not None:
        out["sweep"] = sweep_rows
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _si(v: float) -> str:
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suf}"
    return f"{v:.3g}"


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _ops_section(est: Estimate, model_name: str) -> str:
    lat = est.cpu_latency
    macs = sum(l.macs for l in est.layers)
    cnn, add = est.cpu["cnn"], est.cpu["addernet"]
    rows = [
        ("ours: CNN", f"{cnn.multiplications:,}", f"{cnn.additions:,}", f"{lat.cycles(cnn):,}"),
        ("ours: AdderNet", f"{add.multiplications:,}", f"{add.additions:,}", f"{lat.cycles(add):,}"),
    ]
    text = [
        "## Op counts and the CPU latency model",
        "",
        f"Multiply-accumulates (or `|x - w|` terms) per image: **{macs:,}** "
        f"({', '.join(f'{l.name} {l.macs:,}' for l in est.layers)}).",
        "",
        f"CPU model of the AdderNet paper: multiply {lat.mult_cycles} cycles, add {lat.add_cycles} cycles; "
        "op counts from `quant.opcount`: a CNN layer does one multiply and one add per term, an adder "
        "layer two adds (subtract and accumulate), plus, with G > 1 group-shared scales, one "
        "multiply and one add per input value and group (the input re-scale); multiply layers stay "
        "multiply layers in the AdderNet; requant, pooling and residual adds are not counted.",
        "",
    ]
    if model_name == "lenet5-bn":
        p = PAPER_LENET5_BN
        rows += [
            ("paper: CNN", f"{p['cnn'].multiplications:,}", f"{p['cnn'].additions:,}", f"{lat.cycles(p['cnn']):,}"),
            ("paper: AdderNet", f"{p['addernet'].multiplications:,}", f"{p['addernet'].additions:,}",
             f"{lat.cycles(p['addernet']):,}"),
        ]
    text.append(_table(("variant", "mults", "adds", "cpu_cycles"), rows))
    paper = PAPER_OPS.get(model_name)
    if paper:
        diff = macs - paper
        text += ["", f"The paper reports {paper:,} multiplications for {model_name}; ours are "
                 f"{macs:,} ({diff:+,}, {100.0 * diff / paper:+.2f} %)."]
        if model_name == "lenet5-bn":
            text.append(
                "Our LeNet-5-BN is conv1 5x5 pad 2 1->6 @28x28, maxpool, conv2 5x5 6->16 @10x10, "
                "maxpool, fc 400->120->84->10: 117,600 + 240,000 + 48,000 + 10,080 + 840 = 416,520 "
                "terms, the same as the classic LeNet-5 on an unpadded 32x32 input.  The paper does "
                "not list its layer sizes; its 435K is 18,480 (4.4 %) more than these five layers "
                "produce, so it presumably counts other operations as well (e.g. BN or pooling) or "
                "uses slightly different layer sizes.  The CPU-cycle ratio CNN/AdderNet is 1.5 in "
                "both (6 vs 4 cycles per term)."
            )
        else:
            text.append(
                "Our count is exactly sum(O*P*K) over the 21 conv/linear layers of the reference "
                "layout (first conv 442,368 and classifier 640 on the multiplier path, 1x1 downsample "
                "convs included); the paper does not say what else its figure includes (BN, residual "
                "adds or pooling would account for the difference)."
            )
    return "\n".join(text)


def render_markdown(est: Estimate, summary: dict, *, plots: list[str], sweep_rows=None) -> str:
    """The text of ``report.md``."""
    unit = est.table.area_unit
    cfg = est.cfg
    a, m = est.designs["adder"], est.designs["mult"]
    out = [
        f"# adderhw estimate: {summary['model']}",
        "",
        f"Input `{summary['input']}`; adderhw {summary['version']}.",
        "",
        f"Array: {cfg.rows} x {cfg.cols} output-stationary, {cfg.bits}-bit operands, "
        f"max_k {cfg.max_k}, requant {cfg.requant} (latency {cfg.requant_latency}), "
        f"{cfg.clock_mhz:g} MHz, stream {cfg.stream_beats_per_cycle:g} beat/cycle, "
        f"DRAM {cfg.dram_bytes_per_cycle:g} B/cycle, buffers {cfg.weight_buffer_kib}/"
        f"{cfg.act_buffer_kib}/{cfg.out_buffer_kib} KiB (weights/activations/outputs).",
        "",
        f"Energy table **{est.table.name}**: {est.table.title}.  Source: {est.table.source}",
        "",
        "## Adder array vs multiplier array",
        "",
        "The adder design runs adder layers on adder PEs and multiply layers (first conv, "
        "classifier) on a multiplier array of the same shape; the multiplier design runs every "
        "layer on multiplier PEs.  Cycle counts are the v1 tile schedule (`hwsim/schedule.py`), "
        "which the RTL is checked against.",
        "",
    ]
    hdr = ("design", "total_cycles", "latency_us", "dram_bound_cycles", "energy_pj", "pe_pj", "reg_pj",
           "buffer_pj", "dram_pj", "rescales", "rescale_pj", f"area_{unit}", f"mult_path_area_{unit}", "util_pct")
    rows = []
    for d, res in est.designs.items():
        e = res.energy
        rows.append((d, res.total_cycles, res.latency_us, res.dram_bound_cycles, e.total_pj, e.pe_pj, e.reg_pj,
                     e.buffer_pj, e.dram_pj, res.rescales, e.rescale_pj, res.area, res.mult_path_area,
                     100.0 * res.utilization))
    rows.append(("adder/mult", est.ratio("total_cycles"), est.ratio("total_cycles"),
                 a.dram_bound_cycles / m.dram_bound_cycles, est.ratio("energy_pj"),
                 a.energy.pe_pj / m.energy.pe_pj, a.energy.reg_pj / m.energy.reg_pj,
                 a.energy.buffer_pj / m.energy.buffer_pj, a.energy.dram_pj / m.energy.dram_pj, "", "",
                 est.ratio("area"), "", ""))
    out += [_table(hdr, rows), ""]
    out += [
        "`total_cycles` is the array's tile schedule with the configured stream rate (exactly "
        "`hwsim.schedule.layer_cycles` at 1 beat/cycle); `dram_bound_cycles` adds the off-chip "
        "bandwidth as a per-layer roofline, max(total_cycles, dram_bytes / dram_bytes_per_cycle)"
        + (f"; DRAM-bound layers: {', '.join(summary['designs']['adder']['dram_bound_layers'])}."
           if summary["designs"]["adder"]["dram_bound_layers"] else "; no layer is DRAM-bound.")
        + "  Areas are the PE array only (PEs with accumulator and shadow register, operand "
        "registers); requant units and buffers are not included.  `rescales` and `rescale_pj`: "
        "the input re-scale of adder layers with G > 1 group-shared scales (G per input value, "
        "each a multiply and an add of the re-scale's widths; 0 for G = 1 and in the multiplier "
        "design, whose per-channel scales fold into the output requant).",
        "",
        "## Per layer",
        "",
    ]
    hdr = ("layer", "kind", "O", "P", "K", "tiles", "total_cycles", "shadow_stall_cycles", "dram_cycles",
           "util_pct", "G", "rescales", "adder energy_pj", "mult energy_pj", "adder pe_pj", "mult pe_pj",
           "adder rescale_pj")
    rows = []
    for ma, ea, mm, em in zip(a.mappings, a.energies, m.mappings, m.energies):
        rows.append((ma.layer.name, ma.layer.kind, ma.layer.out_channels, ma.layer.out_pixels, ma.layer.k,
                     ma.tiles, ma.total_cycles, ma.shadow_stall_cycles, ma.dram_cycles, 100.0 * ma.utilization,
                     ma.layer.groups, ma.rescales, ea.total_pj, em.total_pj,
                     ea.pe_pj, em.pe_pj, ea.rescale_pj))
    out += [_table(hdr, rows), "", "All columns per design: `layers.csv`.", ""]
    out += [_ops_section(est, summary["model"]), ""]
    if sweep_rows:
        keys = [k for k in sweep_rows[0] if k not in SWEEP_COLUMNS]
        out += ["## Array sweep", ""]
        hdr = tuple(keys) + ("design", "total_cycles", "dram_bound_cycles", "energy_pj", "area", "util_pct")
        out += [_table(hdr, [tuple(r[k] for k in hdr) for r in sweep_rows]), "", "Data: `sweep.csv`.", ""]
    if plots:
        out += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(out)


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


def _plots(est: Estimate, sweep_rows) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import ScalarFormatter
    import numpy as np

    out = {}
    a, m = est.designs["adder"], est.designs["mult"]
    names = [mm.layer.name for mm in a.mappings]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(names) + 2), 4.5))
    colors = {"pe_pj": "tab:red", "reg_pj": "tab:orange", "buffer_pj": "tab:blue", "dram_pj": "tab:gray",
              "rescale_pj": "tab:green"}
    for off, res, hatch in ((-0.2, a, ""), (0.2, m, "//")):
        bottom = np.zeros(len(names))
        for c in COMPONENTS:
            vals = np.array([getattr(e, c) for e in res.energies]) / 1e6
            ax.bar(x + off, vals, 0.38, bottom=bottom, color=colors[c], hatch=hatch, edgecolor="black",
                   linewidth=0.3, label=f"{c[:-3]} ({res.design})")
            bottom += vals
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("energy per image (uJ)")
    ax.set_title(f"energy per layer: adder (left) vs multiplier (right, hatched), table {est.table.name}")
    ax.legend(fontsize=7, ncol=2)
    out["energy_breakdown.png"] = _png_bytes(fig)
    plt.close(fig)

    if sweep_rows:
        keys = [k for k in sweep_rows[0] if k not in SWEEP_COLUMNS]
        labels = []
        for r in sweep_rows:
            lab = "x".join(str(r[k]) for k in keys)
            if lab not in labels:
                labels.append(lab)
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for d, style in (("adder", "o-"), ("mult", "s--")):
            rs = [r for r in sweep_rows if r["design"] == d]
            axes[0].plot(range(len(rs)), [r["latency_us"] for r in rs], style, label=d)
            axes[1].plot(range(len(rs)), [r["energy_pj"] / 1e6 for r in rs], style, label=d)
        for axx, lab in ((axes[0], "latency per image (us)"), (axes[1], "energy per image (uJ)")):
            axx.set_xticks(range(len(labels)), labels, rotation=45, fontsize=8)
            axx.set_xlabel(" x ".join(keys))
            axx.set_ylabel(lab)
            axx.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
            axx.ticklabel_format(axis="y", style="plain")
            axx.grid(axis="y", alpha=0.3)
            axx.legend()
        fig.suptitle(f"latency and energy against array size (table {est.table.name})")
        out["sweep.png"] = _png_bytes(fig)
        plt.close(fig)
    return out


def write_report(out_dir: str | os.PathLike, est: Estimate, *, source: str, model_name: str,
                 sweep_rows=None) -> dict:
    """Write every report file into ``out_dir`` (created); return the summary dict.

    Files: ``report.md``, ``layers.csv``, ``summary.json``,
    ``energy_breakdown.png`` and, with a sweep, ``sweep.csv`` and ``sweep.png``.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OSError(f"output path {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    summary = summary_dict(est, source=source, model_name=model_name, sweep_rows=sweep_rows)
    plots = _plots(est, sweep_rows)
    files = {
        "layers.csv": _csv_bytes(layer_rows(est), LAYER_COLUMNS),
        "summary.json": (json.dumps(summary, indent=2) + "\n").encode(),
    }
    if sweep_rows:
        keys = [k for k in sweep_rows[0] if k not in SWEEP_COLUMNS]
        files["sweep.csv"] = _csv_bytes(sweep_rows, keys + list(SWEEP_COLUMNS))
    files.update(plots)
    files["report.md"] = render_markdown(est, summary, plots=list(plots), sweep_rows=sweep_rows).encode()
    for name, data in files.items():
        atomic_write_bytes(out / name, data)
    return summary


# --- dataflow cp (the network engine) ------------------------------------------------

#: Run-level counts of a ``cp`` design in ``summary.json`` (beside the per-op sums).
_CP_TOTALS = ("busy_cycles", "act_reads", "act_writes", "wbuf_reads", "wbuf_writes", "w_beats", "o_beats",
              "requant_ops", "prog_beats", "x_beats")


#: What the cp energy counts and leaves out (``summary.json`` ``energy_counts``, ``report.md``).
_CP_COUNTED = (
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
_CP_LEFT_OUT = (
    "the controller, address generator and handshake flags; the requant and vector pipelines' own "
    "registers; the memories' output latches; clock tree; leakage (static energy over the run's cycles)",
    "data-dependent activity: every counted operation is charged its full width, zero operands "
    "(padding, the idle rows of a partial tile) included",
    "SRAM energy by size is the table's sqrt(size) model assumption (its size_source), not a "
    "measurement of these memories",
)


def _ratio(a: float, m: float):
    return a / m if m else None


def engine_summary_dict(dataflow, result, *, source: str, model_name: str) -> dict:
    """The content of ``summary.json`` for dataflow ``cp`` (a :class:`hwsim.dataflows.ChannelParallel`
    and its :class:`~hwsim.dataflows.CpEstimate`, with energy)."""
    from hwsim.energy import ENGINE_COMPONENTS

    if result.energy is None or dataflow.table is None:
        raise ValueError("the cp report needs an estimate priced with an energy table")
    tab = dataflow.table
    designs = {}
    for d, est in result.designs.items():
        t = est.totals()
        en = result.energy[d]
        tot = en.total
        designs[d] = {
            "config": est.config.to_dict(),
            "total_cycles": est.total_cycles,
            "latency_us": est.latency_us,
            **{k: t[k] for k in _CP_TOTALS},
            "stream_beats": t["prog_beats"] + t["x_beats"] + t["w_beats"] + t["o_beats"],
            "ops_on_adder": sum(1 for l in est.layers if l.unit == "adder"),
            "ops_on_mult": sum(1 for l in est.layers if l.unit == "mult"),
            "ops_on_vector": sum(1 for l in est.layers if l.unit == "vector"),
            "energy_pj": tot.total_pj,
            "on_chip_energy_pj": tot.total_pj - tot.dram_pj,
            "energy_breakdown_pj": tot.as_dict(),
            "energy_per_op_pj": [{"layer": l.name, "unit": l.unit, **e.as_dict(), "energy_pj": e.total_pj}
                                 for l, e in zip(est.layers, en.ops)],
            "energy_host_streams_pj": {**en.streams.as_dict(), "energy_pj": en.streams.total_pj},
        }
    a, m = (result.energy[d].total for d in ("adder", "mult"))
    ratios = {"total_cycles": result.ratio("total_cycles"), "energy_pj": _ratio(a.total_pj, m.total_pj),
              "on_chip_energy_pj": _ratio(a.total_pj - a.dram_pj, m.total_pj - m.dram_pj),
              **{c: _ratio(getattr(a, c), getattr(m, c)) for c in ENGINE_COMPONENTS}}
    return {
        "tool": "adderhw estimate",
        "version": dist_version("adderhw", "0+unknown"),
        "dataflow": dataflow.name,
        "input": source,
        "model": model_name,
        "config": result.config.to_dict(),
        "table": {"name": tab.name, "title": tab.title, "source": tab.source,
                  "sram_size_source": tab.sram_size_source, "sram_ref_bytes": tab.sram_ref_bytes,
                  "sram_size_exponent": tab.sram_size_exponent, "area_unit": tab.area_unit},
        "memories": result.energy["adder"].memories,
        "prog_beat_bits": dataflow.prog_beat_bits,
        "designs": designs,
        "ratios_adder_over_mult": ratios,
        "energy_counts": list(_CP_COUNTED),
        "energy_left_out": list(_CP_LEFT_OUT),
    }


def render_engine_markdown(dataflow, result, summary: dict, *, plots=()) -> str:
    """``report.md`` of dataflow ``cp``."""
    from hwsim.energy import ENGINE_COMPONENTS

    c = result.config
    tab = summary["table"]
    out = [
        f"# Network engine estimate (dataflow `cp`): {summary['model']}",
        "",
        f"Input: `{summary['input']}`; adderhw {summary['version']}.",
        "",
        f"Engine {c.rows}x{c.cols} (Tm output x Tn input channels), {c.bits}-bit, "
        f"multiplier unit {c.mult_rows} rows, requant {', '.join(c.requant)}, {c.clock_mhz:g} MHz, "
        "sized to the model as `adderhw generate --engine --model` sizes it. "
        "Cycles and counts are the exact closed form of `hwsim/engine.py` (equal to the RTL's "
        "counters); `mult` is the same engine with multiplier PEs everywhere (no separate "
        "multiplier unit, the same memories).",
        "",
        f"Energy table **{tab['name']}**: {tab['title']}.  Source: {tab['source']}",
        "",
        f"SRAM energy by size: {tab['sram_size_source']}.",
        "",
        "## Memories",
        "",
    ]
    mem_rows = [(k, v["words"], v["word_bits"], v["bytes"], v["pj_per_access"], v["pj_per_access"] / v["word_bits"])
                for k, v in summary["memories"].items()]
    out += [_table(("memory", "words", "word_bits", "bytes", "pj_per_access", "pj_per_bit"), mem_rows), ""]
    out += ["## Totals", ""]
    hdr = ("design", "total_cycles", "latency_us", "busy_cycles", "act_reads", "act_writes", "wbuf_reads",
           "wbuf_writes", "prog_beats", "x_beats", "w_beats", "o_beats", "requant_ops")
    out += [_table(hdr, [(d, *(r[k] for k in hdr[1:])) for d, r in summary["designs"].items()]), ""]
    out += [f"adder/mult cycles: {summary['ratios_adder_over_mult']['total_cycles']:.4g}.", ""]
    out += ["## Energy per image", ""]
    hdr = ("design", "energy_pj", "on_chip_energy_pj", *ENGINE_COMPONENTS)
    rows = [(d, r["energy_pj"], r["on_chip_energy_pj"], *(r["energy_breakdown_pj"][k] for k in ENGINE_COMPONENTS))
            for d, r in summary["designs"].items()]
    rt = summary["ratios_adder_over_mult"]
    rows.append(("adder/mult", *("" if rt[k] is None else rt[k] for k in hdr[1:])))
    out += [_table(hdr, rows), ""]
    out += ["Counted (every access of the exact counters, each at its own cost):", ""]
    out += [f"* {t}" for t in summary["energy_counts"]] + ["", "Not counted:", ""]
    out += [f"* {t}" for t in summary["energy_left_out"]] + [""]
    out += ["## Energy per operation", ""]
    hdr = ("design", "layer", "unit", *ENGINE_COMPONENTS, "energy_pj")
    rows = []
    for d, r in summary["designs"].items():
        rows += [(d, e["layer"], e["unit"], *(e[k] for k in hdr[3:])) for e in r["energy_per_op_pj"]]
        hs = r["energy_host_streams_pj"]
        rows.append((d, "(prog + x streams)", "host", *(hs[k] for k in hdr[3:])))
    out += [_table(hdr, rows), ""]
    out += ["## Per operation", ""]
    cols = ("design", "layer", "op", "unit", "total_cycles", "util_pct", "act_reads", "act_writes",
            "wbuf_reads", "wbuf_writes", "w_beats", "o_beats", "requant_ops")
    out += [_table(cols, [tuple(r[k] for k in cols) for r in dataflow.layer_rows(result)]), "",
            "Data: `layers.csv`.", ""]
    if plots:
        out += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(out)


def _engine_plots(summary: dict) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib import pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    from hwsim.energy import ENGINE_COMPONENTS

    des = summary["designs"]
    names = [e["layer"] for e in des["adder"]["energy_per_op_pj"]] + ["prog+x"]
    x = np.arange(len(names))
    colors = {"act_sram_pj": "tab:blue", "wbuf_sram_pj": "tab:cyan", "dram_pj": "tab:gray", "pe_pj": "tab:red",
              "vector_pj": "tab:purple", "requant_pj": "tab:green", "reg_pj": "tab:orange"}
    fig, axes = plt.subplots(1, 2, figsize=(max(11.0, 1.3 * len(names) + 3), 4.8))
    for ax, comps, title in ((axes[0], ENGINE_COMPONENTS, "all components"),
                             (axes[1], [c for c in ENGINE_COMPONENTS if c != "dram_pj"], "on chip (DRAM left out)")):
        for off, d, hatch in ((-0.2, "adder", ""), (0.2, "mult", "//")):
            per = des[d]["energy_per_op_pj"] + [des[d]["energy_host_streams_pj"]]
            bottom = np.zeros(len(names))
            for c in comps:
                vals = np.array([e[c] for e in per]) / 1e3
                ax.bar(x + off, vals, 0.38, bottom=bottom, color=colors[c], hatch=hatch, edgecolor="black",
                       linewidth=0.3, label=c[:-3].replace("_", " ") if d == "adder" else None)
                bottom += vals
        ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("energy per image (nJ)")
        ax.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
        ax.ticklabel_format(axis="y", style="plain")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, title="left: adder, right (hatched): mult", title_fontsize=7)
    fig.suptitle(f"energy per operation, {summary['model']}, engine {summary['config']['rows']}x"
                 f"{summary['config']['cols']} (table {summary['table']['name']})")
    return {"energy_breakdown.png": _png_bytes(fig)}


def write_engine_report(out_dir: str | os.PathLike, dataflow, result, *, source: str,
                        model_name: str) -> dict:
    """Write ``report.md``, ``layers.csv``, ``summary.json`` and ``energy_breakdown.png`` of dataflow
    ``cp``; return the summary."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OSError(f"output path {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    summary = engine_summary_dict(dataflow, result, source=source, model_name=model_name)
    plots = _engine_plots(summary)
    files = {
        "layers.csv": _csv_bytes(dataflow.layer_rows(result), dataflow.layer_columns),
        "summary.json": (json.dumps(summary, indent=2) + "\n").encode(),
        **plots,
        "report.md": render_engine_markdown(dataflow, result, summary, plots=list(plots)).encode(),
    }
    for name, data in files.items():
        atomic_write_bytes(out / name, data)
    return summary
