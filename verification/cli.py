"""``adderhw verify``: run the cocotb testbenches on Icarus and/or Verilator and report.

::

    adderhw verify [--sim icarus|verilator|both] [--waves] [--layer N] [MODEL_DIR] -o OUT

Without ``MODEL_DIR``: the random, corner, extreme, reset and back-pressure
tests on the design matrix (:data:`verification.suite.MATRIX`) and the
mutation check.  With ``MODEL_DIR`` (an integer model artifact from
``adderhw quantize``) also every compute layer as its own test and the whole
network layer by layer on a design generated for the model (or the one given
with ``--design``); ``--layer N`` runs only compute layer ``N`` (0-based
index among the compute layers, or its name) and skips the network.

Writes ``OUT/verify.json`` (one object per test: ``name``, ``simulator``,
``passed``, ``cycles_measured``, ``cycles_predicted``), the generated designs
under ``OUT/designs``, each run's log, results and waves (Icarus ``<top>.fst``, Verilator ``dump.vcd``) under
``OUT/runs/<design>-<sim>`` (a model name that is not a plain file name is
made one: never a path); prints a summary table.  Exit status 1 when any
test fails (or the mutant is not caught).
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
    p.add_argument("--force", action="store_true", help="replace OUT even if it is not an earlier verify's output")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="OUT",
                   help="output folder (verify.json, designs, logs, waves)")
    p.add_argument("--sim", choices=("icarus", "verilator", "both"), default="both",
                   help="simulator(s) to run (default: both)")
    p.add_argument("--waves", action="store_true",
                   help="record waves of every run (Icarus: FST, Verilator: VCD); their paths are printed")
    p.add_argument("--layer", metavar="N",
                   help="run only this compute layer of MODEL_DIR (index among compute layers, or name); "
                        "skips the whole-network test")
    p.add_argument("--images", default="0", metavar="I,J,...",
                   help="Fashion-MNIST test-set indices for the network test (default: 0)")
    p.add_argument("--design", type=Path, metavar="JSON",
                   help="run MODEL_DIR on this generated design (its metadata JSON) instead of "
                        "generating one for the model")
    p.add_argument("--rows", type=int, default=4, help="array rows of the model's design (default 4)")
    p.add_argument("--cols", type=int, default=4, help="array columns of the model's design (default 4)")
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
            ts = time.monotonic()
            run = run_design(meta, sim, out_dir=out / "runs" / path_component(f"{label}-{sim}"),
                             build_root=args.build_dir, seed=args.seed, waves=args.waves, **kw)
            got = report_entries(run, label, expect_fail=expect_fail)
            entries += got
            ok = sum(e["passed"] for e in got)
            print(f"{label} on {sim}: {ok}/{len(got)} passed in {time.monotonic() - ts:.1f} s"
                  f" (log {shown(run.log)})", flush=True)
            if args.waves:
                print(f"  waves: {shown(run.waves) if run.waves else 'none written'}", flush=True)
    report = out / "verify.json"
    write_report(entries, report)
    print(summary_table(entries))
    print(f"wrote {shown(report)} ({time.monotonic() - t0:.1f} s)")
    bad = [e["name"] + " on " + e["simulator"] for e in entries if not e["passed"]]
    if bad:
        print(f"adderhw verify: {len(bad)} failed: {', '.join(bad[:5])}", file=sys.stderr)
        return 1
    return 0
