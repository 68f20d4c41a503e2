"""``adderhw verify``: run the network engine's cocotb testbench on Icarus and/or Verilator and report.

::

    adderhw verify MODEL_DIR [--sim icarus|verilator|both] [--waves] [--layer N] -o OUT

``MODEL_DIR`` (an integer model artifact from ``adderhw quantize``; required:
the engine runs a whole model) runs on the network engine, sized to the
model by the compiler (``rows x cols``, default 4x4; or the engine given
with ``--design``, a metadata JSON of ``adderhw generate``): the whole
network on each ``--images`` image back to back (test ``images``; with
``--back-pressure P`` also ``back_pressure`` on the first two images, valid
gaps and ready drops of probability P).  Every image's logits must equal the
golden model's, every operation's cycles and memory/stream counters hwsim's.
The model is compiled once and the testbench runs that program.  A model
whose dataset has no test split on this machine runs seeded random input
codes.  ``--trace`` runs a traced engine
(:attr:`hwsim.config.EngineConfig.trace`): every operation's output comes
out on ``o`` before the logits and is held equal, layer by layer, to the
golden model's (and the cycles and counters to hwsim's, traces included).
``--layer N`` (an operation's name or 0-based index) implies ``--trace`` and
prints that operation's cycles, counters and trace; the whole network always
runs and ``verify.json`` has every operation (``trace``: ``true``/``false``
per operation, ``null`` when not traced).  A ``--design`` without traces is
refused with ``--trace``/``--layer``.  ``OUT/verify.json`` is an object:
``format`` ``"adderhw-verify-engine"``, ``dataflow`` (``"cp"``), ``tools``
(versions), ``model``, ``design``, ``images`` and ``tests``, one per cocotb
test (``name``, ``simulator``, ``passed``, ``cycles_measured``,
``cycles_predicted``, ``mismatches``, ``mismatch_lines``, ``wall_s``,
``wall_s_per_image``, ``python_wakeups`` and per image its logits, golden
and reference logits, cycles and counters measured and predicted, total and
per operation); the generated engine is under ``OUT/designs``, each run
under ``OUT/runs/<model>-engine-<sim>``.

``--dataflow cp`` is accepted for one release (a deprecation line on
stderr); ``--dataflow os`` is refused: the v1 core is retired.

Exit status 1 when any test fails, or on any logit, cycle or counter difference.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["register", "run_verify"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``verify`` to the ``adderhw`` parser."""
    p = subparsers.add_parser(
        "verify",
        help="run the cocotb testbenches (RTL vs golden model and hwsim) on Icarus/Verilator",
        description=__doc__.split("::")[0].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model_dir", nargs="?", type=Path, metavar="MODEL_DIR",
                   help="integer model artifact (manifest.json + weights.npz) whose layers to run")
    p.add_argument("--dataflow", choices=("cp", "os"), default=None, help=argparse.SUPPRESS)  # deprecated
    p.add_argument("--force", action="store_true", help="replace OUT even if it is not an earlier verify's output")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="OUT",
                   help="output folder (verify.json, designs, logs, waves)")
    p.add_argument("--sim", choices=("icarus", "verilator", "both"), default="both",
                   help="simulator(s) to run (default: both)")
    p.add_argument("--waves", action="store_true",
                   help="record waves of every run (Icarus: FST, Verilator: VCD); their paths are printed")
    p.add_argument("--layer", metavar="N",
                   help="compare every layer's traced output (as --trace) and print this operation's "
                        "cycles, counters and trace (an operation's name or 0-based index)")
    p.add_argument("--trace", action="store_true",
                   help="run a traced engine and hold every layer's output equal to the golden model's")
    p.add_argument("--images", default="0", metavar="I,J,...",
                   help="test-set indices of the images for the network (default: 0)")
    p.add_argument("--design", type=Path, metavar="JSON",
                   help="run MODEL_DIR on this generated engine (its metadata JSON, of adderhw generate) "
                        "instead of generating one for the model")
    p.add_argument("--rows", type=int, default=4,
                   help="array rows of the model's engine (output channels Tm; default 4)")
    p.add_argument("--cols", type=int, default=4,
                   help="array columns of the model's engine (input channels Tn; default 4)")
    p.add_argument("--back-pressure", type=float, default=None, metavar="P",
                   help="also run the back_pressure test (first two images) with valid gaps and ready "
                        "drops of probability P in (0, 1)")
    p.add_argument("--seed", type=int, default=1, help="seed of the random tests (default 1)")
    p.add_argument("--build-dir", type=Path, default=Path("build") / "verify",
                   help="cache of simulator builds (default: build/verify)")
    p.set_defaults(func=run_verify)


def _images_text(images: list[int], shown: int = 8) -> str:
    """``images 0, 1, 2`` or, for many, ``10000 images: 0, 1, 2, 3, 4, 5, 6, ..., 9999``."""
    if len(images) <= shown:
        return "images " + ", ".join(map(str, images))
    return f"{len(images)} images: {', '.join(map(str, images[:shown - 1]))}, ..., {images[-1]}"


