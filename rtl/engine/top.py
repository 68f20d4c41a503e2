"""The engine top: a whole quantised network on chip behind four streams (DESIGN §4b).

Streams (``amaranth.lib.stream``)::

    prog  In   one layer descriptor per beat (:func:`desc_layout`), the last one flagged;
               streamed: the engine takes operation k's beat when it starts it, every image;
               a resident engine first takes the load phase's descriptor (:func:`encode_load`)
    w     In   weight words and requant parameter beats in program order (the DMA port):
               every image, or (resident weights, hwsim.engine rule 7) once, in the load phase
    x     In   the image, one HWC word of ``cols`` lanes per beat
    o     Out  the logits, one signed ``out_bits + 1`` code per beat (with ``config.trace``
               first every other operation's output, raw lane bits: :func:`trace_codes`)

Inside: the activation regions and the weight buffer (``amaranth.lib.memory``),
the address generator (:class:`~rtl.engine.addrgen.AddrGen`), the channel
array(s) (:class:`~rtl.engine.array.ChannelArray`; an adder engine with
``mult_rows`` has a multiplier unit beside the adder array), the vector unit
(:class:`~rtl.engine.vector.VectorUnit`), the one requant unit
(:class:`~rtl.engine.requant.SerialRequant`), the controller, the drain and
the writer (:mod:`rtl.engine.core` joins them).  The schedule is
the cycle contract of :mod:`hwsim.engine`, cycle for cycle, when no stream
stalls; stalls (gaps on ``prog``/``w``/``x``, back-pressure on ``o``) delay
it and change nothing else.  The engine holds one descriptor (a register
file of every operation's descriptor cost more logic than the rest of the
controller): after the last operation it waits for the next image's
operation-0 beat on ``prog``, then its ``x`` beats.

Two builds (:class:`Build`), one engine.  ``Build.DEPLOY`` is the engine a
user puts on a chip: the core (:class:`~rtl.engine.core.EngineCore`) and its
four streams, nothing else; ``generate``/``synth`` and the synthesis tables
use it.  ``Build.VERIFY`` adds the observers the testbenches read: the
counters (:class:`~rtl.engine.counters.Counters`; Out ports, cumulative since
reset, 32 bits: ``cycles`` (counts from the first ``prog`` beat, which is
cycle 0), ``busy_cycles``, ``act_reads``, ``act_writes``, ``wbuf_reads``,
``wbuf_writes``, ``w_beats``, ``o_beats``, ``requant_ops``, ``prog_beats``,
``x_beats``) and ``op_done``, which pulses in the cycle of an operation's last
event with its ``op_index``.

Why a build and not a switch inside the controller: the core is the same
component, built the same way, in both builds; the observers sit beside it
and read its ``events`` interface, which nothing in the core reads.  So the
verified design is the deployable one plus observers only, and
``tests/rtl/engine/test_build.py`` proves it on the emitted netlists (every
module of the deployable build is in the verification build unchanged; the
counters' outputs reach only their own ports).  ``config.trace`` (rule 6 of
the cycle contract) is part of the schedule, not an observer: it is a field of
the config, so an engine with it is a different engine in both builds.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.config import EngineConfig
from hwsim.descriptor import OP_CODES
from quant.base.intops import PeKind, RequantMode
from rtl.construct import Checked
from rtl.engine.addrgen import addrgen_command
from rtl.engine.build import Build
from hwsim.compiler import Op, Program, Unit, WeightStream, from_words, to_words
from rtl.engine.core import EngineCore, check_engine_args, desc_layout, struct_layout
from rtl.engine.counters import COUNTER_BITS, COUNTERS, Counters

__all__ = ["Build", "COUNTERS", "Engine", "struct_layout", "desc_layout", "encode_load", "encode_program", "w_beats",
           "x_beats", "trace_codes"]


def encode_program(program: Program) -> list:
    """The ``prog`` beats of ``program`` (dicts of :func:`desc_layout` fields)."""
    cfg = program.config
    out = []
    for op in program.ops:
        src = program.tensors[op.srcs[0]]
        dst = program.tensors[op.dst]
        if op.op == Op.CONV:
            ag = addrgen_command(src.height, src.width, src.groups, op.kernel, op.stride, op.padding)
        elif op.op == Op.ADD:
            ag = addrgen_command(src.height, src.width, src.groups, (1, 1), 1, 0)
        else:
            ag = addrgen_command(src.height, src.width, 1, op.kernel, op.stride, op.padding,
                                 pixel_words=src.groups, offset=0)
        src1 = program.tensors[op.srcs[1]] if len(op.srcs) > 1 else src
        out.append({
            "op": OP_CODES.index(op.op), "mult": int(op.unit == Unit.MULT and cfg.pe == PeKind.ADDER),
            "last": int(op.last), "threshold": int(op.mode == RequantMode.THRESHOLD),
            "src0": src.region, "src1": src1.region, "dst": dst.region if dst.region is not None else 0,
            "src_signed": int(src.signed), "src1_signed": int(src1.signed), "in_words": src.words,
            "ag": ag, "in_c": src.channels, "in_g": src.groups, "out_c": dst.channels, "out_g": dst.groups,
            "pixels": dst.pixels, "tiles": op.tiles, "rows_u": op.rows, "steps": op.steps,
            "param_beats": op.param_beats, "shift": op.shift, "lo": op.lo, "hi": op.hi,
            "top": (1 << op.out_bits) - 1 if op.mode == RequantMode.THRESHOLD else 0,
            "m0": op.m[0] if op.m else 0, "m1": op.m[1] if len(op.m) > 1 else 0, "n": op.n,
            "pad_value": op.pad_value,
        })
        if cfg.resident:
            out[-1].update(load=0, wbase=op.wbase)
    return out


def _zeros(fields: dict) -> dict:
    return {k: _zeros(f) if isinstance(f, dict) else 0 for k, f in fields.items()}


def encode_load(program: Program) -> dict:
    """The load phase's ``prog`` beat of a resident engine (``hwsim.engine`` rule 7): ``load`` set,
    ``in_words`` the store words the ``w`` stream then carries (:func:`w_beats`), every other field 0."""
    from hwsim.descriptor import descriptor_fields

    cfg = program.config
    if not cfg.resident:
        raise ValueError(f"the engine's weights are {cfg.weights}: only a resident engine takes a load descriptor")
    return {**_zeros(descriptor_fields(cfg)), "load": 1, "in_words": program.store_words}


def w_beats(program: Program, weights: WeightStream) -> list:
    """The ``w`` beats (integers of ``weight_word_bits``): per tile its weight words, then its parameter beats."""
    cfg = program.config
    b = cfg.bits
    mask = (1 << b) - 1
    out = []
    wpos = ppos = 0
    for op in program.ops:
        for _ in range(op.tiles if op.op == Op.CONV else 0):
            for word in weights.words[wpos : wpos + op.weight_words]:
                v = 0
                for k, code in enumerate(np.asarray(word).reshape(-1)):
                    v |= (int(code) & mask) << (k * b)
                out.append(v)
            wpos += op.weight_words
            out.extend(int(p) for p in weights.params[ppos : ppos + op.param_beats])
            ppos += op.param_beats
    return out


def x_beats(program: Program, image) -> list:
    """The ``x`` beats (integers of ``act_word_bits``) of one image's codes."""
    cfg = program.config
    t = program.tensors[program.input]
    words = to_words(np.asarray(image, dtype=np.int64).reshape(t.channels, t.height, t.width), cfg.cols)
    mask = (1 << cfg.act_bits) - 1
    return [sum((int(v) & mask) << (n * cfg.act_bits) for n, v in enumerate(w)) for w in words]


