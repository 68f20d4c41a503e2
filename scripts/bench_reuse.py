"""Weight-reuse benchmark: the engine's pixel tile (``EngineConfig.pixel_tile``, Tp) against its cost.

For each Tp, the LeNet-5-BN W8 engine that ``adderhw generate --model`` gives
at 4x4 (:func:`hwsim.sizing.size_engine` on the shipped checkpoint, quantized
for its shapes by :func:`quant.quantizer.workflow.placeholder_model`: the
engine depends on the shapes, not the weights) with ``pixel_tile`` set, and:

* hwsim per image: cycles, weight-buffer reads, energy (total, on chip, the
  weight buffer's) of the adder engine and the adder/multiplier energy ratio
  (:func:`hwsim.estimate.compare`, the ``45nm`` table unless ``--table``);
* with ``--synth`` (the default), the deployable build (``Build.DEPLOY``)
  synthesized LUT-only on ``--target`` (ECP5-25K): LUT, FF, Fmax.  Each
  synthesis is cached under ``OUT/<design>_<target>/`` and reused when its
  Verilog is the same, so an interrupted run resumes.

Every figure is also printed as a ratio to Tp = 1, measured in the same run.
Writes ``build/bench/bench_reuse.json`` (:func:`scripts.results.write_bench`).

Usage::

    .venv/bin/python scripts/bench_reuse.py                  # Tp 1, 8, 2, 4, with synthesis
    .venv/bin/python scripts/bench_reuse.py --tp 1,8 --no-synth
    .venv/bin/python scripts/bench_reuse.py --weights resident   # the weight store sized for --target
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.bench_synth import cached_synthesis
from scripts.results import BenchTable, bench_command, bench_json_option, rows_table, write_bench

#: The checkpoint whose engine is measured (``make demo``'s model).
MODEL = Path(__file__).resolve().parents[1] / "checkpoints" / "lenet5_bn_adder_fmnist.pt"
#: Pixel tiles measured by default, in the order they run (the ends first).
DEFAULT_TPS = (1, 8, 2, 4)


def _tps(text: str) -> tuple:
    try:
        tps = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tp must be comma-separated integers, not {text!r}") from None
    if not tps or any(not 1 <= v <= 64 for v in tps) or 1 not in tps:
        raise argparse.ArgumentTypeError(f"--tp must list pixel tiles in 1..64 including 1 (the baseline), not {text!r}")
    return tps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tp", type=_tps, default=DEFAULT_TPS, help="pixel tiles, comma-separated (1 included)")
    ap.add_argument("--synth", action=argparse.BooleanOptionalAction, default=True,
                    help="synthesize each engine (LUT-only; default on)")
    ap.add_argument("--target", default="ecp5-25k", help="synthesis target (default ecp5-25k)")
    ap.add_argument("--table", default="45nm", help="energy table (default 45nm)")
    ap.add_argument("--weights", choices=("streamed", "resident"), default="streamed",
                    help="weights streamed on w every image (default) or resident, the store sized for --target")
    ap.add_argument("-o", "--out", type=Path, default=Path("build/bench_reuse"), help="synthesis folder")
    bench_json_option(ap, "bench_reuse")
    args = ap.parse_args(argv)

    from hwsim.estimate import estimate_model
    from hwsim.tables import load_table
    from quant.quantizer.workflow import placeholder_model
    from rtl.engine.build import Build
    from rtl.engine.generate import generate_engine

    if not MODEL.is_file():
        print(f"error: no checkpoint {MODEL}", file=sys.stderr)
        return 2
    table = load_table(args.table)
    model = placeholder_model(MODEL)
    shape = dict(rows=4, cols=4, weights=args.weights, part=args.target)
    rows = []
    for tp in args.tp:
        cmp = estimate_model(model, table, **shape, pixel_tile=tp)
        a = cmp.adder
        e = a.energy.total
        t = a.counts.totals()
        row = {"pixel_tile": tp, "cycles": a.counts.total_cycles, "wbuf_reads": t["wbuf_reads"],
               "energy_uj": round(e.total_pj / 1e6, 4), "on_chip_energy_uj": round((e.total_pj - e.dram_pj) / 1e6, 4),
               "wbuf_energy_uj": round(e.wbuf_sram_pj / 1e6, 4), "weights": args.weights,
               "adder_over_mult_energy": round(cmp.ratio("energy_pj"), 4),
               "adder_over_mult_on_chip": round(cmp.ratio("on_chip_energy_pj"), 4)}
        if args.synth:
            d = generate_engine(args.out / "designs", model=model, **shape, pixel_tile=tp, build=Build.DEPLOY)
            r = cached_synthesis(d.verilog, args.out / f"{d.verilog.stem}_{args.target}", target=args.target, dsp=False)
            row.update(lut=r["resources"]["lut"], ff=r["resources"]["ff"], fmax_mhz=r.get("fmax_mhz"),
                       fits=bool(r.get("fits")))
        rows.append(row)
        print(row, file=sys.stderr, flush=True)
    one = next(r for r in rows if r["pixel_tile"] == 1)
    ratios = []
    for r in rows:
        q = {"pixel_tile": r["pixel_tile"]}
        for k in ("cycles", "wbuf_reads", "energy_uj", "on_chip_energy_uj", "lut", "ff", "fmax_mhz"):
            if r.get(k) is not None and one.get(k):
                q[f"{k}_over_tp1"] = round(r[k] / one[k], 4)
        ratios.append(q)
    print(rows_table(rows) + "\n\n" + rows_table(ratios))
    write_bench(args.json, bench="reuse",
                title=f"Benchmark: weight reuse across a pixel tile (LeNet-5-BN W8, 4x4 engine, weights {args.weights})",
                tables=(BenchTable("figures", f"Per image and synthesized ({args.target}, LUT-only, deploy build)",
                                   tuple(rows)),
                        BenchTable("ratios", "Ratios to pixel_tile = 1 (same run)", tuple(ratios))),
                command=bench_command(__file__, argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
