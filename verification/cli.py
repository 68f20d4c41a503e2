"""``adderhw verify``: run the cocotb testbenches on Icarus and/or Verilator and report.

::

    adderhw verify [--dataflow cp|os] [--sim icarus|verilator|both] [--waves] [--layer N] [MODEL_DIR] -o OUT

With ``MODEL_DIR`` (an integer model artifact from ``adderhw quantize``) the
default dataflow is ``cp``: the network engine, sized to the model by the
compiler (``rows x cols``, default 4x4; or the engine given with ``--design``,
a metadata JSON of ``adderhw generate --engine``), runs the whole network on
each ``--images`` image back to back (test ``images``; with
``--back-pressure P`` also ``back_pressure`` on the first two images, valid
gaps and ready drops of probability P).  Every image's logits must equal the
golden model's, every operation's cycles and memory/stream counters hwsim
``cp``'s.  A model whose dataset has no test split on this machine runs
seeded random input codes.  ``--trace`` runs a traced engine
(:attr:`hwsim.config.EngineConfig.trace`): every operation's output comes
out on ``o`` before the logits and is held equal, layer by layer, to the
golden model's (and the cycles and counters to hwsim's, traces included).
``--layer N`` (an operation's name or 0-based index) implies ``--trace`` and
prints that operation's cycles, counters and trace; the whole network always
runs and ``verify.json`` has every operation (``trace``: ``true``/``false``
per operation, ``null`` when not traced).  A ``--design`` without traces is
refused with ``--trace``/``--layer``.  ``--skip-matrix`` changes nothing here.
``OUT/verify.json`` is an object: ``format`` ``"adderhw-verify-engine"``,
``dataflow``, ``tools`` (versions), ``model``, ``design``, ``images`` and
``tests``, one per cocotb test (``name``, ``simulator``, ``passed``,
``cycles_measured``, ``cycles_predicted``, ``mismatches``, ``mismatch_lines``,
``wall_s``, ``wall_s_per_image``, ``python_wakeups`` and per image its logits,
golden and reference logits, cycles and counters measured and predicted,
total and per operation); the generated engine is under ``OUT/designs``, each
run under ``OUT/runs/<model>-engine-<sim>``.

``--dataflow os`` (the default without ``MODEL_DIR``) runs the v1 core.
Without ``MODEL_DIR``: the random, corner, extreme, reset and back-pressure
tests on the design matrix (:data:`verification.suite.MATRIX`) and the
mutation check.  With ``MODEL_DIR`` also every compute layer as its own test
and the whole network layer by layer on a design generated for the model (or
the one given with ``--design``); ``--layer N`` runs only compute layer ``N``
(0-based index among the compute layers, or its name) and skips the network.
Writes ``OUT/verify.json`` (one object per test: ``name``, ``simulator``,
``passed``, ``cycles_measured``, ``cycles_predicted``), the generated designs
under ``OUT/designs``, each run's log, results and waves (Icarus ``<top>.fst``, Verilator ``dump.vcd``) under
``OUT/runs/<design>-<sim>`` (a model name that is not a plain file name is
made one: never a path); prints a summary table.

Exit status 1 when any test fails (or the mutant is not caught); for the
engine also on any logit, cycle or counter difference.
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
    p.add_argument("--dataflow", choices=("cp", "os"), default=None,
                   help="cp: the network engine (default with MODEL_DIR); os: the v1 core (default without)")
    p.add_argument("--force", action="store_true", help="replace OUT even if it is not an earlier verify's output")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="OUT",
                   help="output folder (verify.json, designs, logs, waves)")
    p.add_argument("--sim", choices=("icarus", "verilator", "both"), default="both",
                   help="simulator(s) to run (default: both)")
    p.add_argument("--waves", action="store_true",
                   help="record waves of every run (Icarus: FST, Verilator: VCD); their paths are printed")
    p.add_argument("--layer", metavar="N",
                   help="os: run only this compute layer of MODEL_DIR (index among compute layers, or name), "
                        "skipping the whole-network test; cp: compare every layer's traced output (as "
                        "--trace) and print this operation's cycles, counters and trace")
    p.add_argument("--trace", action="store_true",
                   help="cp: run a traced engine and hold every layer's output equal to the golden model's")
    p.add_argument("--images", default="0", metavar="I,J,...",
                   help="test-set indices of the images for the network (default: 0)")
    p.add_argument("--design", type=Path, metavar="JSON",
                   help="run MODEL_DIR on this generated design (its metadata JSON; cp: of generate --engine) "
                        "instead of generating one for the model")
    p.add_argument("--rows", type=int, default=4,
                   help="array rows of the model's design (cp: output channels Tm; default 4)")
    p.add_argument("--cols", type=int, default=4,
                   help="array columns of the model's design (cp: input channels Tn; default 4)")
    p.add_argument("--back-pressure", type=float, default=None, metavar="P",
                   help="cp: also run the back_pressure test (first two images) with valid gaps and ready "
                        "drops of probability P in (0, 1)")
    p.add_argument("--skip-matrix", action="store_true",
                   help="with MODEL_DIR: skip the random tests on the design matrix and the mutant")
    p.add_argument("--seed", type=int, default=1, help="seed of the random tests (default 1)")
    p.add_argument("--build-dir", type=Path, default=Path("build") / "verify",
                   help="cache of simulator builds (default: build/verify)")
    p.set_defaults(func=run_verify)


def _parse_images(text: str) -> list[int]:
    try:
        idx = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--images must be comma-separated integers, not {text!r}") from None
    if not idx or any(i < 0 for i in idx):
        raise ValueError(f"--images must list non-negative indices, not {text!r}")
    return idx


def _select_layers(model, layer: str | None) -> list[str]:
    compute = [ly.name for ly in model.layers if ly.pe is not None]
    if layer is None:
        return compute
    if layer in compute:
        return [layer]
    try:
        i = int(layer)
    except ValueError:
        raise ValueError(
            f"--layer {layer!r} is not a compute layer of {model.name} (have: {', '.join(compute)})"
        ) from None
    if not 0 <= i < len(compute):
        raise ValueError(f"--layer {i} is out of range: {model.name} has {len(compute)} compute layers (0..{len(compute) - 1})")
    return [compute[i]]


def _check_images(model, images: list[int]) -> None:
    """Refuse image indices outside the model's test split (before any build)."""
    from quant.datasets import DATASETS, load_raw

    if model.dataset not in DATASETS:
        return  # a model of no known dataset: its test images come from the testbench's job
    _, labels = load_raw(model.dataset, "test")
    n = len(labels)
    bad = [i for i in images if i >= n]
    if bad:
        raise ValueError(f"--images {bad[0]} is out of range: the {model.dataset} test split has {n} images "
                         f"(0..{n - 1})")


