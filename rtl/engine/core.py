"""The deployable engine: memories, units, controller, drain, writer and (``config.trace``) tracer (DESIGN §4b).

:class:`EngineCore` is the engine of :mod:`rtl.engine.top` without its
observers: it has the four streams and one more interface, ``events``
(:func:`events_signature`), which says in every cycle what happened in it
(a beat taken on a stream, a memory read or write, a busy unit cycle, a
requant operation, an operation's end).  Nothing inside the core reads
``events``; the counters (:class:`~rtl.engine.counters.Counters`) of the
verification build count them, and the deployable build leaves them
unconnected, so synthesis removes them.

Its ``elaborate`` is wiring only: the memories (the activation regions, the
weight buffer), the units (:class:`~rtl.engine.addrgen.AddrGen`, the channel
array(s), :class:`~rtl.engine.vector.VectorUnit`,
:class:`~rtl.engine.requant.SerialRequant`) and four components, joined with
``wiring.connect`` where they meet as streams::

    prog, w, x -> Controller -cmd-> AddrGen -o-> Controller (step)
                  Controller -adder/mult-> ChannelArray(s) -o-> Drain
                  Controller -vec-> VectorUnit -o-> Drain
                  Drain -o-> SerialRequant -o-> Writer -o-> o
                  Drain -pool-> Writer (a max pool's words)
                  Tracer -o-> o (config.trace, while the controller is in TRACE)

The :class:`~rtl.engine.controller.Controller` (the operation FSM, the issue
gate, the unit feed), the :class:`~rtl.engine.drain.Drain` (shadow entries
into the requant unit), the :class:`~rtl.engine.writer.Writer` (outputs
gathered into words, or ``o``) and the :class:`~rtl.engine.tracer.Tracer`
share the memories through the core: the controller's image load (``xw``)
and the writer's words (``wr``) go to the region the descriptor names
(``src0``, ``dst``), the controller's step reads (``rd``) and the tracer's
come from theirs.

The schedule is the cycle contract of :mod:`hwsim.engine` (see
:mod:`rtl.engine.top` for the streams and the stall rule).
"""

from __future__ import annotations

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.compiler import Op
from hwsim.config import EngineConfig
from hwsim.descriptor import DIM_BITS, addr_bits
from rtl.construct import Checked, check_config
from rtl.engine.addrgen import MUTATIONS as ADDRGEN_MUTATIONS
from rtl.engine.addrgen import AddrGen
from rtl.engine.array import ChannelArray
from rtl.engine.controller import CONTROLLER_EVENTS, Controller, engine_units
from rtl.engine.controller import MUTATIONS as CONTROLLER_MUTATIONS
from rtl.engine.drain import Drain
from rtl.engine.layouts import EVENTS, desc_layout, events_signature, is_op, struct_layout
from rtl.engine.requant import SerialRequant
from rtl.engine.tracer import Tracer
from rtl.engine.vector import VectorUnit
from rtl.engine.writer import Writer

__all__ = ["EVENTS", "EngineCore", "desc_layout", "events_signature", "struct_layout"]


