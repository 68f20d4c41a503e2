"""FPGA parts: their capacities, their block RAMs, and the block RAMs the engine needs.

The one copy of the part facts (DESIGN §1: hwsim, so the resource model and
``rtl.synth`` both read it; the tool names and device arguments of a synthesis
target stay in :mod:`rtl.synth`).

API (stable; other modules build on it):

* :data:`PARTS` -- name -> :class:`Part`; :func:`part` looks one up (one-line
  error naming the known parts).
* :class:`Part` -- ``luts`` (LUT4s; iCE40: logic cells, each one LUT4 and one
  flip-flop), ``ffs``, ``bram_blocks`` (block RAMs), ``bram`` (their
  :class:`BlockRam` geometry), ``dsps`` (hard multipliers: ``MULT18X18D``,
  ``SB_MAC16``), ``spram`` (iCE40 UP5K single-port RAMs, not inferred by our
  flow), ``lutram`` (whether yosys may map small memories to LUT RAM).
* :class:`Memory` -- one memory as yosys sees it: ``width`` x ``depth`` bits with
  a write enable per ``lane_bits``.
* :func:`engine_memories` -- every memory of the engine of an
  :class:`~hwsim.config.EngineConfig` (the activation regions and the weight
  buffer; the requant parameter bank is registers, not a memory).
* :func:`memory_blocks` -- block RAMs yosys's ``memory_libmap`` (the pass
  ``synth_ecp5`` / ``synth_ice40`` run) infers for one :class:`Memory` (0 when it
  picks LUT RAM or flip-flops).
* :func:`bram_blocks` -- their sum over the engine's memories: the ``bram``
  count of ``synth.json`` for that engine on that part.
* :func:`check_fits_bram` -- ``ValueError`` with one line ("engine needs 61 BRAM
  blocks (DP16KD), ecp5-25k has 56") when the BRAM count alone rules a config out.

How :func:`memory_blocks` counts: it is yosys's ``memory_libmap`` cost model
(passes/memory/memory_libmap.cc, the libraries ``lattice/brams_16kd.txt``,
``lattice/lutrams_trellis.txt`` and ``ice40/brams.txt``) for the one shape the
engine has: one synchronous read port and one write port on the same clock,
distinct addresses, no reset or init value.  For every candidate RAM cell and
width mode, the memory word is laid out with each write-enable lane starting
at a hardware byte (``swizzle``), the depth is cut into slices of the mode's
depth (``mult_a``), and the cell count is ``ceil(mult_a * swizzled width /
mode width)``; the cost is ``cell cost * count + (mult_a - 1) * width / 2``
(read mux) ``+ mult_a * lanes / 2`` (write demux, when ``mult_a > 1``) ``+ 2``
(a read port not shared with the write port).  The cheapest candidate wins
when it is cheaper than ``width * depth`` (flip-flops); LUT RAM candidates come
first and win ties.  Checked against yosys in ``tests/hwsim/test_parts.py``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

__all__ = [
    "Family",
    "RamCell",
    "BlockRam",
    "Part",
    "PARTS",
    "part",
    "Memory",
    "engine_memories",
    "memory_blocks",
    "bram_blocks",
    "check_fits_bram",
]


class Family(enum.StrEnum):
    """FPGA families of :data:`PARTS`."""

    ICE40 = "ice40"
    ECP5 = "ecp5"


class RamKind(enum.StrEnum):
    """memlib's kinds of RAM cells."""

    DISTRIBUTED = "distributed"
    BLOCK = "block"


@dataclass(frozen=True, kw_only=True)
class RamCell:
    """One RAM cell of a yosys memory library, as ``memory_libmap`` sees it.

    ``widths`` are the data widths of the width modes (the depth of mode ``i`` is
    ``2**(abits - i)``); ``byte`` the write-enable granularity (0: one enable
    per port); ``wr_modes`` / ``rd_modes`` the first and last width mode index
    the write / read port takes; ``cost`` memlib's cost of one cell.
    """

    name: str
    kind: RamKind
    abits: int
    widths: tuple[int, ...]
    byte: int
    cost: int
    wr_modes: tuple[int, int]
    rd_modes: tuple[int, int]

    def __post_init__(self) -> None:
        n = len(self.widths)
        if not self.widths or any(not isinstance(w, int) or w < 1 for w in self.widths):
            raise ValueError(f"widths must be positive integers, not {self.widths!r}")
        for what, (lo, hi) in (("wr_modes", self.wr_modes), ("rd_modes", self.rd_modes)):
            if not 0 <= lo <= hi < n:
                raise ValueError(f"{what} must be mode indices 0..{n - 1}, not {(lo, hi)!r}")


