"""Benchmark: the engine estimate of ResNet-20 from its topology CSV, 9 engine sizes x 2 PE kinds
(target < 2 s), and the closed-form cycle model against the word-level reference.

Fast path: :func:`hwsim.estimate.sweep` (the exact closed form of
:mod:`hwsim.engine`, energy per operation) over rows, cols in {4, 8, 16}.
Baseline, measured in the same run: :func:`hwsim.reference.run_engine`
(event by event, every word) on a random small model at the same 9 sizes,
against :class:`hwsim.engine.EngineModel` on the same model; both must agree
exactly on every counter.  The script prints the times and the ratio, and
exits 1 if the results differ or the sweep misses the target.

Run: ``.venv/bin/python scripts/bench_hwsim.py``
"""

from __future__ import annotations

import sys
import time
from importlib import resources

__all__ = ["main"]

SIZES = (4, 8, 16)
TARGET_S = 2.0


def main() -> int:
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
    if bad:
        print(f"MISMATCH between the closed form and the reference at {bad[:3]}", file=sys.stderr)
        return 1
    return 0 if fast_s < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
