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
    ap.add_argument("-o", "--out", default="build/bench_synth")
    args = ap.parse_args(argv)
    out = Path(args.out)
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


if __name__ == "__main__":
    sys.exit(main())
