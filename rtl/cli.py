"""Subcommands of the `rtl` package for the ``adderhw`` command: ``generate`` and ``synth``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from quant.base.intops import PeKind, RequantMode
from rtl.engine.build import Build
from rtl.pe import AdderForm
from rtl.study import STUDY_BLOCKS

__all__ = ["register", "SYNTH_TARGETS"]

#: ``synth --target`` choices: the keys of :data:`rtl.synth.TARGETS` (kept equal by tests/rtl/test_synth_parts.py;
#: importing rtl.synth here would load it for every command).
SYNTH_TARGETS = ("ice40-hx8k", "ice40-up5k", "ecp5-25k", "ecp5-45k", "ecp5-85k", "generic")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to the ``adderhw`` parser."""
    g = subparsers.add_parser(
        "generate",
        help="write the network engine's Verilog and its metadata JSON",
        description="Generate Verilog (Amaranth) of the network engine (rows = Tm output channels, "
        "cols = Tn input channels), sized to --model MODEL_DIR by the compiler or to explicit sizes, "
        "with the metadata JSON testbenches and synth read: OUT_DIR/<name>.v and OUT_DIR/<name>.json.  "
        "--block pe|array: a block of the PE-arithmetic study instead (one PE, or the bare "
        "rows x cols PE array).",
    )
    g.add_argument("--engine", action="store_true", help=argparse.SUPPRESS)  # deprecated no-op
    g.add_argument("--model", default=None, metavar="MODEL_DIR",
                   help="integer model folder to size the engine to (memories, widths, program depth)")
    g.add_argument("--mult-rows", type=int, default=None,
                   help="rows of the multiplier unit of an adder engine (default: with --model, as the "
                   "compiler sizes it for the model's multiply layers; without, 0)")
    g.add_argument("--weights", choices=("auto", "resident", "streamed"), default=None,
                   help="with --model: weights streamed on w every image (default), resident on chip (loaded "
                   "once; refused naming the sizes when the store does not fit), or auto: resident when it "
                   "fits, else streamed with a line saying so; the budget is --part's block RAMs; without "
                   "--model: resident or streamed, with --weight-words the store's depth")
    g.add_argument("--part", choices=SYNTH_TARGETS[:-1], default=None,
                   help="with --model --weights auto|resident: the part whose block RAMs the engine must fit "
                   "(default: no part, the store at most 65536 words)")
    g.add_argument("--weight-buffers", type=int, choices=(1, 2), default=None,
                   help="2: the weight buffer holds two tiles and a tile's load overlaps the previous tile's "
                   "steps (streamed weights; the buffer twice as deep); default 1, today's engine")
    g.add_argument("--pixel-tile", type=int, default=None, metavar="TP",
                   help="Tp, 1..64: a conv tile's output pixels run Tp at a time, each weight word read once "
                   "for them (weight-buffer reads drop Tp-fold) while each row keeps Tp accumulators (more "
                   "LUTs and FFs); default 1, no reuse; 1 only with --weight-buffers 2")
    g.add_argument("--act-words", default=None, metavar="D0,D1[,...]",
                   help="without --model: depth of each activation region in words (default 4096,4096,4096)")
    g.add_argument("--weight-words", type=int, default=None,
                   help="without --model: depth of the weight buffer (default 1024)")
    g.add_argument("--trace", action="store_true",
                   help="send every operation's output on o before the logits (per-layer checks)")
    g.add_argument("--build", type=Build, choices=tuple(Build), default=Build.DEPLOY,
                   help="deploy: the engine alone (default); verify: with the counters and op_done/op_index "
                   "the testbenches read (rtl.engine.top.Build)")
    g.add_argument("--max-ops", type=int, default=None,
                   help="most operations per program, the width of op_index (default: the model's operations, "
                   "or 64)")
    g.add_argument("--rows", type=int, required=True, help="array rows (output channels Tm)")
    g.add_argument("--cols", type=int, required=True,
                   help="array columns (engine: input channels Tn; --block array: output pixels)")
    g.add_argument("--bits", type=int, default=None, help="operand width, 2..16 (required unless --model)")
    g.add_argument("--pe", choices=tuple(PeKind), default=None,
                   help="PE arithmetic (default adder; the engine with mult: the all-multiplier engine)")
    g.add_argument("--requant", choices=tuple(RequantMode), default=RequantMode.FIXED,
                   help="without --model: the requant form (default: fixed)")
    g.add_argument("--max-k", type=int, default=None,
                   help="longest reduction; fixes the accumulators (default 4608)")
    g.add_argument("--out-bits", type=int, default=None, help="without --model: logits width (default: --bits)")
    g.add_argument("--mult-bits", type=int, default=16,
                   help="width of the fixed-point requant multiplier (default 16)")
    g.add_argument("--block", choices=tuple(STUDY_BLOCKS), default=None,
                   help="a block of the PE-arithmetic study instead of the engine: one PE or the bare PE array")
    g.add_argument("--form", choices=tuple(AdderForm), default=None,
                   help="--block: adder PE formulation of |x - w| (default cinv)")
    g.add_argument("-o", "--out", required=True, metavar="OUT_DIR", help="output folder")
    g.set_defaults(func=_run_generate)

    s = subparsers.add_parser(
        "synth",
        help="synthesize a generated design and report LUTs, FFs and Fmax",
        description="Synthesize OUT_DIR/<name>.v (with its <name>.json beside it) with yosys "
        "and place and route it with nextpnr; write SYNTH_DIR/synth.json.  --compare builds "
        "the adder and the multiplier variant of the same config (and again with DSPs where "
        "the target has them), prints a table and writes SYNTH_DIR/compare.json.",
    )
    s.add_argument("verilog", metavar="VERILOG", help="a <name>.v written by adderhw generate")
    s.add_argument("--target", choices=SYNTH_TARGETS, default="ice40-hx8k",
                   help="device (default ice40-hx8k); an engine whose memories need more block RAMs than "
                   "the part has is refused before synthesis")
    s.add_argument("-o", "--out", required=True, metavar="SYNTH_DIR",
                   help="output folder (built atomically; an existing one is replaced only when it is an "
                   "earlier synth's output)")
    s.add_argument("--force", action="store_true", help="replace SYNTH_DIR even if it is not an earlier synth")
    s.add_argument("--compare", action="store_true",
                   help="synthesize the adder and the multiplier variant and print a table")
    s.add_argument("--dsp", action="store_true", help="allow DSP inference (ice40-up5k, ecp5-*)")
    s.add_argument("--lut-only", action="store_true",
                   help="--compare: only the LUT-only variants (skip the DSP ones)")
    s.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="--compare: variants synthesized at once (default 1; each is one process)")
    s.add_argument("--freq", type=float, default=100.0, help="nextpnr target MHz (default 100)")
    s.add_argument("--seed", type=int, default=1, help="nextpnr placer seed (default 1)")
    s.set_defaults(func=_run_synth)


