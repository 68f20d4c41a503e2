"""Synthesis benchmark: the PE-arithmetic study (adder vs multiplier PE and bare PE array) on iCE40 HX8K.

Generates each study block (:mod:`rtl.study`) with the adder PE and with the
multiplier PE (same config, multipliers in LUTs), synthesizes them with yosys 0.23 and
nextpnr-ice40 (``rtl.synth``), prints a markdown table and, per block, the
adder's logic cells as a ratio of the multiplier's measured in the same run,
and writes everything to ``build/bench_synth/bench_synth.json``.

Usage::

    .venv/bin/python scripts/bench_synth.py            # PE, 4x4 and 8x8 arrays
    .venv/bin/python scripts/bench_synth.py --quick    # PE and 4x4 array only
    .venv/bin/python scripts/bench_synth.py --only array -o build/bench_array
    .venv/bin/python scripts/bench_synth.py --engine   # the LeNet-5-BN 4x4 network engines, ECP5-25K
    .venv/bin/python scripts/bench_synth.py --scale [--sizes 4x4,8x8] [--lut-only | --dsp-sizes 4x4]
                                                       # the whole engine at scale (below)

``--scale`` is the scale table: the whole engine, adder vs multiplier, LUT-only
and with DSPs, at 4x4, 8x8, 16x8 and 16x16, beside the bare PE array
(``generate --block array``) of the same size on the same part.  Each engine is
the one ``generate --model`` gives the shipped LeNet-5-BN W8 at that size
(:data:`SCALE_MODEL`, quantized for its shapes: the engine depends on them, not
on the weights), in the deployable build (``Build.DEPLOY``: no counters or trace).  Each size goes on
the smallest ECP5 part where both engines fit: the first whose block RAMs hold
the memories (:func:`hwsim.parts.bram_blocks`), whose DSP blocks hold one
``MULT18X18D`` per PE with DSPs (:func:`dsp_need`), and no smaller than the
previous size needed; when nextpnr cannot place one, the next part that holds
yosys's LUT and DSP counts.  A size no part holds keeps its row with the reason
(and yosys's counts where it ran).  Every synthesis is cached
(``OUT/scale/<design>_<part>[_dsp]/synth.json``, reused when its ``work/dut.v`` is
the same Verilog), so an interrupted run resumes where it stopped.  Writes
``build/bench/bench_synth.json`` (:func:`scripts.results.write_bench`: the table
``scale`` and the table ``critical_path``, where nextpnr's slowest path of each
placed design starts and ends) and ``build/bench/bench_synth_ratio.png`` (the
adder/multiplier LUT ratio against the number of PEs).  The 16x8 and 16x16
engines go on the ECP5-85K: expect hours on 2 cores for the whole table.

``--engine`` synthesizes the network engine sized for LeNet-5-BN (4x4, 8-bit, the
memories ``generate --model`` gives it) with adder PEs and with multiplier
PEs, LUT-only and with DSPs (``rtl.synth.compare``, two at a time), on ECP5-25K
unless ``--target`` says otherwise: about 15 minutes on 2 cores.

The 8x8 multiplier array does not fit an HX8K (the table says so; its yosys
counts are still reported).  Expect 10-20 minutes on 2 cores for the full run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from quant.base.files import atomic_write_text
from quant.base.intops import PeKind
from rtl.array import BlockConfig
from rtl.design import Block
from rtl.study import STUDY_BLOCKS, generate_block
from rtl.synth import format_table, synthesize

__all__ = ["main", "cached_synthesis"]


def _cases(quick: bool) -> list[tuple[Block, BlockConfig]]:
    base = dict(bits=8, max_k=1024)
    cases = [(Block.PE, BlockConfig(rows=1, cols=1, **base)),
             (Block.ARRAY, BlockConfig(rows=4, cols=4, **base))]
    if not quick:
        cases += [(Block.ARRAY, BlockConfig(rows=8, cols=8, **base))]
    return cases


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="PE and 4x4 array only")
    ap.add_argument("--only", choices=STUDY_BLOCKS, default=None,
                    help="run only the cases of this block")
    ap.add_argument("--engine", action="store_true", help="the LeNet-5-BN network engines instead (see above)")
    ap.add_argument("--target", default=None, help="default ice40-hx8k; with --engine ecp5-25k")
    ap.add_argument("--scale", action="store_true", help="the engine/array scale table on ECP5 (see above)")
    ap.add_argument("--sizes", default=",".join(f"{r}x{c}" for r, c in SCALE_SIZES),
                    help="--scale: array sizes ROWSxCOLS, comma-separated (default 4x4,8x8,16x8,16x16)")
    ap.add_argument("--lut-only", action="store_true", help="--scale: skip the DSP variants")
    ap.add_argument("--dsp-sizes", default=None,
                    help="--scale: the sizes whose DSP variant runs (default: every size of --sizes)")
    ap.add_argument("--json", type=Path, default=Path("build/bench/bench_synth.json"),
                    help="--scale: the benchmark file (default build/bench/bench_synth.json)")
    ap.add_argument("-o", "--out", default="build/bench_synth")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.scale:
        try:
            sizes = _sizes(args.sizes)
            dsp_sizes = [] if args.lut_only else sizes if args.dsp_sizes is None else _sizes(args.dsp_sizes)
        except ValueError as e:
            ap.error(str(e))
        if args.lut_only and args.dsp_sizes is not None:
            ap.error("--lut-only runs no DSP variant: give --lut-only or --dsp-sizes, not both")
        return _scale(out, sizes, dsp_sizes=dsp_sizes, json_path=args.json, argv=argv)
    if args.engine:
        return _engines(out, args.target or "ecp5-25k")
    args.target = args.target or "ice40-hx8k"
    results = []
    ratios = []
    for block, cfg in _cases(args.quick):
        if args.only is not None and block != args.only:
            continue
        pair = {}
        for pe in PeKind:
            t0 = time.monotonic()
            v = generate_block(cfg.replace(pe=pe), out / "designs", block=block).verilog
            r = synthesize(v, out / v.stem, target=args.target)
            results.append(r)
            pair[pe] = r
            print(f"{v.stem}: {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
        a, m = pair[PeKind.ADDER], pair[PeKind.MULT]
        lc_a, lc_m = a["resources"]["lc"], m["resources"]["lc"]
        ratio = {
            "block": a["design"].replace("_adder", ""),
            "lut_ratio": round(a["resources"]["lut"] / max(1, m["resources"]["lut"]), 3),
            "lc_ratio": round(lc_a / lc_m, 3) if lc_a and lc_m else None,
            "fmax_ratio": (round(a["fmax_mhz"] / m["fmax_mhz"], 3)
                           if a["fmax_mhz"] and m["fmax_mhz"] else None),
        }
        ratios.append(ratio)
    print(format_table(results))
    print()
    print("| block | adder/mult LUTs | adder/mult logic cells | adder/mult Fmax |")
    print("|---|---|---|---|")
    for r in ratios:
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
        print(f"| {r['block']} | {fmt(r['lut_ratio'])} | {fmt(r['lc_ratio'])} | "
              f"{fmt(r['fmax_ratio'])} |")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "bench_synth.json",
                 json.dumps({"results": results, "ratios": ratios}, indent=1, sort_keys=True) + "\n")
    return 0


#: The engine LeNet-5-BN gets from ``generate --model`` at 4x4, 8-bit.
LENET_ENGINE = dict(rows=4, cols=4, bits=8, act_words=(784, 1568), weight_words=100, max_k=400)


def _engines(out: Path, target: str) -> int:
    from hwsim.config import EngineConfig
    from rtl.engine.generate import generate_engine
    from rtl.synth import compare

    t0 = time.monotonic()
    d = generate_engine(out / "engine_design", config=EngineConfig(**LENET_ENGINE), max_ops=7)
    results = compare(d.verilog, out / "engine", target=target, jobs=2)
    print(f"engines: {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    print(format_table(results))
    print()
    print("| multipliers | adder/mult LUTs | adder/mult Fmax |")
    print("|---|---|---|")
    ratios = []
    for dsp in sorted({r["dsp"] for r in results}):
        pair = {r["config"]["pe"]: r for r in results if r["dsp"] == dsp}
        a, m = pair[PeKind.ADDER], pair[PeKind.MULT]
        ratio = {"dsp": dsp, "lut_ratio": round(a["resources"]["lut"] / max(1, m["resources"]["lut"]), 3),
                 "fmax_ratio": (round(a["fmax_mhz"] / m["fmax_mhz"], 3)
                                if a["fmax_mhz"] and m["fmax_mhz"] else None)}
        ratios.append(ratio)
        fmax = "n/a" if ratio["fmax_ratio"] is None else f"{ratio['fmax_ratio']:.3f}"
        print(f"| {'DSP' if dsp else 'LUTs'} | {ratio['lut_ratio']:.3f} | {fmax} |")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "bench_synth_engine.json",
                      json.dumps({"results": results, "ratios": ratios}, indent=1, sort_keys=True) + "\n")
    return 0


#: --scale: the array sizes (rows, cols), fewest PEs first.
SCALE_SIZES = ((4, 4), (8, 8), (16, 8), (16, 16))
#: --scale: the ECP5 parts, smallest first.
SCALE_PARTS = ("ecp5-25k", "ecp5-45k", "ecp5-85k")
#: --scale: the model each engine is sized to (``generate --model`` with ``--rows``/``--cols``).
SCALE_MODEL = Path(__file__).resolve().parents[1] / "checkpoints" / "lenet5_bn_adder_fmnist.pt"


def _sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        try:
            r, c = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise ValueError(f"--sizes must be ROWSxCOLS items separated by commas, not {text!r}") from None
        if r < 1 or c < 1:
            raise ValueError(f"--sizes must be ROWSxCOLS items of positive sizes, not {text!r}")
        sizes.append((r, c))
    return sizes


def dsp_need(config, dsp: bool) -> int:
    """The fewest DSP blocks the multiplier engine of ``config`` takes: one ``MULT18X18D`` per PE with ``dsp``.

    ``synth_ecp5`` maps every multiply of 2- to 18-bit operands to one ``MULT18X18D``
    (``mul2dsp`` with ``DSP_A/B_MINWIDTH=2``), so ``rows * cols`` is a lower bound
    (the requant unit's multiply adds its own); 0 for LUT-only.
    """
    return config.rows * config.cols if dsp else 0


def first_part(config, luts: int = 0, dsps: int = 0, after: str | None = None) -> str | None:
    """The smallest of :data:`SCALE_PARTS` (past ``after``) whose block RAMs hold ``config``'s engine,
    whose LUTs hold ``luts`` and whose DSP blocks hold ``dsps``."""
    from hwsim.parts import PARTS, bram_blocks

    start = 0 if after is None else SCALE_PARTS.index(after) + 1
    for name in SCALE_PARTS[start:]:
        p = PARTS[name]
        if bram_blocks(config, p) <= p.bram_blocks and luts <= p.luts and dsps <= p.dsps:
            return name
    return None


def _same_flow(folder: Path, *, target: str, top: str, dsp: bool) -> bool:
    """Whether ``folder``'s synthesis ran today's yosys script (:func:`rtl.synth.yosys_script`, as its
    ``-l`` log records it): a flow change re-synthesises, as the sweep cache's key does."""
    from rtl.synth import YOSYS_FULL_LOG, yosys_script

    log = folder / "work" / YOSYS_FULL_LOG
    return log.is_file() and f"`{yosys_script(target, top, dsp=dsp)}'" in log.read_text(errors="replace")


def cached_synthesis(verilog: Path, folder: Path, *, target: str, dsp: bool) -> dict:
    """``synth.json`` of ``folder`` when an earlier run wrote it for the same Verilog, target and DSP mode, else synthesize."""
    from rtl.synth import synthesize

    f = folder / "synth.json"
    dut = folder / "work" / "dut.v"  # rtl.synth's copy of the Verilog it synthesized
    if f.is_file() and dut.is_file() and dut.read_bytes() == Path(verilog).read_bytes() \
            and _same_flow(folder, target=target, top=verilog.stem, dsp=dsp):
        old = json.loads(f.read_text())
        if old.get("target") == target and old.get("dsp") == dsp and old.get("design") == verilog.stem:
            return old
    t0 = time.monotonic()
    print(f"{folder.name}: synthesizing ({time.strftime('%H:%M:%S')})", file=sys.stderr, flush=True)
    r = synthesize(verilog, folder, target=target, dsp=dsp)
    print(f"{folder.name}: {time.monotonic() - t0:.0f} s, {r['resources']['lut']} LUT, "
          f"{'fits' if r['fits'] else 'does not fit'}", file=sys.stderr, flush=True)
    return r


def _fits(r: dict, part) -> bool:
    return bool(r.get("fits")) and _holds(r, part)


def _holds(r: dict, part) -> bool:
    """Whether ``part`` holds yosys's LUT and DSP counts of ``r``."""
    return r["resources"]["lut"] <= part.luts and r["resources"]["dsp"] <= part.dsps


def _known(verilog: Path, base: Path, tag: str) -> dict | None:
    """A ``synth.json`` of the same Verilog on another of :data:`SCALE_PARTS` (``None``: none cached).

    ``synth_ecp5`` does not depend on the part, so yosys's counts there hold for every ECP5 part:
    a part they exceed needs no run of its own.
    """
    for name in SCALE_PARTS:
        folder = base / f"{verilog.stem}_{name}{tag}"
        dut = folder / "work" / "dut.v"
        if (folder / "synth.json").is_file() and dut.is_file() and dut.read_bytes() == verilog.read_bytes() \
                and _same_flow(folder, target=name, top=verilog.stem, dsp=bool(tag)):
            return json.loads((folder / "synth.json").read_text())
    return None


def _ratio(a, m):
    return round(a / m, 3) if a is not None and m else None


#: The resources of each design in a row (``<design>_<key>``), as ``synth.json`` names them.
ROW_RESOURCES = ("lut", "ff", "carry", "bram", "dsp")


def scale_row(size, part: str | None, dsp: bool, engines: dict, arrays: dict, note: str | None = None) -> dict:
    """One table row from the ``synth.json`` objects of a size (adder/mult engine and array; empty: not synthesized).

    The LUT, FF, carry, BRAM and DSP counts are yosys's (so they exist when nextpnr
    cannot place a design); Fmax is nextpnr's, ``None`` when the design does not fit.
    """
    d = {}
    for tag, pe in (("adder", PeKind.ADDER), ("mult", PeKind.MULT)):
        r = engines.get(pe)
        for k in ROW_RESOURCES:
            d[f"{tag}_{k}"] = r["resources"][k] if r else None
        d[f"{tag}_fmax_mhz"] = r["fmax_mhz"] if r and r.get("fits") else None
    aa, am = arrays.get(PeKind.ADDER), arrays.get(PeKind.MULT)
    array_lut = {"array_adder_lut": aa["resources"]["lut"] if aa else None,
                 "array_mult_lut": am["resources"]["lut"] if am else None}
    return {"array": f"{size[0]}x{size[1]}", "pes": size[0] * size[1], "part": part,
            "multipliers": "DSP" if dsp else "LUT",
            "lut_ratio": _ratio(d["adder_lut"], d["mult_lut"]),
            "array_lut_ratio": _ratio(array_lut["array_adder_lut"], array_lut["array_mult_lut"]),
            "fmax_ratio": _ratio(d["adder_fmax_mhz"], d["mult_fmax_mhz"]),
            **d, **array_lut, "note": note}


def path_rows(size, dsp: bool, results: dict) -> list[dict]:
    """Rows of the critical-path table: where nextpnr's slowest path of each placed design starts and ends."""
    rows = []
    for what, r in results.items():
        cp = r.get("critical_path") if r else None
        if cp:
            rows.append({"array": f"{size[0]}x{size[1]}", "multipliers": "DSP" if dsp else "LUT", "design": what,
                         "fmax_mhz": r["fmax_mhz"], "from": cp["from"], "to": cp["to"], "delay_ns": cp["delay_ns"],
                         "logic_ns": cp.get("logic_ns"), "routing_ns": cp.get("routing_ns")})
    return rows


def plot_ratio(rows: list[dict], path: Path) -> None:
    """The adder/multiplier LUT ratio against the number of PEs: whole engines (LUT-only, DSP) and bare arrays."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for mult, color in (("LUT", "tab:blue"), ("DSP", "tab:orange")):
        pts = sorted((r["pes"], r["lut_ratio"]) for r in rows if r["multipliers"] == mult and r["lut_ratio"])
        if pts:
            ax.plot(*zip(*pts), marker="o", color=color, label=f"whole engine, multipliers in {mult}s")
        pts = sorted((r["pes"], r["array_lut_ratio"]) for r in rows
                     if r["multipliers"] == mult and r["array_lut_ratio"])
        if pts:
            ax.plot(*zip(*pts), marker="s", linestyle="--", color=color, label=f"bare PE array, multipliers in {mult}s")
    for r in rows:
        if r["lut_ratio"]:
            ax.annotate(r["array"], (r["pes"], r["lut_ratio"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.axhspan(0.29, 0.32, color="grey", alpha=0.2, label="AdderNet paper, whole design (0.29-0.32)")
    ax.set_xscale("log", base=2)
    pes = sorted({r["pes"] for r in rows})
    ax.set_xticks(pes, [str(p) for p in pes])
    ax.set_xlabel("PEs (rows x cols)")
    ax.set_ylabel("adder LUTs / multiplier LUTs")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    ax.set_title("LeNet-5-BN W8 engine on ECP5 (yosys + nextpnr)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def _scale(out: Path, sizes, *, dsp_sizes, json_path: Path, argv) -> int:
    from hwsim.parts import PARTS
    from hwsim.sizing import size_engine
    from quant.quantizer.workflow import placeholder_model
    from rtl.engine.build import Build
    from rtl.engine.generate import generate_engine

    if not SCALE_MODEL.is_file():
        raise FileNotFoundError(f"no checkpoint {SCALE_MODEL}")
    model = placeholder_model(SCALE_MODEL)
    rows, paths = [], []
    base = out / "scale"
    for dsp in (False, True):
        floor = None  # the part the previous (fewer PEs) size needed: a larger array needs no smaller part
        for size in sorted(sizes if not dsp else dsp_sizes, key=lambda s: s[0] * s[1]):
            cfg, compiled = size_engine(model, rows=size[0], cols=size[1])
            tag = "_dsp" if dsp else ""
            part = first_part(cfg, dsps=dsp_need(cfg, dsp))
            if part is not None and floor is not None and SCALE_PARTS.index(floor) > SCALE_PARTS.index(part):
                part = floor
            engines, arrays, note = {}, {}, None
            if part is None:
                note = (f"not synthesized: the multiplier engine needs at least {dsp_need(cfg, dsp)} MULT18X18D, "
                        f"{SCALE_PARTS[-1]} has {PARTS[SCALE_PARTS[-1]].dsps}")
                print(f"{size[0]}x{size[1]}: {note}", file=sys.stderr)
            while part is not None:
                engines = {}
                for pe in (PeKind.MULT, PeKind.ADDER):  # the multiplier engine first: when it fails, the adder waits
                    d = generate_engine(base / "designs", config=cfg, model=model, compiled=compiled, pe=pe, build=Build.DEPLOY)
                    known = _known(d.verilog, base, tag)
                    if known is not None and not _holds(known, PARTS[part]):
                        engines[pe] = known  # its counts exceed this part: no run here
                    else:
                        engines[pe] = cached_synthesis(d.verilog, base / f"{d.verilog.stem}_{part}{tag}", target=part, dsp=dsp)
                    if not _fits(engines[pe], PARTS[part]):
                        break
                if len(engines) == 2 and all(_fits(r, PARTS[part]) for r in engines.values()):
                    break
                nxt = first_part(cfg, luts=max(r["resources"]["lut"] for r in engines.values()),
                                 dsps=max(r["resources"]["dsp"] for r in engines.values()), after=part)
                if nxt is None:
                    bad = [f"{pe} engine ({r.get('pnr_error') or 'over the LUTs'})" for pe, r in engines.items()
                           if not _fits(r, PARTS[part])]
                    note = f"does not fit {part}: {', '.join(bad)}"
                    print(f"{size[0]}x{size[1]}: {note}", file=sys.stderr)
                    for pe in PeKind:  # the yosys counts of both, for the ratio
                        d = generate_engine(base / "designs", config=cfg, model=model, compiled=compiled, pe=pe, build=Build.DEPLOY)
                        engines[pe] = cached_synthesis(d.verilog, base / f"{d.verilog.stem}_{part}{tag}", target=part, dsp=dsp)
                    break
                part = nxt
            if part is not None:
                floor = part
                for pe in PeKind:
                    bc = BlockConfig(rows=size[0], cols=size[1], pe=pe, bits=cfg.bits, max_k=cfg.max_k)
                    v = generate_block(bc, base / "designs", block=Block.ARRAY).verilog
                    arrays[pe] = cached_synthesis(v, base / f"{v.stem}_{part}{tag}", target=part, dsp=dsp)
            rows.append(scale_row(size, part, dsp, engines, arrays, note))
            paths += path_rows(size, dsp, {f"{pe} engine": r for pe, r in engines.items()}
                               | {f"{pe} array": r for pe, r in arrays.items()})
            _write_scale(rows, paths, json_path, argv)
    return 0


def _write_scale(rows, paths, json_path: Path, argv) -> None:
    from scripts.results import BenchTable, bench_command, write_bench

    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join("n/a" if r[k] is None else str(r[k]) for k in cols) + " |")
    for p in paths:
        print(f"{p['array']} {p['multipliers']} {p['design']}: {p['fmax_mhz']} MHz, critical path "
              f"{p['from']} -> {p['to']} ({p['delay_ns']} ns)")
    tables = [BenchTable(name="scale", rows=tuple(rows),
                         title="The LeNet-5-BN W8 engine (deployable build) and the bare PE array, adder vs "
                               "multiplier, on the smallest ECP5 part where both engines fit")]
    if paths:
        tables.append(BenchTable(name="critical_path", title="nextpnr's critical path of each placed design",
                                 rows=tuple(paths)))
    write_bench(json_path, bench="synth", title="Benchmark: adder vs multiplier engine at scale, on ECP5",
                tables=tables, command=bench_command("bench_synth.py", argv))
    plot_ratio(rows, json_path.with_name("bench_synth_ratio.png"))


if __name__ == "__main__":
    sys.exit(main())
