"""Estimates of the network engine: cycles, every access and energy, adder engine vs multiplier engine.

The library behind ``adderhw estimate`` (DESIGN §4b, §5).  One design, the
network engine: the adder engine of a config (adder PEs, multiply layers on
its small multiplier unit) and the all-multiplier engine of the same sizes
(:func:`hwsim.sizing.mult_engine`), both run through the exact cycle and
access model (:mod:`hwsim.engine`) and priced with an energy table
(:func:`hwsim.energy.engine_energy`).

Inputs (:func:`load_source`):

* an **integer model folder**: the engine sized to the model as ``adderhw
  generate --model`` sizes it (:func:`hwsim.sizing.size_engine`), its
  compiled program giving each operation's regions;
* a **checkpoint** (``.pt``/``.pth``, ours or a bare reference state dict
  with ``model``/``dataset``): turned into an integer model by the
  ``checkpoint_model`` callable the caller passes (hwsim imports no torch;
  the ``estimate`` command passes :func:`quant.quantizer.workflow.placeholder_model`,
  a quantization in memory with a placeholder calibration), then as a model folder.
  The program is the model's own (pools, flatten, residual adds); the
  engine's cycles and counts depend on shapes, widths and the requant form
  only, not on the weight or parameter values;
* a **SCALE-Sim topology CSV** (:mod:`hwsim.topology`): shapes alone, with
  the assumptions stated there (each row a conv on its own input, padding
  stored, fixed-point requant, no pooling/residual ops); the engine's
  widths from the rows (``bits`` the widest row, ``out_bits``
  :data:`TOPOLOGY_OUT_BITS`), two activation regions each as deep as the
  largest tensor, a weight buffer as deep as the largest tile.

:func:`run_estimate` writes the report files (:mod:`hwsim.report`) and
returns the summary; :func:`sweep` runs any grid of array sizes in seconds.
"""

from __future__ import annotations

import enum
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

from hwsim.config import EngineConfig, WeightMode
from hwsim.descriptor import descriptor_bits
from hwsim.energy import ENGINE_COMPONENTS, EngineEnergyResult, Placement, engine_energy
from hwsim.engine import EngineEstimate, EngineModel, op_shapes
from hwsim.preset_files import EnginePreset, load_preset
from hwsim.sizing import WeightChoice, buffer_words, mult_engine, resident_fit, size_engine
from hwsim.tables import EnergyTable, load_table
from hwsim.topology import read_topology_csv, topology_ops
from quant.intmodel.artifact import IntModel
from quant.base.intops import PeKind, RequantMode

__all__ = [
    "Design",
    "InputKind",
    "DesignEstimate",
    "Comparison",
    "ModeEstimate",
    "Source",
    "SweepPoint",
    "SWEEP_KEYS",
    "SWEEP_COLUMNS",
    "TOPOLOGY_OUT_BITS",
    "compare",
    "estimate_model",
    "estimate_topology",
    "topology_config",
    "load_source",
    "estimate_source",
    "estimate_modes",
    "parse_sweep",
    "sweep",
    "run_estimate",
]

#: Width of the logits of an engine sized to a topology CSV (the shipped models' 16-bit logits).
TOPOLOGY_OUT_BITS = 16


class Design(enum.StrEnum):
    """The two engines of an estimate."""

    ADDER = "adder"
    MULT = "mult"


class InputKind(enum.StrEnum):
    """What ``estimate`` was given."""

    MODEL = "model"
    CHECKPOINT = "checkpoint"
    TOPOLOGY = "topology"


@dataclass(frozen=True)
class DesignEstimate:
    """One engine's cycles and counts (:class:`~hwsim.engine.EngineEstimate`) and their energy."""

    design: Design
    counts: EngineEstimate
    energy: EngineEnergyResult

    @property
    def config(self) -> EngineConfig:
        return self.counts.config


