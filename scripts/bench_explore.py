"""Benchmark of ``adderhw explore`` (issue 25): explore over >= 200 configs of the shipped ResNet-20
without synthesis on one core (target <= 10 s), printing the ratio to one ``estimate`` call of the
same model; with ``--synth``, 4 points synthesised on a local 2-CPU Ray vs the same 4 serially
(target ratio <= 0.6; heavy: minutes on both cores, so run it holding both of the shared slots).

Writes build/bench/explore.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "checkpoints" / "resnet20_adder_fmnist.pt"
SPACE = "rows=1,2,3,4,6,8,12,16,cols=1,2,3,4,6,8,12,16,mult_rows=1,2,4"
#: The 4 synthesised points: calibration engines of similar synthesis time (50-80 s each with yosys 0.23
#: on the HX8K), so the ratio measures Ray's parallelism and overhead, not one long design's tail.
SYNTH_POINTS = ("adder-2x8-m2", "adder-4x4-m4", "mult-8x2-m0", "mult-4x4-m0")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synth", action="store_true", help="also the 4-point Ray vs serial synthesis (minutes)")
    ap.add_argument("--target", default="ice40-hx8k", help="part for the synthesis part (default ice40-hx8k)")
    args = ap.parse_args(argv)
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
    configs = len(res.points)
    print(f"explore: {configs} engines ({len(space)} space points) of ResNet-20 in {t_exp:.2f} s "
          f"(target <= 10 s); one estimate (4x4, both engines) {t_est * 1e3:.1f} ms; "
          f"ratio explore/estimate {t_exp / t_est:.1f}")
    out = {"engines": configs, "space_points": len(space), "explore_s": t_exp, "estimate_s": t_est,
           "ratio_to_estimate": t_exp / t_est, "target_s": 10.0, "ok": configs >= 200 and t_exp <= 10.0}
    if args.synth:
        from rtl.cluster import ClusterSpec
        from rtl.sweep import calibration_set, design_name, synth_many

        cfgs = [c for c in calibration_set()[0] if design_name(c) in SYNTH_POINTS]
        assert len(cfgs) == len(SYNTH_POINTS), "a SYNTH_POINTS engine left the calibration set"
        load = os.getloadavg()[0]
        print(f"load average before the synthesis part: {load:.2f} (a fair ratio needs both cores idle)")
        tmp = Path(tempfile.mkdtemp(prefix="bench-explore-"))
        try:
            t0 = time.perf_counter()
            synth_many(cfgs, args.target, tmp / "serial", ClusterSpec(), progress=False)
            t_ser = time.perf_counter() - t0
            t0 = time.perf_counter()
            synth_many(cfgs, args.target, tmp / "ray", ClusterSpec(jobs=2), progress=False)
            t_ray = time.perf_counter() - t0
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"synth of 4 engines on {args.target}: serial {t_ser:.1f} s, local Ray (2 CPUs) {t_ray:.1f} s, "
              f"ratio {t_ray / t_ser:.2f} (target <= 0.6)")
        out.update(synth_serial_s=t_ser, synth_ray_s=t_ray, synth_ratio=t_ray / t_ser, synth_points=list(SYNTH_POINTS),
                   load_before=load)
    bench = ROOT / "build" / "bench"
    bench.mkdir(parents=True, exist_ok=True)
    (bench / "explore.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
