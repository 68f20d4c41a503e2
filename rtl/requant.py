"""Per-row requantization of one accumulator column: fixed point or thresholds.

Fixed point (``config.requant == "fixed"``), per row ``r``::

    q[r] = min(max((m[r] * acc[r] + n[r]) >> shift, lo), hi)

with an arithmetic (flooring) shift and exact intermediate widths
(:func:`rtl.layout.fixed_widths`).  Two pipeline registers: the multiply is
split over the accumulator's halves (``acc = hi * 2**h + lo``), stage 1
registers ``m*lo + n`` and ``m*hi``, stage 2 adds ``(m*hi << h)``, shifts,
clamps into the output register.  (One ``m * acc`` multiply in stage 1 ran at
29 MHz in a 4x4 accelerator on iCE40 HX8K.)

Thresholds (``"threshold"``), per row ``r``::

    cnt  = #{t < 2**bits - 1 : acc[r] >= thr[r][t]}
    q[r] = (2**bits - 1) - cnt if neg[r] else cnt

Comparisons and a population count only; one register (the output).

:attr:`Requant.latency` is ``config.requant_latency - 1`` (fixed 2, threshold 1)
cycles from an input beat to its output beat (the accelerator's shadow bank
adds the remaining cycle of ``L``).  Throughput: one column per cycle.  Both
streams follow ``amaranth.lib.stream`` rules; back-pressure on ``o`` stalls the
whole pipeline (``i.ready = ~o.valid | o.ready``) and loses or duplicates
nothing.  ``params`` must be held stable while a beat is in flight.
"""

from __future__ import annotations

import random
from typing import Mapping, Sequence

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.config import ArrayConfig
from rtl.layout import acc_shape, check_config, fixed_widths, o_layout, requant_layout
from quant.intops import check_int
from rtl.construct import construction

__all__ = ["Requant", "requant_values", "requant_ref", "simulate_requant"]


def _log_shift_right(value, amount):
    """Arithmetic right shift by a variable ``amount``: one 2:1 mux level per
    bit of ``amount`` (constant shifts only), shallower on iCE40 than yosys'
    mapping of ``$sshr``."""
    for i in range(len(amount)):
        value = Mux(amount[i], value >> (1 << i), value)
    return value


def _tree_sum(terms: list):
    """Balanced adder tree (population counts stay shallow)."""
    if not terms:
        return 0
    while len(terms) > 1:
        nxt = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    return terms[0]


