"""Benchmark: what reuse and resident weights do to the adder engine's energy against the multiplier engine's.

The shipped LeNet-5-BN and ResNet-20 at W8 (shapes from the checkpoints,
:func:`quant.quantizer.workflow.placeholder_model`; the engine's counts do not
depend on weight values) on the adder engine and the all-multiplier engine of
the same sizes, each with its weights streamed on ``w`` every image and
resident (loaded once), at every ``--pixel-tiles`` value (``Tp``: output
pixels that share a weight word read), priced with the 45 nm table
(:func:`hwsim.estimate.estimate_modes`; counts are the exact model's, equal to
the RTL's counters).

Baseline, measured in the same run: today's engine (weights streamed, ``Tp``
= 1).  Printed per model and size: energy per image of both designs, the
adder/multiplier ratio for the total, on chip and the PE arithmetic, the
weight-buffer reads per image, the energy of one weight load, and whether
the resident engine fits its part (LeNet-5-BN the ECP5-25K, ResNet-20 the
ECP5-85K; BRAM blocks as :func:`hwsim.parts.bram_blocks` counts them).  The
targets of issue 24 (adder/multiplier energy per image <= 0.60, total and on
chip, resident; weight-buffer reads at ``Tp`` = 8 <= 1/8 of ``Tp`` = 1) are
printed as met or MISSED; the exit status is 0 either way (a measurement).

Run: ``.venv/bin/python scripts/bench_energy.py [--sizes 4x4,16x16] [--pixel-tiles 1,8] [--json PATH]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.results import BenchTable, bench_command, bench_json_option, write_bench

__all__ = ["main", "MODELS", "TARGET_RATIO"]

ROOT = Path(__file__).resolve().parents[1]
#: The shipped checkpoints and the part each resident engine must fit.
MODELS = (("LeNet-5-BN", ROOT / "checkpoints" / "lenet5_bn_adder_fmnist.pt", "ecp5-25k"),
          ("ResNet-20", ROOT / "checkpoints" / "resnet20_adder_fmnist.pt", "ecp5-85k"))
#: Issue 24's target: adder/multiplier energy per image, total and on chip, weights resident.
TARGET_RATIO = 0.60


def _ints(text: str, what: str) -> list:
    try:
        out = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be integers separated by commas, not {text!r}") from None
    if not out or any(v < 1 for v in out):
        raise argparse.ArgumentTypeError(f"{what} must be positive integers, not {text!r}")
    return out


def _sizes(text: str) -> list:
    out = []
    for item in text.split(","):
        r, sep, c = item.strip().partition("x")
        if not sep:
            raise argparse.ArgumentTypeError(f"--sizes items must be ROWSxCOLS, not {item!r}")
        out.append(tuple(_ints(f"{r},{c}", "--sizes")))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=_sizes, default=_sizes("4x4,16x16"), help="engine sizes (default 4x4,16x16)")
    ap.add_argument("--pixel-tiles", type=lambda t: _ints(t, "--pixel-tiles"), default=[1, 8],
                    help="Tp values (default 1,8)")
    bench_json_option(ap, "energy")
    args = ap.parse_args(argv)

    from hwsim.config import WeightMode
    from hwsim.estimate import InputKind, Source, estimate_modes
    from hwsim.parts import bram_blocks, part
    from hwsim.sizing import resident_fit, size_engine
    from hwsim.tables import load_table
    from quant.quantizer.workflow import placeholder_model

    for _, ckpt, _ in MODELS:
        if not ckpt.is_file():
            print(f"bench_energy: error: no checkpoint {ckpt}", file=sys.stderr)
            return 1
    table = load_table("45nm")
    rows, fits = [], []
    met = {"ratio": True, "reads": True}
    for name, ckpt, part_name in MODELS:
        model = placeholder_model(ckpt, bits=8)
        src = Source(kind=InputKind.MODEL, path=str(ckpt), name=name, model=model)
        for r, c in args.sizes:
            base = None
            reads = {}
            for tp in args.pixel_tiles:
                extra = {} if tp == 1 else {"pixel_tile": tp}
                for m in estimate_modes(src, table, rows=r, cols=c, **extra):
                    if m.comparison is None:
                        print(f"{name} {r}x{c} Tp={tp} {m.mode}: not possible: {m.why_not}")
                        continue
                    a, mu = m.comparison.adder, m.comparison.mult
                    ea, em = a.energy.total, mu.energy.total
                    if base is None:  # the first point: streamed, Tp as given first (1 by default)
                        base = ea.total_pj
                    reads[(tp, m.mode)] = a.counts.totals()["wbuf_reads"]
                    ratio = {k: m.comparison.ratio(k) for k in ("energy_pj", "on_chip_energy_pj", "pe_pj")}
                    row = {"model": name, "array": f"{r}x{c}", "pixel_tile": tp, "weights": m.mode.value,
                           "cycles_per_image": a.counts.total_cycles,
                           "adder_energy_uj": round(ea.total_pj / 1e6, 3),
                           "mult_energy_uj": round(em.total_pj / 1e6, 3),
                           "adder_on_chip_uj": round((ea.total_pj - ea.dram_pj) / 1e6, 4),
                           "ratio_total": round(ratio["energy_pj"], 3),
                           "ratio_on_chip": round(ratio["on_chip_energy_pj"], 3),
                           "ratio_pe": round(ratio["pe_pj"], 3),
                           "wbuf_reads": reads[(tp, m.mode)],
                           "load_energy_uj": None if a.energy.load is None else round(a.energy.load.total_pj / 1e6, 3),
                           "adder_vs_baseline": round(ea.total_pj / base, 3)}
                    rows.append(row)
                    print(f"{name} {r}x{c} Tp={tp} {m.mode.value:8s}: adder {row['adder_energy_uj']:.3f} uJ, mult "
                          f"{row['mult_energy_uj']:.3f} uJ per image; adder/mult total {row['ratio_total']:.3f}, on "
                          f"chip {row['ratio_on_chip']:.3f}, PE {row['ratio_pe']:.3f}; {row['wbuf_reads']:,} weight "
                          f"reads; adder {row['adder_vs_baseline']:.3f}x the baseline (streamed, Tp="
                          f"{args.pixel_tiles[0]})")
                    if m.mode == WeightMode.RESIDENT:
                        ok = ratio["energy_pj"] <= TARGET_RATIO and ratio["on_chip_energy_pj"] <= TARGET_RATIO
                        met["ratio"] &= ok
            if 1 in args.pixel_tiles and 8 in args.pixel_tiles:
                for mode in WeightMode:
                    if (1, mode) in reads and (8, mode) in reads:
                        ok = reads[(8, mode)] * 8 <= reads[(1, mode)]
                        met["reads"] &= ok
                        print(f"{name} {r}x{c} {mode.value}: weight reads Tp=8 / Tp=1 = "
                              f"{reads[(8, mode)] / reads[(1, mode)]:.5f} (target <= 0.125: "
                              f"{'met' if ok else 'MISSED'})")
        # the resident engine on its part (at the first size and Tp)
        r, c = args.sizes[0]
        cfg, compiled = size_engine(model, rows=r, cols=c)
        store = compiled.program.store_words
        p = part(part_name)
        why = resident_fit(cfg, store, p)
        res = cfg.replace(weights=WeightMode.RESIDENT, weight_words=store)
        fits.append({"model": name, "array": f"{r}x{c}", "part": part_name, "store_words": store,
                     "store_bytes": store * cfg.weight_word_bits // 8, "bram_blocks": bram_blocks(res, p),
                     "part_bram_blocks": p.bram_blocks, "fits": why is None})
        print(f"{name} {r}x{c} resident on {part_name}: store {store:,} words "
              f"({store * cfg.weight_word_bits // 8:,} bytes), {bram_blocks(res, p)} of {p.bram_blocks} BRAM blocks: "
              f"{'fits' if why is None else why}")
    print(f"target adder/mult <= {TARGET_RATIO} (total and on chip, resident): "
          f"{'met at every size and Tp measured' if met['ratio'] else 'MISSED somewhere'}")
    if 1 in args.pixel_tiles and 8 in args.pixel_tiles:
        print(f"target weight reads at Tp=8 <= 1/8 of Tp=1: {'met everywhere' if met['reads'] else 'MISSED somewhere'}")
    size0, tps = f"{args.sizes[0][0]}x{args.sizes[0][1]}", (args.pixel_tiles[0], args.pixel_tiles[-1])
    keys = ("model", "weights", "pixel_tile", "adder_energy_uj", "mult_energy_uj", "ratio_total", "ratio_on_chip")
    summary = tuple({k: r[k] for k in keys} for r in rows if r["array"] == size0 and (
        (r["weights"] == "streamed" and r["pixel_tile"] == tps[0]) or (r["weights"] == "resident" and r["pixel_tile"] == tps[1])))
    tables = (
        BenchTable("summary", f"Today's engine and the resident engine with the largest Tp, {size0} "
                   f"({table.name} table)", summary),
        BenchTable("energy", f"Energy per image, adder engine vs multiplier engine ({table.name} table)", tuple(rows)),
        BenchTable("fit", "Resident weights on the parts", tuple(fits)),
    )
    write_bench(args.json, bench="energy", title="Benchmark: energy with reuse and resident weights",
                tables=tables, command=bench_command(__file__, argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
