"""The deployable engine: memories, units, controller, writer and (``config.trace``) tracer (DESIGN §4b).

The tracer is its own component (:class:`~rtl.engine.tracer.Tracer`); the
controller (the operation FSM, the issue side, the drain into the requant
unit) and the writer (requant outputs gathered into words, or the ``o``
stream) are still one ``elaborate`` here.

:class:`EngineCore` is the engine of :mod:`rtl.engine.top` without its
observers: it has the four streams and one more interface, ``events``
(:func:`events_signature`), which says in every cycle what happened in it
(a beat taken on a stream, a memory read or write, a busy unit cycle, a
requant operation, an operation's end).  Nothing inside the core reads
``events``; the counters (:class:`~rtl.engine.counters.Counters`) of the
verification build count them, and the deployable build leaves them
unconnected, so synthesis removes them.

The schedule is the cycle contract of :mod:`hwsim.engine` (see
:mod:`rtl.engine.top` for the streams and the stall rule).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.compiler import Unit
from hwsim.config import EngineConfig
from hwsim.descriptor import DIM_BITS, addr_bits, descriptor_fields
from quant.base.intops import PeKind, RequantMode
from rtl.construct import Checked
from rtl.engine.addrgen import MUTATIONS as ADDRGEN_MUTATIONS
from rtl.engine.addrgen import AddrGen
from rtl.engine.array import ChannelArray
from rtl.engine.requant import SerialRequant
from rtl.engine.tracer import Tracer
from rtl.engine.vector import VectorUnit

__all__ = ["EVENTS", "EngineCore", "desc_layout", "events_signature", "struct_layout"]

#: The ``events`` members that count (name -> width): the increment of the counter of the same name in this cycle.
EVENTS = {"busy_cycles": 1, "act_reads": 2, "act_writes": 1, "wbuf_reads": 1, "wbuf_writes": 1, "w_beats": 1,
          "o_beats": 1, "requant_ops": 1, "prog_beats": 1, "x_beats": 1}


def struct_layout(fields: dict) -> data.StructLayout:
    """The Amaranth layout of hwsim's ``name -> (width, signed)`` fields (nested dicts nest)."""
    return data.StructLayout({name: struct_layout(f) if isinstance(f, dict) else (signed if f[1] else unsigned)(f[0])
                              for name, f in fields.items()})


def desc_layout(config: EngineConfig) -> data.StructLayout:
    """The ``prog`` payload: one engine operation (:func:`hwsim.descriptor.descriptor_fields`)."""
    return struct_layout(descriptor_fields(config))


def events_signature(max_ops: int) -> wiring.Signature:
    """The core's ``events`` (all ``Out``): :data:`EVENTS`, ``op_done`` (an operation's last event is in this
    cycle) and ``op_index`` (the current operation; at least one bit, a 0-bit port reads as X in Icarus)."""
    members = {name: Out(width) for name, width in EVENTS.items()}
    members.update(op_done=Out(1), op_index=Out(range(max(2, max_ops))))
    return wiring.Signature(members)


def check_engine_args(config, max_ops, mutation) -> None:
    """Refuse a bad ``config``, ``max_ops`` or ``mutation`` (one line naming the argument)."""
    if mutation not in ADDRGEN_MUTATIONS:
        raise ValueError(f"mutation must be one of {', '.join(map(str, ADDRGEN_MUTATIONS))}, not {mutation!r}")
    if not isinstance(config, EngineConfig):
        raise ValueError(f"config must be an EngineConfig, not {type(config).__name__}")
    if isinstance(max_ops, bool) or not isinstance(max_ops, int) or not 1 <= max_ops <= 256:
        raise ValueError(f"max_ops must be an integer in 1..256, not {max_ops!r}")