@dataclass(frozen=True, kw_only=True)
class BlockRam:
    """A part family's block RAM: the cell yosys counts and the library cells it maps through.

    ``cell`` is the primitive in the netlist (``DP16KD``, ``SB_RAM40_4K``) and
    ``bits`` its capacity; ``modes`` are its (width, depth) configurations;
    ``lib`` the ``memory_libmap`` cells that become it, and ``lutram`` the LUT
    RAM cell competing with it (None: the family has none).
    """

    cell: str
    bits: int
    modes: tuple[tuple[int, int], ...]
    lib: tuple[RamCell, ...]
    lutram: RamCell | None


_ECP5_BRAM = BlockRam(
    cell="DP16KD",
    bits=18432,
    modes=((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512)),
    lib=(
        RamCell(name="$__DP16KD_", kind=RamKind.BLOCK, abits=14, widths=(1, 2, 4, 9, 18), byte=9, cost=128,
                wr_modes=(0, 4), rd_modes=(0, 4)),
        # the pseudo-dual-port form: 36-bit writes only
        RamCell(name="$__PDPW16KD_", kind=RamKind.BLOCK, abits=14, widths=(1, 2, 4, 9, 18, 36), byte=9,
                cost=128, wr_modes=(5, 5), rd_modes=(0, 5)),
    ),
    lutram=RamCell(name="$__TRELLIS_DPR16X4_", kind=RamKind.DISTRIBUTED, abits=4, widths=(4,), byte=0, cost=4,
                   wr_modes=(0, 0), rd_modes=(0, 0)),
)

_ICE40_BRAM = BlockRam(
    cell="SB_RAM40_4K",
    bits=4096,
    modes=((2, 2048), (4, 1024), (8, 512), (16, 256)),
    lib=(
        # HAS_BE=0: writes of 2, 4 or 8 bits, one enable
        RamCell(name="$__ICE40_RAM4K_", kind=RamKind.BLOCK, abits=11, widths=(2, 4, 8, 16), byte=0, cost=64,
                wr_modes=(0, 2), rd_modes=(0, 3)),
        # HAS_BE=1: 16-bit writes with a bit mask
        RamCell(name="$__ICE40_RAM4K_", kind=RamKind.BLOCK, abits=11, widths=(2, 4, 8, 16), byte=1, cost=64,
                wr_modes=(3, 3), rd_modes=(0, 3)),
    ),
    lutram=None,
)


@dataclass(frozen=True, kw_only=True)
class Part:
    """One FPGA part: what nextpnr reports as available (``report.json`` ``utilization``).

    Attributes
    ----------
    name : str
        The synthesis target's name (``adderhw synth --target``).
    family : Family
    luts : int
        LUT4s (``TRELLIS_COMB``; iCE40: ``ICESTORM_LC``, a LUT4 and a flip-flop each).
    ffs : int
        Flip-flops (``TRELLIS_FF``; iCE40: the logic cells' flip-flops).
    bram_blocks : int
        Block RAMs (``DP16KD``, ``ICESTORM_RAM``).
    bram : BlockRam
        Their geometry and how yosys maps memories into them.
    dsps : int
        Hard multipliers (``MULT18X18D``, ``ICESTORM_DSP``); 0 when none.
    spram : int
        Single-port 256-kbit RAMs (UP5K ``SB_SPRAM256KA``); our flow does not infer them.
    """

    name: str
    family: Family
    luts: int
    ffs: int
    bram_blocks: int
    bram: BlockRam
    dsps: int
    spram: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "family", Family(self.family))
        for field in ("luts", "ffs", "bram_blocks", "dsps", "spram"):
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{field} must be a non-negative integer, not {v!r}")

    @property
    def bram_cell(self) -> str:
        """The block RAM primitive yosys counts (``DP16KD``, ``SB_RAM40_4K``)."""
        return self.bram.cell

    @property
    def has_dsp(self) -> bool:
        return self.dsps > 0


#: The parts, smallest first within a family (numbers: nextpnr 0.11 / 0.4 ``report.json`` utilization).
PARTS: dict[str, Part] = {p.name: p for p in (
    Part(name="ice40-hx8k", family=Family.ICE40, luts=7680, ffs=7680, bram_blocks=32, bram=_ICE40_BRAM, dsps=0),
    Part(name="ice40-up5k", family=Family.ICE40, luts=5280, ffs=5280, bram_blocks=30, bram=_ICE40_BRAM, dsps=8,
         spram=4),
    Part(name="ecp5-25k", family=Family.ECP5, luts=24288, ffs=24288, bram_blocks=56, bram=_ECP5_BRAM, dsps=28),
    Part(name="ecp5-45k", family=Family.ECP5, luts=43848, ffs=43848, bram_blocks=108, bram=_ECP5_BRAM, dsps=72),
    Part(name="ecp5-85k", family=Family.ECP5, luts=83640, ffs=83640, bram_blocks=208, bram=_ECP5_BRAM, dsps=156),
)}