#: Default --max-k: the longest reduction of the shipped networks (a 3x3 conv over 512 channels).
DEFAULT_MAX_K = 4608
#: ``generate`` options of the engine, with their defaults (refused with --block).
_ENGINE_ONLY = {"model": None, "mult_rows": None, "weights": None, "part": None, "act_words": None, "weight_words": None, "max_ops": None,
                "weight_buffers": None, "pixel_tile": None,
                "trace": False, "requant": RequantMode.FIXED, "out_bits": None, "mult_bits": 16, "build": Build.DEPLOY}


def _flag(dest: str) -> str:
    return f"--{dest.replace('_', '-')}"


def _run_block(args: argparse.Namespace) -> int:
    from rtl.array import BlockConfig
    from rtl.study import generate_block

    given = [_flag(k) for k, dflt in _ENGINE_ONLY.items() if getattr(args, k) != dflt]
    if given:
        raise ValueError(f"{', '.join(given)}: for the engine, not --block {args.block}")
    if args.bits is None:
        raise ValueError(f"--block {args.block} needs --bits")
    config = BlockConfig(rows=args.rows, cols=args.cols, pe=args.pe or PeKind.ADDER, bits=args.bits,
                         max_k=DEFAULT_MAX_K if args.max_k is None else args.max_k,
                         form=args.form or AdderForm.CINV)
    d = generate_block(config, args.out, block=args.block)
    print(d.verilog)
    print(d.path)
    return 0


