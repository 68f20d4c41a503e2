"""``adderhw estimate``: the command line of :func:`hwsim.estimate.run_estimate`.

``adderhw estimate INPUT [--preset P] [--rows R] [--cols C] [--mult-rows M] [--weights W] [--weight-buffers N] [--pixel-tile TP] [--part P] [--sweep rows=4,8,16 cols=4,8,16]
[--table 45nm|40nm|fpga:PATH|FILE.toml] [--model NAME] [--dataset NAME] -o OUT_DIR``

Parses and prints; the work is :func:`hwsim.estimate.run_estimate`.  It lives
in ``scripts`` because a checkpoint input is quantized for its shapes by
:func:`quant.quantizer.workflow.placeholder_model` (torch), which hwsim may not
import (DESIGN §1: hwsim imports only quant's torch-free rooms).
``--dataflow cp`` is accepted for one release with a deprecation line (the
network engine is the only design); ``--dataflow os`` is refused (the v1
core is retired).
"""

from __future__ import annotations

import argparse

from quant.base.retired import add_dataflow_flag, check_dataflow

__all__ = ["register"]



def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``estimate`` to the ``adderhw`` parser."""
    p = subparsers.add_parser(
        "estimate",
        help="cycles, every access and energy of a model on the adder engine vs the multiplier engine",
        description="Run a model through the network engine's exact cycle and access model (the adder "
        "engine and the all-multiplier engine of the same sizes), price every access with an energy "
        "table, and write report.md, layers.csv, summary.json, energy_breakdown.png (and with --sweep "
        "sweep.csv, sweep.png) into OUT_DIR.",
    )
    p.add_argument("input", metavar="MODEL_DIR_OR_CKPT_OR_CSV",
                   help="integer model folder, checkpoint (.pt/.pth) or SCALE-Sim topology CSV")
    add_dataflow_flag(p)
    p.add_argument("--rows", type=int, default=None, help="engine rows Tm (default: the preset's)")
    p.add_argument("--cols", type=int, default=None, help="engine columns Tn (default: the preset's)")
    p.add_argument("--mult-rows", type=int, default=None,
                   help="rows of the multiplier unit (default: rows/2 when the model has multiply layers, else 0)")
    p.add_argument("--weights", choices=("auto", "resident", "streamed"), default="streamed",
                   help="the estimated engine's weights: streamed on w every image (default), resident on chip "
                   "(loaded once; refused when the store does not fit), or auto; report.md lists both modes")
    p.add_argument("--weight-buffers", type=int, choices=(1, 2), default=None,
                   help="2: a streamed engine with two weight buffers, a tile's load overlapping the previous "
                   "tile's steps (default 1)")
    p.add_argument("--pixel-tile", type=int, default=None, metavar="TP",
                   help="Tp, 1..64: a conv tile's output pixels run Tp at a time, each weight word read once "
                   "for them (weight-buffer reads drop Tp-fold; each row keeps Tp accumulators, more LUTs and "
                   "FFs); default 1, no reuse")
    p.add_argument("--part", default=None,
                   help="with --weights auto|resident on a model: the part whose block RAMs the resident engine "
                   "must fit (e.g. ecp5-25k; default: only the engine's largest store)")
    p.add_argument("--preset", default="default",
                   help="engine preset name (default, small, large) or a TOML file (default: default)")
    p.add_argument("--sweep", nargs="+", metavar="KEY=V1,V2", default=None,
                   help="engine sizes to sweep (cartesian product of rows, cols, mult_rows, clock_mhz), "
                   "e.g. rows=4,8,16 cols=4,8,16: writes sweep.csv and sweep.png")
    p.add_argument("--table", default="45nm",
                   help="energy/area table: 45nm, 40nm, fpga:SYNTH.json or a TOML file (default: 45nm)")
    p.add_argument("--model", default=None,
                   help="model name for bare state dicts (lenet5-bn, resnet20, resnet32; checkpoints only)")
    p.add_argument("--dataset", default=None,
                   help="dataset for bare state dicts (fashion-mnist, mnist, cifar10; checkpoints only)")
    p.add_argument("-o", "--out", required=True, metavar="OUT_DIR",
                   help="output folder (built atomically; an existing one is replaced only when it is an "
                   "earlier estimate's output)")
    p.add_argument("--force", action="store_true", help="replace OUT_DIR even if it is not an earlier estimate")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from hwsim.estimate import Design, run_estimate

    check_dataflow("estimate", args.dataflow)
    if args.pixel_tile is not None:
        from hwsim.config import check_pixel_tile

        check_pixel_tile(args.pixel_tile, args.weight_buffers or 1)
    from quant.quantizer.workflow import placeholder_model

    s = run_estimate(args.input, args.out, preset=args.preset, rows=args.rows, cols=args.cols,
                     mult_rows=args.mult_rows, table=args.table, sweep_items=args.sweep, model=args.model,
                     dataset=args.dataset, force=args.force, checkpoint_model=placeholder_model,
                     weights=args.weights, **({} if args.part is None else {"part": args.part}),
                     **({} if args.weight_buffers is None else {"weight_buffers": args.weight_buffers}),
                     **({} if args.pixel_tile is None else {"pixel_tile": args.pixel_tile}))
    c = s.config
    print(f"model {s.model}: network engine {c.rows}x{c.cols}, {c.bits}-bit, "
          f"multiplier unit {c.mult_rows} rows, {c.clock_mhz:g} MHz, table {s.table.name}:")
    for d, r in s.designs.items():
        e = r.energy
        print(f"  {d.value:5s}: {r.total_cycles:,} cycles ({r.latency_us:.1f} us), "
              f"{e.total_pj / 1e6:.3f} uJ per image (DRAM {e.dram_pj / 1e6:.3f}, on chip "
              f"{r.on_chip_energy_pj / 1e6:.4f}: PE {e.pe_pj / 1e6:.4f}, act SRAM "
              f"{e.act_sram_pj / 1e6:.4f}, weight SRAM {e.wbuf_sram_pj / 1e6:.4f}, requant "
              f"{e.requant_pj / 1e6:.4f}, registers {e.reg_pj / 1e6:.4f})")
    rt = s.ratios
    print(f"  adder/mult: cycles {rt['total_cycles']:.3f}, energy {rt['energy_pj']:.3f}, "
          f"on chip {rt['on_chip_energy_pj']:.3f}, PE {rt['pe_pj']:.3f}")
    for m in s.modes:
        if m.why_not is not None:
            print(f"  weights {m.mode}: not possible: {m.why_not}")
            continue
        a = m.designs["adder"]
        load = "" if a["load_energy_pj"] is None else f", {a['load_energy_pj'] / 1e6:.3f} uJ per weight load"
        print(f"  weights {m.mode}: adder {a['energy_per_image_pj'] / 1e6:.3f} uJ per image{load}; adder/mult "
              f"energy {m.ratios['energy_pj']:.3f}, on chip {m.ratios['on_chip_energy_pj']:.3f}, "
              f"PE {m.ratios['pe_pj']:.3f}")
    if s.sweep:
        best = min((p for p in s.sweep if p.design is Design.ADDER), key=lambda p: p.energy_pj)
        print(f"  sweep: {len(s.sweep) // 2} engine sizes; least adder energy at "
              f"{', '.join(f'{k}={v:g}' for k, v in best.point)} ({best.energy_pj / 1e6:.3f} uJ)")
    files = "report.md, layers.csv, summary.json, energy_breakdown.png" + (", sweep.csv, sweep.png" if s.sweep else "")
    print(f"wrote {args.out}/{files}")
    return 0
