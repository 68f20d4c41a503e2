"""Subcommands of the `hwsim` package for the ``adderhw`` command: ``estimate``.

``adderhw estimate INPUT [--dataflow os|cp] [--preset P] [--sweep rows=4,8,16 cols=4,8,16]
[--table 45nm|40nm|fpga:PATH|FILE.toml] [--model NAME] [--dataset NAME] -o OUT_DIR``

``--dataflow`` picks the model class (:data:`hwsim.dataflows.DATAFLOWS`):
``os`` (the default) the v1 core, ``cp`` the network engine, which needs an
integer model folder, takes its ``rows x cols`` from the preset (or
``--rows``/``--cols``, ``--mult-rows``), is sized to the model as
``generate --engine --model`` sizes it, and prices its counts with ``--table``.

``INPUT`` is an integer model folder (``manifest.json`` + ``weights.npz``), a
checkpoint (``.pt``/``.pth``: ours, or a bare reference state dict, with
``--model``/``--dataset`` as ``quantize`` takes them; the float model is
built and its layer shapes traced) or a SCALE-Sim-style topology CSV.  Presets and tables are read here,
at the edge; everything below takes a validated ArrayConfig / EnergyTable.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["register", "load_layers", "run_estimate", "run_engine_estimate", "DEFAULT_SWEEP"]

#: The array sizes swept when ``--sweep`` is not given.
DEFAULT_SWEEP = ("rows=4,8,16", "cols=4,8,16")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to the ``adderhw`` parser."""
    p = subparsers.add_parser(
        "estimate",
        help="cycles, energy and area of a model on the adder array vs a multiplier array",
        description="Map every conv/linear layer of a model onto the output-stationary array "
        "(exact v1 tile schedule), price it with an energy/area table for the adder design and "
        "the all-multiplier design, and write report.md, layers.csv, sweep.csv, summary.json "
        "and PNG plots into OUT_DIR.",
    )
    p.add_argument("input", metavar="MODEL_DIR_OR_CKPT_OR_CSV",
                   help="integer model folder, checkpoint (.pt/.pth) or topology CSV")
    p.add_argument("--dataflow", choices=("os", "cp"), default="os",
                   help="os: the v1 output-stationary core (default); cp: the network engine "
                   "(integer model folder only)")
    p.add_argument("--rows", type=int, default=None, help="cp only: engine rows Tm (default: the preset's)")
    p.add_argument("--cols", type=int, default=None, help="cp only: engine columns Tn (default: the preset's)")
    p.add_argument("--mult-rows", type=int, default=None,
                   help="cp only: rows of the multiplier unit (default: rows/2 when the model has "
                   "multiply layers, else 0)")
    p.add_argument("--preset", default="default",
                   help="array preset name (default, small, large) or a TOML file (default: default)")
    p.add_argument("--sweep", nargs="+", metavar="KEY=V1,V2", default=None,
                   help=f"array configs to sweep (cartesian product; default: {' '.join(DEFAULT_SWEEP)})")
    p.add_argument("--table", default="45nm",
                   help="energy/area table: 45nm, 40nm, fpga:SYNTH.json or a TOML file (default: 45nm)")
    p.add_argument("--model", default=None,
                   help="model name for bare state dicts (lenet5-bn, resnet20, resnet32; checkpoints only)")
    p.add_argument("--dataset", default=None,
                   help="dataset for bare state dicts (fashion-mnist, mnist, cifar10; checkpoints only)")
    p.add_argument("--cpu-mult-cycles", type=int, default=4, help="CPU model: cycles per multiply (4)")
    p.add_argument("--cpu-add-cycles", type=int, default=2, help="CPU model: cycles per add (2)")
    p.add_argument("-o", "--out", required=True, metavar="OUT_DIR",
                   help="output folder (built atomically; an existing one is replaced only when it is an "
                   "earlier estimate's output)")
    p.add_argument("--force", action="store_true", help="replace OUT_DIR even if it is not an earlier estimate")
    p.set_defaults(func=_run)


