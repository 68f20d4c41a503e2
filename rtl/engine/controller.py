"""The controller: the operation FSM, the issue side and the feed of the units (DESIGN §4b).

It holds the current operation's descriptor (``desc``, loaded from ``prog``
as the operation starts), loads the image (``x``, through ``xw`` into the
source region) and each tile's weights (``w``, into the weight buffer through
``wbuf_w``, then the tile's requant parameter beats into one of the two
parameter ``banks``, bank ``it mod 2``: not before the drain has finished
tile ``it - 2``, :mod:`hwsim.engine` rule 2's bank wait, counted by ``owed``
from the drain's ``tile_drained``), starts the address generator (``cmd``) and takes its
steps (``step``): each step's reads (``rd``: the source region, and for the
residual add the second source; ``wbuf_r``: the tile's weights) and, a cycle
later, the step into its unit (``adder``/``mult``: a channel array; ``vec``:
the vector unit).  A pixel's (item's) last step waits until the previous
item's shadow entries have been drained (the issue gate).  With pixel tiles
(``config.pixel_tile`` > 1) a conv item is a pixel tile: its steps come in
order ``(s, p)``, only the step ``(s, 0)`` reads the weight buffer (the read
port holds the word for the others), each step names its pixel's
accumulator (``bank``), and the gate waits for the previous pixel tile's
``pixels x rows`` entries (:mod:`hwsim.engine` rule 3).  Then it waits in
``DRAIN`` for the writer's ``done`` and (``config.trace``) in ``TRACE`` for the
tracer (``trace`` high, ``trace_end`` at its last beat).

With resident weights (:mod:`hwsim.engine` rule 7) the weight buffer is the
weight store: a ``load`` descriptor (only as operation 0) takes ``in_words``
``w`` beats into store addresses ``0 ..`` in ``WLOAD`` (its last beat pulses
``op_done``), and ``LOAD`` reads a tile's parameter beats from the store
(``wbuf_r``, one per cycle, each written into the bank the cycle after)
instead of taking ``w`` beats; steps read the store at the tile's base
``tb`` (the descriptor's ``wbase``, advanced by ``steps + param_beats`` per
tile) plus the step's index.

With two weight buffers (``config.weight_buffers`` 2, :mod:`hwsim.engine`
rule 2) the loads run beside the issue side: a load side takes tile ``lt``'s
``w`` beats (word ``s`` into half ``lt mod 2`` of the weight buffer, at
``(lt mod 2) * half_words + s``, its parameter beats into bank ``lt mod 2``)
while a conv operation is in ``LOAD`` or ``ISSUE``, as soon as the half is
free (tile ``lt - 2`` has issued its last step) and, for the parameter beats,
the drain has finished tile ``lt - 2`` (``tile_drained``, the drain's pulse
at a tile's last entry); ``LOAD`` only waits for tile ``it``'s load, and a tile's last step
starts the next tile's steps at once when that tile is loaded.

``events`` are the controller's part of the core's
(:func:`~rtl.engine.layouts.events_signature`, :data:`CONTROLLER_EVENTS`).
The states, in order: ``FETCH`` (take operation ``op_index``'s descriptor),
``XLOAD`` (operation 0: the image), ``LOAD`` (a conv tile's weights and
parameters), ``VCMD`` (a vector operation's address generator command),
``ISSUE``, ``DRAIN``, ``TRACE``, and (resident) ``WLOAD``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hwsim.compiler import Op, Unit
from hwsim.config import EngineConfig
from hwsim.descriptor import DIM_BITS, addr_bits
from quant.base.intops import PeKind
from rtl.construct import Checked, check_config
from rtl.engine.addrgen import addrgen_cmd_layout, addrgen_step_layout
from rtl.engine.array import array_step_layout
from rtl.engine.layouts import desc_layout, events_signature, is_op, region_write_signature
from rtl.engine.vector import VECTOR_OPS, vector_step_layout
from rtl.engine.writer import lanes_of

__all__ = ["CONTROLLER_EVENTS", "MUTATIONS", "Controller", "bank_bits", "engine_units", "region_read_signature", "use_mult"]

#: The events the controller reports (the rest of the core's are the drain's, the writer's and ``o``'s).
CONTROLLER_EVENTS = ("busy_cycles", "act_reads", "wbuf_reads", "wbuf_writes", "w_beats", "prog_beats", "x_beats")


#: Test-only wrong controllers (:class:`Controller` ``mutation``); ``None`` is the real one.  ``"wbase_plus_one"``:
#: a resident engine's operations read the weight store one word past their base; ``"no_bank_wait"``: a tile's
#: parameter beats (``w`` beats or, resident, store reads) do not wait for the drain to finish the bank's previous
#: tile.
MUTATIONS = (None, "wbase_plus_one", "no_bank_wait")


def engine_units(config: EngineConfig) -> tuple:
    """The channel arrays of an engine of ``config``: the adder array (adder engines), the multiplier array
    (multiplier engines, or an adder engine's ``mult_rows`` unit)."""
    units = (Unit.ADDER,) if config.pe == PeKind.ADDER else ()
    return units + ((Unit.MULT,) if config.pe == PeKind.MULT or config.mult_rows else ())


def use_mult(config: EngineConfig, desc):
    """1 when ``desc``'s operation runs on the multiplier array (a constant unless the engine has both)."""
    if config.pe == PeKind.MULT:
        return Const(1)
    return desc.mult if config.mult_rows else Const(0)


def _bank_write(m: Module, config: EngineConfig, bank, which, index, data) -> None:
    """Parameter beat ``index`` of parameter bank ``which`` (0 or 1) takes ``data`` at the clock edge."""
    for k in range(2):
        with m.If(which == k):
            m.d.sync += bank[k].word_select(index, config.weight_word_bits).eq(data)


def half_address(config: EngineConfig, half, s):
    """Word ``s`` of half ``half`` of a two-buffer weight buffer, ``half * half_words + s`` (:mod:`hwsim.engine`
    rule 2): a concatenation when ``half_words`` is a power of two (as sizing makes it), else an add."""
    h = config.half_words
    if h & (h - 1) == 0:
        k = ceil_log2(h)
        return Cat(s[:k], half) if k else half
    return Mux(half, h, 0) + s


def bank_bits(config: EngineConfig) -> int:
    """Bits of one requant parameter bank: the most parameter beats of a tile, in ``w`` words (at least 1)."""
    n = 0
    for mode in config.requant:
        n = max(n, config.param_beats(mode, config.rows))
    return max(1, n * config.weight_word_bits)


def region_read_signature(config: EngineConfig) -> wiring.Signature:
    """A step's region reads, as the controller sees them: ``addr``, ``en`` (read the source ``src0``),
    ``en1`` (read the second source ``src1`` too) out; ``x`` and ``y`` (the words of ``src0`` and ``src1``,
    a cycle later) in."""
    return wiring.Signature({"addr": Out(addr_bits(config)), "en": Out(1), "en1": Out(1),
                             "x": In(config.act_word_bits), "y": In(config.act_word_bits)})


class Controller(Checked, wiring.Component):
    """The controller of an engine of ``config`` running programs of at most ``max_ops`` operations (module
    docstring)."""

    @classmethod
    def check(cls, *, config: EngineConfig, max_ops: int = 64, mutation: str | None = None) -> None:
        """Refuse a bad argument (one line naming it) before the component exists."""
        check_config(config)
        if isinstance(max_ops, bool) or not isinstance(max_ops, int) or not 1 <= max_ops <= 256:
            raise ValueError(f"max_ops must be an integer in 1..256, not {max_ops!r}")
        if mutation not in MUTATIONS:
            raise ValueError(f"mutation must be one of {', '.join(map(str, MUTATIONS))}, not {mutation!r}")

    def __init__(self, *, config: EngineConfig, max_ops: int = 64, mutation: str | None = None):
        self.config = config
        self.max_ops = max_ops
        self.mutation = mutation
        cfg, A = config, addr_bits(config)
        wbuf_addr = ceil_log2(cfg.weight_words)
        ports = {
            "prog": In(stream.Signature(desc_layout(cfg))),
            "x": In(stream.Signature(unsigned(cfg.act_word_bits))),
            "w": In(stream.Signature(unsigned(cfg.weight_word_bits))),
            "desc": Out(desc_layout(cfg)),
            "banks": Out(data.ArrayLayout(unsigned(bank_bits(cfg)), 2)),
            "cmd": Out(stream.Signature(addrgen_cmd_layout(A, DIM_BITS))),
            "step": In(stream.Signature(addrgen_step_layout(A, DIM_BITS, cfg.pixel_tile))),
            "xw": Out(region_write_signature(cfg)),
            "rd": Out(region_read_signature(cfg)),
            "wbuf_w": In(memory.WritePort.Signature(addr_width=wbuf_addr, shape=unsigned(cfg.weight_word_bits))),
            "wbuf_r": In(memory.ReadPort.Signature(addr_width=wbuf_addr, shape=unsigned(cfg.weight_word_bits))),
            **{unit.value: Out(stream.Signature(array_step_layout(cfg, unit))) for unit in engine_units(cfg)},
            "vec": Out(stream.Signature(vector_step_layout(cfg))),
            "vec_op": Out(range(len(VECTOR_OPS))),
            "vec_lowest": Out(signed(cfg.act_bits + 1)),
            "done": In(1),
            "events": Out(events_signature(max_ops, CONTROLLER_EVENTS)),
        }
        if cfg.trace:
            ports.update(trace=Out(1), trace_end=In(1))
        ports.update(tile_drained=In(1))  # the drain's pulse at a conv tile's last entry: the bank wait (rule 2)
        super().__init__(ports)

    def elaborate(self, platform):  # noqa: C901 - the FSM, the issue gate and the unit feed, read top to bottom
        m = Module()
        cfg = self.config
        cols, ab, bits = cfg.cols, cfg.act_bits, cfg.bits
        A = addr_bits(cfg)
        wwp, wrp, rd = self.wbuf_w, self.wbuf_r, self.rd

        # --- the program, streamed: one descriptor register, the current operation ---
        cur = Signal(range(max(2, self.max_ops)))
        d = Signal(desc_layout(cfg), reset_less=True)
        m.d.comb += self.desc.eq(d)
        is_conv, is_max, is_avg, is_add = (is_op(d, op) for op in (Op.CONV, Op.MAXPOOL, Op.AVGPOOL, Op.ADD))
        is_pool = is_max | is_avg
        mult = use_mult(cfg, d)

        ev = self.events

        def bump(name, by=1):
            m.d.comb += getattr(ev, name).eq(by)

        # --- control ---
        xj = Signal(A)
        lc = Signal(DIM_BITS)
        it = Signal(DIM_BITS)  # issue side: tile (conv) or channel-group pass (pool)
        io0 = Signal(DIM_BITS)  # issue side: the tile's first output channel
        since = Signal(max(8, (cfg.pixel_tile * cfg.rows).bit_length()))  # saturates above the most entries
        need = Signal(DIM_BITS)
        bank = [Signal(bank_bits(cfg), name=f"bank{k}", reset_less=True) for k in range(2)]
        if cfg.resident:
            # the read port's en is 1 unless driven (ReadPort's init): it reads only where LOAD or a step says
            # so, else it would re-read (and lose the word a stalled step or a pixel tile holds)
            m.d.comb += wrp.en.eq(0)
            tb = Signal(ceil_log2(cfg.weight_words))  # the tile's first word in the weight store
            pv = Signal()  # a parameter beat read from the store last cycle goes into the bank now
            pk = Signal(DIM_BITS, reset_less=True)  # its index in the tile's parameters
            m.d.sync += pv.eq(0)
            with m.If(pv):
                _bank_write(m, cfg, bank, it[0], pk, wrp.data)
        m.d.comb += [self.banks[k].eq(bank[k]) for k in range(2)]
        ag_fire = Signal()
        m.d.comb += [self.cmd.payload.eq(d.ag), ag_fire.eq(self.step.valid & self.step.ready)]
        rem_issue = Signal(signed(DIM_BITS + 2))
        rows_issue = Signal(DIM_BITS)
        m.d.comb += [rem_issue.eq(d.out_c - io0), rows_issue.eq(Mux(rem_issue < d.rows_u, rem_issue, d.rows_u))]
        reset_op = Signal()  # the next operation starts in the next cycle
        # it_last == (it == (tiles if conv else in_g) - 1), a register, so ISSUE's decisions at a pass's end
        # (the next tile, the next pool pass's command into the address generator) start from flip-flops, not
        # from a subtract-compare on the descriptor: it follows it and the descriptor a cycle later (ISSUE
        # comes at least a cycle after FETCH) and is loaded exactly where it steps
        it_last = Signal()
        it_end = Mux(is_conv, d.tiles, d.in_g)
        m.d.sync += it_last.eq(it + 1 == it_end)

        op_end = Signal()  # the operation's last event (its last write, o beat or trace beat)
        two = cfg.weight_buffers == 2
        if two:
            lt = Signal()  # the load side: the parity of the tile whose beats w carries next (lt, below)
            load_last = Signal()  # tile lt's last beat is taken in this cycle
            next_tile = Signal()  # the issue side moves on to tile it + 1 (tile it's last step)
            ahead = Signal(range(3))  # lt - it: the tiles loaded and not yet issuing
        else:
            # rule 2's bank wait: owed = the tiles loaded (it, in LOAD) - the tiles the drain has finished, so
            # tile it's parameters go into bank it mod 2 only once the drain has finished tile it - 2 with it
            owed = Signal(range(3))
            tile_loaded = Signal()  # tile it's last load beat (w beat or store read) is taken in this cycle
            bank_free = (owed != 2) | (self.mutation == "no_bank_wait")
            m.d.sync += owed.eq(owed + tile_loaded - self.tile_drained)
        with m.FSM() as fsm:
            with m.State("FETCH"):
                # operation cur's descriptor (cycle contract rule 1); operation 0 then takes the image
                m.d.comb += self.prog.ready.eq(1)
                with m.If(self.prog.valid):
                    m.d.sync += d.eq(self.prog.payload)
                    bump("prog_beats")
                    m.d.comb += reset_op.eq(1)
                    if cfg.resident:
                        m.d.sync += tb.eq(self.prog.payload.wbase + (self.mutation == "wbase_plus_one"))
                    with m.If(cur == 0):
                        if cfg.resident:
                            with m.If(self.prog.payload.load):
                                m.next = "WLOAD"
                            with m.Else():
                                m.next = "XLOAD"
                        else:
                            m.next = "XLOAD"
                    with m.Elif(is_op(self.prog.payload, Op.CONV)):
                        m.next = "LOAD"
                    with m.Else():
                        m.next = "VCMD"
            with m.State("XLOAD"):
                m.d.comb += self.x.ready.eq(1)
                with m.If(self.x.valid):
                    bump("x_beats")
                    m.d.comb += [self.xw.en.eq(1), self.xw.addr.eq(xj), self.xw.data.eq(self.x.payload),
                                 self.xw.mask.eq(Const(-1, cols))]
                    m.d.sync += xj.eq(xj + 1)
                    with m.If(xj == d.in_words - 1):
                        m.d.sync += xj.eq(0)
                        with m.If(is_conv):
                            m.next = "LOAD"
                        with m.Else():
                            m.next = "VCMD"
            if cfg.resident:
                with m.State("WLOAD"):  # rule 7: the load phase, w beat j into store address j
                    m.d.comb += self.w.ready.eq(1)
                    with m.If(self.w.valid):
                        bump("w_beats")
                        bump("wbuf_writes")
                        m.d.comb += [wwp.addr.eq(xj), wwp.data.eq(self.w.payload), wwp.en.eq(1)]
                        m.d.sync += xj.eq(xj + 1)
                        with m.If(xj == d.in_words - 1):
                            m.d.sync += xj.eq(0)
                            m.d.comb += op_end.eq(1)
                            m.next = "FETCH"
                with m.State("LOAD"):  # rule 7: the tile's parameter beats, read from the store (after the bank wait)
                    with m.If(bank_free):
                        m.d.comb += [wrp.addr.eq(tb + d.steps + lc), wrp.en.eq(1)]
                        bump("wbuf_reads")
                        m.d.sync += [lc.eq(lc + 1), pv.eq(1), pk.eq(lc)]
                        with m.If(lc == d.param_beats - 1):
                            m.d.comb += [self.cmd.valid.eq(1), tile_loaded.eq(1)]
                            m.d.sync += lc.eq(0)
                            m.next = "ISSUE"
            elif two:
                with m.State("LOAD"):  # rule 2, two buffers: wait for tile it's load (the load side below)
                    with m.If((ahead != 0) | load_last):
                        m.d.comb += self.cmd.valid.eq(1)
                        m.next = "ISSUE"
            else:
                with m.State("LOAD"):  # the weight words, then the parameter beats after the bank wait
                    take = Signal()
                    m.d.comb += [take.eq((lc < d.steps) | bank_free), self.w.ready.eq(take)]
                    with m.If(self.w.valid & take):
                        bump("w_beats")
                        m.d.sync += lc.eq(lc + 1)
                        with m.If(lc < d.steps):
                            m.d.comb += [wwp.addr.eq(lc), wwp.data.eq(self.w.payload), wwp.en.eq(1)]
                            bump("wbuf_writes")
                        with m.Else():
                            _bank_write(m, cfg, bank, it[0], (lc - d.steps)[:DIM_BITS], self.w.payload)
                        with m.If(lc == d.steps + d.param_beats - 1):
                            m.d.comb += [self.cmd.valid.eq(1), tile_loaded.eq(1)]
                            m.d.sync += lc.eq(0)
                            m.next = "ISSUE"
            with m.State("VCMD"):
                m.d.comb += self.cmd.valid.eq(1)
                m.next = "ISSUE"
            with m.State("ISSUE"):
                with m.If(ag_fire & self.step.payload.end):
                    with m.If(is_conv):
                        with m.If(it_last):
                            m.next = "DRAIN"
                        with m.Else():
                            m.d.sync += [it.eq(it + 1), io0.eq(io0 + d.rows_u), it_last.eq(it + 2 == it_end)]
                            if cfg.resident:
                                m.d.sync += tb.eq(tb + d.steps + d.param_beats)
                            if two:  # the next tile's steps follow at once when its load is done
                                m.d.comb += next_tile.eq(1)
                                with m.If((ahead == 2) | ((ahead == 1) & load_last)):
                                    m.d.comb += self.cmd.valid.eq(1)
                                with m.Else():
                                    m.next = "LOAD"
                            else:
                                m.next = "LOAD"
                    with m.Elif(is_pool & ~it_last):
                        m.d.comb += [self.cmd.valid.eq(1), self.cmd.payload.base0.eq(d.ag.base0 + it + 1)]
                        m.d.sync += [it.eq(it + 1), it_last.eq(it + 2 == it_end)]
                    with m.Else():
                        m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(self.done):
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
                    with m.If(self.trace_end):
                        m.d.sync += cur.eq(cur + 1)
                        m.d.comb += op_end.eq(1)
                        m.next = "FETCH"
        if cfg.trace:
            m.d.comb += self.trace.eq(fsm.ongoing("TRACE"))
        with m.If(reset_op):
            m.d.sync += [lc.eq(0), it.eq(0), io0.eq(0), need.eq(0)]
        if two:
            self._load_side(m, fsm, d, is_conv, lt, lc, ahead, next_tile, load_last, it_last, bank, bump)
        else:
            with m.If(fsm.ongoing("FETCH")):
                m.d.sync += owed.eq(0)

        # --- issue: the step's reads; a pixel's (item's) last step waits for the shadow ---
        bv = Signal()
        bpad, blast = Signal(reset_less=True), Signal(reset_less=True)
        bg = Signal(DIM_BITS, reset_less=True)
        bs = Signal(self.step.payload.s.shape(), reset_less=True)
        unit_ready = Signal()
        adv_b = Signal()
        m.d.comb += adv_b.eq(~bv | unit_ready)
        p = self.step.payload
        item_last = Signal()
        m.d.comb += item_last.eq(is_add | p.last)
        n_item = Signal(DIM_BITS)
        with m.If(is_conv):
            m.d.comb += n_item.eq(rows_issue)
        with m.Elif(is_max):
            m.d.comb += n_item.eq(1)
        with m.Elif(is_avg):
            m.d.comb += n_item.eq(lanes_of(m, d, cols, it))
        with m.Else():
            m.d.comb += n_item.eq(lanes_of(m, d, cols, p.g))
        tp = cfg.pixel_tile
        if tp > 1:
            # a pixel tile's entries: rows x its pixels (p + 1 at its last step), shift-and-add, no multiplier
            n_conv = Signal(DIM_BITS + tp.bit_length(), name="n_tile")
            m.d.comb += n_conv.eq(sum(Mux((p.p + 1)[k], rows_issue << k, 0) for k in range(tp.bit_length())))
            with m.If(is_conv):
                m.d.comb += n_item.eq(n_conv)
        # since_ok == (since >= need), kept in a register so the gate's compare is not in step.ready's path
        since_ok = Signal(init=1)
        gate_ok = ~item_last | since_ok
        m.d.comb += self.step.ready.eq(adv_b & gate_ok)
        with m.If(ag_fire & item_last):
            m.d.sync += [since.eq(1), need.eq(n_item), since_ok.eq(n_item <= 1)]
        with m.Elif(since != (1 << len(since)) - 1):
            m.d.sync += [since.eq(since + 1), since_ok.eq(since + 1 >= need)]
        with m.If(reset_op):
            m.d.sync += since_ok.eq(1)  # need = 0
        m.d.comb += [rd.addr.eq(p.addr), rd.en.eq(ag_fire & ~p.pad), rd.en1.eq(ag_fire & ~p.pad & is_add)]
        wread = is_conv if tp == 1 else is_conv & (p.p == 0)  # a pixel tile's first pixel reads word s
        if cfg.resident:  # LOAD's parameter reads drive the port otherwise (never a step then)
            with m.If(ag_fire & wread):
                m.d.comb += [wrp.addr.eq(tb + p.s), wrp.en.eq(1)]
        elif two:  # the issuing tile's half
            m.d.comb += [wrp.addr.eq(half_address(cfg, it[0], p.s)), wrp.en.eq(ag_fire & is_conv)]
        else:
            m.d.comb += [wrp.addr.eq(p.s), wrp.en.eq(ag_fire & wread)]
        with m.If(ag_fire):
            with m.If(~p.pad):
                bump("act_reads", Mux(is_add, 2, 1))
            with m.If(wread):
                bump("wbuf_reads")
        with m.If(adv_b):
            m.d.sync += [bv.eq(ag_fire), bpad.eq(p.pad), blast.eq(item_last), bg.eq(p.g), bs.eq(p.s)]
        if tp > 1:
            bp = Signal(range(tp), reset_less=True)  # the step's accumulator bank
            with m.If(adv_b):
                m.d.sync += bp.eq(p.p)

        # --- the step enters its unit ---
        def lane(raw, n, sgn):
            v = raw[n * ab : (n + 1) * ab]
            return Mux(sgn, v.as_signed(), v.as_unsigned())

        for unit in engine_units(cfg):
            port = getattr(self, unit.value)
            sel = (mult if unit == Unit.MULT else ~mult) & is_conv
            ap = port.payload
            m.d.comb += [port.valid.eq(bv & sel), ap.first.eq(bs == 0), ap.last.eq(blast)]
            if tp > 1:
                m.d.comb += ap.bank.eq(bp)
            for n in range(cols):
                ok = (bg * cols + n) < d.in_c
                m.d.comb += ap.x[n].eq(Mux(bpad, Mux(ok, d.pad_value, 0), lane(rd.x, n, d.src_signed)))
            wshape = unsigned(bits) if unit == Unit.ADDER else signed(bits)
            wview = data.ArrayLayout(data.ArrayLayout(wshape, cols), cfg.rows)(wrp.data)
            for r in range(len(ap.w)):
                for n in range(cols):
                    m.d.comb += ap.w[r][n].eq(wview[r][n])
            with m.If(sel):
                m.d.comb += unit_ready.eq(port.ready)
        vp = self.vec.payload
        m.d.comb += [
            self.vec.valid.eq(bv & ~is_conv), vp.pad.eq(bpad), vp.first.eq(is_add | (bs == 0)), vp.last.eq(blast),
            self.vec_op.eq(Mux(is_max, 0, Mux(is_avg, 1, 2))),
            self.vec_lowest.eq(Mux(d.src_signed, -(1 << (ab - 1)), 0)),
        ]
        for n in range(cols):
            m.d.comb += [vp.x[n].eq(lane(rd.x, n, d.src_signed)), vp.y[n].eq(lane(rd.y, n, d.src1_signed))]
        with m.If(~is_conv):
            m.d.comb += unit_ready.eq(self.vec.ready)
        with m.If(bv & unit_ready):
            bump("busy_cycles")
        m.d.comb += [ev.op_done.eq(op_end), ev.op_index.eq(cur)]
        return m

    def _load_side(self, m, fsm, d, is_conv, lt, lc, ahead, next_tile, load_last, it_last, bank, bump):
        """Rule 2 with two weight buffers: tile ``lt``'s beats on ``w`` while a conv operation is in ``LOAD``
        or ``ISSUE``, word ``lc`` into half ``lt mod 2`` and its parameter beats into bank ``lt mod 2``; a
        tile's first beat waits until tile ``lt - 2`` has issued its last step (``ahead = lt - it < 2``), its
        first parameter beat until the drain has finished tile ``lt - 2`` (``owed = lt - drained < 2``,
        ``drained`` counted from the drain's ``tile_drained``).  Two-bit counters, so the gates are a
        compare of two flip-flops each; ``lt`` itself is only its parity (the half and the bank), and the
        last tile is loaded when ``ahead`` is 1 and tile ``it`` is the last (``it_last``; with ``ahead`` 2
        the half gate holds the load anyway)."""
        cfg = self.config
        wwp = self.wbuf_w
        owed = Signal(range(3))  # lt - the tiles the drain has finished: the banks still in use
        m.d.sync += [ahead.eq(ahead + load_last - next_tile), owed.eq(owed + load_last - self.tile_drained)]
        params = lc >= d.steps
        half_free = ahead != 2
        bank_free = (owed != 2) | (self.mutation == "no_bank_wait")
        more = ~((ahead == 1) & it_last)  # lt != tiles, where the half gate lets a load start
        take = Signal()
        m.d.comb += take.eq(is_conv & (fsm.ongoing("LOAD") | fsm.ongoing("ISSUE")) & more
                            & half_free & (~params | bank_free))
        m.d.comb += self.w.ready.eq(take)
        with m.If(take & self.w.valid):
            bump("w_beats")
            m.d.sync += lc.eq(lc + 1)
            with m.If(~params):
                m.d.comb += [wwp.addr.eq(half_address(cfg, lt, lc)), wwp.data.eq(self.w.payload), wwp.en.eq(1)]
                bump("wbuf_writes")
            with m.Else():
                _bank_write(m, cfg, bank, lt, (lc - d.steps)[:DIM_BITS], self.w.payload)
            with m.If(lc == d.steps + d.param_beats - 1):
                m.d.comb += load_last.eq(1)
                m.d.sync += [lc.eq(0), lt.eq(~lt)]
        with m.If(fsm.ongoing("FETCH")):
            m.d.sync += [lt.eq(0), lc.eq(0), ahead.eq(0), owed.eq(0)]