def _check_design_runs(meta, model) -> None:
    """Refuse a ``--design`` whose array cannot run ``model`` (before any build), naming the field."""
    from verification.suite import config_for_model

    have = meta.config
    need = config_for_model(model, rows=have.rows, cols=have.cols)
    for field in ("pe", "bits", "requant"):
        if getattr(have, field) != getattr(need, field):
            raise ValueError(f"--design {meta.name} has {field}={getattr(have, field)}, the model {model.name} "
                             f"needs {field}={getattr(need, field)}")
    for field in ("max_k", "out_bits"):
        if getattr(have, field) < getattr(need, field):
            raise ValueError(f"--design {meta.name} has {field}={getattr(have, field)}, the model {model.name} "
                             f"needs at least {getattr(need, field)}")


def run_verify(args: argparse.Namespace) -> int:
    """``verify``: OUT is checked before any work and built in a staged folder, so an
    interrupted run leaves the previous OUT (its verify.json and runs/) as it was."""
    from quant.artifact import load_int_model
    from quant.files import check_output_dir, staged_dir

    dataflow = args.dataflow or ("cp" if args.model_dir is not None else "os")
    if dataflow == "cp":
        return _run_engine_verify(args)
    if args.back_pressure is not None:
        raise ValueError("--back-pressure is for the engine (--dataflow cp); the v1 suite runs its own "
                         "back_pressure test")
    if args.trace:
        raise ValueError("--trace is for the engine (--dataflow cp); the v1 core checks each layer with --layer")
    sims = ["icarus", "verilator"] if args.sim == "both" else [args.sim]
    images = _parse_images(args.images)
    inputs = [args.model_dir, args.design]
    final: Path = check_output_dir(args.out, command="verify", inputs=inputs, force=args.force)
    model = None
    if args.model_dir is not None:
        model = load_int_model(args.model_dir)
        layers = _select_layers(model, args.layer)
        if args.design is not None:
            from verification.meta import load_meta

            _check_design_runs(load_meta(args.design), model)
        _check_images(model, images)
    elif args.layer is not None or args.design is not None:
        raise ValueError("--layer and --design need a MODEL_DIR")
    elif args.skip_matrix:
        raise ValueError("--skip-matrix needs a MODEL_DIR (otherwise nothing would run)")

    with staged_dir(final, command="verify", inputs=inputs, force=args.force) as out:
        return _verify_into(args, out, final, model, layers if model is not None else None, sims, images)


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


