"""Benchmark of ``adderhw explore`` (issue 25): explore over >= 200 configs of the shipped ResNet-20
without synthesis on one core (target <= 10 s), printing the ratio to one ``estimate`` call of the
same model; with ``--synth``, 4 engines synthesised on a local 2-CPU Ray vs the same 4 serially
(target ratio <= 0.6; heavy: minutes on both cores, so run it on an otherwise idle machine — it
records the load average it started at).

Writes build/bench/explore.json (``--json``) for ``python -m scripts.results collect --bench``; a run
without ``--synth`` collected with ``--update`` keeps an earlier run's synthesis table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from scripts.results import BenchTable, bench_command, bench_json_option, rows_table, write_bench

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "checkpoints" / "resnet20_adder_fmnist.pt"
SPACE = "rows=1,2,3,4,6,8,12,16,cols=1,2,3,4,6,8,12,16,mult_rows=1,2,4"
#: The 4 synthesised engines, (pe, rows, cols, mult_rows) with the calibration engines' other fields:
#: designs of similar synthesis time (50-80 s each with yosys 0.23 on the HX8K), so the ratio
#: measures Ray's parallelism and overhead, not one long design's tail.
SYNTH_POINTS = (("adder", 2, 8, 2), ("adder", 4, 4, 4), ("mult", 8, 2, 0), ("mult", 4, 4, 0))
EXPLORE_TARGET_S = 10.0
SYNTH_TARGET_RATIO = 0.6


def explore_row() -> dict:
    """Time one ``estimate`` (4x4, both engines) and ``explore`` over :data:`SPACE` of the shipped ResNet-20."""
    from hwsim.estimate import estimate_source, load_source
    from hwsim.explore import explore, parse_space
    from hwsim.tables import load_table
    from quant.quantizer.workflow import placeholder_model

    src = load_source(CKPT, checkpoint_model=placeholder_model)
    table = load_table("45nm")
    t0 = time.perf_counter()
    estimate_source(src, table, rows=4, cols=4)
    t_est = time.perf_counter() - t0
    space = parse_space(SPACE)
    t0 = time.perf_counter()
    res = explore(src, table, "ecp5-25k", space)
    t_exp = time.perf_counter() - t0
    n = len(res.points)
    return {"model": "ResNet-20 (shipped)", "engines": n, "space_points": len(space), "explore_s": round(t_exp, 2),
            "estimate_ms": round(t_est * 1e3, 1), "ratio_to_estimate": round(t_exp / t_est, 1),
            "target_s": EXPLORE_TARGET_S, "met": n >= 200 and t_exp <= EXPLORE_TARGET_S}


def synth_row(target: str) -> dict:
    """Synthesise the 4 engines of :data:`SYNTH_POINTS` serially, then on a local 2-CPU Ray (fresh caches both)."""
    from hwsim.config import EngineConfig
    from rtl.cluster import ClusterSpec
    from rtl.sweep import CALIBRATION_BASE, design_name, synth_many

    cfgs = [EngineConfig(rows=r, cols=c, pe=pe, mult_rows=m, **CALIBRATION_BASE) for pe, r, c, m in SYNTH_POINTS]
    load = os.getloadavg()[0]
    print(f"load average before the synthesis: {load:.2f} (a fair ratio needs both cores idle)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-explore-"))
    try:
        t0 = time.perf_counter()
        serial = synth_many(cfgs, target, tmp / "serial", ClusterSpec(), progress=False)
        t_ser = time.perf_counter() - t0
        t0 = time.perf_counter()
        par = synth_many(cfgs, target, tmp / "ray", ClusterSpec(jobs=2), progress=False)
        t_ray = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ratio = t_ray / t_ser
    # each design's own synthesis time, alone and beside another: what the two cores cost each other
    each_ser = [sum(r["seconds"].values()) for r in serial]
    each_par = [sum(r["seconds"].values()) for r in par]  # both fresh caches: nothing answered from a cache
    return {"target": target, "engines": " ".join(design_name(c) for c in cfgs), "serial_s": round(t_ser, 1),
            "ray_2cpu_s": round(t_ray, 1), "ratio": round(ratio, 2), "target_ratio": SYNTH_TARGET_RATIO,
            "met": ratio <= SYNTH_TARGET_RATIO,
            "each_serial_s": " ".join(f"{x:.0f}" for x in each_ser),
            "each_on_ray_s": " ".join(f"{x:.0f}" for x in each_par),
            "slowdown_on_ray": round(sum(each_par) / sum(each_ser), 2), "load_before": round(load, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synth", action="store_true", help="also the 4-engine Ray vs serial synthesis (minutes)")
    ap.add_argument("--target", default="ice40-hx8k", help="part for the synthesis (default ice40-hx8k)")
    bench_json_option(ap, "explore")
    args = ap.parse_args(argv)
    from rtl.synth import TARGETS, tool_versions

    if args.target not in TARGETS:
        ap.exit(2, f"bench_explore: --target must be one of {', '.join(TARGETS)}, got {args.target!r}\n")
    row = explore_row()
    tables = [BenchTable("explore", "explore over the shipped ResNet-20 without synthesis, one process", (row,))]
    print(rows_table([row]))
    if args.synth:
        srow = synth_row(args.target)
        tables.append(BenchTable("synth", "explore --synth: 4 engines synthesised on a local 2-CPU Ray vs serially",
                                 (srow,)))
        print(rows_table([srow]))
    write_bench(args.json, bench="explore", title="Benchmark: adderhw explore", tables=tables,
                command=bench_command(__file__, argv), tools=tool_versions(TARGETS[args.target]))
    return 0 if all(t.rows[0]["met"] for t in tables) else 1


if __name__ == "__main__":
    sys.exit(main())
