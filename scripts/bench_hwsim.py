"""Benchmark: hwsim estimate of ResNet-20, both PE kinds x 9 array sizes (target < 2 s).

Fast path: :func:`hwsim.estimate.sweep` (closed-form cycles per layer, energy
per layer) over rows, cols in {4, 8, 16}.  Baseline, measured in the same run:
the naive per-tile loop — :func:`hwsim.schedule.schedule_tiles` over every
tile of every layer (one Python iteration per tile), with the energy summed per
tile.  Both must agree exactly on the cycle counts; the script prints both
times and their ratio, and exits 1 if the results differ or the fast path
misses the target.

Run: ``.venv/bin/python scripts/bench_hwsim.py``
"""

from __future__ import annotations

import sys
import time
from importlib import resources

__all__ = ["main"]

SIZES = (4, 8, 16)
TARGET_S = 2.0


def _baseline(layers, cfg, table):
    """Per-tile loop: every tile scheduled and priced on its own."""
    from hwsim.energy import pe_op_energy_pj
    from hwsim.mapping import DESIGNS, layer_config
    from hwsim.schedule import schedule_tiles, tile_grid

    out = {}
    for rows in SIZES:
        for cols in SIZES:
            pcfg = cfg.replace(rows=rows, cols=cols)
            for design in DESIGNS:
                cycles, pe_pj = 0, 0.0
                for layer in layers:
                    lcfg = layer_config(layer, pcfg, design)
                    tr, tc = tile_grid(layer.out_channels, layer.out_pixels, lcfg)
                    timing = schedule_tiles([layer.k] * (tr * tc), lcfg)
                    e_op = pe_op_energy_pj(lcfg, table)
                    for _tile in timing.tiles:
                        pe_pj += lcfg.rows * lcfg.cols * layer.k * e_op
                    cycles += timing.total_cycles
                out[(rows, cols, design)] = (cycles, pe_pj)
    return out


def main() -> int:
    from hwsim.config import ArrayConfig
    from hwsim.tables import load_table
    from hwsim.estimate import sweep
    from hwsim.layers import read_topology_csv

    topo = resources.files("hwsim").joinpath("topologies", "resnet20.csv")
    with resources.as_file(topo) as path:
        layers = read_topology_csv(path)
    cfg = ArrayConfig(rows=8, cols=8, max_k=max(l.k for l in layers))
    table = load_table("45nm")
    grid = {"rows": list(SIZES), "cols": list(SIZES)}

    t0 = time.perf_counter()
    rows = sweep(layers, cfg, table, grid)
    fast_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    base = _baseline(layers, cfg, table)
    base_s = time.perf_counter() - t0

    bad = []
    for r in rows:
        cycles, pe_pj = base[(r["rows"], r["cols"], r["design"])]
        if cycles != r["total_cycles"] or abs(pe_pj - r["pe_pj"]) > 1e-9 * pe_pj:
            bad.append((r["rows"], r["cols"], r["design"], cycles, r["total_cycles"]))
    n_tiles = sum(
        -(-l.out_channels // rr) * -(-l.out_pixels // cc) for rr in SIZES for cc in SIZES for l in layers
    ) * 2
    print(f"ResNet-20: {len(layers)} array layers x 2 PE kinds x {len(SIZES) ** 2} array sizes "
          f"({n_tiles:,} tiles)")
    print(f"  hwsim sweep (closed form per layer): {fast_s * 1e3:8.1f} ms")
    print(f"  baseline (per-tile Python loop):     {base_s * 1e3:8.1f} ms")
    print(f"  speed-up: {base_s / fast_s:.1f}x; target < {TARGET_S:.0f} s: {'met' if fast_s < TARGET_S else 'MISSED'}")
    best = min((r for r in rows if r["design"] == "adder"), key=lambda r: r["energy_pj"])
    print(f"  lowest-energy adder array: {best['rows']}x{best['cols']}, {best['energy_pj'] / 1e6:.2f} uJ, "
          f"{best['total_cycles']:,} cycles")
    if bad:
        print(f"MISMATCH between sweep and per-tile baseline: {bad[:3]}", file=sys.stderr)
        return 1
    return 0 if fast_s < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
