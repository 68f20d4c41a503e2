"""The report of ``adderhw flow``: one Markdown page tying the steps' JSON together.

Every number is read from a file a subcommand wrote (``quantize/report.json``,
``sweep/sweep.json``, ``estimate/summary.json``, ``generate/engine/<name>.json``,
``synth/compare.json``, ``verify/verify.json``); nothing is recomputed here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from quant.base.intops import PeKind

__all__ = ["accuracy_figure", "write_engine_report", "load_engine_results", "design_json_path"]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"flow report: missing {path} (did its step run?)") from exc
    except ValueError as exc:
        raise ValueError(f"flow report: {path} is not valid JSON: {exc}") from exc


def design_json_path(folder: Path) -> Path:
    """The metadata JSON of the one design ``adderhw generate`` wrote into ``folder``."""
    files = sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))
    if len(files) != 1:
        raise ValueError(f"expected one design JSON in {folder}, found {len(files)}")
    return files[0]


def _design(folder: Path):
    """The one design ``adderhw generate`` wrote into ``folder``, read by :func:`rtl.design.read_design`."""
    from rtl.design import read_design

    return read_design(design_json_path(folder))


def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:,.{digits}f}"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _synth_table(records: list, label) -> str:
    """The synthesis table of ``synth.json`` records, each row named by ``label(record)``."""
    rows = []
    for v in records:
        rr = v["resources"]
        lc = rr["lc"] if rr.get("lc") is not None else "does not fit"
        fmax = _fmt(v["fmax_mhz"]) if v.get("fmax_mhz") else "n/a"
        rows.append([label(v), lc, rr["lut"], rr["ff"], rr["carry"], rr["dsp"], rr["bram"], fmax,
                     f"yosys {v['tools'].get('yosys')}, nextpnr {v['tools'].get('nextpnr')}"])
    return _table(["design", "logic cells", "LUT", "FF", "carry", "DSP", "BRAM", "Fmax (MHz)", "tools"], rows)


def accuracy_figure(sweep_rows: list[dict]):
    """The figure of ``accuracy_vs_bits.png``: integer accuracy of each swept bit width, float as a line.

    ``sweep_rows`` are ``sweep/sweep.json``'s rows (``bits``, ``int_accuracy``,
    ``float_accuracy``); the x axis is ticked at the swept widths only, so every
    tick is a whole number of bits.  The caller closes the figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(sweep_rows, key=lambda r: r["bits"])
    bits = [r["bits"] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(bits, [r["int_accuracy"] for r in rows], "o-", label="integer (golden)")
    ax.axhline(rows[0]["float_accuracy"], color="gray", ls="--", label="float")
    ax.set_xticks(bits)
    ax.set_xlabel("bits")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy vs bit width")
    ax.legend()
    fig.tight_layout()
    return fig


def _plots(res: dict, plots: Path, what: str = "engine") -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots.mkdir(parents=True, exist_ok=True)
    made = {}

    fig = accuracy_figure(res["sweep"]["rows"])
    fig.savefig(plots / "accuracy_vs_bits.png", dpi=120)
    plt.close(fig)
    made["accuracy"] = "accuracy_vs_bits.png"

    synth = [v for v in res["synth"] if not v.get("dsp") and v["resources"].get("lc") is not None]
    if not synth:  # no logic-cell counts (e.g. target generic, or nothing fitted): no plot
        return made
    fig, ax = plt.subplots(figsize=(5, 3.2))
    names = [v["config"]["pe"] for v in synth]
    ax.bar(names, [v["resources"]["lc"] for v in synth], color=["tab:green", "tab:red"][: len(names)])
    for i, v in enumerate(synth):
        fmax = f'{v["fmax_mhz"]:.1f} MHz' if v.get("fmax_mhz") else "no Fmax"
        ax.text(i, v["resources"]["lc"], f'{v["resources"]["lc"]}\n{fmax}',
                ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("logic cells")
    cfg = synth[0]["config"]
    ax.set_title(f'{cfg["rows"]}x{cfg["cols"]} {what}, {cfg["bits"]}-bit, {synth[0]["target"]}')
    ax.margins(y=0.25)
    fig.tight_layout()
    fig.savefig(plots / "logic_cells.png", dpi=120)
    plt.close(fig)
    made["logic_cells"] = "logic_cells.png"
    return made


def _quantize_section(res: dict, final_rel: str, made: dict) -> list[str]:
    """Section 1 of both reports: ``quantize/report.json`` and the bit sweep."""
    q = res["quantize"]
    L: list[str] = []
    L.append("## 1. Quantization (`adderhw quantize`)\n")
    L.append(_table(
        ["bits", "float accuracy (%)", "integer accuracy (%)", "drop (points)", "int/float top-1 agreement (%)", "test images"],
        [[q["bits"], _fmt(q["float_accuracy"]), _fmt(q["int_accuracy"]),
          _fmt(q["float_accuracy"] - q["int_accuracy"]), _fmt(q["int_float_top1_agreement_pct"]),
          q["eval_images"]]],
    ))
    L.append("\nPer layer (`quantize/report.json`):\n")
    L.append(_table(
        ["layer", "kind", "K", "acc bits", "SQNR (dB)", "additions/image", "multiplications/image"],
        [[l["name"], l["kind"], l.get("K", ""), l.get("acc_bits", ""), l.get("sqnr_db", ""),
          f'{l.get("additions_per_image", 0):,}', f'{l.get("multiplications_per_image", 0):,}']
         for l in q["layers"]],
    ))
    L.append("\n### Bit-width sweep (`quantize/ --sweep`)\n")
    L.append(_table(
        ["bits", "float accuracy (%)", "integer accuracy (%)", "drop (points)"],
        [[r["bits"], _fmt(r["float_accuracy"]), _fmt(r["int_accuracy"]),
          _fmt(r["float_accuracy"] - r["int_accuracy"])]
         for r in sorted(res["sweep"]["rows"], key=lambda r: -r["bits"])],
    ))
    L.append(f"\n![accuracy vs bits]({final_rel}/{made['accuracy']})\n")

    return L


def load_engine_results(out: Path) -> dict:
    """The step outputs of the ``cp`` flow, by step name."""
    return {
        "quantize": _read_json(out / "quantize" / "report.json"),
        "sweep": _read_json(out / "sweep" / "sweep.json"),
        "estimate": _read_json(out / "estimate" / "summary.json"),
        "generate": _design(out / "generate" / "engine"),
        "synth": _read_json(out / "synth" / "engine" / "compare.json"),
        "verify": _read_json(out / "verify" / "verify.json"),
    }


#: Energy components of ``estimate`` (``energy_breakdown_pj``), in report order.
_ENGINE_ENERGY = (("dram_pj", "DRAM (streams)"), ("act_sram_pj", "activation SRAM"),
                  ("wbuf_sram_pj", "weight SRAM"), ("pe_pj", "PE arithmetic"), ("requant_pj", "requant"),
                  ("vector_pj", "vector unit"), ("reg_pj", "registers"))


def _modes_section(est: dict, synth: dict) -> list[str]:
    """Both weight modes of the estimate (``weight_modes``), each design at its synthesized Fmax (``synth``:
    pe -> synth.json of the engine built; the stated clock where it has none)."""
    modes = est.get("weight_modes") or []
    if not modes:
        return []
    L = ["### Per weight mode, at the synthesized clock\n",
         "Weights streamed on `w` every image, or resident (loaded once; the load's energy is paid once per "
         "weight load). Images/s at each engine's synthesized Fmax above (the estimate's clock where there "
         "is none); the engine of the other weight mode is not synthesized: its rate assumes the same clock.\n"]
    rows = []
    for m in modes:
        if "why_not" in m:
            rows.append([m["mode"], "—", "—", "—", "—", "—", f"not possible: {m['why_not']}"])
            continue
        for pe in PeKind:
            d = m["designs"][pe]
            fmax = (synth.get(pe) or {}).get("fmax_mhz") or est["config"]["clock_mhz"]
            load = "" if d["load_energy_pj"] is None else _fmt(d["load_energy_pj"] / 1e6, 3)
            rows.append([m["mode"], pe, f"{d['cycles_per_image']:,}",
                         f"{fmax * 1e6 / d['cycles_per_image']:,.1f} at {_fmt(fmax)} MHz",
                         _fmt(d["energy_per_image_pj"] / 1e6, 3), _fmt(d["on_chip_energy_pj"] / 1e6, 3), load])
        r = m["ratios_adder_over_mult"]
        rows.append([m["mode"], "adder/mult", "", "", _fmt(r["energy_pj"], 3), _fmt(r["on_chip_energy_pj"], 3),
                     f"PE {_fmt(r['pe_pj'], 3)}"])
    L.append(_table(["weights", "design", "cycles/image", "images/s", "energy/image (uJ)", "on chip (uJ)",
                     "weight load (uJ)"], rows))
    L.append("")
    return L


def write_engine_report(opts, folder: Path) -> Path:
    """``report.md`` of the ``cp`` flow: accuracy, the engine's counted energy for both designs, its
    synthesis (both engines), and the whole network verified (cycles measured = predicted)."""
    out = Path(opts.out)
    res = load_engine_results(out)
    made = _plots(res, folder / "plots", what="engine")
    final_rel = os.path.relpath(out / "report" / "plots", out)
    q, est, gen, ver = res["quantize"], res["estimate"], res["generate"], res["verify"]
    cfg = est["config"]
    L: list[str] = [f"# adderhw flow report: `{opts.checkpoint}` on the network engine\n"]
    L.append(
        f"Model `{q.get('model')}` on `{q.get('dataset')}`, {opts.bits}-bit, engine {cfg['rows']}x{cfg['cols']}, "
        f"simulator {opts.sim}, target {opts.target}. Each section is the output of the "
        f"`adderhw` subcommand named in it; the step folders hold the full outputs.\n")
    L += _quantize_section(res, final_rel, made)

    # 2. estimate
    L.append(f"## 2. Cycles and counted energy (`adderhw estimate`, table {est['table']['name']})\n")
    L.append(f"Every memory read and write, stream beat and PE step of one image, as the engine performs them "
             f"(hwsim's count equals the RTL's, section 5), priced by the table: {est['table']['title']}. "
             f"SRAM energy by size: {est['table'].get('sram_size_source', '')}\n")
    rows = []
    for name in PeKind:  # the adder engine, the all-multiplier engine
        d = est["designs"][name]
        b = d["energy_breakdown_pj"]
        rows.append([name, f"{d['total_cycles']:,}", _fmt(d["latency_us"]), _fmt(d["energy_pj"] / 1e6, 3),
                     _fmt(d["on_chip_energy_pj"] / 1e6, 3), *[_fmt(b[k] / 1e6, 4) for k, _ in _ENGINE_ENERGY]])
    L.append(_table(["design", "cycles", "latency (us)", "energy (uJ)", "on chip (uJ)",
                     *[f"{label} (uJ)" for _, label in _ENGINE_ENERGY]], rows))
    r = est["ratios_adder_over_mult"]
    L.append(f"\nAdder engine / all-multiplier engine: cycles {r['total_cycles']:.3f}, energy {r['energy_pj']:.3f}, "
             f"on chip {r['on_chip_energy_pj']:.3f}, PE arithmetic {r['pe_pj']:.3f}.\n")
    L.append("![energy by component](estimate/energy_breakdown.png)\n")

    # 3. generate
    L.append("## 3. The engine (`adderhw generate --model`)\n")
    gc = gen.config
    L.append(_table(["Verilog", "rows x cols", "PE", "mult rows", "bits", "acc bits", "activation regions (words)",
                     "weight buffer (words)", "operations"],
                    [[f"`generate/engine/{gen.verilog.name}`", f"{gc.rows}x{gc.cols}", gc.pe,
                      gc.mult_rows, gc.bits, gc.acc_bits, ", ".join(map(str, gc.act_words)),
                      gc.weight_words, gen.max_ops]]))
    L.append("")

    # 4. synth
    syn = res["synth"]
    L.append(f"## 4. Synthesis (`adderhw synth --compare --lut-only`, {syn[0]['target']})\n")
    L.append("The adder engine and the all-multiplier engine of the same sizes (multipliers in LUTs), "
             "memories included.\n")
    L.append(_synth_table(syn, lambda v: f"engine {v['config']['pe']}"))
    pair = {v["config"]["pe"]: v for v in syn if not v.get("dsp")}
    if all(p in pair and pair[p]["resources"].get("lut") for p in PeKind):
        ratio = pair[PeKind.ADDER]["resources"]["lut"] / pair[PeKind.MULT]["resources"]["lut"]
        L.append(f"\nAdder engine / multiplier engine LUTs: {100 * ratio:.1f} %.\n")
    if "logic_cells" in made:
        L.append(f"\n![logic cells adder vs multiplier]({final_rel}/{made['logic_cells']})\n")
    L += _modes_section(est, pair)

    # 5. verify
    L.append(f"## 5. The whole network on the engine (`adderhw verify`, {opts.sim})\n")
    vrows = []
    for t in ver["tests"]:
        for im in t["images"]:
            cm, cp = im["cycles_measured"], im["cycles_predicted"]
            vrows.append([t["name"], t["simulator"], im["image"], "pass" if t["passed"] else "FAIL",
                          "equal" if im["logits_ok"] else "DIFFER", "" if cm is None else f"{cm:,}", f"{cp:,}",
                          "" if cm is None else cm - cp, "equal" if im["counters_ok"] else "DIFFER",
                          "" if im.get("wall_s") is None else _fmt(im["wall_s"])])
    L.append(_table(["test", "simulator", "image", "result", "logits vs golden", "cycles measured",
                     "cycles predicted (hwsim)", "difference", "counters vs hwsim", "wall (s)"], vrows))
    first = ver["tests"][0]["images"][0] if ver["tests"] and ver["tests"][0]["images"] else None
    if first:
        L.append(f"\nPer operation, image {first['image']}:\n")
        L.append(_table(["operation", "cycles measured", "cycles predicted", "counters"],
                        [[o["name"], f"{o['cycles_measured']:,}", f"{o['cycles_predicted']:,}",
                          "equal" if o["counters_ok"] else "DIFFER"] for o in first["ops"]]))
    passed = sum(1 for t in ver["tests"] if t["passed"])
    L.append(f"\n{passed} of {len(ver['tests'])} passed.\n")
    text = "\n".join(L)
    (folder / "report.md").write_text(text)
    return folder / "report.md"