def _run_generate(args: argparse.Namespace) -> int:
    from hwsim.config import EngineConfig, check_pixel_tile
    from quant.base.progress import progress
    from rtl.engine.generate import generate_engine

    if args.engine:
        print("generate: --engine is deprecated: the network engine is the only design", file=sys.stderr)
    if args.block is not None:
        if args.engine:
            raise ValueError(f"--engine and --block {args.block}: choose one")
        return _run_block(args)
    if args.form is not None:
        raise ValueError("--form is for the PE study blocks (--block pe|array), not the engine")
    pe = args.pe or PeKind.ADDER
    if args.pixel_tile is not None:
        check_pixel_tile(args.pixel_tile, args.weight_buffers or 1)
    if args.model is not None:
        given = [_flag(k) for k in ("bits", "max_k", "out_bits", "act_words", "weight_words")
                 if getattr(args, k) is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: an engine sized to --model takes its widths and memories "
                             "from the model")
        if args.requant != RequantMode.FIXED:
            raise ValueError("--requant: an engine sized to --model implements the forms the model uses")
        if args.mult_rows is not None and pe == PeKind.MULT:
            raise ValueError(f"--mult-rows {args.mult_rows}: the all-multiplier engine (--pe mult) has no "
                             "multiplier unit")
        from quant.base.files import check_not_input
        from quant.intmodel.artifact import load_int_model

        check_not_input(args.out, [args.model])
        model = load_int_model(args.model)
        with progress(f"generate: the {args.rows}x{args.cols} engine sized to {args.model}"):
            d = generate_engine(args.out, model=model, model_path=args.model, rows=args.rows, cols=args.cols,
                                mult_rows=args.mult_rows, pe=pe, max_ops=args.max_ops, trace=args.trace,
                                build=args.build, weights=args.weights or "streamed", part=args.part,
                                weight_buffers=args.weight_buffers or 1, pixel_tile=args.pixel_tile or 1)
    else:
        if args.bits is None:
            raise ValueError("the engine without --model needs --bits")
        if args.weights == "auto" or args.part is not None:
            raise ValueError("--weights auto and --part size an engine to --model: without it, give --weights "
                             "resident or streamed")
        fields = dict(rows=args.rows, cols=args.cols, pe=str(pe), mult_rows=args.mult_rows or 0, bits=args.bits,
                      requant=(args.requant,), mult_bits=args.mult_bits, trace=args.trace)
        for name in ("weights", "weight_buffers", "pixel_tile", "max_k", "out_bits", "weight_words"):
            if getattr(args, name) is not None:  # given: else the config's default
                fields[name] = getattr(args, name)
        if args.act_words is not None:
            try:
                fields["act_words"] = tuple(int(v) for v in args.act_words.split(","))
            except ValueError:
                raise ValueError(f"--act-words must be integers separated by commas, not {args.act_words!r}") from None
        with progress(f"generate: the {args.rows}x{args.cols} engine"):
            d = generate_engine(args.out, config=EngineConfig(**fields), max_ops=args.max_ops, build=args.build)
    print(d.verilog)
    print(d.path)
    return 0


def _run_synth(args: argparse.Namespace) -> int:
    """SYNTH_DIR is built in a temporary folder beside it and renamed at the end, so a
    failed or interrupted synthesis leaves the previous SYNTH_DIR as it was."""
    from quant.base.files import staged_dir
    from rtl.synth import compare, format_table, synthesize

    if (args.lut_only or args.jobs != 1) and not args.compare:
        raise ValueError("--lut-only and --jobs are options of --compare")
    if args.compare and args.dsp:
        raise ValueError("--compare already adds the DSP variants where the target has "
                         "DSP blocks: drop --dsp")
    inputs = [args.verilog, str(Path(args.verilog).with_suffix(".json"))]
    with staged_dir(args.out, command="synth", inputs=inputs, force=args.force) as tmp:
        if args.compare:
            results = compare(args.verilog, tmp, target=args.target, freq_mhz=args.freq, seed=args.seed,
                              lut_only=args.lut_only, jobs=args.jobs)
        else:
            result = synthesize(args.verilog, tmp, target=args.target, dsp=args.dsp,
                                freq_mhz=args.freq, seed=args.seed)
    if args.compare:
        print(format_table(results))
        return 0
    print(format_table([result]))
    if result.get("fits") is False:
        print(f"note: the design does not fit {args.target}: {result['pnr_error']}")
    return 0
