"""``adderhw explore``: the command line of :func:`hwsim.explore.explore`.

``adderhw explore INPUT --target PART [--space rows=..,cols=..,mult_rows=..] [--budget luts=N,bram=N,dsp=N]
[--min-fps F] [--objective fps|energy] [--table 45nm] [--synth K [--jobs N | --address HOST:PORT]] -o OUT_DIR``
and ``adderhw explore --calibrate PART [--jobs N | --address HOST:PORT]``

Parses and prints; the work is :mod:`hwsim.explore`.  It lives in ``scripts``
(like ``estimate``) because a checkpoint input is quantized for its shapes by
quant's torch rooms, which hwsim may not import.
"""

from __future__ import annotations

import argparse

from hwsim.explore import DEFAULT_SPACE, Objective, TARGET_PARTS
from hwsim.resources import CALIBRATION_PART

__all__ = ["register", "run_explore"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``explore`` to the ``adderhw`` parser."""
    p = subparsers.add_parser(
        "explore",
        help="every engine config of a space, adder and multiplier PEs: cycles, energy, resources, Pareto fronts",
        description="Estimate every config of --space for both PE kinds (exact cycles, accesses and energy "
        "from hwsim; BRAM exact and LUT/FF/Fmax from the part's resource model), keep those within "
        "--budget and --min-fps, and write explore.csv, report.md and the Pareto plots into OUT_DIR; "
        "prints the `adderhw generate` command of the best config.",
    )
    p.add_argument("input", metavar="MODEL_DIR_OR_CKPT", nargs="?", default=None,
                   help="integer model folder or checkpoint (.pt/.pth; quantized in memory for its shapes); "
                   "not with --calibrate")
    p.add_argument("--calibrate", default=None, metavar="PART",
                   help="synthesise the calibration design set on PART and refit its resource model "
                   "(hwsim/data/resources_PART.json), which every part of its family reads: PART is "
                   f"{' or '.join(CALIBRATION_PART.values())}; no INPUT, no --target")
    p.add_argument("--synth", type=int, default=0, metavar="K",
                   help="synthesise the K best feasible points for real (cached) and report them beside the "
                   "predictions")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="parallel synthesis on a local Ray with N CPUs (default 1: serial, no Ray)")
    p.add_argument("--address", default=None, metavar="HOST:PORT",
                   help="run synthesis on the Ray cluster at HOST:PORT (`ray start --head`); refused in "
                   "one line when it does not answer within 10 s")
    p.add_argument("--cache", default="build/explore-cache", metavar="DIR",
                   help="synthesis cache (default build/explore-cache)")
    p.add_argument("--target", default=None, metavar="PART",
                   help=f"FPGA part: {', '.join(TARGET_PARTS)}")
    p.add_argument("--space", default=DEFAULT_SPACE, metavar="KEY=V,..",
                   help=f"configs: cartesian product of rows, cols, mult_rows (default {DEFAULT_SPACE}; "
                   "mult_rows default: rows/2 when the model has multiply layers)")
    p.add_argument("--budget", default=None, metavar="KEY=N,..",
                   help="upper bounds: luts, ffs, bram, dsp (default: the part's own)")
    p.add_argument("--min-fps", type=float, default=0.0, metavar="F", help="least images per second")
    p.add_argument("--objective", choices=tuple(Objective), default=Objective.FPS,
                   help="best = most images/s (fps) or least energy per image (energy); default fps")
    p.add_argument("--table", default="45nm", help="energy table (as estimate's --table; default 45nm)")
    p.add_argument("-o", "--out", default=None, metavar="OUT_DIR", help="output folder (required unless --calibrate)")
    p.set_defaults(func=_run)


def run_explore(args: argparse.Namespace):
    """Validate every argument (before any long work), explore, write the outputs; returns (result, paths)."""
    from hwsim.estimate import load_source
    from hwsim.explore import rank_key as explore_key
    from hwsim.explore import explore, parse_budget, parse_space, write_outputs
    from hwsim.parts import part
    from hwsim.tables import load_table

    from rtl.cluster import ClusterSpec

    if args.target is None:
        raise ValueError("--target PART is required (or --calibrate PART)")
    part(args.target)  # unknown part: one line naming the parts
    spec = ClusterSpec(jobs=args.jobs, address=args.address)
    if args.synth < 0:
        raise ValueError(f"--synth must be >= 0, not {args.synth}")
    if args.input is None or args.out is None:
        raise ValueError("explore needs MODEL_DIR_OR_CKPT and -o OUT_DIR (or --calibrate)")
    space = parse_space(args.space)
    budget = parse_budget(args.budget)
    if not args.min_fps >= 0:
        raise ValueError(f"--min-fps must be >= 0, not {args.min_fps}")
    table = load_table(args.table)
    from quant.quantizer.workflow import placeholder_model

    src = load_source(args.input, checkpoint_model=placeholder_model)
    result = explore(src, table, args.target, space, budget=budget, min_fps=args.min_fps,
                     objective=Objective(args.objective))
    synthesized = None
    if args.synth:
        from rtl.sweep import synth_many

        if spec.address is not None:
            from rtl.cluster import check_address

            check_address(spec.address, spec.connect_timeout_s)
        best = sorted(result.feasible, key=lambda p: explore_key(p, result.objective))[:args.synth]
        got = synth_many([p.config for p in best], args.target, args.cache, spec)
        synthesized = {(p.design.value, p.rows, p.cols, p.mult_rows): g for p, g in zip(best, got)}
    paths = write_outputs(result, args.out, model_dir=args.input, synthesized=synthesized)
    return result, paths, synthesized


def run_calibrate(args: argparse.Namespace):
    from hwsim.parts import part
    from rtl.cluster import ClusterSpec
    from rtl.sweep import calibrate

    part(args.calibrate)  # every part in hwsim.parts has a synthesis target (rtl.synth.TARGETS)
    if args.target is not None:
        raise ValueError("--calibrate PART names the part: drop --target")
    if args.input is not None:
        raise ValueError("--calibrate takes no MODEL_DIR_OR_CKPT (it synthesises its own design set)")
    spec = ClusterSpec(jobs=args.jobs, address=args.address)
    return calibrate(args.calibrate, args.cache, spec)


def _run(args: argparse.Namespace) -> int:
    from hwsim.explore import generate_command

    if args.calibrate:
        model, path = run_calibrate(args)
        tools = ", ".join(f"{k} {v}" for k, v in model.tools.items())
        held = sum(1 for d in model.designs if d["role"] == "held_out")
        print(f"resource model of {args.calibrate} ({model.engine_build} engine; {tools}): fitted on "
              f"{len(model.fitted_on)} designs, wrote {path}")
        print(f"the {held} designs held out of the fit:")
        print(model.error_table())
        return 0
    result, paths, synthesized = run_explore(args)
    for n in result.notes:
        print(f"note: {n}")
    b = result.best
    print(f"{len(result.points)} engines explored on {result.part}, {len(result.feasible)} within budget; "
          f"best for {result.objective.value}: {b.design.value} {b.rows}x{b.cols} (mult_rows {b.mult_rows}), "
          f"{b.fps:.1f} images/s, {b.energy_uj:.2f} uJ/image, {b.resources.bram} BRAM blocks")
    print(generate_command(b, args.input, result.part))
    if synthesized:
        n = sum(1 for g in synthesized.values() if not g.get("cached"))
        print(f"synthesised {n} of {len(synthesized)} points ({len(synthesized) - n} from the cache {args.cache})")
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0
