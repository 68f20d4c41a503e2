"""``adderhw flow``: checkpoint → integer model → estimates → Verilog → synthesis → cocotb → report.

Every step is one of the ordinary subcommands (``quantize``, ``estimate``,
``generate``, ``synth``, ``verify``) run in-process with the arguments the
report prints, so each number in ``report.md`` is what that subcommand writes
when run by hand.  Steps are cached (:mod:`scripts.steps`): a re-run reuses a
step whose command line and input bytes did not change, and a failing step
stops the flow with its error while the finished steps' folders stay intact.

The flow proves the network engine.  Output layout (``OUT_DIR``)::

    quantize/   adderhw quantize CKPT --bits B            (the integer model)
    sweep/      adderhw quantize CKPT --sweep 8,6,5,4      (accuracy vs bits)
    estimate/   adderhw estimate quantize/                 (cycles, every access, energy by component)
    generate/   adderhw generate --model quantize/         (engine/: the engine sized to the model, the
                deployable build; engine_verify/: it with the counters, ``--build verify``)
    synth/      adderhw synth generate/engine/<name>.v --compare --lut-only  (the adder engine and
                the all-multiplier engine of the same sizes, ECP5-25K by default: both fit there)
    verify/     adderhw verify quantize/ --design generate/engine_verify/<name>.json --sim SIM
                (the whole network on the engine: logits == golden, cycles and counters == hwsim)
    report.md   everything above, with plots in plots/

``--dataflow cp`` is accepted for one release (a deprecation line on stderr);
``--dataflow os`` is refused: the v1 core is retired.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from quant.base.retired import add_dataflow_flag, check_dataflow

from quant.base.files import MARKER, atomic_write_bytes, atomic_write_text, check_output_dir, dist_version
from rtl.cli import SYNTH_TARGETS
from scripts.steps import OUT, Step, run_step

__all__ = ["register", "FlowOptions", "check_options", "build_steps", "run_flow"]

#: Bump when what a step produces changes beyond its command lines, so older results are redone.
FLOW_FORMAT = 4
#: Default synthesis target: where both engines of the comparison fit.
DEFAULT_TARGET = "ecp5-25k"


class StepFailed(ValueError):
    """A flow step failed; raised as a user-facing error (one line, exit 1)."""


@dataclass(frozen=True)
class FlowOptions:
    checkpoint: Path
    out: Path
    bits: int = 8
    rows: int = 4
    cols: int = 4
    sim: str = "verilator"
    sweep: str = "8,6,5,4"
    target: str | None = None
    eval_images: int | None = None
    layer: str | None = None
    force: bool = False
    images: str = "0"
    weights: str = "streamed"
    weight_buffers: int = 1
    pixel_tile: int = 1

    def __post_init__(self) -> None:
        """Every option's own syntax and range, named as its flag (what needs the model: :func:`check_options`)."""
        from hwsim.config import MAX_ARRAY_DIM, check_pixel_tile
        from quant.quantizer.cli import parse_sweep
        from verification.engine_verify import parse_images

        if self.target is None:
            object.__setattr__(self, "target", DEFAULT_TARGET)
        if not 2 <= self.bits <= 16:
            raise ValueError(f"--bits must be in 2..16, not {self.bits}")
        for name in ("rows", "cols"):
            v = getattr(self, name)
            if not 1 <= v <= MAX_ARRAY_DIM:
                raise ValueError(f"--{name} must be an integer in 1..{MAX_ARRAY_DIM}, not {v}")
        if self.sim not in ("verilator", "icarus"):
            raise ValueError(f"--sim must be verilator or icarus, not {self.sim!r}")
        if self.eval_images is not None and self.eval_images < 1:  # as quantize --eval: N >= 1, or all
            raise ValueError(f"--eval must be a positive integer, not {self.eval_images}")
        parse_sweep(self.sweep)
        parse_images(self.images)
        if self.weights not in ("auto", "resident", "streamed"):
            raise ValueError(f"--weights must be auto, resident or streamed, not {self.weights!r}")
        if isinstance(self.weight_buffers, bool) or self.weight_buffers not in (1, 2):
            raise ValueError(f"--weight-buffers must be 1 or 2, not {self.weight_buffers!r}")
        check_pixel_tile(self.pixel_tile, self.weight_buffers)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "flow",
        help="run quantize, estimate, generate, synth and verify on a checkpoint and write one report",
        description="End to end: quantize CKPT (and a bit sweep), estimate the adder engine "
        "against the all-multiplier engine, generate the engine sized to the model, synthesise both, "
        "verify the whole network on it with cocotb, and write OUT_DIR/report.md with plots. "
        "Finished steps are reused when their inputs did not change.",
    )
    p.add_argument("checkpoint", metavar="CKPT", type=Path, help="adderhw checkpoint (.pt)")
    p.add_argument("-o", "--out", required=True, type=Path, metavar="OUT_DIR")
    p.add_argument("--bits", type=int, default=8, help="operand bits (default 8)")
    p.add_argument("--rows", type=int, default=4, help="array rows (default 4)")
    p.add_argument("--cols", type=int, default=4, help="array columns (default 4)")
    p.add_argument("--sim", choices=("verilator", "icarus"), default="verilator",
                   help="simulator for the testbenches (default verilator)")
    p.add_argument("--sweep", default="8,6,5,4", metavar="B1,B2,...",
                   help="bit widths of the accuracy sweep (default 8,6,5,4)")
    add_dataflow_flag(p)
    p.add_argument("--target", default=None,
                   choices=SYNTH_TARGETS,
                   help="synthesis target (default: ecp5-25k, where both engines fit)")
    p.add_argument("--images", default="0", metavar="I,J,...",
                   help="test images the engine runs in verify (default 0)")
    p.add_argument("--eval", type=int, default=None, metavar="N", dest="eval_images",
                   help="evaluate accuracy on the first N test images (default: all)")
    p.add_argument("--layer", default=None, metavar="N",
                   help="verify: also compare every layer's traced output and print this operation's "
                   "cycles and counters (verify --layer)")
    p.add_argument("--weights", choices=("auto", "resident", "streamed"), default="streamed",
                   help="generate: the engine streams its weights every image (default), keeps them resident "
                   "(loaded once; refused when the store does not fit --target's block RAMs), or auto")
    p.add_argument("--weight-buffers", type=int, choices=(1, 2), default=1,
                   help="estimate and generate: 2 gives a streamed engine two weight buffers, so a tile's load "
                   "overlaps the previous tile's steps (default 1)")
    p.add_argument("--pixel-tile", type=int, default=1, metavar="TP",
                   help="estimate and generate: Tp, 1..64, a conv tile's output pixels run Tp at a time, each "
                   "weight word read once for them (weight-buffer reads drop Tp-fold; each row keeps Tp "
                   "accumulators, more LUTs and FFs); default 1, no reuse")
    p.add_argument("--force", action="store_true",
                   help="use OUT_DIR even if it is a non-empty folder that no earlier flow made")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    check_dataflow("flow", args.dataflow)
    opts = FlowOptions(
        checkpoint=args.checkpoint, out=args.out, bits=args.bits, rows=args.rows,
        cols=args.cols, sim=args.sim, sweep=args.sweep, target=args.target,
        eval_images=args.eval_images, layer=args.layer, force=args.force, images=args.images,
        weights=args.weights, weight_buffers=args.weight_buffers, pixel_tile=args.pixel_tile,
    )
    run_flow(opts)
    return 0


