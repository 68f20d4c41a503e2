"""Benchmark of the verification flow on Icarus vs Verilator: the network engine.

Quantises the shipped checkpoint (``checkpoints/lenet5_bn_adder_fmnist.pt``,
or the development one under ``build/dev`` while it is missing) to 8-bit
fixed point, then (builds cached under ``build/verify``):

* the engine (what ``adderhw verify MODEL_DIR`` runs): the 4x4
  engine sized to the model, the whole network per image
  (``--engine-images`` Fashion-MNIST test images back to back; Icarus runs
  the first only), and (``--resnet20``, the default) the shipped in-house ResNet-20
  (``checkpoints/resnet20_adder_fmnist.pt``, W8, 256 calibration images) on
  its 4x4 engine, one Fashion-MNIST test image, on Verilator
  (``--resnet20-sims both``: on Icarus too, over an hour per image); with
  ``--resnet20 reference`` the 8x8 engine of a reference-layout ResNet-20
  (random adder weights, BN calibrated on synthetic images, W8; random
  input codes) instead; ``--resnet20 none`` skips it;
* with ``--large-array N`` (none by default): the shipped LeNet-5-BN and the
  shipped in-house ResNet-20 (W8) once more on the NxN engine sized to each
  (e.g. ``16``: 256 PEs), one image each, on Verilator — logits equal the
  golden model's, cycles and every counter equal hwsim's, as above;
* with ``--jobs N`` (none by default): ``adderhw verify`` of ``--jobs-images``
  LeNet images on ``--jobs-sim`` serially and with ``--jobs N`` on a local
  Ray (its start included; the build done before either), wall times and
  their ratio (baseline: the serial run, same run); both reports must agree
  (:func:`verification.shards.comparable`).

Prints wall time, simulated cycles and cycles per second for each simulator
(per image for the engine, build time apart) and the Verilator/Icarus speed
ratio measured in this run (the baseline is Icarus), and writes the same
rows to ``--json`` (default ``build/bench/verify.json``) for
``python -m scripts.results collect --bench``.

Usage::

    .venv/bin/python scripts/bench_verify.py [--engine-images N]
        [--resnet20 [inhouse|reference|none]] [--resnet20-sims verilator|both]
        [--large-array N] [--jobs N [--jobs-sim icarus|verilator] [--jobs-images K]] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from scripts.results import BenchTable, bench_command, bench_json_option, write_bench

__all__ = ["bench_engine", "bench_jobs", "main"]

REPO = Path(__file__).resolve().parents[1]


def _artifact(out: Path, ckpt: Path = REPO / "checkpoints" / "lenet5_bn_adder_fmnist.pt",
              name: str = "lenet5_bn") -> Path:
    """``ckpt`` (a shipped checkpoint) quantised to W8 fixed point with 256 calibration images into ``out``."""
    import torch

    from quant.quantizer.workflow import quantize_shipped

    torch.set_num_threads(2)
    quantize_shipped(ckpt, out, name=name)
    print(f"artifact: {ckpt.name} -> {out}")
    return out


def _resnet20_artifact(out: Path) -> Path:
    import torch

    from quant.intmodel.artifact import save_int_model
    from quant.quantizer.calibrate import synthetic_images
    from quant.quantizer.config import QuantConfig
    from quant.quantizer.quantize import quantize_model
    from scripts.bench_quant import reference_resnet20

    torch.set_num_threads(1)
    m, mean, std = reference_resnet20()
    im, _ = quantize_model(m, synthetic_images(256, (3, 32, 32), seed=2), mean=mean, std=std, cfg=QuantConfig(bits=8))
    save_int_model(im, out)
    print(f"artifact: reference-layout ResNet-20, random adder weights, W8 -> {out}")
    return out


def bench_engine(model_dir: Path, *, rows: int, cols: int, sims, images: dict, root: Path,
                 label: str) -> tuple[dict, list[dict]]:
    """Run the engine sized to the model on each simulator (``images[sim]`` images); print and return
    ``{sim: seconds per image}`` and the printed rows (one dict per simulator, the units in the keys)."""
    from quant.intmodel.artifact import load_int_model
    from rtl.engine.generate import generate_engine
    from rtl.engine.top import Build
    from verification.engine_host import run_engine_tests
    from verification.engine_verify import engine_design, engine_images, report_entries
    from verification.runner import VerilogSource, build

    model = load_int_model(model_dir)
    gen = generate_engine(root / f"engine_{label}", model=model, model_path=str(model_dir), rows=rows, cols=cols,
                          build=Build.VERIFY)
    d, compiled = engine_design(gen.path, model)
    per_image, table = {}, []
    for sim in sims:
        n = images[sim]
        codes, source = engine_images(model, list(range(n)), seed=1)
        t0 = time.monotonic()
        build(VerilogSource(d.verilog, d.name), sim, build_root=REPO / "build" / "verify")
        t_build = time.monotonic() - t0
        t1 = time.monotonic()
        run = run_engine_tests(d, sim, model_dir=model_dir, images=codes, compiled=compiled,
                               out_dir=root / f"engine_{label}-{sim}",
                               build_root=REPO / "build" / "verify", testcases=["images"], seed=1)
        wall = time.monotonic() - t1
        (e,) = report_entries(run, model_name=model.name, design=d.name, images=list(range(n)))
        status = "pass" if e["passed"] else "FAIL"
        if not e["passed"]:
            print(f"  {sim}: {e['message'] or e['mismatch_lines'][:3]}", file=sys.stderr)
            raise SystemExit(1)
        per = e["wall_s_per_image"]
        per_image[sim] = sum(per) / len(per)
        cyc = e["images"][0]["cycles_measured"]
        print(f"engine {label} {rows}x{cols} {sim:9s} {status}  build_s={t_build:6.1f}  run_wall_s={wall:6.1f}  "
              f"images={n}  s_per_image={'/'.join(f'{t:.2f}' for t in per)}  cycles_per_image={cyc}  "
              f"cycles_per_s={cyc / per_image[sim]:9.0f}  wakeups_per_cycle="
              f"{e['python_wakeups'] / e['cycles_measured']:.3f}  ({source})", flush=True)
        table.append(dict(engine=label, array=f"{rows}x{cols}", simulator=sim, passed=e["passed"],
                          build_s=round(t_build, 1), run_wall_s=round(wall, 1), images=n,
                          s_per_image="/".join(f"{t:.2f}" for t in per), cycles_per_image=cyc,
                          cycles_per_s=round(cyc / per_image[sim]),
                          wakeups_per_cycle=round(e["python_wakeups"] / e["cycles_measured"], 3), images_from=source))
    return per_image, table


def bench_jobs(model_dir: Path, *, sim: str, images: int, jobs: int, root: Path) -> dict:
    """``verify`` of ``images`` images of ``model_dir`` on ``sim``, serially and with ``--jobs``; print and
    return the row (wall times in s, their ratio)."""
    import json

    from quant.intmodel.artifact import load_int_model
    from rtl.engine.generate import generate_engine
    from rtl.engine.top import Build
    from verification.engine_verify import VerifyRequest, verify_model
    from verification.runner import VerilogSource, build
    from verification.shards import comparable

    model = load_int_model(model_dir)
    d = generate_engine(root / "engine_jobs", model=model, model_path=str(model_dir), rows=4, cols=4,
                        build=Build.VERIFY)
    build(VerilogSource(d.verilog, d.name), sim, build_root=REPO / "build" / "verify")
    walls, reports = {}, {}
    for label, n_jobs in (("serial", None), ("jobs", jobs)):
        req = VerifyRequest(model_dir=model_dir, out=root / f"verify_{label}", sims=(sim,),
                            images=tuple(range(images)), design=d.path, build_dir=REPO / "build" / "verify",
                            jobs=n_jobs, force=True)
        t0 = time.monotonic()
        result = verify_model(req, say=lambda line: None)
        walls[label] = time.monotonic() - t0
        if not result.passed:
            print(f"  verify {label}: failed {', '.join(result.failed)}", file=sys.stderr)
            raise SystemExit(1)
        reports[label] = comparable(json.loads(result.report.read_text()))
    if reports["serial"] != reports["jobs"]:
        print(f"  verify --jobs {jobs}: verify.json differs from the serial run's", file=sys.stderr)
        raise SystemExit(1)
    ratio = walls["jobs"] / walls["serial"]
    print(f"verify --jobs {jobs} vs serial, {images} LeNet images on {sim}: serial {walls['serial']:.1f} s, "
          f"--jobs {jobs} {walls['jobs']:.1f} s (local Ray's start included): {ratio:.2f}x the serial wall time "
          "(baseline: serial, same run); verify.json equal but for the run's cost", flush=True)
    return dict(simulator=sim, images=images, jobs=jobs, serial_wall_s=round(walls["serial"], 1),
                jobs_wall_s=round(walls["jobs"], 1), jobs_over_serial_wall_x=round(ratio, 2))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engine-images", type=int, default=2,
                   help="LeNet images run back to back through the engine on Verilator (default 2; Icarus: 1)")
    p.add_argument("--resnet20", nargs="?", const="inhouse", choices=("inhouse", "reference", "none"),
                   default="inhouse",
                   help="ResNet-20, 1 image: the shipped in-house one on its 4x4 engine (default), "
                        "'reference' (reference layout, random weights) on the 8x8 engine, or 'none'")
    p.add_argument("--resnet20-sims", choices=("verilator", "both"), default="verilator",
                   help="--resnet20 on Verilator only (default) or on Icarus too (over an hour per image)")
    p.add_argument("--large-array", type=int, default=0, metavar="N",
                   help="also run the shipped LeNet-5-BN and ResNet-20 on the NxN engine, 1 image each, on "
                        "Verilator (e.g. 16; default 0: not run)")
    p.add_argument("--jobs", type=int, default=0, metavar="N",
                   help="also time verify --jobs N against the serial verify (default 0: not run)")
    p.add_argument("--jobs-sim", choices=("icarus", "verilator"), default="verilator",
                   help="the simulator of --jobs (default verilator)")
    p.add_argument("--jobs-images", type=int, default=8, help="LeNet images of --jobs (default 8)")
    bench_json_option(p, "verify")
    args = p.parse_args(argv)
    if args.jobs < 0 or args.jobs_images < 1:
        p.error("--jobs must be >= 0 and --jobs-images >= 1")
    from hwsim.config import MAX_ARRAY_DIM

    if args.large_array and not 2 <= args.large_array <= MAX_ARRAY_DIM:
        p.error(f"--large-array {args.large_array}: the array is 2 to {MAX_ARRAY_DIM} PEs on a side (0: not run)")
    root = REPO / "build" / "bench_verify"
    model_dir = _artifact(root / "lenet_int8")
    eng, runs = bench_engine(model_dir, rows=4, cols=4, sims=("icarus", "verilator"),
                             images={"icarus": 1, "verilator": args.engine_images}, root=root, label="lenet5_bn")
    print(f"engine verilator/icarus speed ratio per LeNet image: {eng['icarus'] / eng['verilator']:.1f}x "
          "(baseline: icarus, same run)", flush=True)
    ratios = [dict(model="LeNet-5-BN", verilator_over_icarus_speed_x=round(eng["icarus"] / eng["verilator"], 1))]
    r20 = None
    if args.resnet20 != "none":
        sims = ("verilator",) if args.resnet20_sims == "verilator" else ("icarus", "verilator")
        if args.resnet20 == "reference":
            r20, size = _resnet20_artifact(root / "resnet20_ref_w8"), 8
        else:
            r20, size = _artifact(root / "resnet20_int8", REPO / "checkpoints" / "resnet20_adder_fmnist.pt",
                                  "resnet20"), 4
        r, r_runs = bench_engine(r20, rows=size, cols=size, sims=sims, images={s: 1 for s in sims}, root=root,
                                 label=f"resnet20_{args.resnet20}")
        runs += r_runs
        if "icarus" in r:
            print(f"engine verilator/icarus speed ratio per ResNet-20 image: {r['icarus'] / r['verilator']:.1f}x "
                  "(baseline: icarus, same run)", flush=True)
            ratios.append(dict(model=f"ResNet-20 ({args.resnet20})",
                               verilator_over_icarus_speed_x=round(r["icarus"] / r["verilator"], 1)))
    if args.large_array:
        n = args.large_array
        if args.resnet20 != "inhouse":  # else quantised above
            r20 = _artifact(root / "resnet20_int8", REPO / "checkpoints" / "resnet20_adder_fmnist.pt", "resnet20")
        for label, mdir in (("lenet5_bn", model_dir), ("resnet20_inhouse", r20)):
            runs += bench_engine(mdir, rows=n, cols=n, sims=("verilator",), images={"verilator": 1}, root=root,
                                 label=f"{label}_{n}x{n}")[1]
    tables = []
    if args.jobs:
        tables.append(BenchTable("jobs", f"verify --jobs {args.jobs} vs serial (baseline: serial, same run)",
                                 (bench_jobs(model_dir, sim=args.jobs_sim, images=args.jobs_images, jobs=args.jobs,
                                             root=root),)))
    from verification.engine_verify import tool_versions

    write_bench(args.json, bench="verify", title="Benchmark: the engine's verification on Icarus and Verilator",
                tables=[BenchTable("runs", "Whole network on the engine, per simulator (build apart)", tuple(runs)),
                        BenchTable("ratio", "Verilator/Icarus speed per image (baseline: Icarus, same run)",
                                   tuple(ratios)), *tables],
                command=bench_command(__file__, argv), tools=tool_versions({r["simulator"] for r in runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
