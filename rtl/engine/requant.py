"""The engine's shared requant unit: one output per cycle, pipelined, fixed point and thresholds.

Every output of the network passes through this one unit (DESIGN §4b: one
multiply per output, not per operation).  An entry carries its operand(s)
and the parameters that apply to it, so the unit holds no state but its
pipeline::

    fixed      q = clamp((m0*a + m1*b + n) >> shift, lo, hi)
               (conv rows and average pools: m1 = 0; residual add: a, b the two codes)
    threshold  cnt = #{t < 2**bits - 1 : a >= thr[t]},  q = neg ? top - cnt : cnt

with ``>>`` an arithmetic (flooring) shift and ``top = 2**out_bits - 1``.

Pipeline (:attr:`SerialRequant.latency` = ``config.requant_latency``): with
the fixed form, stage 1 registers the two products, stage 2 their sum with
``n``, stage 3 the shifted, clamped output; the threshold path counts in
stage 1 and forms ``q`` in stage 2 (and is delayed to 3 stages when the unit
also has the fixed form, so both share one latency).  Throughput: one entry
per cycle; back-pressure on ``o`` stalls the whole pipeline
(``i.ready = ~o.valid | o.ready``), losing or repeating nothing.
"""

from __future__ import annotations

from typing import Sequence

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
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

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        e = self.i.payload
        adv = Signal()
        m.d.comb += [adv.eq(~self.o.valid | self.o.ready), self.i.ready.eq(adv)]
        has_fixed = RequantMode.FIXED in cfg.requant
        has_thr = RequantMode.THRESHOLD in cfg.requant
        v1, v2 = Signal(), Signal()
        sel1, sel2 = Signal(), Signal()
        with m.If(adv):
            m.d.sync += [v1.eq(self.i.valid), v2.eq(v1), sel1.eq(e.threshold), sel2.eq(sel1)]
        q2 = Signal(signed(cfg.out_bits + 1))  # the result entering the output register
        if has_fixed:
            p0 = Signal(signed(self.prod_bits), reset_less=True)
            p1 = Signal(signed(self.prod_bits), reset_less=True)
            n1 = Signal(signed(cfg.n_bits), reset_less=True)
            sh1 = Signal(e.shift.shape(), reset_less=True)
            lo1 = Signal(signed(cfg.out_bits + 1), reset_less=True)
            hi1 = Signal(signed(cfg.out_bits + 1), reset_less=True)
            total = Signal(signed(self.sum_bits), reset_less=True)
            sh2 = Signal(e.shift.shape(), reset_less=True)
            lo2 = Signal(signed(cfg.out_bits + 1), reset_less=True)
            hi2 = Signal(signed(cfg.out_bits + 1), reset_less=True)
            with m.If(adv):
                m.d.sync += [
                    p0.eq(e.m0 * e.a), p1.eq(e.m1 * e.b), n1.eq(e.n), sh1.eq(e.shift), lo1.eq(e.lo),
                    hi1.eq(e.hi),
                    total.eq(p0 + p1 + n1), sh2.eq(sh1), lo2.eq(lo1), hi2.eq(hi1),
                ]
            shifted = Signal(signed(self.sum_bits))
            low = Signal(signed(self.sum_bits))
            m.d.comb += [
                shifted.eq(total >> sh2),
                low.eq(Mux(shifted < lo2, lo2, shifted)),
            ]
            fixed_q = Mux(low > hi2, hi2, low)
        if has_thr:
            top = cfg.threshold_count
            cnt1 = Signal(range(top + 1), reset_less=True)
            neg1 = Signal(reset_less=True)
            top1 = Signal(unsigned(cfg.bits), reset_less=True)
            hits = [Signal(name=f"hit_{t}") for t in range(top)]
            a_nonneg = ~e.a[-1]
            for t in range(top):
                m.d.comb += hits[t].eq(a_nonneg & (e.a.as_unsigned() >= e.thr[t]))
            q_thr = Signal(signed(cfg.out_bits + 1), reset_less=True)
            with m.If(adv):
                m.d.sync += [cnt1.eq(_popcount(list(hits))), neg1.eq(e.neg), top1.eq(e.top)]
                m.d.sync += q_thr.eq(Mux(neg1, top1 - cnt1, cnt1))
        if has_fixed and has_thr:
            m.d.comb += q2.eq(Mux(sel2, q_thr, fixed_q))
        elif has_fixed:
            m.d.comb += q2.eq(fixed_q)
        with m.If(adv):
            if has_fixed:
                m.d.sync += [self.o.valid.eq(v2), self.o.payload.eq(q2)]
            else:  # thresholds only: two stages
                m.d.sync += [self.o.valid.eq(v1), self.o.payload.eq(Mux(neg1, top1 - cnt1, cnt1))]
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
