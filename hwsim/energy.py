"""The energy of the network engine, from its exact counts and an energy table (:mod:`hwsim.tables`).

Energy is counted, not assumed (DESIGN §5): every activation/weight-buffer
access the engine model counts (:mod:`hwsim.engine`) is priced at the SRAM
energy of that memory's size, every stream beat as DRAM traffic, the PE
array per busy step by the widths of its terms, row trees and accumulators,
the vector unit per lane operation, the requant unit per output
(components :data:`ENGINE_COMPONENTS`; :func:`engine_energy` lists what is
counted and what is left out).  One PE term is a list of arithmetic units
(``(unit, width, count)``); width scaling lives in the table file
(:class:`hwsim.tables.WidthCost`).
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.compiler import Op, Unit
from hwsim.tables import EnergyTable
from quant.base.intops import PeKind, RequantMode

__all__ = [
    "ENGINE_COMPONENTS",
    "EngineEnergy",
    "EngineEnergyResult",
    "Placement",
    "engine_energy",
    "engine_unit",
    "engine_tree",
    "engine_term_bits",
    "engine_step_units",
    "engine_step_reg_bits",
    "vector_lane_bits",
    "requant_widths",
    "requant_units",
    "region_accesses",
]

#: Components of an engine energy breakdown (:class:`EngineEnergy`), in pJ.
ENGINE_COMPONENTS = ("act_sram_pj", "wbuf_sram_pj", "dram_pj", "pe_pj", "vector_pj", "requant_pj", "reg_pj")


@dataclass(frozen=True)
class EngineEnergy:
    """Energy of one engine operation (or of the run's host streams) in pJ, per component.

    ``act_sram_pj`` activation-region reads and writes, ``wbuf_sram_pj``
    weight-buffer reads and writes, ``dram_pj`` stream beats, ``pe_pj`` the
    PE array or multiplier unit (terms, row trees, accumulators),
    ``vector_pj`` the vector unit's lanes, ``requant_pj`` the shared requant
    unit, ``reg_pj`` the registers counted (:func:`engine_energy`).
    """

    act_sram_pj: float = 0.0
    wbuf_sram_pj: float = 0.0
    dram_pj: float = 0.0
    pe_pj: float = 0.0
    vector_pj: float = 0.0
    requant_pj: float = 0.0
    reg_pj: float = 0.0

    @property
    def total_pj(self) -> float:
        return sum(getattr(self, c) for c in ENGINE_COMPONENTS)

    def __add__(self, other: "EngineEnergy") -> "EngineEnergy":
        return EngineEnergy(*(getattr(self, c) + getattr(other, c) for c in ENGINE_COMPONENTS))

    def as_dict(self) -> dict:
        return {c: getattr(self, c) for c in ENGINE_COMPONENTS}


@dataclass(frozen=True)
class Placement:
    """The activation region of every operation's inputs and output (the compiler's memory map).

    ``input_region`` holds the image (the ``x`` beats are written there);
    ``srcs[op]`` are the regions operation ``op`` reads (two for a residual
    add, its reads split evenly), ``dst[op]`` the region it writes (None for
    the logits, which leave on ``o``).
    """

    input_region: int
    srcs: dict
    dst: dict

    @classmethod
    def from_program(cls, program) -> "Placement":
        """From a compiled program (:class:`hwsim.compiler.Program`)."""
        t = program.tensors
        return cls(input_region=t[program.input].region,
                   srcs={op.name: tuple(t[s].region for s in op.srcs) for op in program.ops},
                   dst={op.name: t[op.dst].region for op in program.ops})


@dataclass(frozen=True)
class EngineEnergyResult:
    """:func:`engine_energy`: per operation (aligned with the estimate's ``layers``), the host
    streams (``prog`` and ``x`` beats, not part of any operation), and the run's total (one image).
    ``load`` is a resident engine's load phase (:class:`hwsim.engine.LoadPhase`), apart from the
    image's total: it is paid once per weight load, not per image."""

    ops: tuple
    streams: EngineEnergy
    memories: dict
    load: EngineEnergy | None = None

    @property
    def total(self) -> EngineEnergy:
        out = self.streams
        for e in self.ops:
            out = out + e
        return out


def _cost(units) -> float:
    return sum(n * unit.energy(*(w if isinstance(w, tuple) else (w,))) for unit, w, n in units)


def engine_unit(cfg, unit: Unit) -> tuple[PeKind, int, int]:
    """``(pe, rows, acc_bits)`` of the array that runs a conv on ``unit`` (``Unit.ADDER`` or ``Unit.MULT``):
    the main array, or the adder engine's multiplier unit (``mult_rows``, ``mult_acc_bits``)."""
    if unit == Unit.ADDER:
        return PeKind.ADDER, cfg.rows, cfg.acc_bits
    if cfg.pe == PeKind.ADDER:
        return PeKind.MULT, cfg.mult_rows, cfg.mult_acc_bits
    return PeKind.MULT, cfg.rows, cfg.acc_bits


def engine_tree(cols: int, term_bits: int, stages: int) -> tuple[list, list]:
    """One row's adder tree: the input width of each of its ``cols - 1`` two-input adds, and the
    widths of its pipeline registers (``stages - 1`` register stages, one per ``ceil(levels /
    stages)`` pairwise levels, as :class:`rtl.engine.array.ChannelArray` builds it; a sum is one
    bit wider than its wider input)."""
    level = [term_bits] * cols
    adds: list = []
    regs: list = []

    def pairwise(row):
        out = []
        for k in range(0, len(row) - 1, 2):
            adds.append(max(row[k], row[k + 1]))
            out.append(max(row[k], row[k + 1]) + 1)
        if len(row) % 2:
            out.append(row[-1])
        return out

    levels = (cols - 1).bit_length()
    per = -(-levels // stages) if levels else 0
    for _ in range(stages - 1):
        for _ in range(per):
            level = pairwise(level)
        regs += level
    while len(level) > 1:
        level = pairwise(level)
    return adds, regs


def engine_term_bits(cfg, pe: PeKind) -> int:
    """Width of one PE's term register: ``bits`` for ``|x - w|``, ``2*bits + 1`` for ``x * w``
    (``x`` signed ``bits + 1``, ``w`` signed ``bits``)."""
    return cfg.bits if pe == PeKind.ADDER else 2 * cfg.bits + 1


def engine_step_units(cfg, unit: Unit, table: EnergyTable) -> list:
    """The arithmetic of one step of ``unit`` as ``(unit, width, count)`` triples.

    ``rows x cols`` PE terms (adder: a ``(bits+1)``-bit subtract and the
    absolute value, ``abs_in_adds`` more ``(bits+1)``-bit adds;
    multiplier: a ``(bits+1) x bits`` multiply), each row's
    tree (:func:`engine_tree`) and its ``acc_bits`` accumulate.  A step of a
    partial tile or at a padded position runs the whole array all the same.
    """
    pe, rows, acc = engine_unit(cfg, unit)
    cols = cfg.cols
    if pe == PeKind.ADDER:
        out = [(table.add, cfg.bits + 1, rows * cols * (1.0 + table.abs_in_adds))]
    else:
        out = [(table.mult, (cfg.bits + 1, cfg.bits), float(rows * cols))]
    adds, _ = engine_tree(cols, engine_term_bits(cfg, pe), cfg.tree_stages)
    out += [(table.add, w, float(rows)) for w in adds]
    out.append((table.add, acc, float(rows)))
    return out


def engine_step_reg_bits(cfg, unit: Unit) -> int:
    """Register bits one step of ``unit`` writes: every PE's term register, the row trees'
    pipeline registers and the row accumulators."""
    pe, rows, acc = engine_unit(cfg, unit)
    tb = engine_term_bits(cfg, pe)
    _, regs = engine_tree(cfg.cols, tb, cfg.tree_stages)
    return rows * (cfg.cols * tb + sum(regs) + acc)


def vector_lane_bits(cfg) -> int:
    """Width of a vector-unit lane's accumulator (:class:`rtl.engine.vector.VectorUnit` ``sum_shape``)."""
    return cfg.act_bits + 1 + (cfg.max_k - 1).bit_length()


def requant_widths(cfg) -> dict:
    """Datapath widths of the shared requant unit (:class:`rtl.engine.requant.SerialRequant`):
    ``a_bits`` (the value requantised), ``b_bits`` (the add's second code), ``prod_bits``,
    ``sum_bits``."""
    a = max(cfg.acc_bits + 1, cfg.mult_acc_bits, vector_lane_bits(cfg))
    prod = a + cfg.mult_bits
    return {"a_bits": a, "b_bits": cfg.act_bits + 1, "prod_bits": prod,
            "sum_bits": max(prod, cfg.n_bits) + 2}


def requant_units(cfg, mode: RequantMode, op: Op, table: EnergyTable) -> list:
    """The arithmetic of one requant output as ``(unit, width, count)`` triples.

    Fixed point, ``clamp((m0*a + m1*b + n) >> shift, lo, hi)``: an
    ``a_bits x mult_bits`` multiply, for a residual add also the
    ``b_bits x mult_bits`` one (elsewhere ``m1 = 0``: not charged), two
    ``sum_bits`` adds and two ``sum_bits`` compares (the clamp; the shift is
    wiring and a mux, not charged).  Thresholds: ``2**bits - 1`` compares of
    ``thr_bits`` (the count of the hits is not charged).  A compare costs an
    add of its width.
    """
    w = requant_widths(cfg)
    if mode == RequantMode.THRESHOLD:
        return [(table.add, cfg.thr_bits, float(cfg.threshold_count))]
    out = [(table.mult, (w["a_bits"], cfg.mult_bits), 1.0)]
    if op == Op.ADD:
        out.append((table.mult, (w["b_bits"], cfg.mult_bits), 1.0))
    out.append((table.add, w["sum_bits"], 4.0))
    return out


def region_accesses(layer, placement: Placement | None = None) -> dict:
    """``{region: (reads, writes)}`` of one engine operation (:class:`~hwsim.engine.EngineLayer`):
    its ``act_reads`` split evenly over the regions it reads (two for a residual add, one word of
    each per step), its ``act_writes`` in the region it writes.  Without a placement everything is
    charged to region 0 (regions of one depth cost the same)."""
    if placement is None:
        srcs, dst = (0,), 0
    else:
        srcs, dst = placement.srcs[layer.name], placement.dst[layer.name]
    if layer.act_reads % len(srcs):
        raise ValueError(f"operation {layer.name}: {layer.act_reads} reads do not split over {len(srcs)} inputs")
    out: dict = {}
    for r in srcs:
        n_r, n_w = out.get(r, (0, 0))
        out[r] = (n_r + layer.act_reads // len(srcs), n_w)
    if layer.act_writes:
        if dst is None:
            raise ValueError(f"operation {layer.name} writes {layer.act_writes} words but has no region")
        n_r, n_w = out.get(dst, (0, 0))
        out[dst] = (n_r, n_w + layer.act_writes)
    return out


def engine_energy(est, table: EnergyTable, *, prog_beat_bits: int,
                  placement: Placement | None = None) -> EngineEnergyResult:
    """Price every access the engine model counts (:class:`hwsim.engine.EngineEstimate`) with ``table``.

    Per operation (``l`` its :class:`~hwsim.engine.EngineLayer`):

    * activation SRAM: ``act_reads`` and ``act_writes`` words of ``cols *
      act_bits`` bits, at :meth:`EnergyTable.sram_pj_per_bit_of` the size of
      the region read or written (``placement``; without it every region must
      be equally deep);
    * weight SRAM: ``wbuf_reads + wbuf_writes`` words of ``weight_word_bits`` at
      the weight buffer's size;
    * DRAM: ``w_beats`` of ``weight_word_bits`` and ``o_beats`` of ``out_bits + 1``
      bits at ``dram_pj_per_bit``;
    * PE arithmetic (conv): ``busy_cycles`` x :func:`engine_step_units` of the
      unit that runs it (multiply layers of the adder engine on its
      multiplier unit);
    * vector unit (pools): ``busy_cycles`` x ``cols`` lane operations of
      :func:`vector_lane_bits` (a max is charged as a compare, i.e. an add);
      the residual add's arithmetic is its requant;
    * requant: ``requant_ops`` x :func:`requant_units` of the layer's form;
    * registers: per conv step :func:`engine_step_reg_bits`, one
      accumulator-wide shadow entry per requant output, the requant
      parameters (``param_writes`` beats, from ``w`` or the store) into the
      parameter bank; per pool step the ``cols`` lane accumulators.

    Load phase (``load``, resident weights only): its ``w`` beats (DRAM),
    their writes into the weight store and its one ``prog`` beat (DRAM and
    the descriptor registers).

    Host streams (``streams``): ``x_beats`` (DRAM and their writes into the
    input's region) and ``prog_beats`` of ``prog_beat_bits`` (DRAM and the
    descriptor registers).  Not counted: the controller, address generator,
    valid/handshake flags, the requant and vector pipelines' own registers,
    the memories' output latches, clock tree and leakage.

    Raises
    ------
    ValueError
        The table has no SRAM size scaling, or the regions differ in depth and
        no placement is given.
    """
    cfg = est.config
    if not table.has_sram_scaling:
        table.sram_pj_per_bit_of(1)  # raises the table's message
    if placement is None and len(set(cfg.act_words)) != 1:
        raise ValueError(f"activation regions of different depths {list(cfg.act_words)} need the "
                         "placement of each operation's tensors (Placement.from_program)")
    aw, ww = cfg.act_word_bits, cfg.weight_word_bits
    act_pj = [table.sram_pj_per_bit_of(d * aw / 8) * aw for d in cfg.act_words]
    wbuf_pj = table.sram_pj_per_bit_of(cfg.weight_words * ww / 8) * ww
    dram = table.dram_pj_per_bit
    reg = table.reg_pj_per_bit
    out = []
    for l in est.layers:
        act = sum((n_r + n_w) * act_pj[r] for r, (n_r, n_w) in region_accesses(l, placement).items())
        requant = l.requant_ops * _cost(requant_units(cfg, l.mode, l.op, table)) if l.requant_ops else 0.0
        if l.op == Op.CONV:
            pe = l.busy_cycles * _cost(engine_step_units(cfg, l.unit, table))
            vec = 0.0
            acc = engine_unit(cfg, l.unit)[2]
            reg_bits = (l.busy_cycles * engine_step_reg_bits(cfg, l.unit) + l.requant_ops * acc
                        + l.param_writes * ww)
        else:
            pe = 0.0
            lanes = 0 if l.op == Op.ADD else l.busy_cycles * cfg.cols
            vec = lanes * table.add.energy(vector_lane_bits(cfg))
            reg_bits = lanes * vector_lane_bits(cfg)
        out.append(EngineEnergy(
            act_sram_pj=act,
            wbuf_sram_pj=(l.wbuf_reads + l.wbuf_writes) * wbuf_pj,
            dram_pj=(l.w_beats * ww + l.o_beats * (cfg.out_bits + 1)) * dram,
            pe_pj=pe, vector_pj=vec, requant_pj=requant, reg_pj=reg_bits * reg,
        ))
    inp = 0 if placement is None else placement.input_region
    streams = EngineEnergy(
        act_sram_pj=est.x_beats * act_pj[inp],
        dram_pj=(est.x_beats * aw + est.prog_beats * prog_beat_bits) * dram,
        reg_pj=est.prog_beats * prog_beat_bits * reg,
    )
    load = None
    if est.load is not None:
        ld = est.load
        load = EngineEnergy(wbuf_sram_pj=ld.wbuf_writes * wbuf_pj,
                            dram_pj=(ld.w_beats * ww + ld.prog_beats * prog_beat_bits) * dram,
                            reg_pj=ld.prog_beats * prog_beat_bits * reg)
    memories = {f"R{r}": {"words": d, "word_bits": aw, "bytes": d * aw // 8, "pj_per_access": act_pj[r]}
                for r, d in enumerate(cfg.act_words)}
    memories["weights"] = {"words": cfg.weight_words, "word_bits": ww, "bytes": cfg.weight_words * ww // 8,
                           "pj_per_access": wbuf_pj}
    return EngineEnergyResult(ops=tuple(out), streams=streams, memories=memories, load=load)
