"""The drain: the units' shadow entries into the requant unit, one per cycle (DESIGN §4b).

A channel array's result (``adder``/``mult``: ``rows`` totals of one pixel)
or the vector unit's (``vec``: ``cols`` lanes of one item) waits in the unit's
shadow register; the drain sends its entries in order on ``o`` (a
:func:`~rtl.engine.requant.requant_entry_layout` stream into the requant
unit) with the operation's requant constants: a conv row's from the parameter
bank of its tile (``banks``, two, alternating by tile), a vector operation's
from the descriptor (``desc``).  A max pool's item needs no requant: it leaves
whole on ``pool`` (the item's lanes, ``act_bits`` each) in the cycle it is
valid.  The shadow is released (its ``ready``) in the cycle of its last entry.

The entries of an item: a conv pixel's ``min(rows_u, out_c - o0)`` rows
(``o0`` the tile's first channel; with pixel tiles, ``config.pixel_tile`` >
1, an item is a pixel tile and its entries go pixel by pixel, each pixel's
rows in order, :mod:`hwsim.engine` rule 4), an average pool's or add's
``lanes_of(g)`` lanes, a max pool's one word.  ``done`` (the writer's: the
operation's last output is written) returns the counters to zero.  The flag
of an item's last entry is a register computed from ``desc`` and the
counters, so ``desc`` holds the operation a cycle before its first entry
arrives (in the engine the units' latency sees to it).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.compiler import Op, Unit
from hwsim.config import EngineConfig
from hwsim.descriptor import DIM_BITS, addr_bits
from quant.base.intops import RequantMode
from rtl.construct import ConfigChecked
from rtl.engine.array import array_total_layout
from rtl.engine.controller import bank_bits, engine_units, use_mult
from rtl.engine.layouts import desc_layout, is_op
from rtl.engine.requant import requant_entry_layout
from rtl.engine.vector import vector_shadow_layout
from rtl.engine.writer import lanes_of

__all__ = ["Drain", "drain_ref"]


class Drain(ConfigChecked, wiring.Component):
    """The drain of an engine of ``config`` (module docstring)."""

    def __init__(self, *, config: EngineConfig):
        self.config = config
        cfg = config
        super().__init__({
            "desc": In(desc_layout(cfg)),
            "banks": In(data.ArrayLayout(unsigned(bank_bits(cfg)), 2)),
            **{unit.value: In(stream.Signature(array_total_layout(cfg, unit))) for unit in engine_units(cfg)},
            "vec": In(stream.Signature(vector_shadow_layout(cfg))),
            "o": Out(stream.Signature(requant_entry_layout(cfg))),
            "pool": Out(stream.Signature(data.ArrayLayout(unsigned(cfg.act_bits), cfg.cols), always_ready=True)),
            "done": In(1),
            # a conv tile's last entry taken: the controller's bank wait (hwsim.engine rule 2)
            "tile_drained": Out(1),
        })

    def elaborate(self, platform):  # noqa: C901 - the entry counters and the row's constants, read top to bottom
        m = Module()
        cfg = self.config
        cols, ab = cfg.cols, cfg.act_bits
        A = addr_bits(cfg)
        d = self.desc
        is_conv, is_max, is_add = is_op(d, Op.CONV), is_op(d, Op.MAXPOOL), is_op(d, Op.ADD)
        mult = use_mult(cfg, d)
        arrays = {unit: getattr(self, unit.value) for unit in engine_units(cfg)}
        vec = self.vec

        sv = Signal()
        dr = Signal(DIM_BITS)
        dt = Signal(DIM_BITS)
        do0 = Signal(DIM_BITS)
        dp = Signal(A)
        dg = Signal(DIM_BITS)
        tp = cfg.pixel_tile
        if tp > 1:
            dq = Signal(range(tp))  # the entry's pixel within its pixel tile

        def entries_of(o0, g, name):
            """The shadow entries of the item at first channel ``o0`` (conv) or group ``g`` (pools, add)."""
            rem = Signal(signed(DIM_BITS + 2), name=f"rem_{name}")
            n = Signal(DIM_BITS, name=name)
            m.d.comb += rem.eq(d.out_c - o0)
            with m.If(is_conv):
                m.d.comb += n.eq(Mux(rem < d.rows_u, rem, d.rows_u))
            with m.Elif(is_max):
                m.d.comb += n.eq(1)
            with m.Else():
                m.d.comb += n.eq(lanes_of(m, d, cols, g))
            return n

        # the counters after the item's last entry (from registers only)
        tile_end = ~is_add & (dp == d.pixels - 1)
        dg_new = Signal(DIM_BITS)
        do0_new = Signal(DIM_BITS)
        m.d.comb += [dg_new.eq(Mux(is_add, Mux(dg == d.in_g - 1, 0, dg + 1), Mux(tile_end, dg + 1, dg))),
                     do0_new.eq(Mux(tile_end, do0 + d.rows_u, do0))]
        n_drain = entries_of(do0, dg, "n_drain")
        n_next = entries_of(do0_new, dg_new, "n_next")
        # dr_last == (dr == n_drain - 1), kept in a register: its compares read registers only, so the
        # drain's handshake (shadow_ready, the array's o.ready) is two gates from flip-flops
        dr_last = Signal()
        shadow_ready = Signal()
        for unit, arr in arrays.items():
            sel = (mult if unit == Unit.MULT else ~mult) & is_conv
            with m.If(sel):
                m.d.comb += [sv.eq(arr.valid), arr.ready.eq(shadow_ready)]
        with m.If(~is_conv):
            m.d.comb += [sv.eq(vec.valid), vec.ready.eq(shadow_ready)]
        e = self.o.payload
        m.d.comb += [e.shift.eq(d.shift), e.lo.eq(d.lo), e.hi.eq(d.hi)]
        with m.If(is_conv):
            for unit, arr in arrays.items():
                sel = (mult if unit == Unit.MULT else ~mult)
                with m.If(sel):
                    if tp == 1:
                        with m.Switch(dr):
                            for r in range(len(arr.payload)):
                                with m.Case(r):
                                    m.d.comb += e.a.eq(arr.payload[r])
                    else:
                        with m.Switch(dq):
                            for k in range(tp):
                                with m.Case(k):
                                    with m.Switch(dr):
                                        for r in range(len(arr.payload[k])):
                                            with m.Case(r):
                                                m.d.comb += e.a.eq(arr.payload[k][r])
            bsel = Signal(self.banks[0].shape())
            m.d.comb += bsel.eq(Mux(dt[0], self.banks[1], self.banks[0]))
            # row dr's fields: constant slices selected by a case on dr (no shifter)
            with m.Switch(dr):
                for r in range(cfg.rows):
                    with m.Case(r):
                        if RequantMode.FIXED in cfg.requant:
                            rb = cfg.param_row_bits(RequantMode.FIXED)
                            if (r + 1) * rb <= len(bsel):
                                base = r * rb
                                m.d.comb += [e.m0.eq(bsel[base : base + cfg.mult_bits].as_signed()),
                                             e.n.eq(bsel[base + cfg.mult_bits : base + rb].as_signed())]
                        if RequantMode.THRESHOLD in cfg.requant:
                            rb = cfg.param_row_bits(RequantMode.THRESHOLD)
                            if (r + 1) * rb <= len(bsel):
                                base = r * rb
                                tb = cfg.thr_bits
                                m.d.comb += e.neg.eq(bsel[base + cfg.threshold_count * tb])
                                for t in range(cfg.threshold_count):
                                    m.d.comb += e.thr[t].eq(bsel[base + t * tb : base + (t + 1) * tb])
            if RequantMode.THRESHOLD in cfg.requant:
                m.d.comb += [e.threshold.eq(d.threshold), e.top.eq(d.top)]
        with m.Else():
            with m.Switch(dr):
                for n in range(cols):
                    with m.Case(n):
                        m.d.comb += [e.a.eq(vec.payload.a[n]), e.b.eq(vec.payload.b[n])]
            m.d.comb += [e.m0.eq(d.m0), e.m1.eq(d.m1), e.n.eq(d.n)]
        m.d.comb += self.o.valid.eq(sv & ~is_max)
        # a max pool's item, whole, to the writer
        m.d.comb += self.pool.valid.eq(is_max & sv)
        for n in range(cols):
            m.d.comb += self.pool.payload[n].eq(vec.payload.a[n][:ab])
        drain_step = Signal()  # the shadow's current entry is taken in this cycle
        m.d.comb += drain_step.eq(Mux(is_max, sv, self.o.valid & self.o.ready))
        m.d.sync += dr_last.eq(dr + 1 == n_drain)
        with m.If(drain_step):
            with m.If(dr_last):
                if tp == 1:
                    m.d.comb += shadow_ready.eq(1)
                else:
                    # a conv pixel's last row: the shadow is released after the pixel tile's last pixel
                    tile_last = ~is_conv | (dq == tp - 1) | (dp == d.pixels - 1)
                    m.d.comb += shadow_ready.eq(tile_last)
                    m.d.sync += dq.eq(Mux(tile_last, 0, dq + 1))
                m.d.sync += [dr.eq(0), dr_last.eq(n_next == 1), dg.eq(dg_new), do0.eq(do0_new)]
                with m.If(tile_end):
                    m.d.sync += [dp.eq(0), dt.eq(dt + 1)]
                with m.Elif(~is_add):
                    m.d.sync += dp.eq(dp + 1)
            with m.Else():
                m.d.sync += [dr.eq(dr + 1), dr_last.eq(dr + 2 == n_drain)]
        with m.If(self.done):
            m.d.sync += [dr.eq(0), dt.eq(0), do0.eq(0), dp.eq(0), dg.eq(0)]
            if tp > 1:
                m.d.sync += dq.eq(0)
        m.d.comb += self.tile_drained.eq(drain_step & dr_last & tile_end & is_conv)
        return m


def drain_ref(config: EngineConfig, desc: dict, banks, items) -> list:
    """What :class:`Drain` sends for descriptor ``desc`` (a dict of its fields) and parameter ``banks`` (two
    integers of ``bank_bits``) when the unit delivers ``items`` in order: its ``o`` entries (dicts of
    :func:`~rtl.engine.requant.requant_entry_layout` fields), or for a max pool its ``pool`` items.

    ``items`` are a channel array's results (``rows`` totals; with pixel
    tiles, one per pixel tile: ``pixel_tile`` lists of ``rows`` totals) for a
    conv, else the vector unit's (dicts of ``a`` and ``b``, ``cols`` lanes each).
    Parameter row ``r`` of a bank holds its fields at ``r * param_row_bits``
    (:meth:`hwsim.config.EngineConfig.param_row_bits`, row 0 in the low bits).
    """
    cols, op = config.cols, desc["op"]

    def field(word, lo, width, sgn):
        v = (word >> lo) & ((1 << width) - 1)
        return v - (1 << width) if sgn and v >> (width - 1) else v

    common = {"shift": desc.get("shift", 0), "lo": desc.get("lo", 0), "hi": desc.get("hi", 0)}
    out = []
    it = iter(items)
    if op == 0:
        tp = config.pixel_tile
        for t in range(desc["tiles"]):
            bank = banks[t % 2]
            pixels = []  # each pixel's row totals
            for q0 in range(0, desc["pixels"], tp):
                item = next(it)
                pixels += [item[k] if tp > 1 else item for k in range(min(tp, desc["pixels"] - q0))]
            for totals in pixels:
                for r in range(min(desc["rows_u"], desc["out_c"] - t * desc["rows_u"])):
                    e = dict(common, a=totals[r])
                    if RequantMode.FIXED in config.requant:
                        rb = config.param_row_bits(RequantMode.FIXED)
                        if (r + 1) * rb <= bank_bits(config):
                            e.update(m0=field(bank, r * rb, config.mult_bits, True),
                                     n=field(bank, r * rb + config.mult_bits, rb - config.mult_bits, True))
                    if RequantMode.THRESHOLD in config.requant:
                        rb, tb = config.param_row_bits(RequantMode.THRESHOLD), config.thr_bits
                        tc = config.threshold_count
                        if (r + 1) * rb <= bank_bits(config):
                            e.update(thr=[field(bank, r * rb + k * tb, tb, False) for k in range(tc)],
                                     neg=field(bank, r * rb + tc * tb, 1, False))
                        e.update(threshold=desc.get("threshold", 0), top=desc.get("top", 0))
                    out.append(e)
        return out
    pixels, in_g = desc["pixels"], desc["in_g"]
    if op == 3:  # add: (pixel, group) order; pools: (group, pixel)
        groups = [g for _ in range(pixels) for g in range(in_g)]
    else:
        groups = [g for g in range(in_g) for _ in range(pixels)]
    for g in groups:
        item = next(it)
        if op == 1:
            out.append([v & ((1 << config.act_bits) - 1) for v in item["a"]])
            continue
        for n in range(min(cols, desc["in_c"] - g * cols)):
            out.append(dict(common, a=item["a"][n], b=item["b"][n], m0=desc.get("m0", 0), m1=desc.get("m1", 0),
                            n=desc.get("n", 0)))
    return out
