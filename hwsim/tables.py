"""Energy and area tables: the data files, their loader, and the FPGA table built from synthesis.

A table (:class:`EnergyTable`) holds per-action energies (pJ) and areas of one
technology, each arithmetic unit with its width scaling
(:class:`WidthCost`: ``energy(k) = energy_pj * (k / ref_bits) **
energy_width_exponent``, the exponent written in the file: 1 for adders, 2
for multipliers in the shipped tables).  Built-in tables live in
``hwsim/tables/*.toml`` with their sources; a user TOML file has the same
format.  :func:`fpga_table` takes the measured logic cells per PE from our
own synthesis results (read by :func:`hwsim.synthfile.read_synth_json`, the reader
beside ``synth.json``'s writer).

SRAM energy by memory size (:meth:`EnergyTable.sram_pj_per_bit_of`):
``sram_pj_per_bit * (size_bytes / ref_bytes) ** size_exponent``, the anchor
size and the exponent written in the file's ``[sram]`` section with their
source (``size_source``); a table without them prices SRAM at one size only
and cannot price the network engine's memories (dataflow ``cp``).
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources

from quant.base.intops import PE_KINDS, PeKind

__all__ = [
    "WidthCost",
    "EnergyTable",
    "BUILTIN_TABLES",
    "AREA_UNITS",
    "load_table",
    "load_table_file",
    "fpga_table",
]

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

    def energy(self, bits: int, other_bits: int | None = None) -> float:
        """Energy of a ``bits``-wide unit, or of a ``bits x other_bits`` one (a multiplier
        of two different operand widths): the width scaling applied to the geometric mean
        width, so with exponent 2 the energy is proportional to ``bits * other_bits``."""
        if other_bits is None:
            return self.energy_pj * (bits / self.ref_bits) ** self.energy_width_exponent
        return self.energy_pj * (bits * other_bits / self.ref_bits ** 2) ** (self.energy_width_exponent / 2)

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
        One bit read or written on chip (in a memory of ``sram_ref_bytes``) /
        moved off chip.
    sram_ref_bytes, sram_size_exponent : float or None
        The size ``sram_pj_per_bit`` holds for and how energy per bit scales
        with size (:meth:`sram_pj_per_bit_of`); None when the table has no
        size scaling.
    sram_size_source : str or None
        Where the size scaling comes from (a model assumption, named as one).
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
    sram_ref_bytes: float | None = None
    sram_size_exponent: float | None = None
    sram_size_source: str | None = None

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
            if set(self.pe_area_measured) != set(PeKind):
                raise ValueError(f"{where}: pe_area_measured needs exactly the keys adder and mult")
            for k, v in self.pe_area_measured.items():
                _pos_number(where, f"pe_area_measured[{k}]", v)
            if not isinstance(self.measured_bits, int) or self.measured_bits < 1:
                raise ValueError(f"{where}: measured_bits must be a positive integer with pe_area_measured")
        scaling = (self.sram_ref_bytes, self.sram_size_exponent, self.sram_size_source)
        if any(v is not None for v in scaling):
            if any(v is None for v in scaling):
                raise ValueError(f"{where}: SRAM size scaling needs ref_bytes, size_exponent and size_source "
                                 "in [sram] together")
            _pos_number(where, "[sram] ref_bytes", self.sram_ref_bytes)
            _pos_number(where, "[sram] size_exponent", self.sram_size_exponent, allow_zero=True)
            if not isinstance(self.sram_size_source, str) or not self.sram_size_source.strip():
                raise ValueError(f"{where}: [sram] size_source must be a non-empty string")

    @property
    def has_sram_scaling(self) -> bool:
        """Whether the table says how SRAM energy scales with memory size."""
        return self.sram_ref_bytes is not None

    def sram_pj_per_bit_of(self, size_bytes: float) -> float:
        """Energy per bit read or written in an SRAM of ``size_bytes``:
        ``sram_pj_per_bit * (size_bytes / sram_ref_bytes) ** sram_size_exponent``.

        Raises
        ------
        ValueError
            The table has no size scaling, or ``size_bytes`` is not positive.
        """
        if not self.has_sram_scaling:
            raise ValueError(f"energy table {self.name!r} has no SRAM size scaling: give ref_bytes, "
                             "size_exponent and size_source in its [sram] section")
        _pos_number(f"energy table {self.name!r}", "SRAM size_bytes", size_bytes)
        return self.sram_pj_per_bit * (size_bytes / self.sram_ref_bytes) ** self.sram_size_exponent

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

    allowed = {"register": {"energy_pj_per_bit", "area_per_bit"},
               "sram": {"energy_pj_per_bit", "ref_bytes", "size_exponent", "size_source"},
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
        sram_ref_bytes=data.get("sram", {}).get("ref_bytes"),
        sram_size_exponent=data.get("sram", {}).get("size_exponent"),
        sram_size_source=data.get("sram", {}).get("size_source"),
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


def fpga_table(records, *, energy_from: str = "45nm") -> EnergyTable:
    """A table whose PE areas (logic cells) come from our synthesis results.

    ``records`` are ``synth.json`` results as read by
    :func:`hwsim.synthfile.read_synth_json` (objects with ``config`` (an
    ArrayConfig dict), ``block``, ``resources["lc"]``, ``target``, ``tools``
    and ``source``, the file and design they came from).  The area per PE is
    ``lc`` for a ``"pe"`` block and ``lc / (rows * cols)`` for an array (so it
    includes the PE's share of the array's registers and control); when both
    are given for a PE kind the array measurement wins.  Both the adder and
    the multiplier variant must be present, synthesized at the same operand
    width.  FPGA energy is not measured: energies are those of the
    ``energy_from`` table.

    Raises
    ------
    ValueError
        A record lacks what the table needs, or the adder or multiplier variant is missing.
    """
    chosen: dict[str, tuple] = {}
    tools = set()
    target = set()
    sources = []
    for rec in records:
        sources.append(rec.source)
        try:
            cfg = rec.config
            pe, rows, cols = cfg["pe"], int(cfg["rows"]), int(cfg["cols"])
            lc = float(rec.resources["lc"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"{rec.source}: lacks config.pe/rows/cols or resources.lc (expected an adderhw synth JSON)"
            ) from None
        if pe not in PE_KINDS or rows < 1 or cols < 1 or lc <= 0:
            raise ValueError(f"{rec.source}: invalid config or lc count")
        block = str(rec.block or "array")
        per_pe = lc if block == "pe" else lc / (rows * cols)
        rank = _BLOCK_PRIORITY.get(block, 2)
        if pe not in chosen or rank < chosen[pe][0]:
            chosen[pe] = (rank, per_pe, int(cfg.get("bits", 8)), rec.source)
        target.add(str(rec.target or "?"))
        if rec.tools:
            tools.add(", ".join(f"{k} {v}" for k, v in sorted(rec.tools.items())))
    missing = [pe for pe in PeKind if pe not in chosen]
    if missing:
        files = sorted({s.split(":")[0] for s in sources})
        raise ValueError(
            f"{', '.join(files)}: no {' or '.join(missing)} variant; "
            "run the synthesis with --compare to get both"
        )
    bits = {v[2] for v in chosen.values()}
    if len(bits) != 1:
        raise ValueError(f"the adder and multiplier variants were synthesized at different bit widths {sorted(bits)}")
    base = load_table(energy_from)
    src = (
        f"area per PE in logic cells from {chosen[PeKind.ADDER][3]} and {chosen[PeKind.MULT][3]} "
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
        sram_ref_bytes=base.sram_ref_bytes,
        sram_size_exponent=base.sram_size_exponent,
        sram_size_source=base.sram_size_source,
        pe_area_measured={pe: chosen[pe][1] for pe in PeKind},
        measured_bits=bits.pop(),
    )


def load_table(spec: str) -> EnergyTable:
    """Resolve ``--table``: ``45nm``, ``40nm``, a TOML path, or ``fpga:SYNTH.json[,SYNTH2.json...]``
    (:func:`fpga_table` of the synthesis results, read by :func:`hwsim.synthfile.read_synth_json`).

    Raises
    ------
    ValueError
        Unknown table name, ``fpga`` without files, or files :func:`fpga_table` refuses.
    OSError
        A named file cannot be read.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError("table must be a name or a file path")
    if spec in BUILTIN_TABLES:
        return _builtin(spec)
    if spec == "fpga" or spec.startswith("fpga:"):
        from hwsim.synthfile import read_synth_json

        paths = [p for p in spec[5:].split(",") if p]
        if not paths:
            raise ValueError("table fpga needs synthesis JSON: use --table fpga:SYNTH.json[,SYNTH2.json]")
        return fpga_table([r for p in paths for r in read_synth_json(p)])
    if spec.endswith(".toml") or os.sep in spec or os.path.exists(spec):
        return load_table_file(spec)
    raise ValueError(
        f"unknown energy table {spec!r}: use one of {', '.join(BUILTIN_TABLES)}, fpga:PATH or a .toml file"
    )
