"""The tracer: rule 6 of the cycle contract, a finished operation's output on ``o`` (``config.trace`` only).

While ``start`` is high the tracer reads the output tensor word by word
(``read``/``raddr``, a synchronous read port: ``data`` is the word in the
next cycle) and sends each word lane by lane on ``o`` (``act_bits`` raw lane
bits in a signed ``out_bits + 1`` payload), ``pixels * out_g`` words of
``cols`` lanes; ``end`` is high in the cycle of the last beat's handshake.
One cycle reads the first word; from then on a word's last beat reads the next,
so ``o`` carries one beat per cycle while it is ready.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.config import EngineConfig
from hwsim.descriptor import DIM_BITS, addr_bits
from rtl.construct import ConfigChecked

__all__ = ["Tracer", "tracer_ref"]


class Tracer(ConfigChecked, wiring.Component):
    """The tracer of an engine of ``config`` (module docstring)."""

    def __init__(self, *, config: EngineConfig):
        self.config = config
        super().__init__({
            "start": In(1), "pixels": In(unsigned(addr_bits(config))), "out_g": In(DIM_BITS),
            "read": Out(1), "raddr": Out(addr_bits(config)), "data": In(config.act_word_bits),
            "o": Out(stream.Signature(signed(config.out_bits + 1))), "end": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cols, ab = self.config.cols, self.config.act_bits
        taddr = Signal(addr_bits(self.config))
        tp = Signal(addr_bits(self.config))  # pixel of the word being sent
        tg = Signal(DIM_BITS)  # its channel group
        tlane = Signal(range(cols))
        tv = Signal()  # a word has been read and is being sent
        with m.If(self.start):
            with m.If(~tv):
                m.d.comb += [self.read.eq(1), self.raddr.eq(0)]
                m.d.sync += tv.eq(1)
            with m.Else():
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(self.data.word_select(tlane, ab))]
                with m.If(self.o.ready):
                    with m.If(tlane == cols - 1):
                        m.d.sync += tlane.eq(0)
                        with m.If((tp == self.pixels - 1) & (tg == self.out_g - 1)):
                            m.d.comb += self.end.eq(1)
                            m.d.sync += [tv.eq(0), taddr.eq(0), tp.eq(0), tg.eq(0)]
                        with m.Else():
                            m.d.comb += [self.read.eq(1), self.raddr.eq(taddr + 1)]
                            m.d.sync += taddr.eq(taddr + 1)
                            with m.If(tg == self.out_g - 1):
                                m.d.sync += [tg.eq(0), tp.eq(tp + 1)]
                            with m.Else():
                                m.d.sync += tg.eq(tg + 1)
                    with m.Else():
                        m.d.sync += tlane.eq(tlane + 1)
        return m


def tracer_ref(config: EngineConfig, words, pixels: int, out_g: int) -> list:
    """The ``o`` beats of :class:`Tracer` over memory ``words`` (integers of ``act_word_bits``): raw lane
    bits as the signed payload holds them."""
    ab, width = config.act_bits, config.out_bits + 1
    out = []
    for w in words[: pixels * out_g]:
        for n in range(config.cols):
            v = (w >> (n * ab)) & ((1 << ab) - 1) & ((1 << width) - 1)
            out.append(v - (1 << width) if v >> (width - 1) else v)
    return out