class _Renamed(io.TextIOBase):
    """A text stream that writes to ``inner`` with the staging folder's path replaced by the final one."""

    def __init__(self, inner, staging: str, final: str):
        self._inner, self._staging, self._final = inner, staging, final

    def write(self, text: str) -> int:
        self._inner.write(text.replace(self._staging, self._final))
        return len(text)

    def flush(self) -> None:
        self._inner.flush()

    def isatty(self) -> bool:
        return self._inner.isatty()


def _adderhw(argv: list[str], step: str, staging: Path, final: Path) -> None:
    """Run one ``adderhw`` subcommand in-process; raise StepFailed if it fails.

    The step runs in ``staging`` (renamed to ``final`` when it is done): the command line it prints and
    everything the subcommand prints name ``final``, the path that will exist.  An interrupted or
    terminated subcommand (exit 130, 143) interrupts or terminates the flow too.
    """
    from scripts.cli import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, main

    shown = " ".join(a.replace(str(staging), str(final)) for a in argv)
    print(f"  $ adderhw {shown}", flush=True)
    with contextlib.redirect_stdout(_Renamed(sys.stdout, str(staging), str(final))), \
            contextlib.redirect_stderr(_Renamed(sys.stderr, str(staging), str(final))):
        rc = main(argv)
    if rc == EXIT_INTERRUPTED:
        raise KeyboardInterrupt
    if rc == EXIT_TERMINATED:
        raise Terminated
    if rc != 0:
        raise StepFailed(f"step {step} failed (exit {rc}): adderhw {shown}")


