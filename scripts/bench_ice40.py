"""Synthesis benchmark: the smallest FPGA, the multiplier-free LeNet-5-BN W4 engine on an iCE40 HX8K.

Issue 23's fifth deliverable.  Quantises the shipped LeNet-5-BN
(``checkpoints/lenet5_bn_adder_fmnist.pt``) to 4 bits with thresholds
everywhere (``adderhw quantize --bits 4 --requant threshold --logits
threshold``, 1,000 calibration images), so the engine sized to it has adder
PEs, no multiplier unit and a threshold-only requant unit: no multiplier at
all.  For each array size it generates the deployable engine (``adderhw
generate --model``, :attr:`~rtl.engine.top.Build.DEPLOY`: the memories sized
to the model, no counters, no trace), synthesises and places it on the part
(``adderhw synth --target ice40-hx8k``: yosys ``synth_ice40``, nextpnr-ice40,
seed 1, 100 MHz asked) and prints one row per size: logic cells (the
engine's, and the whole placed design with the scan wrapper that feeds its
ports), flip-flops, carries, block RAMs, Fmax, whether nextpnr placed it, the
cycles per image (hwsim, equal to the RTL's) and images per second at that
Fmax.  The baseline of the ratio column (LUTs) is the first size of the run
(the 4x4 engine the issue measured).  Writes ``--json`` (default
``build/bench/ice40.json``) for ``python -m scripts.results collect --bench``.

Usage::

    .venv/bin/python scripts/bench_ice40.py                  # 4x4 (baseline) and 2x4
    .venv/bin/python scripts/bench_ice40.py --sizes 2x4,1x4 -o build/bench_ice40

About a minute per size on one core (yosys dominates).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from scripts.results import BenchTable, bench_command, bench_json_option, rows_table, write_bench

__all__ = ["DEFAULT_SIZES", "ice40_row", "main", "quantize_w4", "sizes_arg"]

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT = REPO / "checkpoints" / "lenet5_bn_adder_fmnist.pt"
#: The baseline (the 4x4 engine issue 23 measured) and the size that fits the HX8K.
DEFAULT_SIZES = ((4, 4), (2, 4))


def sizes_arg(text: str) -> list[tuple[int, int]]:
    """``"4x4,2x4"`` -> ``[(4, 4), (2, 4)]`` (one-line error naming ``--sizes``)."""
    out = []
    for item in text.split(","):
        r, sep, c = item.strip().lower().partition("x")
        if not sep or not r.isdigit() or not c.isdigit() or int(r) < 1 or int(c) < 1:
            raise ValueError(f"--sizes must be ROWSxCOLS[,ROWSxCOLS...] of positive integers, not {text!r}")
        out.append((int(r), int(c)))
    return out


def quantize_w4(out: Path, checkpoint: Path = CHECKPOINT) -> Path:
    """``checkpoint`` quantised to W4A4, thresholds everywhere (1,000 calibration images, seed 0) into ``out``."""
    import torch

    from quant.base.intops import RequantMode
    from quant.quantizer.config import QuantConfig
    from quant.quantizer.workflow import quantize_shipped

    torch.set_num_threads(2)
    cfg = QuantConfig(bits=4, requant=RequantMode.THRESHOLD, logits=RequantMode.THRESHOLD)
    return quantize_shipped(checkpoint, out, name="lenet5-bn", cfg=cfg, calib=1000)


def ice40_row(size: tuple[int, int], synth: dict, cycles: int, part, baseline_lut: int) -> dict:
    """One table row from a ``synth.json`` object, hwsim's cycles per image and the part's capacities.

    ``lc_with_wrapper`` is the whole placed design's logic cells; when nextpnr
    could not place it, the count its error names (``... of 9102 ICESTORM_LCs``).
    """
    res = synth["resources"]
    fmax = synth["fmax_mhz"]
    cp = synth.get("critical_path") or {}
    lc = res["lc"]
    total = synth["lc_total"]
    if total is None and synth["pnr_error"]:
        m = re.search(r"of (\d+) ICESTORM_LCs", synth["pnr_error"])
        total = int(m.group(1)) if m else None
    return {
        "size": f"{size[0]}x{size[1]}",
        "pes": size[0] * size[1],
        "fits": bool(synth["fits"]),
        "lc": lc,
        "lc_with_wrapper": total,
        "lc_capacity": part.luts,
        "ff": res["ff"],
        "lut": res["lut"],
        "carry": res["carry"],
        "bram": res["bram"],
        "bram_capacity": part.bram_blocks,
        "fmax_mhz": fmax,
        "critical_path": f"{cp.get('from')} -> {cp.get('to')}" if cp else None,
        "cycles_per_image": cycles,
        "images_per_s": round(fmax * 1e6 / cycles, 1) if fmax else None,
        "lut_over_baseline": round(res["lut"] / baseline_lut, 3),
        "pnr_error": synth["pnr_error"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(f"{r}x{c}" for r, c in DEFAULT_SIZES),
                    help="array sizes ROWSxCOLS, comma-separated; the first is the ratio's baseline "
                         "(default 4x4,2x4)")
    ap.add_argument("--target", default="ice40-hx8k", help="synthesis target (default ice40-hx8k)")
    ap.add_argument("--checkpoint", type=Path, default=CHECKPOINT, help="default: the shipped LeNet-5-BN")
    ap.add_argument("-o", "--out", type=Path, default=Path("build/bench_ice40"))
    bench_json_option(ap, "ice40")
    args = ap.parse_args(argv)
    try:
        sizes = sizes_arg(args.sizes)
        from rtl.synth import TARGETS

        if args.target not in TARGETS or TARGETS[args.target].family == "generic":
            raise ValueError(f"--target must be a placed FPGA target, one of "
                             f"{', '.join(t for t in TARGETS if TARGETS[t].family != 'generic')}, not {args.target!r}")
        prt = TARGETS[args.target].part
        if not args.checkpoint.is_file():
            raise ValueError(f"--checkpoint {args.checkpoint} is not a file")
    except ValueError as exc:
        print(f"bench_ice40: {exc}", file=sys.stderr)
        return 2

    from hwsim.engine import EngineModel
    from quant.base.intops import PeKind, RequantMode
    from quant.intmodel.artifact import load_int_model
    from rtl.engine.generate import generate_engine
    from rtl.synth import synthesize, tool_versions

    out = args.out
    model = load_int_model(quantize_w4(out / "lenet5_bn_w4_threshold", args.checkpoint))
    rows, results = [], []
    baseline = None
    for size in sizes:
        t0 = time.monotonic()
        design = generate_engine(out / "designs", model=model, rows=size[0], cols=size[1])
        cfg = design.config
        # multiplier-free: adder PEs, no multiplier unit, a threshold-only requant unit
        if cfg.pe != PeKind.ADDER or cfg.mult_rows or cfg.requant != (RequantMode.THRESHOLD,):
            raise AssertionError(f"{design.name} is not multiplier-free: {cfg}")
        syn = synthesize(design.verilog, out / f"{design.name}_{args.target}", target=args.target)
        cycles = EngineModel(cfg).estimate(model).total_cycles
        if baseline is None:
            baseline = syn["resources"]["lut"]
        rows.append(ice40_row(size, syn, cycles, prt, baseline))
        results.append(syn)
        print(f"{design.name}: {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)

    cols = ("size", "fits", "lc", "lc_with_wrapper", "ff", "carry", "bram", "fmax_mhz", "cycles_per_image",
            "images_per_s", "lut_over_baseline")
    print(f"LeNet-5-BN W4, thresholds everywhere (no multiplier), deployable engine, {args.target} "
          f"({prt.luts:,} logic cells, {prt.bram_blocks} block RAMs)")
    print(rows_table(rows, cols))
    for r in rows:
        if r["critical_path"]:
            print(f"{r['size']}: critical path {r['critical_path']}")
        if r["pnr_error"]:
            print(f"{r['size']}: {r['pnr_error']}")
    write_bench(args.json, bench="ice40", title="Benchmark: the W4 threshold LeNet-5-BN engine on "
                f"{args.target}", tables=[BenchTable("fit", f"Deployable engine on {args.target}", tuple(rows))],
                command=bench_command(__file__, argv), tools=tool_versions(TARGETS[args.target]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