@dataclass(frozen=True)
class Comparison:
    """The adder engine and the all-multiplier engine of one config on one model.

    ``designs`` maps :class:`Design` (adder first) to :class:`DesignEstimate`;
    ``prog_beat_bits`` is the descriptor's width
    (:func:`hwsim.descriptor.descriptor_bits`), ``placement`` the regions of
    each operation's tensors (None: all regions equally deep).
    """

    config: EngineConfig
    designs: dict
    table: EnergyTable
    prog_beat_bits: int
    placement: Placement | None = None

    @property
    def adder(self) -> DesignEstimate:
        return self.designs[Design.ADDER]

    @property
    def mult(self) -> DesignEstimate:
        return self.designs[Design.MULT]

    def ratio(self, what: str = "total_cycles") -> float | None:
        """``adder / mult`` of ``total_cycles``, ``energy_pj``, ``on_chip_energy_pj`` or one energy
        component (:data:`hwsim.energy.ENGINE_COMPONENTS`); None where the multiplier's is 0."""
        if what == "total_cycles":
            return self.adder.counts.total_cycles / self.mult.counts.total_cycles
        a, m = self.adder.energy.total, self.mult.energy.total
        if what == "energy_pj":
            x, y = a.total_pj, m.total_pj
        elif what == "on_chip_energy_pj":
            x, y = a.total_pj - a.dram_pj, m.total_pj - m.dram_pj
        elif what in ENGINE_COMPONENTS:
            x, y = getattr(a, what), getattr(m, what)
        else:
            raise ValueError(f"no ratio for {what!r}")
        return x / y if y else None


def compare(ops, source: tuple, config: EngineConfig, table: EnergyTable, *,
            placement: Placement | None = None) -> Comparison:
    """Both engines of the adder engine ``config`` on the operations ``ops``
    (:class:`~hwsim.engine.OpShape`; the image an ``(h, w, c)`` tensor ``source``), priced with ``table``."""
    if not isinstance(config, EngineConfig) or config.pe != PeKind.ADDER:
        raise ValueError(f"config must be an adder EngineConfig, not {config!r}")
    bits = descriptor_bits(config)
    designs = {}
    for d, cfg in ((Design.ADDER, config), (Design.MULT, mult_engine(config))):
        counts = EngineModel(cfg).estimate_ops(ops, source)
        designs[d] = DesignEstimate(design=d, counts=counts,
                                    energy=engine_energy(counts, table, prog_beat_bits=bits, placement=placement))
    return Comparison(config=config, designs=designs, table=table, prog_beat_bits=bits, placement=placement)


def estimate_model(model: IntModel, table: EnergyTable, *, rows: int, cols: int, mult_rows: int | None = None,
                   clock_mhz: float = 100.0, weights: WeightChoice | str = WeightChoice.STREAMED,
                   **fields) -> Comparison:
    """Both engines of ``rows x cols`` sized to ``model`` (:func:`hwsim.sizing.size_engine`, with
    ``weights`` and any other config ``fields``)."""
    cfg, compiled = size_engine(model, rows=rows, cols=cols, mult_rows=mult_rows, clock_mhz=clock_mhz,
                                weights=weights, **fields)
    ops, source = op_shapes(model)
    return compare(ops, source, cfg, table, placement=Placement.from_program(compiled.program))