def _runner(step: str, final: Path):
    """``execute`` of a step made of ``adderhw`` command lines whose output folder is ``final``: run each
    in order."""
    def execute(commands: list, tmp: Path) -> None:
        for argv in commands:
            _adderhw(argv, step, tmp, final)
    return execute


def _design_verilog(folder: Path) -> Path:
    """The ``<name>.v`` of the one design ``adderhw generate`` wrote into ``folder``."""
    from scripts.flow_report import design_json_path

    return design_json_path(folder).with_suffix(".v")


def build_steps(opts: FlowOptions) -> list[Step]:
    """The flow's steps (each step's cache key is the list of command lines it runs): the network engine
    sized to the model, both engines synthesised, the whole network verified."""
    from scripts.flow_report import design_json_path

    out = opts.out
    ckpt = opts.checkpoint
    q_dir, s_dir, e_dir = out / "quantize", out / "sweep", out / "estimate"
    g_dir, y_dir, v_dir = out / "generate", out / "synth", out / "verify"
    ev = ["--eval", str(opts.eval_images)] if opts.eval_images is not None else []
    size = ["--rows", opts.rows, "--cols", opts.cols]

    def quantize():
        return [["quantize", ckpt, "--bits", opts.bits, *ev, "-o", OUT]]

    def sweep():
        return [["quantize", ckpt, "--sweep", opts.sweep, *ev, "-o", OUT]]

    def weights():  # where the engine keeps its weights: estimate sizes the same engine generate builds
        buffers = ["--weight-buffers", opts.weight_buffers] if opts.weight_buffers != 1 else []
        buffers += ["--pixel-tile", opts.pixel_tile] if opts.pixel_tile != 1 else []
        if opts.weights == "streamed":
            return buffers
        return ["--weights", opts.weights, *(["--part", opts.target] if opts.target != "generic" else []),
                *buffers]

    def estimate():
        return [["estimate", q_dir, *size, *weights(), "-o", OUT]]

    def generate():  # --layer: verify compares every layer's traced output, so the engine sends them
        trace = (["--trace"] if opts.layer is not None else []) + weights()
        # engine/: the deployable build (synth measures it); engine_verify/: it with the counters (verify)
        return [["generate", "--model", q_dir, *size, *trace, "-o", f"{OUT}/engine"],
                ["generate", "--model", q_dir, *size, *trace, "--build", "verify", "-o", f"{OUT}/engine_verify"]]

    def synth():
        # the adder engine and the all-multiplier engine of the same sizes, multipliers in LUTs, side by side
        return [["synth", _design_verilog(g_dir / "engine"), "--compare", "--lut-only", "--jobs", 2,
                 "--target", opts.target, "-o", f"{OUT}/engine"]]

    def verify():
        layer = ["--layer", opts.layer] if opts.layer is not None else []
        return [["verify", q_dir, *layer, "--design", design_json_path(g_dir / "engine_verify"), "--sim", opts.sim,
                 "--images", opts.images, "--build-dir", out / "sim_build", "-o", OUT]]

    def report(_commands, tmp: Path) -> None:
        from scripts.flow_report import write_engine_report

        write_engine_report(opts, tmp)

    return [
        Step("quantize", q_dir, _runner("quantize", q_dir), quantize, inputs=(ckpt,)),
        Step("sweep", s_dir, _runner("sweep", s_dir), sweep, inputs=(ckpt,)),
        Step("estimate", e_dir, _runner("estimate", e_dir), estimate, inputs=(q_dir,)),
        Step("generate", g_dir, _runner("generate", g_dir), generate, inputs=(q_dir,)),
        Step("synth", y_dir, _runner("synth", y_dir), synth, inputs=(g_dir,)),
        Step("verify", v_dir, _runner("verify", v_dir), verify, inputs=(q_dir, g_dir)),
        Step("report", out / "report", report, params=[str(opts)],
             inputs=(q_dir, s_dir, e_dir, g_dir, y_dir, v_dir)),
    ]