def part(name: str) -> Part:
    """The part called ``name``; ``ValueError`` (one line naming the parts) when there is none."""
    if name not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, not {name!r}")
    return PARTS[name]


@dataclass(frozen=True)
class Memory:
    """One memory: ``width`` x ``depth`` bits, a write enable per ``lane_bits`` (``width``: one).

    One synchronous read port and one write port on one clock (the engine's memories).
    """

    name: str
    width: int
    depth: int
    lane_bits: int

    def __post_init__(self) -> None:
        for field in ("width", "depth", "lane_bits"):
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{self.name}: {field} must be a positive integer, not {v!r}")
        if self.width % self.lane_bits:
            raise ValueError(f"{self.name}: lane_bits={self.lane_bits} does not divide width={self.width}")

    @property
    def lanes(self) -> int:
        return self.width // self.lane_bits


def engine_memories(config) -> tuple[Memory, ...]:
    """The engine's memories (:class:`hwsim.config.EngineConfig`): what ``rtl.engine.top`` builds.

    Activation region ``r``: ``act_words[r]`` words of ``cols`` lanes of
    ``act_bits`` (a write enable per lane); the weight buffer:
    ``weight_words`` words of ``rows * cols * bits`` (one write enable).
    """
    mems = [Memory(f"region{r}", config.act_word_bits, depth, config.act_bits)
            for r, depth in enumerate(config.act_words)]
    mems.append(Memory("wbuf", config.weight_word_bits, config.weight_words, config.weight_word_bits))
    return tuple(mems)


def _cell_cost(cell: RamCell, mem: Memory) -> tuple[float, int] | None:
    """(cost, cells) of the cheapest width mode of ``cell`` for ``mem`` (memory_libmap's handle_geom)."""
    lanes = mem.lanes
    wren = lanes if lanes > 1 else 1
    n = len(cell.widths)
    byte_log2 = n - 1 if cell.byte == 0 else max([i for i, w in enumerate(cell.widths) if cell.byte >= w], default=0)
    best = None
    for base in range(n):
        unit_log2 = min(base, cell.wr_modes[1], cell.rd_modes[1])
        if unit_log2 != base and best is not None:
            break
        # a write port narrower than its narrowest mode is emulated only from the byte width up
        if base < cell.wr_modes[0] and base < byte_log2:
            continue
        unit = cell.widths[unit_log2]
        byte = unit if cell.byte == 0 or cell.byte > unit else cell.byte
        swizzle = lanes * (-(-mem.lane_bits // byte) * byte)
        mult_a = -(-mem.depth // (1 << (cell.abits - base)))
        cells = -(-mult_a * swizzle // unit)
        cost = cell.cost * cells + 0.5 * (mult_a - 1) * mem.width
        if mult_a != 1:
            cost += 0.5 * mult_a * wren
        cost += 2  # the read port is not shared with the write port (score_emu 1, factor 2)
        if best is None or cost < best[0]:
            best = (cost, cells)
    return best


def memory_blocks(mem: Memory, part_: Part | str) -> int:
    """Block RAMs yosys infers for ``mem`` on ``part_`` (0: LUT RAM or flip-flops)."""
    p = part(part_) if isinstance(part_, str) else part_
    best_cost = math.floor(mem.width * mem.depth)  # flip-flops (logic_cost_ram 1 per bit, truncated)
    blocks = 0
    cands = ([p.bram.lutram] if p.bram.lutram is not None else []) + list(p.bram.lib)
    for cell in cands:
        got = _cell_cost(cell, mem)
        if got is not None and got[0] < best_cost:
            best_cost = got[0]
            blocks = got[1] if cell.kind == RamKind.BLOCK else 0
    return blocks


def bram_blocks(config, part_: Part | str) -> int:
    """Block RAMs the engine of ``config`` (:class:`~hwsim.config.EngineConfig`) takes on ``part_``."""
    return sum(memory_blocks(m, part_) for m in engine_memories(config))


def check_fits_bram(config, part_: Part | str, what: str = "engine") -> int:
    """:func:`bram_blocks`, or ``ValueError`` when it exceeds the part's block RAMs.

    The message is one line: ``engine needs 61 BRAM blocks (DP16KD), ecp5-25k has 56``.
    """
    p = part(part_) if isinstance(part_, str) else part_
    need = bram_blocks(config, p)
    if need > p.bram_blocks:
        raise ValueError(f"{what} needs {need} BRAM blocks ({p.bram_cell}), {p.name} has {p.bram_blocks}")
    return need