def topology_config(ops, *, bits: int, rows: int, cols: int, mult_rows: int | None = None,
                    clock_mhz: float = 100.0) -> EngineConfig:
    """The adder engine sized to topology operations (module docstring): ``bits``-bit operands,
    fixed-point requant, 16-bit logits, two regions as deep as the largest tensor, a weight buffer
    as deep as the largest tile; ``mult_rows`` as :func:`hwsim.sizing.engine_config_for` sets it."""
    g = lambda c: -(-c // cols)  # noqa: E731
    words = max(max(o.src[0] * o.src[1] * g(o.src[2]), o.dst[0] * o.dst[1] * g(o.dst[2])) for o in ops)
    steps = max((o.src[0] * o.src[1] if o.kind.linear else o.kernel[0] * o.kernel[1]) * g(o.src[2])
                for o in ops)
    max_k = max((o.src[0] * o.src[1] if o.kind.linear else o.kernel[0] * o.kernel[1]) * o.src[2]
                for o in ops)
    if mult_rows is None:
        mult_rows = max(1, rows // 2) if any(o.kind.pe == PeKind.MULT for o in ops) else 0
    return EngineConfig(rows=rows, cols=cols, mult_rows=mult_rows, bits=bits, max_k=max_k, requant=(RequantMode.FIXED,),
                        out_bits=max(bits, TOPOLOGY_OUT_BITS), act_words=(words, words), weight_words=steps,
                        clock_mhz=clock_mhz)


def estimate_topology(layers, table: EnergyTable, *, rows: int, cols: int, mult_rows: int | None = None,
                      clock_mhz: float = 100.0, weights: WeightChoice | str = WeightChoice.STREAMED,
                      **fields) -> Comparison:
    """Both engines of ``rows x cols`` on topology rows (:class:`hwsim.topology.TopologyLayer`); resident
    ``weights`` make the weight buffer as deep as the whole store (auto: when it fits
    :data:`~hwsim.config.MAX_WEIGHT_WORDS`)."""
    ops = topology_ops(layers)
    cfg = topology_config(ops, bits=max(l.bits for l in layers), rows=rows, cols=cols, mult_rows=mult_rows,
                          clock_mhz=clock_mhz)
    if fields:
        cfg = cfg.replace(**fields)
    if "weight_words" not in fields:  # two weight buffers: two tiles (rule 2)
        cfg = cfg.replace(weight_words=buffer_words(cfg.weight_words, cfg.weight_buffers))
    if WeightChoice(weights) != WeightChoice.STREAMED:
        words = EngineModel(cfg.replace(weights=WeightMode.RESIDENT)).estimate_ops(ops, ops[0].src).load.words
        why = resident_fit(cfg, words)
        if why is None:
            cfg = cfg.replace(weights=WeightMode.RESIDENT, weight_words=words)
        elif WeightChoice(weights) == WeightChoice.RESIDENT:
            raise ValueError(f"resident weights do not fit: {why}")
    return compare(ops, ops[0].src, cfg, table)


@dataclass(frozen=True)
class Source:
    """What an estimate runs on: an integer model (from a folder or a checkpoint) or topology rows,
    its name, and the assumptions a shapes-only estimate makes (empty for a model folder)."""

    kind: InputKind
    path: str
    name: str
    model: IntModel | None = None
    layers: tuple = ()
    assumptions: tuple = ()


def load_source(path, *, bits: int = 8, model: str | None = None, dataset: str | None = None,
                checkpoint_model=None) -> Source:
    """The estimate's input: an integer model folder, a checkpoint or a topology CSV (module docstring).

    ``bits`` is the operand width of a checkpoint's placeholder quantization
    and of CSV rows without ``Bits``; ``model``/``dataset`` name a bare state
    dict's model (checkpoints only); ``checkpoint_model(path, bits=, model=,
    dataset=)`` turns a checkpoint into an integer model (a checkpoint without
    it is refused).

    Raises
    ------
    OSError
        ``path`` does not exist.
    ValueError
        None of the accepted inputs, malformed, or ``model``/``dataset`` for a non-checkpoint.
    """
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
        from quant.intmodel.artifact import load_int_model

        im = load_int_model(p)
        return Source(kind=InputKind.MODEL, path=os.fspath(path), name=str(im.name), model=im)
    if suffix == ".csv":
        layers = tuple(read_topology_csv(p, default_bits=bits))
        return Source(kind=InputKind.TOPOLOGY, path=os.fspath(path), name=p.stem.replace("_", "-"), layers=layers,
                      assumptions=(
                          "shapes alone (a SCALE-Sim topology CSV): every row is one conv operation on its own "
                          "input tensor of the row's IFMAP shape, its output stored in the next operation's region; "
                          "no pooling, flatten or residual add runs",
                          "SCALE-Sim IFMAP sizes include the padding: the padded border is stored and read "
                          "(padding 0)",
                          f"fixed-point requant on every layer; operands {bits}-bit unless the row's Bits says "
                          f"otherwise; {TOPOLOGY_OUT_BITS}-bit logits",
                          "memories: two activation regions, each as deep as the largest tensor, and a weight "
                          "buffer as deep as the largest tile",
                          "cycles and counts depend on shapes, widths and the requant form only, not on weight "
                          "values"))
    if is_ckpt:
        if checkpoint_model is None:
            raise ValueError(f"{path}: a checkpoint needs a checkpoint_model reader (the estimate command passes "
                             "quant's placeholder quantization); quantize it first, or pass one")
        im = checkpoint_model(p, bits=bits, model=model, dataset=dataset)
        return Source(kind=InputKind.CHECKPOINT, path=os.fspath(path), name=str(im.name), model=im, assumptions=(
            f"a checkpoint: quantized in memory at {bits} bits with a placeholder calibration "
            "(seeded random images, fixed-point requant, nearest rounding, no bias "
            "correction); the program is the model's own (pools, flatten, residual adds)",
            "cycles and counts depend on shapes, widths and the requant form only, not on weight or "
            "requant parameter values; quantize the checkpoint for the deployed model's widths and forms"))
    raise ValueError(f"{path}: expected an integer model folder, a .pt/.pth checkpoint or a .csv topology")


def estimate_source(source: Source, table: EnergyTable, *, rows: int, cols: int, mult_rows: int | None = None,
                    clock_mhz: float = 100.0, weights: WeightChoice | str = WeightChoice.STREAMED,
                    **fields) -> Comparison:
    """:func:`estimate_model` or :func:`estimate_topology` of ``source``; ``part`` (the budget of resident
    weights, :func:`hwsim.sizing.size_engine`) only for a model."""
    kw = dict(rows=rows, cols=cols, mult_rows=mult_rows, clock_mhz=clock_mhz, weights=weights, **fields)
    if source.model is not None:
        return estimate_model(source.model, table, **kw)
    if kw.pop("part", None) is not None:
        raise ValueError("--part sizes resident weights of a model, not of a topology CSV (its store is "
                         "bounded by the engine's largest store)")
    return estimate_topology(source.layers, table, **kw)


@dataclass(frozen=True)
class ModeEstimate:
    """One weight mode of a source (:func:`estimate_modes`): both engines, or why the mode is not possible."""

    mode: WeightMode
    comparison: Comparison | None
    why_not: str | None = None


def estimate_modes(source: Source, table: EnergyTable, **kw) -> tuple[ModeEstimate, ...]:
    """:func:`estimate_source` of ``source`` with the weights streamed and resident (``kw`` as there, but
    ``weights``): the per-mode table of ``report.md``.  A store that does not fit gives the mode's
    ``why_not`` instead of a comparison."""
    out = []
    for mode in WeightMode:
        try:
            out.append(ModeEstimate(mode=mode, comparison=estimate_source(source, table, weights=mode.value, **kw)))
        except ValueError as e:
            if mode == WeightMode.STREAMED:
                raise
            out.append(ModeEstimate(mode=mode, comparison=None, why_not=str(e)))
    return tuple(out)


# --- sweeps ------------------------------------------------------------------------------

#: Keys a sweep may vary.
SWEEP_KEYS = ("rows", "cols", "mult_rows", "clock_mhz")
#: Result columns of a sweep row (after the swept keys).
SWEEP_COLUMNS = ("design", "total_cycles", "latency_us", "energy_pj", "on_chip_energy_pj", "dram_pj", "pe_pj",
                 "act_words", "weight_words")


@dataclass(frozen=True)
class SweepPoint:
    """One engine of one swept config: ``point`` the swept values (key -> value)."""

    point: tuple
    design: Design
    total_cycles: int
    latency_us: float
    energy_pj: float
    on_chip_energy_pj: float
    dram_pj: float
    pe_pj: float
    act_words: int
    weight_words: int

    def as_row(self) -> dict:
        """The ``sweep.csv`` row: the swept keys, then :data:`SWEEP_COLUMNS`."""
        return {**dict(self.point), "design": self.design.value,
                **{k: getattr(self, k) for k in SWEEP_COLUMNS[1:]}}


def parse_sweep(items) -> list[dict]:
    """``["rows=4,8", "cols=4,8"]`` -> the cartesian product as field dicts, in order.

    Raises
    ------
    ValueError
        An item is not ``KEY=V1,V2,...``, a key is not in :data:`SWEEP_KEYS` or repeats, a value is not a number.
    """
    keys, values = [], []
    for item in items:
        key, sep, vals = str(item).partition("=")
        key = key.strip()
        if not sep or not vals.strip():
            raise ValueError(f"sweep item must be KEY=V1,V2,..., not {item!r}")
        if key not in SWEEP_KEYS:
            raise ValueError(f"sweep key must be one of {', '.join(SWEEP_KEYS)}, not {key!r}")
        if key in keys:
            raise ValueError(f"sweep key {key} is given twice")
        conv = float if key == "clock_mhz" else int
        try:
            vs = [conv(v) for v in vals.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"sweep values of {key} must be numbers, not {vals!r}") from None
        keys.append(key)
        values.append(vs)
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def sweep(source: Source, table: EnergyTable, grid, *, base: EnginePreset) -> tuple[SweepPoint, ...]:
    """Both engines at every point of ``grid`` (:func:`parse_sweep`), the rest from ``base``."""
    out = []
    for point in grid:
        p = base.replace(**point)
        cmp_ = estimate_source(source, table, rows=p.rows, cols=p.cols, mult_rows=p.mult_rows,
                               clock_mhz=p.clock_mhz)
        for d, est in cmp_.designs.items():
            tot = est.energy.total
            out.append(SweepPoint(point=tuple(point.items()), design=d, total_cycles=est.counts.total_cycles,
                                  latency_us=est.counts.latency_us, energy_pj=tot.total_pj,
                                  on_chip_energy_pj=tot.total_pj - tot.dram_pj, dram_pj=tot.dram_pj,
                                  pe_pj=tot.pe_pj, act_words=sum(est.config.act_words),
                                  weight_words=est.config.weight_words))
    return tuple(out)


def run_estimate(input_path, out_dir, *, preset: str | EnginePreset = "default", rows: int | None = None,
                 cols: int | None = None, mult_rows: int | None = None, clock_mhz: float | None = None,
                 table: str | EnergyTable = "45nm", sweep_items=None, model: str | None = None,
                 dataset: str | None = None, force: bool = False, checkpoint_model=None,
                 weights: WeightChoice | str = WeightChoice.STREAMED, **fields):
    """The whole ``estimate`` command: both engines of ``input_path``, the report files in ``out_dir``.

    ``rows``/``cols``/``mult_rows``/``clock_mhz`` override the preset's; ``weights``
    (:class:`~hwsim.sizing.WeightChoice`) and ``fields`` (other :class:`EngineConfig` fields) shape the
    engine; the report also lists both weight modes (:func:`estimate_modes`);
    ``sweep_items`` (``["rows=4,8", ...]``) adds a sweep (``sweep.csv``,
    ``sweep.png``).  ``out_dir`` is built in a temporary folder and renamed
    into place (:func:`quant.base.files.staged_dir`): an existing folder is
    replaced only when it is an earlier estimate's output (or with
    ``force``), never when it holds the input.

    Returns
    -------
    hwsim.report.EstimateSummary
        What ``summary.json`` holds.
    """
    from hwsim.report import write_report
    from quant.base.files import staged_dir

    base = load_preset(preset) if isinstance(preset, str) else preset
    base = base.replace(rows=rows, cols=cols, mult_rows=mult_rows, clock_mhz=clock_mhz)
    tab = load_table(table) if isinstance(table, str) else table
    grid = parse_sweep(sweep_items) if sweep_items else None
    if not Path(input_path).exists():
        raise FileNotFoundError(f"input not found: {input_path}")
    with staged_dir(out_dir, command="estimate", inputs=[input_path], force=force) as tmp:
        src = load_source(input_path, bits=base.bits, model=model, dataset=dataset,
                          checkpoint_model=checkpoint_model)
        kw = dict(rows=base.rows, cols=base.cols, mult_rows=base.mult_rows, clock_mhz=base.clock_mhz, **fields)
        result = estimate_source(src, tab, weights=weights, **kw)
        modes = estimate_modes(src, tab, **kw)
        points = sweep(src, tab, grid, base=base) if grid else None
        return write_report(tmp, result, source=src, sweep_points=points, modes=modes)