class EngineCore(Checked, wiring.Component):
    """The deployable engine (module docstring); the arguments are :class:`~rtl.engine.top.Engine`'s."""

    @classmethod
    def check(cls, *, config: EngineConfig, max_ops: int = 64, mutation: str | None = None) -> None:
        """Refuse a bad argument (one line naming it) before the component exists."""
        check_engine_args(config, max_ops, mutation)

    def __init__(self, *, config: EngineConfig, max_ops: int = 64, mutation: str | None = None):
        self.config = config
        self.max_ops = max_ops
        self.mutation = mutation
        self.desc_layout = desc_layout(config)
        super().__init__({
            "prog": In(stream.Signature(self.desc_layout)),
            "w": In(stream.Signature(unsigned(config.weight_word_bits))),
            "x": In(stream.Signature(unsigned(config.act_word_bits))),
            "o": Out(stream.Signature(signed(config.out_bits + 1))),
            "events": Out(events_signature(max_ops)),
        })

    def elaborate(self, platform):  # noqa: C901 - one controller and writer, read top to bottom
        m = Module()
        cfg = self.config
        cols, ab, bits = cfg.cols, cfg.act_bits, cfg.bits
        A = addr_bits(cfg)

        # --- memories: the activation regions and the weight buffer ---
        rps, wps = [], []
        for r, depth in enumerate(cfg.act_words):
            mem = memory.Memory(shape=unsigned(cols * ab), depth=depth, init=[])
            m.submodules[f"region{r}"] = mem
            rps.append(mem.read_port())
            wps.append(mem.write_port(granularity=ab))
        wmem = memory.Memory(shape=unsigned(cfg.weight_word_bits), depth=cfg.weight_words, init=[])
        m.submodules.wbuf = wmem
        wrp, wwp = wmem.read_port(), wmem.write_port()

        # --- units ---
        m.submodules.ag = ag = AddrGen(addr_bits=A, dim_bits=DIM_BITS, mutation=self.mutation)
        arrays = {}
        if cfg.pe == PeKind.ADDER:
            m.submodules.adder = arrays[Unit.ADDER] = ChannelArray(config=cfg, unit=Unit.ADDER)
        if cfg.pe == PeKind.MULT or cfg.mult_rows:
            m.submodules.mult = arrays[Unit.MULT] = ChannelArray(config=cfg, unit=Unit.MULT)
        m.submodules.vec = vec = VectorUnit(config=cfg)
        m.submodules.rq = rq = SerialRequant(config=cfg)

        # --- the program, streamed: one descriptor register, the current operation ---
        cur = Signal(range(max(2, self.max_ops)))
        d = Signal(self.desc_layout, reset_less=True)
        is_conv, is_max, is_avg, is_add = (d.op == k for k in range(4))
        is_pool = is_max | is_avg
        if cfg.pe == PeKind.MULT:
            use_mult = Const(1)
        elif cfg.mult_rows:
            use_mult = d.mult
        else:
            use_mult = Const(0)

        # --- events: what the counters (rtl.engine.counters) count, this cycle ---
        ev = self.events

        def bump(name, by=1):
            m.d.comb += getattr(ev, name).eq(by)

        def lanes_of(group):
            """Lanes of channel group ``group`` of the source: min(cols, in_c - group*cols)."""
            rem = Signal(signed(DIM_BITS + 8), name="lanes_rem")
            m.d.comb += rem.eq(d.in_c - group * cols)
            return Mux(rem < cols, rem, cols)

        # --- control ---
        xj = Signal(A)
        lc = Signal(DIM_BITS)
        it = Signal(DIM_BITS)  # issue side: tile (conv) or channel-group pass (pool)
        io0 = Signal(DIM_BITS)  # issue side: the tile's first output channel
        since = Signal(8)
        need = Signal(DIM_BITS)
        done_op = Signal()
        bank = [Signal(max(1, _bank_bits(cfg)), name=f"bank{k}", reset_less=True) for k in range(2)]
        ag_fire = Signal()
        m.d.comb += [ag.cmd.payload.eq(d.ag), ag_fire.eq(ag.o.valid & ag.o.ready)]
        rem_issue = Signal(signed(DIM_BITS + 2))
        rows_issue = Signal(DIM_BITS)
        m.d.comb += [rem_issue.eq(d.out_c - io0), rows_issue.eq(Mux(rem_issue < d.rows_u, rem_issue, d.rows_u))]
        reset_op = Signal()  # the next operation starts in the next cycle

        op_end = Signal()  # the operation's last event (its last write, o beat or trace beat)
        trace_end = Signal()
        with m.FSM() as fsm:
            with m.State("FETCH"):
                # operation cur's descriptor (cycle contract rule 1); operation 0 then takes the image
                m.d.comb += self.prog.ready.eq(1)
                with m.If(self.prog.valid):
                    m.d.sync += d.eq(self.prog.payload)
                    bump("prog_beats")
                    m.d.comb += reset_op.eq(1)
                    with m.If(cur == 0):
                        m.next = "XLOAD"
                    with m.Elif(self.prog.payload.op == 0):
                        m.next = "LOAD"
                    with m.Else():
                        m.next = "VCMD"
            with m.State("XLOAD"):
                m.d.comb += self.x.ready.eq(1)
                with m.If(self.x.valid):
                    bump("x_beats")
                    for r in range(cfg.regions):
                        with m.If(d.src0 == r):
                            m.d.comb += [wps[r].addr.eq(xj), wps[r].data.eq(self.x.payload),
                                         wps[r].en.eq(Const(-1, cols))]
                    m.d.sync += xj.eq(xj + 1)
                    with m.If(xj == d.in_words - 1):
                        m.d.sync += xj.eq(0)
                        with m.If(d.op == 0):
                            m.next = "LOAD"
                        with m.Else():
                            m.next = "VCMD"
            with m.State("LOAD"):
                m.d.comb += self.w.ready.eq(1)
                with m.If(self.w.valid):
                    bump("w_beats")
                    m.d.sync += lc.eq(lc + 1)
                    with m.If(lc < d.steps):
                        m.d.comb += [wwp.addr.eq(lc), wwp.data.eq(self.w.payload), wwp.en.eq(1)]
                        bump("wbuf_writes")
                    with m.Else():
                        for k in range(2):
                            with m.If(it[0] == k):
                                m.d.sync += bank[k].word_select((lc - d.steps)[:DIM_BITS], cfg.weight_word_bits).eq(self.w.payload)
                    with m.If(lc == d.steps + d.param_beats - 1):
                        m.d.comb += ag.cmd.valid.eq(1)
                        m.d.sync += lc.eq(0)
                        m.next = "ISSUE"
            with m.State("VCMD"):
                m.d.comb += ag.cmd.valid.eq(1)
                m.next = "ISSUE"
            with m.State("ISSUE"):
                with m.If(ag_fire & ag.o.payload.end):
                    with m.If(is_conv):
                        with m.If(it == d.tiles - 1):
                            m.next = "DRAIN"
                        with m.Else():
                            m.d.sync += [it.eq(it + 1), io0.eq(io0 + d.rows_u)]
                            m.next = "LOAD"
                    with m.Elif(is_pool & (it != d.in_g - 1)):
                        m.d.comb += [ag.cmd.valid.eq(1), ag.cmd.payload.base0.eq(d.ag.base0 + it + 1)]
                        m.d.sync += it.eq(it + 1)
                    with m.Else():
                        m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(done_op):
                    if cfg.trace:
                        with m.If(d.last):
                            m.d.sync += cur.eq(0)
                            m.d.comb += op_end.eq(1)
                            m.next = "FETCH"
                        with m.Else():
                            m.next = "TRACE"
                    else:
                        m.d.sync += cur.eq(Mux(d.last, 0, cur + 1))
                        m.d.comb += op_end.eq(1)
                        m.next = "FETCH"
            if cfg.trace:
                with m.State("TRACE"):
                    with m.If(trace_end):
                        m.d.sync += cur.eq(cur + 1)
                        m.d.comb += op_end.eq(1)
                        m.next = "FETCH"
        with m.If(reset_op):
            m.d.sync += [lc.eq(0), it.eq(0), io0.eq(0), need.eq(0)]

        # --- issue: the step's reads; a pixel's (item's) last step waits for the shadow ---
        bv = Signal()
        bpad, blast = Signal(reset_less=True), Signal(reset_less=True)
        bg = Signal(DIM_BITS, reset_less=True)
        bs = Signal(ag.o_layout["s"].shape, reset_less=True)
        unit_ready = Signal()
        adv_b = Signal()
        m.d.comb += adv_b.eq(~bv | unit_ready)
        p = ag.o.payload
        item_last = Signal()
        m.d.comb += item_last.eq(is_add | p.last)
        n_item = Signal(DIM_BITS)
        with m.If(is_conv):
            m.d.comb += n_item.eq(rows_issue)
        with m.Elif(is_max):
            m.d.comb += n_item.eq(1)
        with m.Elif(is_avg):
            m.d.comb += n_item.eq(lanes_of(it))
        with m.Else():
            m.d.comb += n_item.eq(lanes_of(p.g))
        # since_ok == (since >= need), kept in a register so the gate's compare is not in ag.o.ready's path
        since_ok = Signal(init=1)
        gate_ok = ~item_last | since_ok
        m.d.comb += ag.o.ready.eq(adv_b & gate_ok)
        with m.If(ag_fire & item_last):
            m.d.sync += [since.eq(1), need.eq(n_item), since_ok.eq(n_item <= 1)]
        with m.Elif(since != 255):
            m.d.sync += [since.eq(since + 1), since_ok.eq(since + 1 >= need)]
        with m.If(reset_op):
            m.d.sync += since_ok.eq(1)  # need = 0
        for r in range(cfg.regions):
            m.d.comb += [rps[r].addr.eq(p.addr),
                         rps[r].en.eq(ag_fire & ~p.pad & ((d.src0 == r) | (is_add & (d.src1 == r))))]
        m.d.comb += [wrp.addr.eq(p.s), wrp.en.eq(ag_fire & is_conv)]
        with m.If(ag_fire):
            with m.If(~p.pad):
                bump("act_reads", Mux(is_add, 2, 1))
            with m.If(is_conv):
                bump("wbuf_reads")
        with m.If(adv_b):
            m.d.sync += [bv.eq(ag_fire), bpad.eq(p.pad), blast.eq(item_last), bg.eq(p.g), bs.eq(p.s)]

        # --- the step enters its unit ---
        xraw = Signal(cols * ab)
        yraw = Signal(cols * ab)
        for r in range(cfg.regions):
            with m.If(d.src0 == r):
                m.d.comb += xraw.eq(rps[r].data)
            with m.If(d.src1 == r):
                m.d.comb += yraw.eq(rps[r].data)

        def lane(raw, n, sgn):
            v = raw[n * ab : (n + 1) * ab]
            return Mux(sgn, v.as_signed(), v.as_unsigned())

        fire_unit = Signal()
        for unit, arr in arrays.items():
            sel = (use_mult if unit == Unit.MULT else ~use_mult) & is_conv
            ap = arr.i.payload
            m.d.comb += [arr.i.valid.eq(bv & sel), ap.first.eq(bs == 0), ap.last.eq(blast)]
            for n in range(cols):
                ok = (bg * cols + n) < d.in_c
                m.d.comb += ap.x[n].eq(Mux(bpad, Mux(ok, d.pad_value, 0), lane(xraw, n, d.src_signed)))
            wshape = unsigned(bits) if unit == Unit.ADDER else signed(bits)
            wview = data.ArrayLayout(data.ArrayLayout(wshape, cols), cfg.rows)(wrp.data)
            for r in range(arr.rows):
                for n in range(cols):
                    m.d.comb += ap.w[r][n].eq(wview[r][n])
            with m.If(sel):
                m.d.comb += unit_ready.eq(arr.i.ready)
        vp = vec.i.payload
        m.d.comb += [
            vec.i.valid.eq(bv & ~is_conv), vp.pad.eq(bpad), vp.first.eq(is_add | (bs == 0)), vp.last.eq(blast),
            vec.op.eq(Mux(is_max, 0, Mux(is_avg, 1, 2))),
            vec.lowest.eq(Mux(d.src_signed, -(1 << (ab - 1)), 0)),
        ]
        for n in range(cols):
            m.d.comb += [vp.x[n].eq(lane(xraw, n, d.src_signed)), vp.y[n].eq(lane(yraw, n, d.src1_signed))]
        with m.If(~is_conv):
            m.d.comb += unit_ready.eq(vec.i.ready)
        m.d.comb += fire_unit.eq(bv & unit_ready)
        with m.If(fire_unit):
            bump("busy_cycles")

        # --- drain: the shadow's entries into the requant unit, one per cycle ---
        sv = Signal()
        dr = Signal(DIM_BITS)
        dt = Signal(DIM_BITS)
        do0 = Signal(DIM_BITS)
        dp = Signal(A)
        dg = Signal(DIM_BITS)

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
                m.d.comb += n.eq(lanes_of(g))
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
            sel = (use_mult if unit == Unit.MULT else ~use_mult) & is_conv
            with m.If(sel):
                m.d.comb += [sv.eq(arr.o.valid), arr.o.ready.eq(shadow_ready)]
        with m.If(~is_conv):
            m.d.comb += [sv.eq(vec.o.valid), vec.o.ready.eq(shadow_ready)]
        e = rq.i.payload
        m.d.comb += [e.shift.eq(d.shift), e.lo.eq(d.lo), e.hi.eq(d.hi)]
        with m.If(is_conv):
            for unit, arr in arrays.items():
                sel = (use_mult if unit == Unit.MULT else ~use_mult)
                with m.If(sel):
                    with m.Switch(dr):
                        for r in range(arr.rows):
                            with m.Case(r):
                                m.d.comb += e.a.eq(arr.o.payload[r])
            bsel = Signal.like(bank[0])
            m.d.comb += bsel.eq(Mux(dt[0], bank[1], bank[0]))
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
                        m.d.comb += [e.a.eq(vec.o.payload.a[n]), e.b.eq(vec.o.payload.b[n])]
            m.d.comb += [e.m0.eq(d.m0), e.m1.eq(d.m1), e.n.eq(d.n)]
        m.d.comb += rq.i.valid.eq(sv & ~is_max)
        drain_step = Signal()  # the shadow's current entry is taken in this cycle
        m.d.comb += drain_step.eq(Mux(is_max, sv, rq.i.valid & rq.i.ready))
        with m.If(rq.i.valid & rq.i.ready):
            bump("requant_ops")
        m.d.sync += dr_last.eq(dr + 1 == n_drain)
        with m.If(drain_step):
            with m.If(dr_last):
                m.d.comb += shadow_ready.eq(1)
                m.d.sync += [dr.eq(0), dr_last.eq(n_next == 1), dg.eq(dg_new), do0.eq(do0_new)]
                with m.If(tile_end):
                    m.d.sync += [dp.eq(0), dt.eq(dt + 1)]
                with m.Elif(~is_add):
                    m.d.sync += dp.eq(dp + 1)
            with m.Else():
                m.d.sync += [dr.eq(dr + 1), dr_last.eq(dr + 2 == n_drain)]

        # --- writer: outputs gathered into words (lane enables), or the o stream ---
        q = rq.o.payload
        m.d.comb += [rq.o.ready.eq(Mux(d.last, self.o.ready, 1)), self.o.valid.eq(d.last & rq.o.valid),
                     self.o.payload.eq(q)]
        with m.If(self.o.valid & self.o.ready):
            bump("o_beats")
        wfire = Signal()
        m.d.comb += wfire.eq(rq.o.valid & rq.o.ready)
        wreg = Signal(cols * ab)
        wmask = Signal(cols)
        wlane = Signal(range(cols))
        wg = Signal(DIM_BITS)
        wr = Signal(DIM_BITS)
        wo = Signal(DIM_BITS)
        wo0 = Signal(DIM_BITS)
        tl = Signal(range(cols))
        tg = Signal(DIM_BITS)
        wp_ = Signal(A)
        wbase = Signal(A)
        wt = Signal(DIM_BITS)
        wn = Signal(range(cols))
        wgv = Signal(DIM_BITS)
        waddr = Signal(A)
        wreg_next = Signal(cols * ab)
        cur_lane = Mux(is_conv, wlane, wn)
        m.d.comb += wreg_next.eq(wreg)
        with m.Switch(cur_lane):
            for n in range(cols):
                with m.Case(n):
                    m.d.comb += wreg_next[n * ab : (n + 1) * ab].eq(q[:ab])
        wr_en = Signal()
        wr_addr = Signal(A)
        wr_data = Signal(cols * ab)
        wr_mask = Signal(cols)
        for r in range(cfg.regions):
            with m.If(wr_en & (d.dst == r)):
                m.d.comb += [wps[r].addr.eq(wr_addr), wps[r].data.eq(wr_data), wps[r].en.eq(wr_mask)]
        with m.If(wr_en):
            bump("act_writes")
        rem_w = Signal(signed(DIM_BITS + 2))
        m.d.comb += rem_w.eq(d.out_c - wo0)
        rows_w = Mux(rem_w < d.rows_u, rem_w, d.rows_u)
        # lanes of the vector writer's group
        v_w = lanes_of(wgv)
        last_item_pool = (wgv == d.in_g - 1) & (wp_ == d.pixels - 1)
        with m.If(is_conv & wfire):
            last_row = wr == rows_w - 1
            last_ch = wo == d.out_c - 1
            onehot = Signal(cols)
            above = Signal(cols)
            m.d.comb += [onehot.eq(Const(1, cols) << wlane), above.eq(~((onehot << 1) - 1))]
            with m.If((wlane == cols - 1) | last_row):
                m.d.comb += [wr_en.eq(~d.last), wr_addr.eq(wbase + wg), wr_data.eq(wreg_next),
                             wr_mask.eq(wmask | onehot | Mux(last_ch, above, 0))]
                m.d.sync += [wreg.eq(0), wmask.eq(0)]
            with m.Else():
                m.d.sync += [wreg.eq(wreg_next), wmask.eq(wmask | onehot)]
            with m.If(last_row):
                m.d.sync += [wr.eq(0), wo.eq(wo0), wlane.eq(tl), wg.eq(tg)]
                with m.If(wp_ == d.pixels - 1):
                    # the tile is done: the next tile's first channel is wo0 + rows_u
                    m.d.sync += [wp_.eq(0), wbase.eq(0), wt.eq(wt + 1), wo0.eq(wo0 + d.rows_u),
                                 wo.eq(wo0 + d.rows_u)]
                    # tile base lane/group of channel wo0 + rows_u, without a divider
                    _advance_lane(m, tl, tg, d.rows_u, cols, wlane, wg)
                    with m.If(wt == d.tiles - 1):
                        m.d.comb += done_op.eq(1)
                with m.Else():
                    m.d.sync += [wp_.eq(wp_ + 1), wbase.eq(wbase + d.out_g)]
            with m.Else():
                m.d.sync += [wr.eq(wr + 1), wo.eq(wo + 1)]
                with m.If(wlane == cols - 1):
                    m.d.sync += [wlane.eq(0), wg.eq(wg + 1)]
                with m.Else():
                    m.d.sync += wlane.eq(wlane + 1)
        with m.If(~is_conv & ~is_max & wfire):
            with m.If(wn == v_w - 1):
                m.d.comb += [wr_en.eq(~d.last), wr_addr.eq(waddr), wr_data.eq(wreg_next),
                             wr_mask.eq(Const(-1, cols))]
                m.d.sync += [wreg.eq(0), wn.eq(0)]
                _advance_item(m, is_add, d, wgv, wp_, waddr, done_op, last_item_pool)
            with m.Else():
                m.d.sync += [wreg.eq(wreg_next), wn.eq(wn + 1)]
        with m.If(is_max & sv):
            data_w = Signal(cols * ab)
            for n in range(cols):
                m.d.comb += data_w[n * ab : (n + 1) * ab].eq(Mux(n < v_w, vec.o.payload.a[n][:ab], 0))
            m.d.comb += [wr_en.eq(1), wr_addr.eq(waddr), wr_data.eq(data_w), wr_mask.eq(Const(-1, cols))]
            _advance_item(m, is_add, d, wgv, wp_, waddr, done_op, last_item_pool)
        with m.If(done_op):
            m.d.sync += [wreg.eq(0), wmask.eq(0), wlane.eq(0), wg.eq(0), wr.eq(0), wo.eq(0), wo0.eq(0),
                         tl.eq(0), tg.eq(0), wp_.eq(0), wbase.eq(0), wt.eq(0), wn.eq(0), wgv.eq(0),
                         waddr.eq(0), dr.eq(0), dt.eq(0), do0.eq(0), dp.eq(0), dg.eq(0)]
        if cfg.trace:
            self._trace(m, fsm, d, rps, trace_end)
        m.d.comb += [ev.op_done.eq(op_end), ev.op_index.eq(cur)]
        return m

    def _trace(self, m, fsm, d, rps, trace_end):
        """Rule 6 of the cycle contract: the tracer (:class:`~rtl.engine.tracer.Tracer`) on the finished
        operation's region while the controller is in ``TRACE``; it owns ``o`` then."""
        m.submodules.tracer = tr = Tracer(config=self.config)
        m.d.comb += [tr.start.eq(fsm.ongoing("TRACE")), tr.pixels.eq(d.pixels), tr.out_g.eq(d.out_g),
                     trace_end.eq(tr.end), tr.o.ready.eq(self.o.ready)]
        for r in range(self.config.regions):
            with m.If(d.dst == r):
                m.d.comb += tr.data.eq(rps[r].data)
            with m.If(tr.read & (d.dst == r)):
                m.d.comb += [rps[r].addr.eq(tr.raddr), rps[r].en.eq(1)]
        with m.If(tr.start):
            m.d.comb += [self.o.valid.eq(tr.o.valid), self.o.payload.eq(tr.o.payload)]
        with m.If(tr.read):
            m.d.comb += self.events.act_reads.eq(1)