def check_options(opts: FlowOptions) -> None:
    """Refuse, before the first step, what a later step would refuse of the model: the checkpoint, the
    engine of ``--rows`` x ``--cols`` for it, ``--images`` beyond the test split and a ``--layer`` that is
    no operation of its program.  The model is the checkpoint quantized for its shapes alone (as
    ``estimate CKPT`` does): the operations and their names are those of the flow's model."""
    from hwsim.sizing import size_engine
    from quant.quantizer.workflow import placeholder_model
    from verification.engine_verify import engine_images, parse_images, select_ops

    model = placeholder_model(opts.checkpoint, bits=opts.bits)
    try:
        _, compiled = size_engine(model, rows=opts.rows, cols=opts.cols, trace=opts.layer is not None,
                                  weights=opts.weights, part=None if opts.target == "generic" else opts.target,
                                  weight_buffers=opts.weight_buffers, pixel_tile=opts.pixel_tile, note=lambda line: None)
    except ValueError as exc:
        raise ValueError(f"the {opts.rows}x{opts.cols} engine cannot run {model.name}: {exc}") from None
    select_ops([op.name for op in compiled.program.ops], opts.layer, model.name)
    engine_images(model, parse_images(opts.images), seed=0)


def run_flow(opts: FlowOptions) -> Path:
    """Run every step (reusing finished ones); return the path of ``report.md``.

    Every option is checked (:class:`FlowOptions`, :func:`check_options`) before anything is written."""
    if opts.checkpoint.is_dir():
        raise IsADirectoryError(f"checkpoint {opts.checkpoint} is a folder, not a checkpoint file")
    if not opts.checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint not found: {opts.checkpoint}")
    # OUT_DIR holds the steps' folders; it may be an earlier flow's (reused step by step) or new
    check_output_dir(opts.out, command="flow", inputs=[opts.checkpoint], force=opts.force)
    check_options(opts)
    opts.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(opts.out / MARKER, json.dumps({"command": "flow"}) + "\n")
    version = f"{dist_version('adderhw', '0+unknown')}+flow{FLOW_FORMAT}"
    steps = build_steps(opts)
    t0 = time.perf_counter()
    for i, step in enumerate(steps, 1):
        print(f"[{i}/{len(steps)}] {step.name} → {step.out}", flush=True)
        res = run_step(step, version)
        if res.rerun_reason:
            print(f"[{i}/{len(steps)}] {step.name}: {res.rerun_reason}; running it again", flush=True)
        if res.reused:
            print(f"[{i}/{len(steps)}] {step.name}: inputs unchanged, reused", flush=True)
        else:
            print(f"[{i}/{len(steps)}] {step.name}: done in {res.seconds:.1f} s", flush=True)
    report = opts.out / "report.md"
    atomic_write_bytes(report, (opts.out / "report" / "report.md").read_bytes())
    print(f"flow: finished in {time.perf_counter() - t0:.1f} s; report: {report}", flush=True)
    return report


if __name__ == "__main__":  # pragma: no cover
    from scripts.cli import main

    sys.exit(main(["flow", *sys.argv[1:]]))
