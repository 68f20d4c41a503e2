"""The engine's channel-parallel PE array: ``rows x cols`` PEs, a pipelined adder tree per row.

One step brings one activation word ``x`` (``cols`` lanes: ``cols`` input
channels of one pixel) and one weight word ``w`` (``rows x cols``).  PE
``(r, n)`` forms ``|x[n] - w[r][n]|`` (adder PE: unsigned ``bits``-bit
operands, one ``bits+1``-bit subtractor and a conditional inversion) or
``x[n] * w[r][n]`` (multiplier PE: ``x`` signed ``bits+1``, ``w`` signed
``bits``), row ``r``'s tree sums its ``cols`` terms and its accumulator adds
the sum (cleared by a step with ``first``).  A step with ``last`` hands the
rows' totals to the shadow register, the ``o`` stream: ``o.valid`` holds
until the consumer (the requant drain) takes the vector.

Pipeline: the term registers, then ``config.tree_stages`` tree stages (one
register per three adder levels), the last of which also accumulates.
:attr:`ChannelArray.latency` = ``1 + tree_stages`` cycles from a step's
``i`` handshake to its vector on ``o``: a step issued (memory read) in cycle
``l`` is handed to the array in ``l + 1`` and is in the shadow from cycle
``l + 1 + latency``, i.e. loaded at the edge ending ``l + D`` with the
contract's ``D = config.step_latency = latency``.  Throughput: one step per
cycle.  Behind the shadow sits a skid register (:func:`elastic_shadow`): a
``last`` step that lands while the shadow is full and not being taken goes
into the skid, and only a full skid (a register) freezes the whole pipeline
(``i.ready`` low) until the shadow is taken, so ``o.ready`` never reaches
the pipeline's enables or ``i.ready`` combinationally.  Without
back-pressure the skid is never used: the contract's schedule lands a
pixel in the cycle its predecessor's last entry is taken.

Pixel tiles (``config.pixel_tile`` = ``Tp`` > 1, :mod:`hwsim.engine` rule 3):
each row has ``Tp`` accumulators, a step names its pixel's (``bank``, which
travels down the pipeline with the step) and ``first`` clears that one; a
``last`` step hands every bank's totals (``Tp x rows``, the step's own bank
with the step's sum) to the shadow.  The banks are the skid
(:func:`banked_shadow`): a landing on a full shadow freezes the pipeline
until the shadow is taken and then refills it from the banks.  The latency
is the same.
"""

from __future__ import annotations

from typing import Sequence

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.compiler import Unit
from hwsim.config import EngineConfig
from quant.base.intops import PeKind
from rtl.construct import Checked, check_config

__all__ = ["ChannelArray", "array_step_layout", "array_total_layout", "channel_array_ref", "elastic_shadow"]

#: The units with an array (the vector unit has none).
_UNITS = (Unit.ADDER, Unit.MULT)


def _rows_acc(config: EngineConfig, unit: Unit) -> tuple[int, int]:
    """The rows and accumulator bits of ``unit``'s array (an adder engine's multiplier unit has ``mult_rows``)."""
    if unit == Unit.MULT and config.pe == PeKind.ADDER:
        return config.mult_rows, config.mult_acc_bits
    return config.rows, config.acc_bits


def array_step_layout(config: EngineConfig, unit: Unit) -> data.StructLayout:
    """The ``i`` payload of ``unit``'s :class:`ChannelArray`: ``x`` (``cols`` codes), ``w`` (``rows x cols``
    weights), ``first``, ``last``, and with pixel tiles ``bank`` (the step's pixel in its tile)."""
    rows, _ = _rows_acc(config, unit)
    b = config.bits
    xs, ws = (unsigned(b), unsigned(b)) if unit == Unit.ADDER else (signed(b + 1), signed(b))
    fields = {
        "x": data.ArrayLayout(xs, config.cols),
        "w": data.ArrayLayout(data.ArrayLayout(ws, config.cols), rows),
        "first": 1,
        "last": 1,
    }
    if config.pixel_tile > 1:
        fields["bank"] = range(config.pixel_tile)
    return data.StructLayout(fields)


