"""The energy and area of mapped layers, from an energy table (:mod:`hwsim.tables`).

Energy = sum over actions of (count x energy per action), split into four
components (DESIGN §5):

``pe_pj``
    PE arithmetic, per executed PE operation (padded rows/columns of partial
    tiles included).  Adder PE: a ``(bits+1)``-bit subtract, an absolute value
    (``abs_in_adds`` ``(bits+1)``-bit adds) and an ``acc_bits``-bit add;
    multiplier PE: a ``bits x bits`` multiply and an ``acc_bits``-bit add.
``reg_pj``
    Register bits written: every reduction step writes each PE's accumulator
    (``acc_bits``) and the row/column operand registers (``(rows+cols)*bits``);
    every tile writes the shadow bank (``rows*cols*acc_bits``) and drains
    ``rows*cols`` output values (``out_bits``) through the output register.
``buffer_pj``
    On-chip SRAM bits: each step reads one weight beat and one activation beat
    (``(rows+cols)*bits``), each tile writes its ``rows*cols`` outputs
    (``out_bits``), and every off-chip byte is written into a buffer.
``dram_pj``
    Off-chip bits moved (:class:`hwsim.mapping.LayerMapping.dram_bytes`).

One PE operation is a list of arithmetic units (:func:`pe_units`); its
energy and its area are sums over that one list.  Width scaling lives in the
table file (:class:`hwsim.tables.WidthCost`).

Array area: ``rows*cols`` PEs, each with its accumulator and shadow register
(``2*acc_bits`` register bits), plus the ``(rows+cols)*bits`` operand
registers; requant units and buffers are not included.  An FPGA table (from
our synthesis JSON) gives the measured area per PE in logic cells instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.config import ArrayConfig
from hwsim.tables import EnergyTable, WidthCost

__all__ = [
    "EnergyBreakdown",
    "COMPONENTS",
    "layer_energy",
    "pe_units",
    "pe_op_energy_pj",
    "pe_area",
    "array_area",
]

COMPONENTS = ("pe_pj", "reg_pj", "buffer_pj", "dram_pj")


@dataclass(frozen=True)
class EnergyBreakdown:
    """Energy of one mapped layer in pJ, per component."""

    pe_pj: float
    reg_pj: float
    buffer_pj: float
    dram_pj: float

    @property
    def total_pj(self) -> float:
        return self.pe_pj + self.reg_pj + self.buffer_pj + self.dram_pj

    def __add__(self, other: "EnergyBreakdown") -> "EnergyBreakdown":
        return EnergyBreakdown(*(getattr(self, c) + getattr(other, c) for c in COMPONENTS))


def pe_units(cfg: ArrayConfig, table: EnergyTable) -> list[tuple[WidthCost, int, float]]:
    """The arithmetic of one PE operation as ``(unit, width, count)`` triples.

    Adder PE: ``1 + abs_in_adds`` ``(bits+1)``-bit adds (the subtract and the
    absolute value) and one ``acc_bits``-bit add; multiplier PE: one
    ``bits x bits`` multiply and one ``acc_bits``-bit add.
    """
    if cfg.pe == "adder":
        return [(table.add, cfg.bits + 1, 1.0 + table.abs_in_adds), (table.add, cfg.acc_bits, 1.0)]
    return [(table.mult, cfg.bits, 1.0), (table.add, cfg.acc_bits, 1.0)]


def pe_op_energy_pj(cfg: ArrayConfig, table: EnergyTable) -> float:
    """Energy of one PE operation on ``cfg``'s PE kind and widths (sum over :func:`pe_units`)."""
    return sum(n * unit.energy(w) for unit, w, n in pe_units(cfg, table))


def pe_area(cfg: ArrayConfig, table: EnergyTable) -> float:
    """Area of one PE (arithmetic plus accumulator and shadow register)."""
    if table.pe_area_measured is not None:
        if cfg.bits != table.measured_bits:
            raise ValueError(
                f"the {table.name} table was measured at {table.measured_bits}-bit operands, "
                f"the array has bits={cfg.bits}"
            )
        return table.pe_area_measured[cfg.pe]
    arith = sum(n * unit.area_of(w) for unit, w, n in pe_units(cfg, table))
    return arith + 2 * cfg.acc_bits * table.reg_area_per_bit


def array_area(cfg: ArrayConfig, table: EnergyTable) -> float:
    """Area of the ``rows x cols`` array in ``table.area_unit``."""
    return cfg.rows * cfg.cols * pe_area(cfg, table) + (cfg.rows + cfg.cols) * cfg.bits * table.reg_area_per_bit


def layer_energy(m, table: EnergyTable) -> EnergyBreakdown:
    """Energy of a mapped layer (:class:`hwsim.mapping.LayerMapping`) in pJ."""
    cfg = m.cfg
    r, c, b = cfg.rows, cfg.cols, cfg.bits
    steps = m.tiles * m.layer.k
    reg_bits = steps * (r * c * cfg.acc_bits + (r + c) * b) + m.tiles * r * c * (cfg.acc_bits + cfg.out_bits)
    sram_bits = steps * (r + c) * b + m.tiles * r * c * cfg.out_bits + 8 * m.dram_bytes
    return EnergyBreakdown(
        pe_pj=m.pe_ops * pe_op_energy_pj(cfg, table),
        reg_pj=reg_bits * table.reg_pj_per_bit,
        buffer_pj=sram_bits * table.sram_pj_per_bit,
        dram_pj=8 * m.dram_bytes * table.dram_pj_per_bit,
    )
