"""One model class per dataflow, with the same methods (SCALE-Sim's ``compute/`` layout).

=========  ================================  =====================================
name       class                             hardware it models
=========  ================================  =====================================
``os``     :class:`OutputStationary`         the v1 core (DESIGN §4): an output-
                                             stationary array behind streams; the
                                             host feeds every operand
``cp``     :class:`ChannelParallel`          the network engine (DESIGN §4b): the
                                             whole network on chip
=========  ================================  =====================================

Every class is built from its configuration and answers the same calls:

``estimate(model)``
    Per-layer cycles and counts of one image, for the adder design and the
    all-multiplier design of the same configuration (a dict ``design ->``
    result, under ``designs``).  ``model`` is what the dataflow reads: layer
    shapes (``os``; from a model folder, checkpoint or topology CSV) or an
    :class:`~quant.artifact.IntModel` (``cp``, which needs the integer
    weights' requant forms and the exact graph).
``layer_rows(result)``
    One dict per (design, layer), units in the column names
    (:attr:`layer_columns`).
``total_cycles(result, design)``
    Cycles of one image on one design.

Compute demand (cycles) and the memory model (accesses) come from the
dataflow's own exact model: :mod:`hwsim.mapping`/:mod:`hwsim.schedule` for
``os`` and :mod:`hwsim.engine` for ``cp``.

Energy of ``cp`` is counted, not assumed (DESIGN §5): given an energy
table, :class:`ChannelParallel` prices every counted access with
:func:`hwsim.energy.engine_energy` (SRAM energy by each memory's size, stream
beats as DRAM traffic, PE arithmetic by its widths, requant per output).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from hwsim.config import ArrayConfig, EngineConfig
from hwsim.cpu import CpuLatency
from hwsim.energy import ENGINE_COMPONENTS, Placement, engine_energy
from hwsim.engine import COUNTER_NAMES, EngineModel
from hwsim.estimate import Estimate, estimate
from hwsim.report import LAYER_COLUMNS, layer_rows
from hwsim.tables import EnergyTable
from quant.artifact import IntModel
from quant.intops import pe_of

__all__ = [
    "DATAFLOWS",
    "OutputStationary",
    "ChannelParallel",
    "CpEstimate",
    "CP_LAYER_COLUMNS",
    "engine_config_for",
    "get_dataflow",
    "mult_engine",
]

#: Columns of a ``cp`` layer row (:meth:`ChannelParallel.layer_rows`).
CP_LAYER_COLUMNS = (
    "design", "layer", "op", "unit", "start_cycle", "end_cycle", "total_cycles", "busy_cycles", "util_pct",
    "act_reads", "act_writes", "wbuf_reads", "wbuf_writes", "w_beats", "o_beats", "requant_ops",
    "latency_us", *ENGINE_COMPONENTS, "energy_pj",
)


class OutputStationary:
    """Dataflow ``os``: the v1 output-stationary core (DESIGN §4).

    Parameters
    ----------
    config : ArrayConfig
        The array; ``pe`` is ignored (both designs are estimated).
    table : EnergyTable
        Energy and area per action.
    cpu_latency : CpuLatency
        The AdderNet paper's CPU latency model, reported beside.
    """

    name = "os"
    layer_columns = LAYER_COLUMNS

    def __init__(self, config: ArrayConfig, table: EnergyTable, cpu_latency: CpuLatency = CpuLatency()):
        if not isinstance(config, ArrayConfig):
            raise ValueError(f"config must be an ArrayConfig, not {type(config).__name__}")
        if not isinstance(table, EnergyTable):
            raise ValueError(f"table must be an EnergyTable, not {type(table).__name__}")
        self.config = config
        self.table = table
        self.cpu_latency = cpu_latency

    def estimate(self, model: Sequence) -> Estimate:
        """:func:`hwsim.estimate.estimate` of the layer shapes ``model``."""
        return estimate(model, self.config, self.table, self.cpu_latency)

    def layer_rows(self, result: Estimate) -> list[dict]:
        """:func:`hwsim.report.layer_rows` (columns :data:`hwsim.report.LAYER_COLUMNS`)."""
        return layer_rows(result)

    def total_cycles(self, result: Estimate, design: str) -> int:
        return result.designs[design].total_cycles


@dataclass(frozen=True)
class CpEstimate:
    """The adder engine and the all-multiplier engine of one config on one model.

    Attributes
    ----------
    config : EngineConfig
        The adder engine's config.
    designs : dict
        ``"adder"`` and ``"mult"`` -> :class:`~hwsim.engine.EngineEstimate`
        (the multiplier engine: ``config`` with ``pe="mult"``, no separate
        multiplier unit).
    energy : dict or None
        ``"adder"`` and ``"mult"`` -> :class:`~hwsim.energy.EngineEnergyResult`
        (None when the estimate was made without an energy table).
    """

    config: EngineConfig
    designs: dict
    energy: dict | None = None

    def ratio(self, what: str = "total_cycles") -> float:
        """``adder / mult`` of ``total_cycles``, ``energy_pj`` or one energy component
        (:data:`hwsim.energy.ENGINE_COMPONENTS`)."""
        if what == "total_cycles":
            return self.designs["adder"].total_cycles / self.designs["mult"].total_cycles
        if self.energy is not None and (what == "energy_pj" or what in ENGINE_COMPONENTS):
            a, m = (self.energy[d].total for d in ("adder", "mult"))
            key = "total_pj" if what == "energy_pj" else what
            return getattr(a, key) / getattr(m, key)
        raise ValueError(f"no ratio for {what!r}")


def mult_engine(config: EngineConfig) -> EngineConfig:
    """The all-multiplier engine of ``config``: multiplier PEs everywhere, no multiplier unit."""
    return config.replace(pe="mult", mult_rows=0, mult_acc_bits=None)


class ChannelParallel:
    """Dataflow ``cp``: the network engine (DESIGN §4b; the cycle contract in :mod:`hwsim.engine`).

    Parameters
    ----------
    config : EngineConfig
        The adder engine (``pe="adder"``); the multiplier engine is the same
        config with multiplier PEs (:func:`mult_engine`), the same memories.
    table : EnergyTable or None
        Prices the counts (:func:`hwsim.energy.engine_energy`); None: counts only.
    prog_beat_bits : int or None
        Width of one ``prog`` beat (the descriptor; needed with ``table``).
    placement : Placement or None
        The compiler's region of each operation's tensors (needed with a table
        when the regions differ in depth); both engines share it.
    """

    name = "cp"
    layer_columns = CP_LAYER_COLUMNS

    def __init__(self, config: EngineConfig, table: EnergyTable | None = None, *,
                 prog_beat_bits: int | None = None, placement: Placement | None = None):
        if not isinstance(config, EngineConfig):
            raise ValueError(f"config must be an EngineConfig, not {type(config).__name__}")
        if config.pe != "adder":
            raise ValueError(f"config must be the adder engine (pe='adder'), not pe={config.pe!r}")
        if table is not None and not isinstance(table, EnergyTable):
            raise ValueError(f"table must be an EnergyTable, not {type(table).__name__}")
        if table is not None and (isinstance(prog_beat_bits, bool) or not isinstance(prog_beat_bits, int)
                                  or prog_beat_bits < 1):
            raise ValueError(f"prog_beat_bits must be a positive integer with a table, not {prog_beat_bits!r}")
        if placement is not None and not isinstance(placement, Placement):
            raise ValueError(f"placement must be a Placement, not {type(placement).__name__}")
        self.config = config
        self.table = table
        self.prog_beat_bits = prog_beat_bits
        self.placement = placement

    def estimate(self, model: IntModel) -> CpEstimate:
        """Per-operation cycles and counters of one image on both engines (exact, closed form)."""
        if not isinstance(model, IntModel):
            raise ValueError(f"dataflow cp estimates an IntModel, not {type(model).__name__}")
        designs = {
            "adder": EngineModel(self.config).estimate(model),
            "mult": EngineModel(mult_engine(self.config)).estimate(model),
        }
        energy = None
        if self.table is not None:
            energy = {d: engine_energy(est, model, self.table, prog_beat_bits=self.prog_beat_bits,
                                       placement=self.placement) for d, est in designs.items()}
        return CpEstimate(config=self.config, designs=designs, energy=energy)

    def layer_rows(self, result: CpEstimate) -> list[dict]:
        """One row per (design, operation) with :data:`CP_LAYER_COLUMNS` (the energy columns are
        None when the estimate has no energy table)."""
        rows = []
        for design, est in result.designs.items():
            clock = est.config.clock_mhz
            energies = result.energy[design].ops if result.energy is not None else (None,) * len(est.layers)
            for l, e in zip(est.layers, energies):
                rows.append({
                    "design": design, "layer": l.name, "op": l.op, "unit": l.unit,
                    "start_cycle": l.start, "end_cycle": l.end, "total_cycles": l.cycles,
                    "busy_cycles": l.busy_cycles, "util_pct": 100.0 * l.util,
                    **{k: getattr(l, k) for k in COUNTER_NAMES if k not in ("cycles", "busy_cycles")},
                    "latency_us": l.cycles / clock,
                    **{c: (None if e is None else getattr(e, c)) for c in ENGINE_COMPONENTS},
                    "energy_pj": None if e is None else e.total_pj,
                })
        return rows

    def total_cycles(self, result: CpEstimate, design: str) -> int:
        return result.designs[design].total_cycles


def engine_config_for(model: IntModel, *, rows: int, cols: int, mult_rows: int | None = None,
                      clock_mhz: float = 100.0, **fields) -> EngineConfig:
    """The adder engine of ``rows x cols`` sized to ``model``'s widths and operations.

    ``bits`` is the model's operand width, ``act_bits`` the widest code of a
    stored tensor (the input and every requant output but the logits),
    ``requant`` the forms its layers use, ``max_k`` its longest reduction,
    ``out_bits`` its logits' width (at least ``bits``), ``mult_rows`` ``max(1, rows // 2)`` when it has multiply
    layers (else 0).  Memory depths are left at the config's defaults unless
    given in ``fields``: they change no cycle or count (the compiler in
    :mod:`hwsim.compiler` sizes them and refuses a model that does not
    fit).
    """
    kinds = {l.kind for l in model.layers}
    has_mult = any(pe_of(k) == "mult" for k in kinds)
    computes = [l for l in model.layers if pe_of(l.kind)]
    if not computes:
        raise ValueError(f"model {model.name}: no conv or linear layer to run on the engine")
    modes = tuple(sorted({l.requant.mode for l in model.layers if getattr(l, "requant", None) is not None}))
    bits = max(int(l.bits) for l in computes)
    last = next((l for l in reversed(model.layers) if getattr(l, "requant", None) is not None), None)
    out_bits = bits if last is None else max(bits, int(last.requant.out_bits))  # the logits (flatten has none)
    stored = [int(l.requant.out_bits) for l in model.layers
              if getattr(l, "requant", None) is not None and l is not last]
    act_bits = max([bits, int(model.input.bits), *stored])  # every stored tensor's codes
    if mult_rows is None:
        mult_rows = max(1, rows // 2) if has_mult else 0
    cfg = dict(rows=rows, cols=cols, mult_rows=mult_rows, bits=bits, max_k=max(int(l.K) for l in computes),
               requant=modes or ("fixed",), out_bits=out_bits, act_bits=act_bits, clock_mhz=clock_mhz)
    cfg.update(fields)
    return EngineConfig(**cfg)


#: The dataflows by name.
DATAFLOWS = {"os": OutputStationary, "cp": ChannelParallel}


def get_dataflow(name: str):
    """The class of dataflow ``name``."""
    try:
        return DATAFLOWS[name]
    except KeyError:
        raise ValueError(f"dataflow must be one of {', '.join(DATAFLOWS)}, not {name!r}") from None