def run_verify(args: argparse.Namespace) -> int:
    """``verify``: everything is checked (model, design, images, operations) before OUT is staged; the
    engine is generated into the staging folder and run there, so an interrupted run leaves the previous
    OUT (its verify.json and runs/) as it was."""
    from quant.intmodel.artifact import load_int_model
    from quant.base.files import check_output_dir, check_parent_folders, staged_dir
    from verification.engine_verify import engine_images, parse_images

    if args.dataflow == "os":
        raise ValueError("--dataflow os: the v1 core is retired; verify runs the network engine")
    if args.dataflow == "cp":
        print("verify: --dataflow cp is deprecated: the network engine is the only design", file=sys.stderr)
    if args.model_dir is None:
        raise ValueError("verify needs a MODEL_DIR (an integer model from adderhw quantize): the engine runs "
                         "a whole model")
    bp = args.back_pressure
    if bp is not None and not 0.0 < bp < 1.0:
        raise ValueError(f"--back-pressure must be a probability in (0, 1), not {bp}")
    if args.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, not {args.seed}")
    if args.build_dir.exists() and not args.build_dir.is_dir():
        raise NotADirectoryError(f"--build-dir {args.build_dir} exists and is not a folder")
    check_parent_folders(args.build_dir, "--build-dir")
    sims = ["icarus", "verilator"] if args.sim == "both" else [args.sim]
    images = parse_images(args.images)
    inputs = [args.model_dir, args.design]
    final: Path = check_output_dir(args.out, command="verify", inputs=inputs, force=args.force)
    model = load_int_model(args.model_dir)
    codes, source = engine_images(model, images, seed=args.seed)
    design, compiled = _engine_target(args, model)  # refuses what the engine cannot run before any work
    with staged_dir(final, command="verify", inputs=inputs, force=args.force) as out:
        if design is None:
            from rtl.engine.generate import generate_engine

            design = generate_engine(out / "designs", model=model, config=compiled.program.config,
                                     compiled=compiled, model_path=str(args.model_dir))
        return _verify_engine_into(args, out, final, model, design, compiled, sims, images, codes, source)


def _run_printed(what: str, shown, waves: bool, run_fn, entries_fn) -> list[dict]:
    """One simulator run (``run_fn()``) turned into verify.json entries (``entries_fn(run)``), with its line:
    passed of total, wall time, log (and the waves' path with ``--waves``)."""
    ts = time.monotonic()
    run = run_fn()
    got = entries_fn(run)
    ok = sum(e["passed"] for e in got)
    print(f"{what}: {ok}/{len(got)} passed in {time.monotonic() - ts:.1f} s (log {shown(run.log)})", flush=True)
    if waves:
        print(f"  waves: {shown(run.waves) if run.waves else 'none written'}", flush=True)
    return got


def _engine_target(args, model):
    """``(design, compiled)``: the ``--design`` read and ``model`` compiled for it, or ``(None, compiled)``:
    the engine sized to ``model`` (written later into OUT) and the model compiled for it."""
    from hwsim.sizing import size_engine
    from verification.engine_verify import engine_design, select_ops

    trace = bool(args.trace or args.layer is not None)
    if args.design is not None:
        design, compiled = engine_design(args.design, model)
        if trace and not design.config.trace:
            flag = "--trace" if args.trace else "--layer"
            raise ValueError(f"{flag} compares traced layer outputs, but the design {design.name} has no "
                             "traces (generate it with adderhw generate --trace)")
    else:
        design = None
        try:
            _, compiled = size_engine(model, rows=args.rows, cols=args.cols, trace=trace)
        except ValueError as exc:
            raise ValueError(f"the {args.rows}x{args.cols} engine cannot run {model.name}: {exc}") from None
    select_ops([op.name for op in compiled.program.ops], args.layer, model.name)
    return design, compiled


def _verify_engine_into(args, out: Path, final: Path, model, d, compiled, sims, images, codes, source) -> int:
    """Run the engine on every simulator into the staging folder ``out``; write verify.json; print."""
    from verification.engine_host import run_engine_tests
    from verification.engine_verify import report_entries, select_ops, summary_lines, tool_versions, write_report
    from verification.runner import path_component

    def shown(p) -> str:  # paths as they will be once the folder is in place
        return str(p).replace(str(out), str(final), 1)

    t0 = time.monotonic()
    op_names = [op.name for op in compiled.program.ops]
    tests = ["images"] + (["back_pressure"] if args.back_pressure is not None else [])
    bp = None if args.back_pressure is None else {s: args.back_pressure for s in ("prog", "x", "w", "o")}
    print(f"{model.name} on the engine {d.name} ({d.config.rows}x{d.config.cols}, {len(op_names)} "
          f"operations): {_images_text(images)} from {source}", flush=True)
    entries: list[dict] = []
    for sim in sims:
        entries += _run_printed(
            f"{model.name} engine on {sim}", shown, args.waves,
            lambda: run_engine_tests(d, sim, model_dir=args.model_dir, images=codes, compiled=compiled,
                                     out_dir=out / "runs" / path_component(f"{model.name}-engine-{sim}"),
                                     build_root=args.build_dir, testcases=tests, seed=args.seed, back_pressure=bp,
                                     waves=args.waves),
            lambda run: report_entries(run, model_name=model.name, design=d.name, images=images))
    report = out / "verify.json"
    write_report(report, entries=entries, tools=tool_versions(sims),
                 model={"name": model.name, "path": str(Path(args.model_dir).resolve()), "dataset": model.dataset},
                 design={"name": d.name, "metadata": shown(d.path.resolve()),
                         "verilog": shown(Path(d.verilog).resolve()), "config": d.config.to_dict(),
                         "max_ops": d.max_ops, "given": args.design is not None, "ops": op_names},
                 images={"indices": images, "source": source, "seed": args.seed})
    shown_ops = None if args.layer is None else select_ops(op_names, args.layer, model.name)
    print("\n".join(summary_lines(entries, shown_ops)))
    print(f"wrote {shown(report)} ({time.monotonic() - t0:.1f} s)")
    bad = [e["name"] + " on " + e["simulator"] for e in entries if not e["passed"]]
    if bad:
        print(f"adderhw verify: {len(bad)} failed: {', '.join(bad[:5])}", file=sys.stderr)
        return 1
    return 0