def trace_codes(program: Program, name: str, beats) -> np.ndarray:
    """The codes of operation ``name``'s output from its trace beats (inverse of the engine's rule 6).

    ``beats`` are raw lane bits, ``cols`` per word in address order; lanes beyond
    the channels are dropped, signed tensors sign-extended.  Returns the codes in
    the layer's shape.
    """
    cfg = program.config
    op = next((o for o in program.ops if o.name == name), None)
    if op is None:
        raise ValueError(f"no engine operation named {name!r}")
    t = program.tensors[op.dst]
    raw = np.asarray(beats, dtype=np.int64)
    if raw.size != t.words * cfg.cols:
        raise ValueError(f"{name}: the trace has {raw.size} beats, the tensor {t.words * cfg.cols}")
    raw = raw.reshape(t.words, cfg.cols) & ((1 << cfg.act_bits) - 1)
    if t.signed:
        top = 1 << (cfg.act_bits - 1)
        raw = np.where(raw >= top, raw - (1 << cfg.act_bits), raw)
    return from_words(raw, t.channels, t.height, t.width).reshape(program.layer_shapes[name])


class Engine(Checked, wiring.Component):
    """The engine top (module docstring).

    Parameters
    ----------
    config : EngineConfig
    max_ops : int
        Most operations in a program (1..256): the width of ``op_index``.
    build : Build
        ``DEPLOY`` (the streams only) or ``VERIFY`` (with the counters, ``op_done`` and ``op_index``).
    mutation : {None, "pad_edge", "wbase_plus_one", "no_bank_wait"}
        Test only: a wrong address generator (:class:`~rtl.engine.addrgen.AddrGen`) or controller
        (:data:`rtl.engine.controller.MUTATIONS`).
    """

    @classmethod
    def check(cls, *, config: EngineConfig, max_ops: int = 64, build: Build = Build.DEPLOY,
              mutation: str | None = None) -> None:
        """Refuse a bad argument (one line naming it) before the component exists."""
        check_engine_args(config, max_ops, mutation)
        if build not in tuple(Build):
            raise ValueError(f"build must be one of {', '.join(Build)}, not {build!r}")

    def __init__(self, *, config: EngineConfig, max_ops: int = 64, build: Build = Build.DEPLOY,
                 mutation: str | None = None):
        self.config = config
        self.max_ops = max_ops
        self.build = Build(build)
        self.mutation = mutation
        self.desc_layout = desc_layout(config)
        ports = {
            "prog": In(stream.Signature(self.desc_layout)),
            "w": In(stream.Signature(unsigned(config.weight_word_bits))),
            "x": In(stream.Signature(unsigned(config.act_word_bits))),
            "o": Out(stream.Signature(signed(config.out_bits + 1))),
        }
        #: The deployable engine inside (its ``wbuf``: the weight buffer or store).
        self.core = EngineCore(config=config, max_ops=max_ops, mutation=mutation)
        if self.build == Build.VERIFY:
            ports["op_done"] = Out(1)
            ports["op_index"] = Out(range(max(2, max_ops)))  # at least one bit (a 0-bit port reads as X in Icarus)
            ports.update({name: Out(COUNTER_BITS) for name in COUNTERS})
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        for name in ("prog", "w", "x", "o"):
            port = getattr(self, name)
            wiring.connect(m, wiring.flipped(port), getattr(core, name))
        if self.build == Build.VERIFY:
            m.submodules.counters = counters = Counters(max_ops=self.max_ops)
            wiring.connect(m, core.events, counters.events)
            for name in ("op_done", "op_index", *COUNTERS):
                m.d.comb += getattr(self, name).eq(getattr(counters, name))
        return m
