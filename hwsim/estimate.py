"""Whole-model estimates: the adder design beside the multiplier design, and array sweeps.

:func:`estimate` maps every array layer for both designs
(:data:`hwsim.mapping.DESIGNS`), prices each mapping with an
:class:`~hwsim.tables.EnergyTable`, and adds the CPU latency model of the
AdderNet paper.  :func:`sweep` repeats the totals over a grid of
ArrayConfig values (e.g. rows x cols).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields
from typing import Mapping, Sequence

from hwsim.config import ArrayConfig
from hwsim.cpu import CpuLatency, cpu_ops
from hwsim.energy import EnergyBreakdown, array_area, layer_energy
from hwsim.tables import EnergyTable
from hwsim.layers import LayerShape
from hwsim.mapping import DESIGNS, layer_config, map_layers

__all__ = ["DesignResult", "Estimate", "estimate", "sweep", "parse_sweep", "SWEEP_COLUMNS"]


@dataclass(frozen=True)
class DesignResult:
    """One design (``"adder"`` or ``"mult"``) on one array configuration.

    Attributes
    ----------
    design : str
    mappings : tuple of LayerMapping
    energies : tuple of EnergyBreakdown
        Per layer, in the same order.
    area : float
        Area of the design's main array (adder PEs for ``"adder"``), in the
        table's unit.
    mult_path_area : float
        Area of the multiplier array the adder design needs for its multiply
        layers (0 when it has none, and for the multiplier design).
    """

    design: str
    mappings: tuple
    energies: tuple
    area: float
    mult_path_area: float

    @property
    def total_cycles(self) -> int:
        return sum(m.total_cycles for m in self.mappings)

    @property
    def latency_us(self) -> float:
        return sum(m.latency_us for m in self.mappings)

    @property
    def dram_bound_cycles(self) -> int:
        """Sum of the per-layer rooflines ``max(total_cycles, dram_cycles)``."""
        return sum(m.dram_bound_cycles for m in self.mappings)

    @property
    def energy(self) -> EnergyBreakdown:
        total = EnergyBreakdown(0.0, 0.0, 0.0, 0.0, 0.0)
        for e in self.energies:
            total = total + e
        return total

    @property
    def rescales(self) -> int:
        """Input values re-scaled for group-shared scales (:attr:`hwsim.mapping.LayerMapping.rescales`)."""
        return sum(m.rescales for m in self.mappings)

    @property
    def utilization(self) -> float:
        """Useful PE operations over PE-cycles of the whole model."""
        macs = sum(m.layer.macs for m in self.mappings)
        pe_cycles = sum(m.cfg.rows * m.cfg.cols * m.total_cycles for m in self.mappings)
        return macs / pe_cycles


@dataclass(frozen=True)
class Estimate:
    """The adder and multiplier designs of one model on one configuration."""

    layers: tuple
    cfg: ArrayConfig
    table: EnergyTable
    designs: dict
    cpu: dict
    cpu_latency: CpuLatency

    def ratio(self, what: str) -> float:
        """``adder / mult`` of ``total_cycles``, ``energy_pj`` or ``area``."""
        a, m = self.designs["adder"], self.designs["mult"]
        if what == "total_cycles":
            return a.total_cycles / m.total_cycles
        if what == "energy_pj":
            return a.energy.total_pj / m.energy.total_pj
        if what == "area":
            return a.area / m.area
        raise ValueError(f"no ratio for {what!r}")


def _design(layers: Sequence[LayerShape], cfg: ArrayConfig, table: EnergyTable, design: str) -> DesignResult:
    maps = map_layers(layers, cfg, design)
    energies = tuple(layer_energy(m, table) for m in maps)
    main = cfg.replace(pe=design) if cfg.pe != design else cfg
    needs_mult_path = design == "adder" and any(not l.is_adder for l in layers)
    mult_cfg = layer_config(next(l for l in layers if not l.is_adder), cfg, design) if needs_mult_path else None
    return DesignResult(
        design=design,
        mappings=tuple(maps),
        energies=energies,
        area=array_area(main, table),
        mult_path_area=array_area(mult_cfg, table) if mult_cfg is not None else 0.0,
    )


def estimate(layers: Sequence[LayerShape], cfg: ArrayConfig, table: EnergyTable,
             cpu_latency: CpuLatency = CpuLatency()) -> Estimate:
    """Map and price ``layers`` for the adder and the multiplier design on ``cfg``.

    Raises
    ------
    ValueError
        A layer does not fit the array (see :func:`hwsim.mapping.check_layer_fits`).
    """
    layers = tuple(layers)
    if not layers:
        raise ValueError("no layers to estimate")
    designs = {d: _design(layers, cfg, table, d) for d in DESIGNS}
    ops = cpu_ops(layers)
    return Estimate(layers=layers, cfg=cfg, table=table, designs=designs, cpu=ops, cpu_latency=cpu_latency)


SWEEP_COLUMNS = (
    "design", "total_cycles", "dram_bound_cycles", "latency_us", "energy_pj", "pe_pj", "reg_pj", "buffer_pj",
    "dram_pj", "rescale_pj", "area", "util_pct",
)


def parse_sweep(items: Sequence[str]) -> dict[str, list]:
    """Parse ``["rows=4,8,16", "cols=4,8"]`` into ``{"rows": [4, 8, 16], "cols": [4, 8]}``.

    Keys must be numeric ArrayConfig fields; values integers (or numbers for
    float fields).

    Raises
    ------
    ValueError
        Malformed item, unknown or repeated key, or a non-numeric value.
    """
    types = {f.name: f.type for f in fields(ArrayConfig)}
    numeric_int = {"rows", "cols", "bits", "max_k", "acc_bits", "mult_bits", "out_bits",
                   "weight_buffer_kib", "act_buffer_kib", "out_buffer_kib"}
    numeric_float = {"clock_mhz", "dram_bytes_per_cycle", "stream_beats_per_cycle"}
    grid: dict[str, list] = {}
    for item in items:
        key, sep, vals = item.partition("=")
        key = key.strip()
        if not sep or not key or not vals.strip():
            raise ValueError(f"sweep item {item!r} must look like KEY=V1,V2,...")
        if key not in types:
            raise ValueError(f"sweep key {key!r} is not an array config field")
        if key not in numeric_int | numeric_float:
            raise ValueError(f"sweep key {key!r} is not numeric; sweep one of {', '.join(sorted(numeric_int | numeric_float))}")
        if key in grid:
            raise ValueError(f"sweep key {key!r} given twice")
        conv = int if key in numeric_int else float
        out = []
        for v in vals.split(","):
            try:
                out.append(conv(v.strip()))
            except ValueError:
                raise ValueError(f"sweep value {v.strip()!r} for {key} is not {'an integer' if conv is int else 'a number'}") from None
        grid[key] = out
    return grid


def sweep(layers: Sequence[LayerShape], cfg: ArrayConfig, table: EnergyTable,
          grid: Mapping[str, Sequence]) -> list[dict]:
    """Totals of both designs for every point of ``grid`` (cartesian product).

    Returns
    -------
    list of dict
        One row per (point, design): the grid values plus
        :data:`SWEEP_COLUMNS`.
    """
    keys = list(grid)
    rows = []
    for values in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, values))
        pcfg = cfg.replace(**point)
        est = estimate(layers, pcfg, table)
        for d, res in est.designs.items():
            e = res.energy
            rows.append({
                **point,
                "design": d,
                "total_cycles": res.total_cycles,
                "dram_bound_cycles": res.dram_bound_cycles,
                "latency_us": res.latency_us,
                "energy_pj": e.total_pj,
                "pe_pj": e.pe_pj,
                "reg_pj": e.reg_pj,
                "buffer_pj": e.buffer_pj,
                "dram_pj": e.dram_pj,
                "rescale_pj": e.rescale_pj,
                "area": res.area,
                "util_pct": 100.0 * res.utilization,
            })
    return rows
