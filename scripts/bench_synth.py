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
    .venv/bin/python scripts/bench_synth.py --scale [--sizes 4x4,8x8] [--lut-only]
                                                       # the scale table (below)

``--scale`` is the issue-23 table: the whole engine (the LeNet-5-BN engine's
memories and widths, :data:`LENET_ENGINE`, at every array size), adder vs
multiplier, LUT-only and with DSPs, at 4x4, 8x8, 16x8 and 16x16, each size on
the smallest ECP5 part where both engines fit (the first part whose block RAMs
hold the engine's memories, :func:`hwsim.parts.bram_blocks`, and whose LUTs hold
both; the next part when nextpnr says one does not fit), beside the bare PE
array (``generate --block array``) of the same size on the same part.  Every
synthesis is cached (``OUT/scale/<design>_<part>[_dsp]/synth.json``), so an
interrupted run resumes where it stopped.  Writes ``build/bench/bench_synth.json``
(:func:`scripts.results.write_bench`) and ``build/bench/bench_synth_ratio.png``
(the adder/multiplier LUT ratio against the number of PEs).

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

__all__ = ["main"]


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
    ap.add_argument("--json", type=Path, default=Path("build/bench/bench_synth.json"),
                    help="--scale: the benchmark file (default build/bench/bench_synth.json)")
    ap.add_argument("-o", "--out", default="build/bench_synth")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.scale:
        return _scale(out, _sizes(args.sizes), lut_only=args.lut_only, json_path=args.json, argv=argv)
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


#: --scale: the array sizes (rows, cols).
SCALE_SIZES = ((4, 4), (8, 8), (16, 8), (16, 16))
#: --scale: the ECP5 parts, smallest first.
SCALE_PARTS = ("ecp5-25k", "ecp5-45k", "ecp5-85k")


def _sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        try:
            r, c = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise ValueError(f"--sizes must be ROWSxCOLS items separated by commas, not {text!r}") from None
        sizes.append((r, c))
    return sizes


def first_part(config, luts: int = 0) -> str | None:
    """The smallest of :data:`SCALE_PARTS` whose block RAMs hold ``config``'s engine and whose LUTs hold ``luts``."""
    from hwsim.parts import PARTS, bram_blocks

    for name in SCALE_PARTS:
        p = PARTS[name]
        if bram_blocks(config, p) <= p.bram_blocks and luts <= p.luts:
            return name
    return None


