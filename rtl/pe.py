"""Processing elements of the PE-arithmetic study: adder PE and multiplier PE.

Every PE holds one accumulator and, on each enabled cycle, adds one term:

* :class:`AdderPE`: ``|x - w|`` on unsigned ``bits``-bit operands (AdderNet),
* :class:`MultPE`: ``x * w`` on signed ``bits``-bit operands (ordinary MAC).

``sum = acc + f(x, w)`` is a combinational output (the array writes it into
its shadow bank on a tile's last step); on every cycle with ``en`` high,
``acc <= last ? 0 : sum``.  Clearing on the *last* step instead of gating the
accumulator on the *first* one is the same tile-level function as the
contract's ``acc = (first ? 0 : acc) + f(x, w)`` (every tile starts from a
cleared accumulator, also after reset), but costs no logic: the clear is the
flip-flops' synchronous reset (on iCE40, ``SB_DFFESR``), whereas a
``first ? 0 : acc`` gate costs one LUT per accumulator bit (18 of 53 LUTs in
an 8-bit PE with ``max_k=1024``, measured with yosys 0.23 ``synth_ice40``).
The accumulator register has no reset value of its own: reset acts as an
enabled clear (``en | rst``, ``last | rst``).

Latency: :data:`PE_LATENCY` (1) cycle from the operands to ``acc``; ``sum``
is combinational (0).  Throughput: one term per cycle.

Each block has a numpy reference with the same arguments beside it
(:func:`pe_ref`) and a simulation wrapper (:func:`simulate_pe`), so a test reads
``assert simulate_pe(pe, *case) == pe_ref(pe, *case)``.

The adder PE's absolute difference has several exact formulations; ``form``
selects one (see the README's synthesis tables for their measured cost):

``"cinv"`` (default)
    one ``bits+1``-bit subtractor ``d = x - w``, then ``acc + (d ^ s) + s``
    with ``s`` the sign of ``d`` (conditional inversion; the ``+ s`` is the
    accumulator adder's carry-in).  8 bits, ``max_k=1024``, iCE40 HX8K
    (yosys 0.23, nextpnr-ice40 0.4): 39 logic cells (37 LUTs, 25 carries,
    18 flip-flops), 109 MHz.
``"mux"``
    ``x > w ? x - w : w - x`` (a comparator and two subtractors): 60 logic
    cells (59 LUTs, 32 carries), 115 MHz in the same setting.

The min form ``sum |x-w| = sum x + sum w - 2 sum min(x, w)`` was measured
too: 36 LUTs per PE for ``acc += min(x, w)``, one less than ``"cinv"``, which
cannot pay for the per-column ``sum x`` and per-row ``sum w`` accumulators it
needs, so it is not offered.
"""

from __future__ import annotations

import enum
from typing import Sequence

import numpy as np
from amaranth.hdl import Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from quant.base.intops import MAX_BITS, MIN_BITS, PeKind, acc_bits_for, check_int, wrap_code
from rtl.construct import Checked

__all__ = [
    "PE_LATENCY",
    "AdderForm",
    "ADDER_FORMS",
    "AdderPE",
    "MultPE",
    "check_pe_args",
    "pe_ref",
    "simulate_pe",
]

#: Cycles from ``x``/``w``/``en`` to the updated ``acc`` register.
PE_LATENCY = 1


class AdderForm(enum.StrEnum):
    """Formulations of ``acc + |x - w|`` an :class:`AdderPE` can be built with (module docstring)."""

    CINV = "cinv"
    MUX = "mux"


#: Formulations of ``acc + |x - w|`` an :class:`AdderPE` can be built with.
ADDER_FORMS = tuple(AdderForm)


def check_pe_args(pe: PeKind, bits, max_k, acc_bits) -> int:
    """Validate PE widths and return the accumulator width.

    ``acc_bits`` defaults to :func:`hwsim.config.acc_bits_for` of ``max_k``;
    given together with ``max_k`` it must be at least that wide (a reduction
    of ``max_k`` steps must never wrap).  Given alone it only has to hold one
    term.
    """
    check_int("bits", bits, MIN_BITS, MAX_BITS)
    one = bits if pe == PeKind.ADDER else 2 * bits
    if max_k is not None:
        check_int("max_k", max_k)
        need = acc_bits_for(bits, max_k, pe)
    else:
        need = one
    if acc_bits is None:
        if max_k is None:
            raise ValueError("give max_k or acc_bits")
        return need
    check_int("acc_bits", acc_bits, 1, 64)
    if acc_bits < need:
        if max_k is not None:
            raise ValueError(
                f"K beyond the accumulator: a reduction of max_k={max_k} at "
                f"{bits} bits needs {need} accumulator bits, not acc_bits={acc_bits}"
            )
        raise ValueError(f"acc_bits must be at least {need} to hold one {pe} term, not {acc_bits}")
    return acc_bits


class _PE(Checked, wiring.Component):
    kind = ""

    @classmethod
    def check(cls, *, bits: int, max_k: int | None = None, acc_bits: int | None = None) -> None:
        """Refuse a bad argument (one line naming it) before the component exists."""
        check_pe_args(cls.kind, bits, max_k, acc_bits)

    def __init__(self, *, bits: int, max_k: int | None = None, acc_bits: int | None = None):
        self.acc_bits = check_pe_args(self.kind, bits, max_k, acc_bits)
        self.bits = bits
        self.max_k = max_k
        self.latency = PE_LATENCY
        op = unsigned(bits) if self.kind == PeKind.ADDER else signed(bits)
        acc = unsigned(self.acc_bits) if self.kind == PeKind.ADDER else signed(self.acc_bits)
        super().__init__(
            {
                "x": In(op),
                "w": In(op),
                "en": In(1),
                "last": In(1),
                "acc": Out(acc),
                "sum": Out(acc),
            }
        )

    def _term(self, m: Module, base):
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        acc = Signal.like(self.acc, name="acc_q", reset_less=True)
        m.d.comb += self.acc.eq(acc)
        m.d.comb += self.sum.eq(self._term(m, acc))
        rst = ResetSignal()
        with m.If(self.en | rst):
            m.d.sync += acc.eq(Mux(self.last | rst, 0, self.sum))
        return m


