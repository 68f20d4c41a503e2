"""The engine's shared requant unit: one output per cycle, pipelined, fixed point and thresholds.

Every output of the network passes through this one unit (DESIGN §4b: one
multiply per output, not per operation).  An entry carries its operand(s)
and the parameters that apply to it, so the unit holds no state but its
pipeline::

    fixed      q = clamp((m0*a + m1*b + n) >> shift, lo, hi)
               (conv rows and average pools: m1 = 0; residual add: a, b the two codes)
    threshold  cnt = #{t < 2**bits - 1 : a >= thr[t]},  q = neg ? top - cnt : cnt

with ``>>`` an arithmetic (flooring) shift and ``top = 2**out_bits - 1``.

Pipeline (:attr:`SerialRequant.latency` = ``config.requant_latency``, one
register stage per cycle, so that no path runs from the drain through a
multiply or through more than one wide add in one cycle)::

    fixed (6)  1 the entry register (the drain's shadow read, all fields)
               2 the partial products a*m0_lo, a*m0_hi (m0 split in two halves
                 of mult_bits // 2 and the rest) and m1*b
               3 p0 = (a*m0_hi << k) + a*m0_lo and p1n = m1*b + n
               4 total = p0 + p1n
               5 total >> shift
               6 the clamp into the output register (both compares side by side)
    threshold  1 the entry register, 2 the 2**bits - 1 compares (hits),
    only (4)   3 their count, 4 q into the output register

With both forms the threshold result waits in a delay line to the fixed
form's 6 stages.  Throughput: one entry per cycle; back-pressure on ``o``
stalls the whole pipeline (``i.ready = ~o.valid | o.ready``), losing or
repeating nothing.
"""

from __future__ import annotations

from typing import Sequence

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.config import EngineConfig
from hwsim.energy import requant_widths
from quant.base.intops import RequantMode
from rtl.construct import ConfigChecked

__all__ = ["SerialRequant", "requant_entry_layout", "requant_entry_ref", "serial_requant_ref"]


def _popcount(bits: list):
    while len(bits) > 1:
        nxt = [bits[k] + bits[k + 1] for k in range(0, len(bits) - 1, 2)]
        if len(bits) % 2:
            nxt.append(bits[-1])
        bits = nxt
    return bits[0] if bits else 0


def requant_entry_layout(config: EngineConfig) -> data.StructLayout:
    """The ``i`` payload of :class:`SerialRequant` (its ``entry_layout``)."""
    cfg = config
    widths = requant_widths(cfg)  # the architecture's datapath widths
    fields = {
        "a": signed(widths["a_bits"]),
        "b": signed(cfg.act_bits + 1),
        "m0": signed(cfg.mult_bits),
        "m1": signed(cfg.mult_bits),
        "n": signed(cfg.n_bits),
        "shift": unsigned(widths["sum_bits"].bit_length()),
        "lo": signed(cfg.out_bits + 1),
        "hi": signed(cfg.out_bits + 1),
        "threshold": 1,
    }
    if RequantMode.THRESHOLD in cfg.requant:
        fields.update({
            "thr": data.ArrayLayout(unsigned(cfg.thr_bits), cfg.threshold_count),
            "neg": 1,
            "top": unsigned(cfg.bits),
        })
    return data.StructLayout(fields)