def _verify_into(args, out: Path, final: Path, model, layers, sims, images) -> int:
    """Run the plan into the staging folder ``out`` (renamed to ``final`` by the caller)."""
    from verification.meta import load_meta
    from verification.runner import path_component
    from verification.suite import (
        MATRIX,
        MUTANT,
        DesignSpec,
        config_for_model,
        generate_design,
        report_entries,
        run_design,
        summary_table,
        write_report,
    )

    def shown(p) -> str:  # paths as they will be once the folder is in place
        return str(p).replace(str(out), str(final), 1)

    t0 = time.monotonic()
    designs_dir = out / "designs"
    plan: list[tuple[str, object, dict]] = []  # (label, meta, run kwargs)
    if model is not None:
        if args.design is not None:
            meta = load_meta(args.design)
        else:
            cfg = config_for_model(model, rows=args.rows, cols=args.cols)
            meta = generate_design(DesignSpec("model", cfg), designs_dir)
        plan.append((f"{model.name}", meta, dict(
            testcases=[f"layer_{n}" for n in layers] + ([] if args.layer is not None else ["network"]),
            model_dir=args.model_dir, layers=layers, network=args.layer is None, images=images)))
    if not args.skip_matrix:
        for spec in MATRIX:
            plan.append((spec.label, generate_design(spec, designs_dir), {}))
        plan.append((MUTANT.label, generate_design(MUTANT, designs_dir), {"expect_fail": True}))

    entries: list[dict] = []
    for label, meta, kw in plan:
        expect_fail = kw.pop("expect_fail", False)
        for sim in sims:
            entries += _run_printed(
                f"{label} on {sim}", shown, args.waves,
                lambda: run_design(meta, sim, out_dir=out / "runs" / path_component(f"{label}-{sim}"),
                                   build_root=args.build_dir, seed=args.seed, waves=args.waves, **kw),
                lambda run: report_entries(run, label, expect_fail=expect_fail))
    report = out / "verify.json"
    write_report(entries, report)
    print(summary_table(entries))
    print(f"wrote {shown(report)} ({time.monotonic() - t0:.1f} s)")
    bad = [e["name"] + " on " + e["simulator"] for e in entries if not e["passed"]]
    if bad:
        print(f"adderhw verify: {len(bad)} failed: {', '.join(bad[:5])}", file=sys.stderr)
        return 1
    return 0


def _run_engine_verify(args: argparse.Namespace) -> int:
    """``verify --dataflow cp``: everything is checked (model, design, images, operations) before OUT is
    staged; the engine is generated into the staging folder and run there."""
    from quant.artifact import load_int_model
    from quant.files import check_output_dir, staged_dir
    from verification.engine_verify import engine_images

    if args.model_dir is None:
        raise ValueError("--dataflow cp needs a MODEL_DIR (the engine runs a whole model)")
    bp = args.back_pressure
    if bp is not None and not 0.0 < bp < 1.0:
        raise ValueError(f"--back-pressure must be a probability in (0, 1), not {bp}")
    sims = ["icarus", "verilator"] if args.sim == "both" else [args.sim]
    images = _parse_images(args.images)
    inputs = [args.model_dir, args.design]
    final: Path = check_output_dir(args.out, command="verify", inputs=inputs, force=args.force)
    model = load_int_model(args.model_dir)
    codes, source = engine_images(model, images, seed=args.seed)
    target = _engine_target(args, model, None)  # refuses what the engine cannot run before any work
    with staged_dir(final, command="verify", inputs=inputs, force=args.force) as out:
        if args.design is None:
            target = _engine_target(args, model, out / "designs")
        return _verify_engine_into(args, out, final, model, target, sims, images, codes, source)