class Requant(wiring.Component):
    """Requant unit for all ``rows`` of one column beat.

    Parameters
    ----------
    config : hwsim.config.ArrayConfig
        Supplies rows, mode, widths.
    acc_bits : int, optional
        Width of the incoming accumulators (default ``config.acc_bits``);
        narrower values are extended.

    Notes
    -----
    Ports: ``i`` (In stream of ``rows`` accumulators), ``params`` (In,
    :func:`rtl.layout.requant_layout`), ``o`` (Out stream,
    :func:`rtl.layout.o_layout`).
    """

    def __init__(self, *, config: ArrayConfig, acc_bits: int | None = None):
        with construction(self):
            self.config = check_config(config)
            if acc_bits is not None:
                check_int("acc_bits", acc_bits, 1, config.acc_bits)
        self.latency = config.requant_latency - 1
        self.in_acc_bits = config.acc_bits if acc_bits is None else acc_bits
        super().__init__(
            {
                "i": In(stream.Signature(data.ArrayLayout(acc_shape(config, self.in_acc_bits),
                                                          config.rows))),
                "params": In(requant_layout(config)),
                "o": Out(stream.Signature(o_layout(config))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        p = self.params
        adv = Signal()
        m.d.comb += [adv.eq(~self.o.valid | self.o.ready), self.i.ready.eq(adv)]
        if cfg.requant == "fixed":
            fw = fixed_widths(cfg)
            a = self.in_acc_bits
            h = (a + 1) // 2  # the multiply is split in two halves of the accumulator
            v1 = Signal()
            with m.If(adv):
                m.d.sync += v1.eq(self.i.valid)
                m.d.sync += self.o.valid.eq(v1)
            for r in range(cfg.rows):
                acc = self.i.payload[r]
                lo_half = acc[:h]
                hi_half = acc[h:]
                if cfg.pe == "mult":
                    hi_half = hi_half.as_signed()
                # stage 1: m*lo + n and m*hi (acc = hi * 2**h + lo)
                part_lo = Signal(signed(fw["sum_bits"]), name=f"part_lo_{r}")
                part_hi = Signal(signed(fw["prod_bits"]), name=f"part_hi_{r}")
                # stage 2: (part_hi << h) + part_lo, shift, clamp
                total = Signal(signed(fw["sum_bits"]), name=f"total_{r}")
                shifted = Signal(signed(fw["sum_bits"]), name=f"shifted_{r}")
                low = Signal(signed(fw["sum_bits"]), name=f"low_{r}")
                m.d.comb += [
                    total.eq((part_hi << h) + part_lo),
                    shifted.eq(_log_shift_right(total, p.shift)),
                    low.eq(Mux(shifted < p.lo, p.lo, shifted)),
                ]
                with m.If(adv):
                    m.d.sync += [
                        part_lo.eq(p.m[r] * lo_half + p.n[r]),
                        part_hi.eq(p.m[r] * hi_half),
                        self.o.payload[r].eq(Mux(low > p.hi, p.hi, low)),
                    ]
        else:
            top = cfg.threshold_count
            with m.If(adv):
                m.d.sync += self.o.valid.eq(self.i.valid)
                for r in range(cfg.rows):
                    acc = self.i.payload[r]
                    hits = [Signal(name=f"hit_{r}_{t}") for t in range(top)]
                    for t in range(top):
                        m.d.comb += hits[t].eq(acc >= p.thr[r][t])
                    cnt = Signal(range(top + 1), name=f"cnt_{r}")
                    m.d.comb += cnt.eq(_tree_sum(list(hits)))
                    m.d.sync += self.o.payload[r].eq(Mux(p.neg[r], top - cnt, cnt))
        return m


def _check_params(config: ArrayConfig, params: Mapping) -> None:
    names = [n for n, _ in requant_layout(config)]
    missing = [n for n in names if n not in params]
    if missing:
        raise ValueError(f"requant parameters missing: {', '.join(missing)}")


def requant_values(config: ArrayConfig, column: Sequence[int], params: Mapping) -> list[int]:
    """The requant formula (module docstring) applied to one column of ``rows`` accumulators."""
    q = []
    for r in range(config.rows):
        a = int(column[r])
        if config.requant == "fixed":
            v = (int(params["m"][r]) * a + int(params["n"][r])) >> int(params["shift"])
            q.append(min(max(v, int(params["lo"])), int(params["hi"])))
        else:
            top = config.threshold_count
            cnt = sum(1 for t in range(top) if a >= int(params["thr"][r][t]))
            q.append(top - cnt if params["neg"][r] else cnt)
    return q


def requant_ref(requant: Requant, columns: Sequence[Sequence[int]], params: Mapping,
                *, seed: int | None = None) -> list[list[int]]:
    """Numpy-free integer reference of :class:`Requant`: one output column per input.

    ``params`` maps the :func:`rtl.layout.requant_layout` field names to ints
    or per-row lists.  ``seed`` (stall pattern of :func:`simulate_requant`)
    does not change the result and is accepted for the same call signature.
    """
    _check_params(requant.config, params)
    return [requant_values(requant.config, col, params) for col in columns]


def simulate_requant(requant: Requant, columns: Sequence[Sequence[int]], params: Mapping,
                     *, seed: int | None = None) -> list[list[int]]:
    """Run ``requant`` in the Amaranth simulator; same arguments and result as
    :func:`requant_ref`.  With ``seed`` the input valid and output ready drop
    at random (seeded), exercising stalls."""
    from amaranth.sim import Simulator

    _check_params(requant.config, params)
    rng = random.Random(seed)
    stall = seed is not None
    out: list[list[int]] = []
    rows = requant.config.rows
    values = {n: params[n] for n, _ in requant_layout(requant.config)}

    async def producer(ctx):
        ctx.set(requant.params, values)
        for col in columns:
            while stall and rng.random() < 0.3:
                ctx.set(requant.i.valid, 0)
                await ctx.tick()
            ctx.set(requant.i.payload, [int(v) for v in col])
            ctx.set(requant.i.valid, 1)
            await ctx.tick().until(requant.i.ready)
        ctx.set(requant.i.valid, 0)

    async def consumer(ctx):
        while len(out) < len(columns):
            ready = 0 if (stall and rng.random() < 0.3) else 1
            ctx.set(requant.o.ready, ready)
            valid = ctx.get(requant.o.valid)
            payload = ctx.get(requant.o.payload)
            await ctx.tick()
            if ready and valid:
                out.append([int(payload[r]) for r in range(rows)])

    sim = Simulator(requant)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return out