class SerialRequant(ConfigChecked, wiring.Component):
    """The shared requant unit (module docstring).

    Parameters
    ----------
    config : EngineConfig
        Widths (``acc_bits``, ``mult_acc_bits``, ``act_bits``, ``mult_bits``,
        ``n_bits``, ``out_bits``) and the forms (``config.requant``).

    Attributes
    ----------
    latency : int
        ``config.requant_latency`` cycles from an ``i`` handshake to its ``o`` beat.
    entry_layout : data.StructLayout
        The ``i`` payload: ``a``, ``b``, ``m0``, ``m1``, ``n``, ``shift``,
        ``lo``, ``hi``, ``thr``, ``neg``, ``top``, ``threshold`` (1: the
        threshold form).

    Notes
    -----
    Ports: ``i`` (In stream of :attr:`entry_layout`), ``o`` (Out stream of a
    signed ``out_bits + 1`` output).
    """

    def __init__(self, *, config: EngineConfig):
        self.config = config
        self.latency = config.requant_latency
        cfg = config
        # an accumulator (unsigned adder: one more bit as signed) or a pool's lane sum of at most max_k codes
        widths = requant_widths(cfg)  # the architecture's datapath widths
        self.a_bits, self.prod_bits, self.sum_bits = widths["a_bits"], widths["prod_bits"], widths["sum_bits"]
        self.entry_layout = requant_entry_layout(cfg)
        super().__init__({
            "i": In(stream.Signature(self.entry_layout)),
            "o": Out(stream.Signature(signed(cfg.out_bits + 1))),
        })

    def elaborate(self, platform):  # noqa: C901 - the stages of the module docstring, in order
        m = Module()
        cfg = self.config
        adv = Signal()
        m.d.comb += [adv.eq(~self.o.valid | self.o.ready), self.i.ready.eq(adv)]
        has_fixed = RequantMode.FIXED in cfg.requant
        has_thr = RequantMode.THRESHOLD in cfg.requant
        out_shape = signed(cfg.out_bits + 1)

        def stage(value, name, shape=None):
            """``value`` in a pipeline register (advancing with the pipeline)."""
            reg = Signal(shape if shape is not None else value.shape(), name=name, reset_less=True)
            with m.If(adv):
                m.d.sync += reg.eq(value)
            return reg

        # stage 1: the entry register; the valid and the form selector travel with every stage
        e = stage(self.i.payload, "entry", self.entry_layout)
        assert self.latency == (6 if has_fixed else 4), "the stages below are config.requant_latency's"
        valid, sel = [Signal(name="v1")], [e.threshold]
        with m.If(adv):
            m.d.sync += valid[0].eq(self.i.valid)
        for k in range(2, self.latency):  # o.valid is the last stage's
            valid.append(Signal(name=f"v{k}"))
            sel.append(Signal(name=f"sel{k}"))
            with m.If(adv):
                m.d.sync += [valid[-1].eq(valid[-2]), sel[-1].eq(sel[-2])]
        if has_fixed:
            k = cfg.mult_bits // 2
            # stage 2: the partial products
            p_lo = stage(e.a * e.m0[:k], "p_lo")
            p_hi = stage(e.a * e.m0[k:].as_signed(), "p_hi")
            p_b = stage(e.m1 * e.b, "p_b")
            n2, sh2, lo2, hi2 = (stage(f, f"{name}2") for f, name in
                                 ((e.n, "n"), (e.shift, "sh"), (e.lo, "lo"), (e.hi, "hi")))
            # stage 3: the two sums of two
            p0 = stage((p_hi << k) + p_lo, "p0", signed(self.prod_bits))
            p1n = stage(p_b + n2, "p1n", signed(self.sum_bits))
            sh3, lo3, hi3 = stage(sh2, "sh3"), stage(lo2, "lo3"), stage(hi2, "hi3")
            # stage 4: the total
            total = stage(p0 + p1n, "total", signed(self.sum_bits))
            sh4, lo4, hi4 = stage(sh3, "sh4"), stage(lo3, "lo4"), stage(hi3, "hi4")
            # stage 5: the shift; lo > hi (the clamp then gives hi) from registers
            shifted = stage(total >> sh4, "shifted", signed(self.sum_bits))
            lo5, hi5 = stage(lo4, "lo5"), stage(hi4, "hi5")
            inverted = stage(lo4 > hi4, "inverted")
            # stage 6 (the output register): clamp(shifted, lo, hi) with both compares side by side
            below, above = shifted < lo5, shifted > hi5
            fixed_q = Mux(inverted | above, hi5, Mux(below, lo5, shifted))
        if has_thr:
            top = cfg.threshold_count
            # stage 2: the compares; stage 3: their count; stage 4 (or a delay line to the fixed form's): q
            a_nonneg = ~e.a[-1]
            hits = stage(Cat(*(a_nonneg & (e.a.as_unsigned() >= e.thr[t]) for t in range(top))), "hits",
                         unsigned(top))
            neg2, top2 = stage(e.neg, "neg2"), stage(e.top, "top2")
            cnt3 = stage(_popcount([hits[t] for t in range(top)]), "cnt3", range(top + 1))
            neg3, top3 = stage(neg2, "neg3"), stage(top2, "top3")
            q_thr = Mux(neg3, top3 - cnt3, cnt3)
            for k in range(4, self.latency):  # with the fixed form: wait for its stages
                q_thr = stage(q_thr, f"q_thr{k}", out_shape)
        with m.If(adv):
            m.d.sync += self.o.valid.eq(valid[-1])
            if has_fixed and has_thr:
                m.d.sync += self.o.payload.eq(Mux(sel[-1], q_thr, fixed_q))
            elif has_fixed:
                m.d.sync += self.o.payload.eq(fixed_q)
            else:
                m.d.sync += self.o.payload.eq(q_thr)
        return m


def requant_entry_ref(config: EngineConfig, entry: dict) -> int:
    """The formula of the module docstring for one entry (a dict of :attr:`SerialRequant.entry_layout` fields)."""
    if entry.get("threshold"):
        a = int(entry["a"])
        cnt = sum(1 for t in entry["thr"] if a >= 0 and a >= int(t))
        return int(entry["top"]) - cnt if entry["neg"] else cnt
    v = (int(entry["m0"]) * int(entry["a"]) + int(entry.get("m1", 0)) * int(entry.get("b", 0))
         + int(entry["n"])) >> int(entry["shift"])
    return min(max(v, int(entry["lo"])), int(entry["hi"]))


def serial_requant_ref(unit: SerialRequant, entries: Sequence[dict]) -> list:
    """Reference of :class:`SerialRequant`: one output per entry, in order."""
    return [requant_entry_ref(unit.config, e) for e in entries]