def check_engine_args(config, max_ops, mutation) -> None:
    """Refuse a bad ``config``, ``max_ops`` or ``mutation`` (one line naming the argument)."""
    known = ADDRGEN_MUTATIONS + CONTROLLER_MUTATIONS[1:]
    if mutation not in known:
        raise ValueError(f"mutation must be one of {', '.join(map(str, known))}, not {mutation!r}")
    check_config(config)
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
        #: The weight buffer (the weight store of a resident engine); a testbench may read its words.
        self.wbuf = memory.Memory(shape=unsigned(config.weight_word_bits), depth=config.weight_words, init=[])

    def elaborate(self, platform):
        m = Module()
        cfg = self.config

        # --- memories: the activation regions and the weight buffer ---
        rps, wps = [], []
        for r, depth in enumerate(cfg.act_words):
            mem = memory.Memory(shape=unsigned(cfg.act_word_bits), depth=depth, init=[])
            m.submodules[f"region{r}"] = mem
            rps.append(mem.read_port())
            wps.append(mem.write_port(granularity=cfg.act_bits))
        m.submodules.wbuf = wmem = self.wbuf

        # --- units and components ---
        mut = self.mutation
        m.submodules.ag = ag = AddrGen(addr_bits=addr_bits(cfg), dim_bits=DIM_BITS, pixel_tile=cfg.pixel_tile,
                                       mutation=mut if mut in ADDRGEN_MUTATIONS else None)
        arrays = {unit: ChannelArray(config=cfg, unit=unit) for unit in engine_units(cfg)}
        for unit, arr in arrays.items():
            m.submodules[unit.value] = arr
        m.submodules.vec = vec = VectorUnit(config=cfg)
        m.submodules.rq = rq = SerialRequant(config=cfg)
        m.submodules.ctrl = ctrl = Controller(config=cfg, max_ops=self.max_ops,
                                              mutation=mut if mut in CONTROLLER_MUTATIONS else None)
        m.submodules.drain = drain = Drain(config=cfg)
        m.submodules.writer = writer = Writer(config=cfg)

        # --- streams ---
        for name in ("prog", "w", "x"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(ctrl, name))
        wiring.connect(m, ctrl.cmd, ag.cmd)
        wiring.connect(m, ag.o, ctrl.step)
        if cfg.pixel_tile > 1:
            m.d.comb += ag.tiled.eq(is_op(ctrl.desc, Op.CONV))  # a conv's pass runs in pixel tiles
        wiring.connect(m, ctrl.wbuf_w, wmem.write_port())
        wiring.connect(m, ctrl.wbuf_r, wmem.read_port())
        for unit, arr in arrays.items():
            wiring.connect(m, getattr(ctrl, unit.value), arr.i)
            wiring.connect(m, arr.o, getattr(drain, unit.value))
        wiring.connect(m, ctrl.vec, vec.i)
        wiring.connect(m, vec.o, drain.vec)
        wiring.connect(m, drain.o, rq.i)
        wiring.connect(m, drain.pool, writer.pool)
        wiring.connect(m, rq.o, writer.i)
        d = ctrl.desc
        m.d.comb += [drain.desc.eq(d), writer.desc.eq(d), drain.banks.eq(ctrl.banks), vec.op.eq(ctrl.vec_op),
                     vec.lowest.eq(ctrl.vec_lowest), ctrl.done.eq(writer.done), drain.done.eq(writer.done),
                     self.o.valid.eq(writer.o.valid), self.o.payload.eq(writer.o.payload),
                     writer.o.ready.eq(self.o.ready)]

        # --- the regions: the step reads and the image load by src0/src1, the writer's words by dst ---
        for r in range(cfg.regions):
            m.d.comb += [rps[r].addr.eq(ctrl.rd.addr),
                         rps[r].en.eq((ctrl.rd.en & (d.src0 == r)) | (ctrl.rd.en1 & (d.src1 == r)))]
            with m.If(d.src0 == r):
                m.d.comb += ctrl.rd.x.eq(rps[r].data)
            with m.If(d.src1 == r):
                m.d.comb += ctrl.rd.y.eq(rps[r].data)
        for port, region in ((ctrl.xw, d.src0), (writer.wr, d.dst)):  # the writer's word wins (never both)
            for r in range(cfg.regions):
                with m.If(port.en & (region == r)):
                    m.d.comb += [wps[r].addr.eq(port.addr), wps[r].data.eq(port.data), wps[r].en.eq(port.mask)]

        # --- events: what the counters (rtl.engine.counters) count, this cycle ---
        ev = self.events
        m.d.comb += [getattr(ev, name).eq(getattr(ctrl.events, name))
                     for name in (*CONTROLLER_EVENTS, "op_done", "op_index")]
        m.d.comb += [ev.act_writes.eq(writer.wr.en), ev.requant_ops.eq(rq.i.valid & rq.i.ready),
                     ev.o_beats.eq(self.o.valid & self.o.ready)]
        m.d.comb += ctrl.tile_drained.eq(drain.tile_drained)
        if cfg.trace:
            self._trace(m, ctrl, d, rps)
        return m

    def _trace(self, m, ctrl, d, rps):
        """Rule 6 of the cycle contract: the tracer (:class:`~rtl.engine.tracer.Tracer`) on the finished
        operation's region while the controller is in ``TRACE``; it owns ``o`` then."""
        m.submodules.tracer = tr = Tracer(config=self.config)
        m.d.comb += [tr.start.eq(ctrl.trace), tr.pixels.eq(d.pixels), tr.out_g.eq(d.out_g),
                     ctrl.trace_end.eq(tr.end), tr.o.ready.eq(self.o.ready)]
        for r in range(self.config.regions):
            with m.If(d.dst == r):
                m.d.comb += tr.data.eq(rps[r].data)
            with m.If(tr.read & (d.dst == r)):
                m.d.comb += [rps[r].addr.eq(tr.raddr), rps[r].en.eq(1)]
        with m.If(tr.start):
            m.d.comb += [self.o.valid.eq(tr.o.valid), self.o.payload.eq(tr.o.payload)]
        with m.If(tr.read):
            m.d.comb += self.events.act_reads.eq(1)
