"""``adderhw verify``: run the network engine's cocotb testbench on Icarus and/or Verilator and report.

::

    adderhw verify MODEL_DIR [--sim icarus|verilator|both] [--waves] [--layer N]
                   [--jobs N [--address HOST:PORT]] -o OUT

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

``--jobs N`` splits the run into shards (:mod:`verification.shards`): per
simulator the ``images`` test on up to N runs of consecutive images and the
``back_pressure`` test whole, each shard one simulator process, run N at a
time on Ray (a local instance; ``--address HOST:PORT`` joins a cluster whose
nodes see OUT, MODEL_DIR and ``--build-dir`` at the same paths).  The
simulator build is shared through ``--build-dir``.  A line per finished
shard; each shard's run under ``OUT/runs/<model>-engine-<sim>/<test>-<first>-<last>``.
``verify.json`` is the serial run's apart from the run's cost (per test
``wall_s``, ``wall_s_per_image``, ``python_wakeups``; per image ``wall_s``)
and, for a failed test, the text of its message and mismatch lines.

``--dataflow cp`` is accepted for one release (a deprecation line on
stderr); ``--dataflow os`` is refused: the v1 core is retired.

Exit status 1 when any test fails, or on any logit, cycle or counter difference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from quant.base.retired import add_dataflow_flag, check_dataflow

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
    add_dataflow_flag(p)
    p.add_argument("--force", action="store_true", help="replace OUT even if it is not an earlier verify's output")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="OUT",
                   help="output folder (verify.json, designs, logs, waves)")
    p.add_argument("--sim", choices=("icarus", "verilator", "both"), default="both",
                   help="simulator(s) to run (default: both)")
    p.add_argument("--waves", action="store_true",
                   help="record waves of every run (Icarus: FST, Verilator: VCD): their estimated size is "
                        "printed before the runs, their paths and sizes after")
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
    p.add_argument("--weights", choices=("auto", "resident", "streamed"), default="streamed",
                   help="without --design: the model's engine streams its weights every image (default), keeps "
                        "them resident (one load, then the images), or auto: resident when the store fits the "
                        "largest a config allows, else streamed with a line saying so")
    p.add_argument("--weight-buffers", type=int, choices=(1, 2), default=1,
                   help="without --design: 2 gives the model's streamed engine two weight buffers, so a tile's "
                        "load overlaps the previous tile's steps (default 1)")
    p.add_argument("--pixel-tile", type=int, default=1, metavar="TP",
                   help="without --design: Tp, 1..64, the model's engine runs a conv tile's output pixels Tp "
                        "at a time, each weight word read once for them (weight-buffer reads drop Tp-fold; each "
                        "row keeps Tp accumulators, more LUTs and FFs); default 1, no reuse")
    p.add_argument("--back-pressure", type=float, default=None, metavar="P",
                   help="also run the back_pressure test (first two images) with valid gaps and ready "
                        "drops of probability P in (0, 1)")
    p.add_argument("--seed", type=int, default=1, help="seed of the random tests (default 1)")
    p.add_argument("--build-dir", type=Path, default=Path("build") / "verify",
                   help="cache of simulator builds (default: build/verify)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="split the run into shards (per simulator: the images in up to N runs of consecutive "
                        "images, the back_pressure test) and run N at a time on Ray: a local instance, or "
                        "the cluster of --address; verify.json is the serial run's but for wall times and "
                        "Python wake-ups")
    p.add_argument("--address", metavar="HOST:PORT", default=None,
                   help="with --jobs: run the shards on this Ray cluster (its nodes must see OUT, MODEL_DIR "
                        "and --build-dir at the same paths)")
    p.set_defaults(func=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    """``verify``: the arguments into a :class:`verification.engine_verify.VerifyRequest`, the work is
    :func:`verification.engine_verify.verify_model`; progress lines on stdout, failures on stderr."""
    from verification.engine_verify import VerifyRequest, parse_images, verify_model

    check_dataflow("verify", args.dataflow)
    if args.model_dir is None:
        raise ValueError("verify needs a MODEL_DIR (an integer model from adderhw quantize): the engine runs "
                         "a whole model")
    if args.design is not None and args.weights != "streamed":
        raise ValueError(f"--weights {args.weights}: the engine of --design names its own weights")
    req = VerifyRequest(
        model_dir=args.model_dir, out=args.out, images=tuple(parse_images(args.images)),
        sims=("icarus", "verilator") if args.sim == "both" else (args.sim,), design=args.design,
        rows=args.rows, cols=args.cols, weights=args.weights, weight_buffers=args.weight_buffers,
        pixel_tile=args.pixel_tile, trace=args.trace, layer=args.layer,
        back_pressure=args.back_pressure,
        seed=args.seed, waves=args.waves, build_dir=args.build_dir, force=args.force, jobs=args.jobs,
        address=args.address)
    result = verify_model(req, say=lambda line: print(line, flush=True))
    if result.failed:
        print(f"adderhw verify: {len(result.failed)} failed: {', '.join(result.failed[:5])}", file=sys.stderr)
        return 1
    return 0
