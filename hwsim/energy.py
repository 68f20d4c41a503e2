"""Energy and area tables, and the energy/area of mapped layers.

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

Width scaling lives in the table file: the energy (area) of a ``k``-bit adder
is ``energy_pj * (k / ref_bits) ** energy_width_exponent`` with the exponent
written in the file (1 for adders, 2 for multipliers in the shipped tables).

Array area: ``rows*cols`` PEs, each with its accumulator and shadow register
(``2*acc_bits`` register bits), plus the ``(rows+cols)*bits`` operand
registers; requant units and buffers are not included.  An FPGA table (from
our synthesis JSON) gives the measured area per PE in logic cells instead.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources

from hwsim.config import ArrayConfig

__all__ = [
    "WidthCost",
    "EnergyTable",
    "EnergyBreakdown",
    "COMPONENTS",
    "BUILTIN_TABLES",
    "load_table",
    "load_table_file",
    "fpga_table",
    "layer_energy",
    "pe_op_energy_pj",
    "pe_area",
    "array_area",
]

COMPONENTS = ("pe_pj", "reg_pj", "buffer_pj", "dram_pj")
BUILTIN_TABLES = ("45nm", "40nm")
AREA_UNITS = ("um2", "lc")


def _pos_number(where: str, name: str, value, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: {name} must be a number, not {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{where}: {name} must be {kind}, not {value!r}")
    return float(value)


@dataclass(frozen=True, kw_only=True)
class WidthCost:
    """Energy and area of one arithmetic unit, with its width scaling.

    ``energy(k) = energy_pj * (k / ref_bits) ** energy_width_exponent``, and
    the same for area with ``area_width_exponent``.
    """

    ref_bits: int
    energy_pj: float
    area: float
    energy_width_exponent: float
    area_width_exponent: float

    def __post_init__(self) -> None:
        if isinstance(self.ref_bits, bool) or not isinstance(self.ref_bits, int) or self.ref_bits < 1:
            raise ValueError(f"ref_bits must be a positive integer, not {self.ref_bits!r}")
        _pos_number("unit", "energy_pj", self.energy_pj)
        _pos_number("unit", "area", self.area)
        _pos_number("unit", "energy_width_exponent", self.energy_width_exponent)
        _pos_number("unit", "area_width_exponent", self.area_width_exponent)

    def energy(self, bits: int) -> float:
        return self.energy_pj * (bits / self.ref_bits) ** self.energy_width_exponent

    def area_of(self, bits: int) -> float:
        return self.area * (bits / self.ref_bits) ** self.area_width_exponent


@dataclass(frozen=True, kw_only=True)
class EnergyTable:
    """Per-action energies (pJ) and areas of one technology.

    Parameters
    ----------
    name, title, source : str
        Short name, one-line description, and where the numbers come from.
    area_unit : {"um2", "lc"}
        Unit of every area in the table (logic cells for an FPGA table).
    add, mult : WidthCost
        An integer adder and multiplier, with their width scaling.
    reg_pj_per_bit, reg_area_per_bit : float
        One register bit written / its area.
    sram_pj_per_bit, dram_pj_per_bit : float
        One bit read or written on chip / moved off chip.
    abs_in_adds : float
        Cost of the adder PE's absolute value, in ``(bits+1)``-bit adds.
    pe_area_measured : dict or None
        Measured area per PE (``{"adder": a, "mult": m}``) at ``measured_bits``
        operand width; overrides the PE area model (FPGA tables).
    measured_bits : int or None
    """

    name: str
    title: str
    source: str
    area_unit: str
    add: WidthCost
    mult: WidthCost
    reg_pj_per_bit: float
    reg_area_per_bit: float
    sram_pj_per_bit: float
    dram_pj_per_bit: float
    abs_in_adds: float = 1.0
    pe_area_measured: dict | None = field(default=None)
    measured_bits: int | None = None

    def __post_init__(self) -> None:
        where = f"energy table {self.name!r}"
        for name in ("name", "title", "source"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ValueError(f"{where}: {name} must be a non-empty string")
        if self.area_unit not in AREA_UNITS:
            raise ValueError(f"{where}: area_unit must be one of {', '.join(AREA_UNITS)}, not {self.area_unit!r}")
        for name in ("reg_pj_per_bit", "reg_area_per_bit", "sram_pj_per_bit", "dram_pj_per_bit"):
            _pos_number(where, name, getattr(self, name), allow_zero=(name == "reg_area_per_bit"))
        _pos_number(where, "abs_in_adds", self.abs_in_adds, allow_zero=True)
        if self.pe_area_measured is not None:
            if set(self.pe_area_measured) != {"adder", "mult"}:
                raise ValueError(f"{where}: pe_area_measured needs exactly the keys adder and mult")
            for k, v in self.pe_area_measured.items():
                _pos_number(where, f"pe_area_measured[{k}]", v)
            if not isinstance(self.measured_bits, int) or self.measured_bits < 1:
                raise ValueError(f"{where}: measured_bits must be a positive integer with pe_area_measured")

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["add"] = {f.name: getattr(self.add, f.name) for f in fields(self.add)}
        out["mult"] = {f.name: getattr(self.mult, f.name) for f in fields(self.mult)}
        return out


def _unit(data: dict, key: str, where: str) -> WidthCost:
    sec = data.get(key)
    if not isinstance(sec, dict):
        raise ValueError(f"{where}: missing [{key}] section")
    want = {f.name for f in fields(WidthCost)}
    missing = sorted(want - set(sec))
    unknown = sorted(set(sec) - want)
    if missing:
        raise ValueError(f"{where}: [{key}] lacks {', '.join(missing)}")
    if unknown:
        raise ValueError(f"{where}: [{key}] has unknown key(s) {', '.join(unknown)}")
    try:
        return WidthCost(**sec)
    except ValueError as exc:
        raise ValueError(f"{where}: [{key}] {exc}") from None


def _table_from_dict(data: dict, where: str) -> EnergyTable:
    known = {"name", "title", "source", "area_unit", "add", "mult", "register", "sram", "dram", "adder_pe"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")

    allowed = {"register": {"energy_pj_per_bit", "area_per_bit"}, "sram": {"energy_pj_per_bit"},
               "dram": {"energy_pj_per_bit"}, "adder_pe": {"abs_in_adds"}}
    for section, keys in allowed.items():
        sec = data.get(section, {})
        if not isinstance(sec, dict):
            raise ValueError(f"{where}: {section} must be a [{section}] section")
        extra = sorted(set(sec) - keys)
        if extra:
            raise ValueError(f"{where}: [{section}] has unknown key(s) {', '.join(extra)}")

    def get(section: str, key: str):
        sec = data.get(section)
        if not isinstance(sec, dict) or key not in sec:
            raise ValueError(f"{where}: missing {key} in [{section}]")
        return sec[key]

    for name in ("name", "title", "source", "area_unit"):
        if name not in data:
            raise ValueError(f"{where}: missing {name}")
    return EnergyTable(
        name=data["name"],
        title=data["title"],
        source=data["source"],
        area_unit=data["area_unit"],
        add=_unit(data, "add", where),
        mult=_unit(data, "mult", where),
        reg_pj_per_bit=get("register", "energy_pj_per_bit"),
        reg_area_per_bit=get("register", "area_per_bit"),
        sram_pj_per_bit=get("sram", "energy_pj_per_bit"),
        dram_pj_per_bit=get("dram", "energy_pj_per_bit"),
        abs_in_adds=data.get("adder_pe", {}).get("abs_in_adds", 1.0),
    )


def load_table_file(path: str | os.PathLike) -> EnergyTable:
    """Load an energy table from a TOML file (the format of ``hwsim/tables/*.toml``).

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        It is not valid TOML or a key is missing, unknown or out of range.
    """
    path = os.fspath(path)
    with open(path, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not a valid TOML energy table: {exc}") from None
    return _table_from_dict(data, path)


def _builtin(name: str) -> EnergyTable:
    ref = resources.files("hwsim").joinpath("tables", f"{name}.toml")
    data = tomllib.loads(ref.read_text())
    return _table_from_dict(data, f"hwsim/tables/{name}.toml")


_BLOCK_PRIORITY = {"array": 0, "pe": 1}


def fpga_table(paths, *, energy_from: str = "45nm") -> EnergyTable:
    """A table whose PE areas (logic cells) come from our synthesis JSON files.

    ``paths`` is one path or a sequence of paths of ``adderhw synth`` results
    (``synth.json``: one object, or a list of them from ``--compare``) with
    ``config`` (an ArrayConfig dict), ``block`` and ``resources.lc``.  The
    area per PE is ``lc`` for a ``"pe"`` block and ``lc / (rows * cols)`` for
    an array (so it includes the PE's share of the array's registers and
    control); when both are given for a PE kind the array measurement wins.
    Both the adder and the multiplier variant must be present, synthesized at
    the same operand width.  FPGA energy is not measured: energies are those
    of the ``energy_from`` table.

    Raises
    ------
    OSError
        A file cannot be read.
    ValueError
        It is not such a JSON file, or the adder or multiplier variant is missing.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    chosen: dict[str, tuple] = {}
    bits = set()
    tools = set()
    target = set()
    for path in map(os.fspath, paths):
        with open(path) as fh:
            try:
                data = json.load(fh)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: not a synthesis JSON file: {exc}") from None
        entries = data if isinstance(data, list) else [data]
        for i, e in enumerate(entries):
            try:
                cfg = e["config"]
                pe, rows, cols = cfg["pe"], int(cfg["rows"]), int(cfg["cols"])
                lc = float(e["resources"]["lc"])
            except (KeyError, TypeError, ValueError):
                raise ValueError(
                    f"{path}: entry {i} lacks config.pe/rows/cols or resources.lc (expected an adderhw synth JSON)"
                ) from None
            if pe not in ("adder", "mult") or rows < 1 or cols < 1 or lc <= 0:
                raise ValueError(f"{path}: entry {i} has an invalid config or lc count")
            block = str(e.get("block", "array"))
            per_pe = lc if block == "pe" else lc / (rows * cols)
            rank = _BLOCK_PRIORITY.get(block, 2)
            if pe not in chosen or rank < chosen[pe][0]:
                chosen[pe] = (rank, per_pe, int(cfg.get("bits", 8)), f"{os.path.basename(path)}:{e.get('design', block)}")
            target.add(str(e.get("target", "?")))
            if e.get("tools"):
                tools.add(", ".join(f"{k} {v}" for k, v in sorted(e["tools"].items())))
    missing = [pe for pe in ("adder", "mult") if pe not in chosen]
    if missing:
        raise ValueError(
            f"{', '.join(map(os.fspath, paths))}: no {' or '.join(missing)} variant; "
            "run the synthesis with --compare to get both"
        )
    bits = {v[2] for v in chosen.values()}
    if len(bits) != 1:
        raise ValueError(f"the adder and multiplier variants were synthesized at different bit widths {sorted(bits)}")
    base = load_table(energy_from)
    src = (
        f"area per PE in logic cells from {chosen['adder'][3]} and {chosen['mult'][3]} "
        f"(target {', '.join(sorted(target))}; tools {'; '.join(sorted(tools)) or 'not recorded'}); "
        f"energies from the {base.name} table ({base.title})"
    )
    return EnergyTable(
        name="fpga",
        title=f"FPGA logic cells from synthesis ({', '.join(sorted(target))}), energy {base.name}",
        source=src,
        area_unit="lc",
        add=base.add,
        mult=base.mult,
        reg_pj_per_bit=base.reg_pj_per_bit,
        reg_area_per_bit=0.0,
        sram_pj_per_bit=base.sram_pj_per_bit,
        dram_pj_per_bit=base.dram_pj_per_bit,
        abs_in_adds=base.abs_in_adds,
        pe_area_measured={"adder": chosen["adder"][1], "mult": chosen["mult"][1]},
        measured_bits=bits.pop(),
    )


def load_table(spec: str) -> EnergyTable:
    """Resolve ``--table``: ``45nm``, ``40nm``, ``fpga:PATH[,PATH...]`` (synthesis JSON) or a TOML path.

    Raises
    ------
    ValueError
        Unknown table name.
    OSError
        A named file cannot be read.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError("table must be a name or a file path")
    if spec in BUILTIN_TABLES:
        return _builtin(spec)
    if spec == "fpga":
        raise ValueError("table fpga needs synthesis JSON: use --table fpga:SYNTH.json[,SYNTH2.json]")
    if spec.startswith("fpga:"):
        return fpga_table([p for p in spec[5:].split(",") if p])
    if spec.endswith(".toml") or os.sep in spec or os.path.exists(spec):
        return load_table_file(spec)
    raise ValueError(
        f"unknown energy table {spec!r}: use one of {', '.join(BUILTIN_TABLES)}, fpga:PATH or a .toml file"
    )


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


def pe_op_energy_pj(cfg: ArrayConfig, table: EnergyTable) -> float:
    """Energy of one PE operation on ``cfg``'s PE kind and widths."""
    b = cfg.bits
    if cfg.pe == "adder":
        return (1.0 + table.abs_in_adds) * table.add.energy(b + 1) + table.add.energy(cfg.acc_bits)
    return table.mult.energy(b) + table.add.energy(cfg.acc_bits)


def pe_area(cfg: ArrayConfig, table: EnergyTable) -> float:
    """Area of one PE (arithmetic plus accumulator and shadow register)."""
    if table.pe_area_measured is not None:
        if cfg.bits != table.measured_bits:
            raise ValueError(
                f"the {table.name} table was measured at {table.measured_bits}-bit operands, "
                f"the array has bits={cfg.bits}"
            )
        return table.pe_area_measured[cfg.pe]
    b = cfg.bits
    if cfg.pe == "adder":
        arith = (1.0 + table.abs_in_adds) * table.add.area_of(b + 1) + table.add.area_of(cfg.acc_bits)
    else:
        arith = table.mult.area_of(b) + table.add.area_of(cfg.acc_bits)
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