def load_layers(path: str, *, bits: int = 8, model: str | None = None, dataset: str | None = None):
    """Layer shapes and a model name from an artifact folder, checkpoint or CSV.

    ``model`` and ``dataset`` name the model of a bare state dict (as
    :func:`quant.checkpoint.load` takes them; for our checkpoint format they
    must agree with the file); they apply to checkpoints only.

    Raises
    ------
    OSError
        ``path`` does not exist.
    ValueError
        It is none of the accepted inputs, or it is malformed, or ``model`` /
        ``dataset`` are given for an input that is not a checkpoint.
    """
    from hwsim import layers as hl

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"input not found: {path}")
    suffix = p.suffix.lower()
    is_ckpt = p.is_file() and suffix in (".pt", ".pth")
    if not is_ckpt and (model is not None or dataset is not None):
        given = [f"--{k}" for k, v in (("model", model), ("dataset", dataset)) if v is not None]
        verb = "are" if len(given) > 1 else "is"
        raise ValueError(f"{' and '.join(given)} {verb} for checkpoints (.pt/.pth) only, not {path}")
    if p.is_dir():
        if not (p / "manifest.json").is_file():
            raise ValueError(f"{path} is a folder without manifest.json (not an integer model)")
        from quant.artifact import load_int_model

        int_model = load_int_model(p)
        return hl.shapes_from_int_model(int_model), str(int_model.name)
    if suffix == ".csv":
        return hl.read_topology_csv(p, default_bits=bits), p.stem.replace("_", "-")
    if is_ckpt:
        from quant.checkpoint import load
        from quant.models import INPUT_SHAPES

        ckpt = load(p, model=model, dataset=dataset)
        name = ckpt.meta["model"]
        return hl.shapes_from_float_model(ckpt.model, INPUT_SHAPES[name], bits=bits), name
    raise ValueError(f"{path}: expected an integer model folder, a .pt/.pth checkpoint or a .csv topology")


def resolve_table(spec: str):
    """``--table``: a built-in name or TOML file (:func:`hwsim.tables.load_table`), or
    ``fpga:SYNTH.json[,...]``, read with :func:`rtl.synth.read_synth_json` (the reader
    beside the file's writer; this command-line edge is the one place hwsim reads an
    rtl file) into :func:`hwsim.tables.fpga_table`."""
    from hwsim.tables import fpga_table, load_table

    if isinstance(spec, str) and spec.startswith("fpga:"):
        from rtl.synth import read_synth_json

        paths = [p for p in spec[5:].split(",") if p]
        if not paths:
            raise ValueError("table fpga needs synthesis JSON: use --table fpga:SYNTH.json[,SYNTH2.json]")
        return fpga_table([r for p in paths for r in read_synth_json(p)])
    return load_table(spec)


def run_estimate(input_path: str, out_dir: str, *, preset: str = "default", table: str = "45nm",
                 sweep_items=None, mult_cycles: int = 4, add_cycles: int = 2, force: bool = False,
                 model: str | None = None, dataset: str | None = None) -> dict:
    """The whole ``estimate`` command; returns the summary dict (also written to ``summary.json``).

    ``out_dir`` is built in a temporary folder and renamed into place
    (:func:`quant.files.staged_dir`); it is checked before any work: an
    existing folder is replaced only when it is an earlier estimate's output
    (or with ``force``), and never when it holds the input.  ``model`` and
    ``dataset`` go to :func:`load_layers` (bare state dicts).
    """
    from quant.files import staged_dir

    with staged_dir(out_dir, command="estimate", inputs=[input_path], force=force) as tmp:
        return _estimate_into(input_path, tmp, preset=preset, table=table, sweep_items=sweep_items,
                              mult_cycles=mult_cycles, add_cycles=add_cycles, model=model, dataset=dataset)