class AdderPE(_PE):
    """``sum = acc + |x - w|``, ``acc <= last ? 0 : sum`` on unsigned ``bits``-bit operands.

    Parameters
    ----------
    bits : int
        Operand width, 2..16.
    max_k : int, optional
        Longest reduction; fixes ``acc_bits = bits + ceil(log2(max_k))``.
    acc_bits : int, optional
        Accumulator width; refused when narrower than ``max_k`` needs.
    form : {"cinv", "mux"}
        Formulation of the absolute difference (module docstring).

    Attributes
    ----------
    latency : int
        :data:`PE_LATENCY`.

    Notes
    -----
    Ports: ``x``, ``w`` (In, unsigned ``bits``), ``en``, ``last`` (In 1),
    ``acc`` (Out, unsigned ``acc_bits``, registered), ``sum`` (Out,
    combinational ``acc + |x - w|``).  Throughput 1 term/cycle.
    """

    kind = PeKind.ADDER

    @classmethod
    def check(cls, *, bits: int, max_k: int | None = None, acc_bits: int | None = None,
              form: AdderForm = AdderForm.CINV) -> None:
        """Refuse a bad argument (one line naming it) before the component exists."""
        if form not in ADDER_FORMS:
            raise ValueError(f"form must be one of {', '.join(ADDER_FORMS)}, not {form!r}")
        super().check(bits=bits, max_k=max_k, acc_bits=acc_bits)

    def __init__(self, *, bits: int, max_k: int | None = None, acc_bits: int | None = None,
                 form: AdderForm = AdderForm.CINV):
        self.form = form
        super().__init__(bits=bits, max_k=max_k, acc_bits=acc_bits)

    def _term(self, m: Module, base):
        b = self.bits
        if self.form == AdderForm.MUX:
            mag = Signal(b)
            m.d.comb += mag.eq(Mux(self.x > self.w, self.x - self.w, self.w - self.x))
            return base + mag
        d = Signal(signed(b + 1))
        m.d.comb += d.eq(self.x - self.w)
        s = d[b]
        inv = Signal(b)
        m.d.comb += inv.eq(d[:b] ^ s.replicate(b))
        return base + inv + s


class MultPE(_PE):
    """``sum = acc + x * w``, ``acc <= last ? 0 : sum`` on signed ``bits``-bit operands.

    Same ports and parameters as :class:`AdderPE` (operands and accumulator
    signed; ``acc_bits = 2*bits + ceil(log2(max_k))``).  Latency
    :data:`PE_LATENCY`, throughput 1 term/cycle.
    """

    kind = PeKind.MULT

    def _term(self, m: Module, base):
        return base + self.x * self.w


def pe_ref(pe: _PE, xs: Sequence[int], ws: Sequence[int], lasts: Sequence[int],
           ens: Sequence[int] | None = None) -> list[tuple[int, int]]:
    """Numpy reference of a PE: ``(sum, acc)`` of each cycle.

    Parameters
    ----------
    pe : AdderPE or MultPE
        Supplies the kind and widths (the reference wraps exactly as the
        accumulator register would, so a too-narrow accumulator is visible).
    xs, ws, lasts, ens : sequences of int
        Per-cycle inputs; ``ens`` defaults to all ones.

    Returns
    -------
    list of (int, int)
        ``sum`` during each cycle (before its clock edge) and ``acc`` after it.
    """
    n = len(xs)
    if not (len(ws) == n and len(lasts) == n and (ens is None or len(ens) == n)):
        raise ValueError("xs, ws, lasts and ens must have the same length")
    x = np.asarray(xs, dtype=np.int64)
    w = np.asarray(ws, dtype=np.int64)
    term = np.abs(x - w) if pe.kind == PeKind.ADDER else x * w
    acc = 0
    out = []
    for i in range(n):
        total = wrap_code(acc + int(term[i]), pe.acc_bits, pe.kind == PeKind.MULT)
        if ens is None or ens[i]:
            acc = 0 if lasts[i] else total
        out.append((total, acc))
    return out


def simulate_pe(pe: _PE, xs: Sequence[int], ws: Sequence[int], lasts: Sequence[int],
                ens: Sequence[int] | None = None) -> list[tuple[int, int]]:
    """Run ``pe`` in the Amaranth simulator; same arguments and result as :func:`pe_ref`."""
    from amaranth.sim import Simulator

    n = len(xs)
    if not (len(ws) == n and len(lasts) == n and (ens is None or len(ens) == n)):
        raise ValueError("xs, ws, lasts and ens must have the same length")
    out: list[tuple[int, int]] = []

    async def bench(ctx):
        for i in range(n):
            ctx.set(pe.x, xs[i])
            ctx.set(pe.w, ws[i])
            ctx.set(pe.last, lasts[i])
            ctx.set(pe.en, 1 if ens is None else ens[i])
            total = ctx.get(pe.sum)
            await ctx.tick()
            out.append((total, ctx.get(pe.acc)))

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out
