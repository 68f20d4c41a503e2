"""Benchmark: the engine estimate of ResNet-20 from its topology CSV, 9 engine sizes x 2 PE kinds
(target < 2 s), and the closed-form cycle model against the word-level reference.

Fast path: :func:`hwsim.estimate.sweep` (the exact closed form of
:mod:`hwsim.engine`, energy per operation) over rows, cols in {4, 8, 16}.
Baseline, measured in the same run: :func:`hwsim.reference.run_engine`
(event by event, every word) on a random small model at the same 9 sizes,
against :class:`hwsim.engine.EngineModel` on the same model; both must agree
exactly on every counter.  The script prints the times and the ratio, and
exits 1 if the results differ or the sweep misses the target.  It also writes
its tables (and every sweep point's cycles and energy) to ``--json``
(default ``build/bench/hwsim.json``; ``python -m scripts.results collect --bench``
turns it into ``docs/results/bench_hwsim.json``).

Run: ``.venv/bin/python scripts/bench_hwsim.py [--json PATH]``
"""

from __future__ import annotations

import argparse
import sys
import time
from importlib import resources

from scripts.results import BenchTable, bench_command, bench_json_option, write_bench

__all__ = ["main"]

SIZES = (4, 8, 16)
TARGET_S = 2.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bench_json_option(ap, "hwsim")
    args = ap.parse_args(argv)
    import numpy as np

    from hwsim.engine import EngineModel
    from hwsim.estimate import Design, Source, InputKind, parse_sweep, sweep
    from hwsim.preset_files import EnginePreset
    from hwsim.reference import run_engine
    from hwsim.samples import small_model
    from hwsim.sizing import size_engine
    from hwsim.tables import load_table
    from hwsim.topology import read_topology_csv
    from quant.base.intops import LayerKind

    topo = resources.files("hwsim").joinpath("topologies", "resnet20.csv")
    with resources.as_file(topo) as path:
        layers = tuple(read_topology_csv(path))
    table = load_table("45nm")
    grid = parse_sweep([f"rows={','.join(map(str, SIZES))}", f"cols={','.join(map(str, SIZES))}"])
    src = Source(kind=InputKind.TOPOLOGY, path=str(path), name="resnet20", layers=layers)
    t0 = time.perf_counter()
    points = sweep(src, table, grid, base=EnginePreset(rows=8, cols=8))
    fast_s = time.perf_counter() - t0

    seed = 7
    model = small_model(np.random.default_rng(seed), c0=3, h=8, w=8, c1=6, bits=6, stem=LayerKind.CONV)
    x = np.zeros(model.input_shape, dtype=np.int64)
    bad = []
    t_ref = t_cf = 0.0
    for g in grid:
        cfg, cm = size_engine(model, rows=g["rows"], cols=g["cols"])
        t0 = time.perf_counter()
        run = run_engine(cm.program, cm.weights, x)
        t1 = time.perf_counter()
        est = EngineModel(cfg).estimate(model)
        t2 = time.perf_counter()
        t_ref += t1 - t0
        t_cf += t2 - t1
        if [l.as_dict() for l in est.layers] != [c.as_dict() for c in run.ops] or est.total_cycles != run.total_cycles:
            bad.append(g)
    print(f"ResNet-20 (topology CSV): {len(layers)} conv layers x 2 PE kinds x {len(grid)} engine sizes")
    print(f"  hwsim sweep (closed form, energy): {fast_s * 1e3:8.1f} ms; target < {TARGET_S:.0f} s: "
          f"{'met' if fast_s < TARGET_S else 'MISSED'}")
    print(f"small model (seed {seed}), {len(grid)} sizes: closed form {t_cf * 1e3:.1f} ms, word-level reference "
          f"{t_ref * 1e3:.1f} ms ({t_ref / t_cf:.0f}x)")
    best = min((p for p in points if p.design is Design.ADDER), key=lambda p: p.energy_pj)
    print(f"  lowest-energy adder engine: {dict(best.point)}, {best.energy_pj / 1e6:.2f} uJ, "
          f"{best.total_cycles:,} cycles")
    sweep_ok = fast_s < TARGET_S
    tables = (
        BenchTable("speed", "Sweep and reference times (this run)", (
            {"model": "ResNet-20 (topology CSV)", "layers": len(layers), "engine_sizes": len(grid), "pe_kinds": 2,
             "method": "hwsim sweep (closed form, energy)", "time_ms": round(fast_s * 1e3, 1),
             "target_ms": TARGET_S * 1e3, "target_met": sweep_ok, "counters_equal": None},
            {"model": f"small model (seed {seed})", "layers": len(model.layers), "engine_sizes": len(grid), "pe_kinds": None,
             "method": "closed form (EngineModel)", "time_ms": round(t_cf * 1e3, 1), "target_ms": None,
             "target_met": None, "counters_equal": not bad},
            {"model": f"small model (seed {seed})", "layers": len(model.layers), "engine_sizes": len(grid), "pe_kinds": None,
             "method": f"word-level reference (run_engine), {t_ref / t_cf:.0f}x the closed form",
             "time_ms": round(t_ref * 1e3, 1), "target_ms": None, "target_met": None, "counters_equal": not bad})),
        BenchTable("sweep", f"ResNet-20 per image by engine size ({table.name} energy table)", tuple(
            {"design": p.design.value, **dict(p.point), "total_cycles": p.total_cycles,
             "pe_energy_uj": round(p.pe_pj / 1e6, 3), "on_chip_energy_uj": round(p.on_chip_energy_pj / 1e6, 3),
             "energy_uj": round(p.energy_pj / 1e6, 3), "lowest_energy_adder": p is best} for p in points)),
    )
    write_bench(args.json, bench="hwsim", title="Benchmark: hwsim sweep of ResNet-20 and the reference check",
                tables=tables, command=bench_command(__file__, argv))
    if bad:
        print(f"MISMATCH between the closed form and the reference at {bad[:3]}", file=sys.stderr)
        return 1
    return 0 if sweep_ok else 1


if __name__ == "__main__":
    sys.exit(main())