def _estimate_into(input_path, out_dir, *, preset, table, sweep_items, mult_cycles, add_cycles, model=None,
                   dataset=None) -> dict:
    from hwsim.cpu import CpuLatency
    from hwsim.estimate import estimate, parse_sweep, sweep
    from hwsim.preset_files import config_for_layers, load_preset
    from hwsim.report import write_report

    fields_ = load_preset(preset)
    tab = resolve_table(table)
    grid = parse_sweep(sweep_items if sweep_items else DEFAULT_SWEEP)
    lat = CpuLatency(mult_cycles=mult_cycles, add_cycles=add_cycles)
    layers, name = load_layers(input_path, bits=int(fields_.get("bits", 8)), model=model, dataset=dataset)
    cfg = config_for_layers(fields_, [l.k for l in layers])
    est = estimate(layers, cfg, tab, lat)
    rows = sweep(layers, cfg, tab, grid)
    return write_report(out_dir, est, source=os.fspath(input_path), model_name=name, sweep_rows=rows)


def run_engine_estimate(input_path: str, out_dir: str, *, preset: str = "default", rows: int | None = None,
                        cols: int | None = None, mult_rows: int | None = None, table: str = "45nm",
                        force: bool = False) -> dict:
    """``estimate --dataflow cp``: both engines (:class:`hwsim.dataflows.ChannelParallel`) on an
    integer model folder, their counts priced with ``table``; writes ``report.md``, ``layers.csv``,
    ``summary.json`` and ``energy_breakdown.png`` atomically and returns the summary dict.

    The engine is the one ``adderhw generate --engine --model`` builds: sized to the model by the
    compiler (:func:`rtl.engine.generate.size_engine`: its regions, each as deep as its largest
    tensor, and a weight buffer as deep as its largest tile), so every access is priced at the
    size of the memory the RTL has; the compiled program gives each operation's regions
    (:meth:`hwsim.energy.Placement.from_program`) and :func:`rtl.engine.top.desc_layout` the
    width of a ``prog`` beat.  Like ``--table fpga:``, this command-line edge is where hwsim
    reads facts that only rtl holds; the model below it takes them as arguments.
    """
    from quant.files import staged_dir

    p = Path(input_path)
    if not p.exists():
        raise FileNotFoundError(f"input not found: {input_path}")
    if not (p.is_dir() and (p / "manifest.json").is_file()):
        raise ValueError(f"dataflow cp needs an integer model folder (manifest.json + weights.npz), not {input_path}")
    tab = resolve_table(table)
    with staged_dir(out_dir, command="estimate", inputs=[input_path], force=force) as tmp:
        from hwsim.dataflows import ChannelParallel
        from hwsim.energy import Placement
        from hwsim.preset_files import load_preset
        from hwsim.report import write_engine_report
        from quant.artifact import load_int_model
        from rtl.engine.generate import size_engine
        from rtl.engine.top import desc_layout

        fields_ = load_preset(preset)
        model = load_int_model(p)
        cfg, compiled = size_engine(model, rows=int(rows if rows is not None else fields_.get("rows", 8)),
                                    cols=int(cols if cols is not None else fields_.get("cols", 8)),
                                    mult_rows=mult_rows, clock_mhz=float(fields_.get("clock_mhz", 100.0)))
        flow = ChannelParallel(cfg, tab, prog_beat_bits=int(desc_layout(cfg).size),
                               placement=Placement.from_program(compiled.program))
        return write_engine_report(tmp, flow, flow.estimate(model), source=os.fspath(input_path),
                                   model_name=str(model.name))