def array_total_layout(config: EngineConfig, unit: Unit) -> data.ArrayLayout:
    """The ``o`` payload of ``unit``'s :class:`ChannelArray`: ``rows`` accumulator totals, with pixel tiles
    ``pixel_tile`` of them (pixel ``p``'s totals at index ``p``)."""
    rows, acc_bits = _rows_acc(config, unit)
    totals = data.ArrayLayout((unsigned if unit == Unit.ADDER else signed)(acc_bits), rows)
    return totals if config.pixel_tile == 1 else data.ArrayLayout(totals, config.pixel_tile)


class ChannelArray(Checked, wiring.Component):
    """The array of one unit (module docstring).

    Parameters
    ----------
    config : EngineConfig
        Shape and widths.
    unit : Unit
        ``Unit.ADDER``: the main array of an adder engine (``rows`` rows);
        ``Unit.MULT``: the multiplier unit (``mult_rows`` rows) of an adder engine
        or the main array of an all-multiplier engine.

    Attributes
    ----------
    rows, cols, acc_bits : int
    latency : int
        ``1 + config.tree_stages``.

    Notes
    -----
    Ports: ``i`` (In stream of ``x``, ``w``, ``first``, ``last``, with pixel
    tiles ``bank``), ``o`` (Out stream of ``rows`` accumulator totals, with
    pixel tiles ``pixel_tile x rows``).
    """

    @classmethod
    def check(cls, *, config: EngineConfig, unit: Unit = Unit.ADDER) -> None:
        """Refuse a bad argument (one line naming it) before the component exists."""
        check_config(config)
        if unit not in _UNITS:
            raise ValueError(f"unit must be one of {', '.join(_UNITS)}, not {unit!r}")
        if unit == Unit.ADDER and config.pe != PeKind.ADDER:
            raise ValueError("unit adder needs an adder engine (config.pe == 'adder')")
        if unit == Unit.MULT and config.pe == PeKind.ADDER and not config.mult_rows:
            raise ValueError("unit mult of an adder engine needs mult_rows >= 1")

    def __init__(self, *, config: EngineConfig, unit: Unit = Unit.ADDER):
        self.config = config
        self.unit = unit
        self.cols = config.cols
        self.rows, self.acc_bits = _rows_acc(config, unit)
        self.latency = 1 + config.tree_stages
        self.pixel_tile = config.pixel_tile
        self.step_layout = array_step_layout(config, unit)
        totals = array_total_layout(config, unit)
        self.acc_shape = totals.elem_shape if self.pixel_tile == 1 else totals.elem_shape.elem_shape
        super().__init__({
            "i": In(stream.Signature(self.step_layout)),
            "o": Out(stream.Signature(totals)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        rows, cols = self.rows, self.cols
        b = cfg.bits
        term_shape = unsigned(b) if self.unit == Unit.ADDER else signed(2 * b + 1)
        adv = Signal()
        # stage 1: the PEs' terms
        v = [Signal(name="v1")]
        first = [Signal(name="first1")]
        last = [Signal(name="last1")]
        tp = self.pixel_tile
        bank = [Signal(range(tp), name="bank1")] if tp > 1 else []
        terms = [[Signal(term_shape, name=f"t_r{r}_n{n}", reset_less=True) for n in range(cols)]
                 for r in range(rows)]
        p = self.i.payload
        with m.If(adv):
            m.d.sync += [v[0].eq(self.i.valid), first[0].eq(p.first), last[0].eq(p.last)]
            if tp > 1:
                m.d.sync += bank[0].eq(p.bank)
            for r in range(rows):
                for n in range(cols):
                    x, w = p.x[n], p.w[r][n]
                    if self.unit == Unit.ADDER:
                        d = Signal(signed(b + 1), name=f"d_r{r}_n{n}")
                        m.d.comb += d.eq(x - w)
                        s = d[b]
                        # |d| = (d ^ s) + s: conditional inversion, the carry-in in the next adder
                        m.d.sync += terms[r][n].eq((d[:b] ^ s.replicate(b)) + s)
                    else:
                        m.d.sync += terms[r][n].eq(x * w)
        # tree stages: three adder levels per register
        level = [list(t) for t in terms]
        levels = (cols - 1).bit_length()
        per = -(-levels // cfg.tree_stages) if levels else 0
        for stage in range(cfg.tree_stages - 1):
            for _ in range(per):
                level = [_pairwise(row) for row in level]
            regs = [[Signal(t.shape(), name=f"s{stage}_r{r}_{k}", reset_less=True) for k, t in enumerate(row)]
                    for r, row in enumerate(level)]
            vv, ff, ll = Signal(name=f"v{stage + 2}"), Signal(name=f"first{stage + 2}"), Signal(name=f"last{stage + 2}")
            with m.If(adv):
                m.d.sync += [vv.eq(v[-1]), ff.eq(first[-1]), ll.eq(last[-1])]
                if tp > 1:
                    bb = Signal(range(tp), name=f"bank{stage + 2}")
                    m.d.sync += bb.eq(bank[-1])
                    bank.append(bb)
                for r in range(rows):
                    for k, t in enumerate(level[r]):
                        m.d.sync += regs[r][k].eq(t)
            level = regs
            v.append(vv)
            first.append(ff)
            last.append(ll)
        while any(len(row) > 1 for row in level):
            level = [_pairwise(row) for row in level]
        # final stage: accumulate; a last step lands in the shadow (o)
        if tp > 1:
            self._accumulate_banks(m, level, v[-1], first[-1], last[-1], bank[-1], adv)
            return m
        acc = [Signal(self.acc_shape, name=f"acc_r{r}", reset_less=True) for r in range(rows)]
        total = Signal(self.o.payload.shape(), name="total")
        for r in range(rows):
            m.d.comb += total[r].eq(Mux(first[-1], 0, acc[r]) + level[r][0])
        # the pipeline stalls only on a full skid (a register): o.ready reaches the shadow's load, not adv
        skid_full = elastic_shadow(m, self.o, adv & v[-1] & last[-1], total)
        m.d.comb += [adv.eq(~skid_full), self.i.ready.eq(adv)]
        with m.If(adv & v[-1]):
            for r in range(rows):
                m.d.sync += acc[r].eq(total[r])
        return m

    def _accumulate_banks(self, m, level, valid, first, last, bank, adv):
        """The last stage with pixel tiles: row ``r``'s accumulator ``bank`` adds the tree's sum (``first``
        clears it); a ``last`` step hands every bank to the shadow, its own with the new sum."""
        rows, tp = self.rows, self.pixel_tile
        acc = [[Signal(self.acc_shape, name=f"acc_p{k}_r{r}", reset_less=True) for r in range(rows)]
               for k in range(tp)]
        cur = [Signal(self.acc_shape, name=f"acc_cur_r{r}") for r in range(rows)]  # bank `bank`'s
        total = [Signal(self.acc_shape, name=f"total_r{r}") for r in range(rows)]
        with m.Switch(bank):
            for k in range(tp):
                with m.Case(k):
                    m.d.comb += [cur[r].eq(acc[k][r]) for r in range(rows)]
        for r in range(rows):
            m.d.comb += total[r].eq(Mux(first, 0, cur[r]) + level[r][0])
        banks = Signal(self.o.payload.shape(), name="totals")
        held = Signal(self.o.payload.shape(), name="held")
        for k in range(tp):
            for r in range(rows):
                m.d.comb += [banks[k][r].eq(Mux(bank == k, total[r], acc[k][r])), held[k][r].eq(acc[k][r])]
        pending = banked_shadow(m, self.o, adv & valid & last, banks, held)
        m.d.comb += [adv.eq(~pending), self.i.ready.eq(adv)]
        with m.If(adv & valid):
            with m.Switch(bank):
                for k in range(tp):
                    with m.Case(k):
                        m.d.sync += [acc[k][r].eq(total[r]) for r in range(rows)]


def elastic_shadow(m: Module, o, land, value) -> Signal:
    """The shadow register ``o`` (a stream's payload and valid) with a skid register behind it.

    ``land`` (which the caller asserts only while the returned signal is low)
    puts ``value`` into the shadow when it is empty or being taken, else into
    the skid; a taken shadow refills from the skid.  Returns the skid's
    valid, a register: the caller's stall, so ``o.ready`` never reaches a
    pipeline enable or an upstream ``ready`` through logic.  Without
    back-pressure the skid is never used (the schedule's landing meets a
    shadow that is being taken), so the unit's timing is unchanged.
    """
    skid = Signal(o.payload.shape(), reset_less=True, name="skid")
    skid_v = Signal(name="skid_v")
    taken = o.valid & o.ready
    with m.If(taken):
        m.d.sync += [o.valid.eq(skid_v), skid_v.eq(0)]
        with m.If(skid_v):
            m.d.sync += o.payload.eq(skid)
    with m.If(land):
        with m.If(~o.valid | taken):
            m.d.sync += [o.valid.eq(1), o.payload.eq(value)]
        with m.Else():
            m.d.sync += [skid_v.eq(1), skid.eq(value)]
    return skid_v


def banked_shadow(m: Module, o, land, value, held) -> Signal:
    """The shadow register ``o`` of an array with accumulator banks: :func:`elastic_shadow` whose skid is the
    banks themselves.

    ``land`` puts ``value`` (every bank's totals, the landing step's own with
    its sum) into the shadow when it is empty or being taken; else the
    landing is *pending*: the banks, which took the same totals at the same
    edge, are ``held`` (nothing overwrites them, since the returned pending
    flag, a register, freezes the pipeline) and go into the shadow when it
    is taken.  So the skid needs no register of its own (``pixel_tile x rows``
    accumulators fewer); without back-pressure nothing is ever pending.
    """
    pending = Signal(name="pending")
    taken = o.valid & o.ready
    with m.If(taken):
        m.d.sync += [o.valid.eq(pending), pending.eq(0)]
        with m.If(pending):
            m.d.sync += o.payload.eq(held)
    with m.If(land):
        with m.If(~o.valid | taken):
            m.d.sync += [o.valid.eq(1), o.payload.eq(value)]
        with m.Else():
            m.d.sync += pending.eq(1)
    return pending


def _pairwise(row: list) -> list:
    out = [row[k] + row[k + 1] for k in range(0, len(row) - 1, 2)]
    if len(row) % 2:
        out.append(row[-1])
    return out


def channel_array_ref(array: ChannelArray, steps: Sequence) -> list:
    """Reference of :class:`ChannelArray`: the row totals of every ``last`` step.

    ``steps`` are ``(x [cols], w [rows][cols], first, last)``, with pixel
    tiles ``(x, w, first, last, bank)``, and then each result is every
    bank's row totals (``pixel_tile`` lists); the totals wrap at
    ``acc_bits`` exactly as the accumulators would.
    """
    tp = array.pixel_tile
    acc = [[0] * array.rows for _ in range(tp)]
    out = []
    mask = (1 << array.acc_bits) - 1
    sgn = array.unit == Unit.MULT

    def wrap(v):
        v &= mask
        return v - (1 << array.acc_bits) if sgn and v >> (array.acc_bits - 1) else v

    for step in steps:
        x, w, first, last = step[:4]
        k = step[4] if tp > 1 else 0
        for r in range(array.rows):
            terms = [abs(int(x[n]) - int(w[r][n])) if not sgn else int(x[n]) * int(w[r][n])
                     for n in range(array.cols)]
            acc[k][r] = wrap((0 if first else acc[k][r]) + sum(terms))
        if last:
            out.append([list(a) for a in acc] if tp > 1 else list(acc[0]))
    return out