def _advance_lane(m, tl, tg, rows_u, cols, wlane, wg):
    """(tg, tl) += rows_u in (group, lane) digits of base ``cols`` (rows_u <= 64: a few subtractions)."""
    total = Signal(range(cols + 65), name="lane_sum")
    m.d.comb += total.eq(tl + rows_u)
    q = Signal(range(66), name="lane_q")
    rest = Signal(range(cols + 65), name="lane_r")
    # total < cols + 65: the quotient is at most 65 // cols + 1; unrolled compare chain, smallest k first so the
    # largest k that fits is the last assignment (the one that holds)
    m.d.comb += [q.eq(0), rest.eq(total)]
    for k in range(1, (cols + 64) // cols + 1):
        with m.If(total >= k * cols):
            m.d.comb += [q.eq(k), rest.eq(total - k * cols)]
    m.d.sync += [tl.eq(rest), tg.eq(tg + q), wlane.eq(rest), wg.eq(tg + q)]


def _advance_item(m, is_add, d, wgv, wp_, waddr, done_op, last_item_pool):
    """The vector writer's next item: add (p, g) order, pools (g, p) order."""
    with m.If(is_add):
        m.d.sync += [waddr.eq(waddr + 1), wgv.eq(Mux(wgv == d.in_g - 1, 0, wgv + 1))]
        with m.If(waddr == d.in_words - 1):
            m.d.comb += done_op.eq(1)
    with m.Else():
        with m.If(wp_ == d.pixels - 1):
            m.d.sync += [wp_.eq(0), wgv.eq(wgv + 1), waddr.eq(wgv + 1)]
        with m.Else():
            m.d.sync += [wp_.eq(wp_ + 1), waddr.eq(waddr + d.out_g)]
        with m.If(last_item_pool):
            m.d.comb += done_op.eq(1)


def _bank_bits(config: EngineConfig) -> int:
    n = 0
    for mode in config.requant:
        n = max(n, config.param_beats(mode, config.rows))
    return n * config.weight_word_bits