def _run_cp(args: argparse.Namespace) -> int:
    s = run_engine_estimate(args.input, args.out, preset=args.preset, rows=args.rows, cols=args.cols,
                            mult_rows=args.mult_rows, table=args.table, force=args.force)
    c = s["config"]
    print(f"model {s['model']}: network engine (dataflow cp) {c['rows']}x{c['cols']}, {c['bits']}-bit, "
          f"multiplier unit {c['mult_rows']} rows, {c['clock_mhz']:g} MHz, table {s['table']['name']}:")
    for d, r in s["designs"].items():
        e = r["energy_breakdown_pj"]
        print(f"  {d:5s}: {r['total_cycles']:,} cycles ({r['latency_us']:.1f} us), "
              f"{r['energy_pj'] / 1e6:.3f} uJ per image (DRAM {e['dram_pj'] / 1e6:.3f}, on chip "
              f"{r['on_chip_energy_pj'] / 1e6:.4f}: PE {e['pe_pj'] / 1e6:.4f}, act SRAM "
              f"{e['act_sram_pj'] / 1e6:.4f}, weight SRAM {e['wbuf_sram_pj'] / 1e6:.4f}, requant "
              f"{e['requant_pj'] / 1e6:.4f}, registers {e['reg_pj'] / 1e6:.4f})")
    rt = s["ratios_adder_over_mult"]
    print(f"  adder/mult: cycles {rt['total_cycles']:.3f}, energy {rt['energy_pj']:.3f}, "
          f"on chip {rt['on_chip_energy_pj']:.3f}, PE {rt['pe_pj']:.3f}")
    print(f"wrote {args.out}/report.md, layers.csv, summary.json, energy_breakdown.png")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.dataflow == "cp":
        return _run_cp(args)
    given = [f"--{k.replace('_', '-')}" for k in ("rows", "cols", "mult_rows") if getattr(args, k) is not None]
    if given:
        raise ValueError(f"{', '.join(given)}: for --dataflow cp only (os sizes come from --preset and --sweep)")
    s = run_estimate(args.input, args.out, preset=args.preset, table=args.table, sweep_items=args.sweep,
                     mult_cycles=args.cpu_mult_cycles, add_cycles=args.cpu_add_cycles, force=args.force,
                     model=args.model, dataset=args.dataset)
    unit = s["table"]["area_unit"]
    ops = s["op_counts"]
    cpu = s["cpu_latency_model"]
    print(f"model {s['model']}: {ops['macs']:,} MACs per image "
          f"({ops['adder_layer_terms']:,} on adder layers, {ops['mult_layer_macs']:,} on multiply layers)"
          + (f"; paper: {ops['paper_mults']:,} multiplications" if ops["paper_mults"] else ""))
    print(f"CPU model (mult {cpu['mult_cycles']}, add {cpu['add_cycles']} cycles): "
          f"CNN {cpu['cnn']['mults']:,} mult + {cpu['cnn']['adds']:,} add = {cpu['cnn']['cycles']:,} cycles; "
          f"AdderNet {cpu['addernet']['mults']:,} mult + {cpu['addernet']['adds']:,} add = "
          f"{cpu['addernet']['cycles']:,} cycles")
    c = s["config"]
    print(f"array {c['rows']}x{c['cols']}, {c['bits']}-bit, table {s['table']['name']}:")
    for d, r in s["designs"].items():
        print(f"  {d:5s}: {r['total_cycles']:,} cycles ({r['latency_us']:.1f} us; "
              f"{r['dram_bound_cycles']:,} with DRAM bandwidth), "
              f"{r['energy_pj'] / 1e6:.3f} uJ, area {r[f'area_{unit}']:.4g} {unit}, "
              f"util {100 * r['utilization']:.1f} %")
    rt = s["ratios_adder_over_mult"]
    print(f"  adder/mult: cycles {rt['total_cycles']:.3f}, energy {rt['energy_pj']:.3f}, "
          f"area {rt[f'area_{unit}']:.3f}")
    print(f"wrote {args.out}/report.md, layers.csv, sweep.csv, summary.json, energy_breakdown.png, sweep.png")
    return 0