def _engine_target(args, model, designs_dir: Path | None):
    """The engine to run: ``--design``, or the engine sized to ``model`` written into ``designs_dir``
    (None: only sized, to refuse a model the engine cannot run)."""
    from hwsim.sizing import size_engine
    from rtl.engine.generate import generate_engine
    from verification.engine_verify import engine_design, select_ops

    trace = bool(args.trace or args.layer is not None)
    if args.design is not None:
        target = engine_design(args.design, model)
        if trace and not target.design.config.trace:
            flag = "--trace" if args.trace else "--layer"
            raise ValueError(f"{flag} compares traced layer outputs, but the design {target.design.name} has no "
                             "traces (generate it with adderhw generate --engine --trace)")
    elif designs_dir is None:
        try:
            _, compiled = size_engine(model, rows=args.rows, cols=args.cols, trace=trace)
        except ValueError as exc:
            raise ValueError(f"the {args.rows}x{args.cols} engine cannot run {model.name}: {exc}") from None
        select_ops([op.name for op in compiled.program.ops], args.layer, model.name)
        return None
    else:
        d = generate_engine(designs_dir, model=model, model_path=str(args.model_dir), rows=args.rows,
                            cols=args.cols, trace=trace)
        target = engine_design(d.metadata, model)
    select_ops(target.op_names, args.layer, model.name)
    return target


def _verify_engine_into(args, out: Path, final: Path, model, target, sims, images, codes, source) -> int:
    """Run the engine on every simulator into the staging folder ``out``; write verify.json; print."""
    from verification.engine_host import run_engine_tests
    from verification.engine_verify import report_entries, select_ops, summary_lines, tool_versions, write_report
    from verification.runner import path_component

    def shown(p) -> str:  # paths as they will be once the folder is in place
        return str(p).replace(str(out), str(final), 1)

    t0 = time.monotonic()
    d = target.design
    tests = ["images"] + (["back_pressure"] if args.back_pressure is not None else [])
    bp = None if args.back_pressure is None else {s: args.back_pressure for s in ("prog", "x", "w", "o")}
    print(f"{model.name} on the engine {d.name} ({d.config.rows}x{d.config.cols}, {len(target.op_names)} "
          f"operations): images {', '.join(map(str, images))} from {source}", flush=True)
    entries: list[dict] = []
    for sim in sims:
        entries += _run_printed(
            f"{model.name} engine on {sim}", shown, args.waves,
            lambda: run_engine_tests(d, sim, model_dir=args.model_dir, images=codes,
                                     out_dir=out / "runs" / path_component(f"{model.name}-engine-{sim}"),
                                     build_root=args.build_dir, testcases=tests, seed=args.seed, back_pressure=bp,
                                     waves=args.waves),
            lambda run: report_entries(run, model_name=model.name, design=d.name, images=images))
    report = out / "verify.json"
    write_report(report, entries=entries, tools=tool_versions(sims),
                 model={"name": model.name, "path": str(Path(args.model_dir).resolve()), "dataset": model.dataset},
                 design={"name": d.name, "metadata": shown(target.metadata.resolve()),
                         "verilog": shown(Path(d.verilog).resolve()), "config": d.config.to_dict(),
                         "max_ops": d.max_ops, "given": args.design is not None, "ops": list(target.op_names)},
                 images={"indices": images, "source": source, "seed": args.seed})
    shown_ops = None if args.layer is None else select_ops(target.op_names, args.layer, model.name)
    print("\n".join(summary_lines(entries, shown_ops)))
    print(f"wrote {shown(report)} ({time.monotonic() - t0:.1f} s)")
    bad = [e["name"] + " on " + e["simulator"] for e in entries if not e["passed"]]
    if bad:
        print(f"adderhw verify: {len(bad)} failed: {', '.join(bad[:5])}", file=sys.stderr)
        return 1
    return 0