def _cached(verilog: Path, folder: Path, *, target: str, dsp: bool) -> dict:
    """``synth.json`` of ``folder`` when an earlier run wrote it for the same design, else synthesize."""
    from rtl.synth import synthesize

    f = folder / "synth.json"
    if f.is_file():
        old = json.loads(f.read_text())
        if old.get("target") == target and old.get("dsp") == dsp and old.get("design") == verilog.stem:
            return old
    t0 = time.monotonic()
    r = synthesize(verilog, folder, target=target, dsp=dsp)
    print(f"{folder.name}: {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    return r


def _fits(r: dict, part) -> bool:
    return bool(r.get("fits")) and r["resources"]["lut"] <= part.luts


def _ratio(a, m):
    return round(a / m, 3) if a is not None and m else None


def scale_row(size, part: str, dsp: bool, engines: dict, arrays: dict) -> dict:
    """One table row from the four ``synth.json`` objects of a size (adder/mult engine and array)."""
    a, m = engines[PeKind.ADDER], engines[PeKind.MULT]
    row = {"array": f"{size[0]}x{size[1]}", "pes": size[0] * size[1], "part": part,
           "multipliers": "DSP" if dsp else "LUT"}
    for tag, r in (("adder", a), ("mult", m)):
        res = r["resources"]
        row.update({f"{tag}_lut": res["lut"], f"{tag}_ff": res["ff"], f"{tag}_carry": res["carry"],
                    f"{tag}_bram": res["bram"], f"{tag}_dsp": res["dsp"],
                    f"{tag}_fmax_mhz": r["fmax_mhz"] if r.get("fits") else None})
    row["lut_ratio"] = _ratio(a["resources"]["lut"], m["resources"]["lut"])
    row["fmax_ratio"] = _ratio(row["adder_fmax_mhz"], row["mult_fmax_mhz"])
    aa, am = arrays.get(PeKind.ADDER), arrays.get(PeKind.MULT)
    row["array_adder_lut"] = aa["resources"]["lut"] if aa else None
    row["array_mult_lut"] = am["resources"]["lut"] if am else None
    row["array_lut_ratio"] = _ratio(row["array_adder_lut"], row["array_mult_lut"])
    for tag, r in (("adder", a), ("mult", m)):
        cp = r.get("critical_path")
        row[f"{tag}_critical_path"] = f"{cp['from']} -> {cp['to']} ({cp['delay_ns']} ns)" if cp else None
    return row


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for mult in ("LUT", "DSP"):
        pts = sorted((r["pes"], r["lut_ratio"]) for r in rows if r["multipliers"] == mult and r["lut_ratio"])
        if pts:
            ax.plot(*zip(*pts), marker="o", label=f"whole engine, multipliers in {mult}s")
    pts = sorted({(r["pes"], r["array_lut_ratio"]) for r in rows if r["array_lut_ratio"]})
    if pts:
        ax.plot(*zip(*pts), marker="s", linestyle="--", label="bare PE array (LUT-only)")
    ax.axhline(0.30, color="grey", linewidth=0.8, linestyle=":", label="target 0.30")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("PEs (rows x cols)")
    ax.set_ylabel("adder / multiplier LUTs")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.set_title("ECP5, yosys + nextpnr: adder vs multiplier design")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def _scale(out: Path, sizes, *, lut_only: bool, json_path: Path, argv) -> int:
    from hwsim.config import EngineConfig
    from hwsim.parts import PARTS
    from rtl.engine.generate import generate_engine
    from scripts.results import BenchTable, bench_command, write_bench

    rows = []
    base = out / "scale"
    for size in sizes:
        cfg = EngineConfig(**(LENET_ENGINE | {"rows": size[0], "cols": size[1]}))
        for dsp in ([False] if lut_only else [False, True]):
            part = first_part(cfg)
            engines = {}
            while part is not None:
                p = PARTS[part]
                engines = {}
                for pe in PeKind:
                    v = generate_engine(base / "designs", config=cfg, pe=pe, max_ops=7).verilog
                    engines[pe] = _cached(v, base / f"{v.stem}_{part}{'_dsp' if dsp else ''}", target=part, dsp=dsp)
                if all(_fits(r, p) for r in engines.values()):
                    break
                nxt = SCALE_PARTS.index(part) + 1
                part = SCALE_PARTS[nxt] if nxt < len(SCALE_PARTS) else None
            if part is None:
                print(f"{size[0]}x{size[1]}: does not fit {SCALE_PARTS[-1]}", file=sys.stderr)
                part = SCALE_PARTS[-1]
            arrays = {}
            for pe in PeKind:
                bc = BlockConfig(rows=size[0], cols=size[1], pe=pe, bits=cfg.bits, max_k=cfg.max_k)
                v = generate_block(bc, base / "designs", block=Block.ARRAY).verilog
                arrays[pe] = _cached(v, base / f"{v.stem}_{part}{'_dsp' if dsp else ''}", target=part, dsp=dsp)
            rows.append(scale_row(size, part, dsp, engines, arrays))
            _write_scale(rows, json_path, argv, BenchTable, bench_command, write_bench)
    return 0


def _write_scale(rows, json_path: Path, argv, BenchTable, bench_command, write_bench) -> None:
    cols = [k for k in rows[0] if not k.endswith("_critical_path")]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join("n/a" if r[k] is None else str(r[k]) for k in cols) + " |")
    for r in rows:
        print(f"{r['array']} {r['multipliers']}: critical path adder {r['adder_critical_path']}, "
              f"mult {r['mult_critical_path']}")
    write_bench(json_path, bench="synth",
                title="Benchmark: the whole engine and the bare PE array, adder vs multiplier, on ECP5",
                tables=[BenchTable(name="scale", title="Whole engine vs bare PE array, adder / multiplier LUTs",
                                   rows=tuple(rows))],
                command=bench_command("bench_synth.py", argv))
    _plot(rows, json_path.with_name("bench_synth_ratio.png"))


if __name__ == "__main__":
    sys.exit(main())
