"""Output-stationary ``rows x cols`` PE array with a double-buffered (shadow) bank.

PE ``(r, c)`` combines weight ``w[r]`` with activation ``x[c]``: one weight
vector and one activation vector per step, broadcast along columns and rows.
On a step with ``last`` high every PE's ``sum`` goes into the shadow bank
(and the accumulators clear), so the next tile can start at once while the
shadow bank drains.  The shadow bank is a shift register along the columns:
``col`` shows shadow column 0 and ``shift`` moves column ``c+1`` into ``c``;
draining column ``c`` of a tile therefore reads ``col`` after ``c`` shifts.

Latency: :attr:`PEArray.latency` = 1 cycle from the last step to its column 0
at ``col``.  Throughput: one reduction step per cycle.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hwsim.config import PE_KINDS
from quant.intops import check_int, wrap_code
from rtl.construct import construction
from rtl.pe import ADDER_FORMS, AdderPE, MultPE, check_pe_args

__all__ = ["ARRAY_LATENCY", "PEArray", "pe_array_ref", "simulate_pe_array"]

#: Cycles from a step with ``last`` high to its column 0 at ``col``.
ARRAY_LATENCY = 1


class PEArray(wiring.Component):
    """A ``rows x cols`` array of :class:`~rtl.pe.AdderPE` or :class:`~rtl.pe.MultPE`.

    Parameters
    ----------
    rows, cols : int
        Array shape (positive).
    pe : {"adder", "mult"}
        PE kind.
    bits : int
        Operand width, 2..16.
    max_k, acc_bits : int, optional
        As for the PEs (:func:`rtl.pe.check_pe_args`).
    form : str
        Adder PE formulation (:data:`rtl.pe.ADDER_FORMS`).

    Notes
    -----
    Ports: ``w`` (In, ``rows`` operands), ``x`` (In, ``cols`` operands),
    ``en``, ``last``, ``shift`` (In 1), ``col`` (Out, ``rows`` accumulator
    values: shadow column 0).  ``last`` with ``en`` loads the shadow bank
    (and wins over ``shift`` in the same cycle).
    """

    def __init__(self, *, rows: int, cols: int, pe: str = "adder", bits: int,
                 max_k: int | None = None, acc_bits: int | None = None, form: str = "cinv",
                 _drop_carry_in: bool = False):
        with construction(self):
            check_int("rows", rows)
            check_int("cols", cols)
            if pe not in PE_KINDS:
                raise ValueError(f"pe must be one of {', '.join(PE_KINDS)}, not {pe!r}")
            self.acc_bits = check_pe_args(pe, bits, max_k, acc_bits)
            if pe == "adder" and form not in ADDER_FORMS:
                raise ValueError(f"form must be one of {', '.join(ADDER_FORMS)}, not {form!r}")
        self.rows, self.cols, self.pe, self.bits = rows, cols, pe, bits
        self.max_k = max_k
        self.form = form
        self._drop_carry_in = _drop_carry_in  # test-only mutation (rtl.accelerator.MUTATIONS)
        self.latency = ARRAY_LATENCY
        op = unsigned(bits) if pe == "adder" else signed(bits)
        acc = unsigned(self.acc_bits) if pe == "adder" else signed(self.acc_bits)
        super().__init__(
            {
                "w": In(data.ArrayLayout(op, rows)),
                "x": In(data.ArrayLayout(op, cols)),
                "en": In(1),
                "last": In(1),
                "shift": In(1),
                "col": Out(data.ArrayLayout(acc, rows)),
            }
        )

    def _make_pe(self):
        if self.pe == "adder":
            return AdderPE(bits=self.bits, acc_bits=self.acc_bits, form=self.form,
                           _drop_carry_in=self._drop_carry_in)
        return MultPE(bits=self.bits, acc_bits=self.acc_bits)

    def elaborate(self, platform):
        m = Module()
        acc_shape = self.col.shape().elem_shape
        for r in range(self.rows):
            shadow = [Signal(acc_shape, name=f"shadow_r{r}_c{c}", reset_less=True)
                      for c in range(self.cols)]
            for c in range(self.cols):
                pe = self._make_pe()
                m.submodules[f"pe_r{r}_c{c}"] = pe
                m.d.comb += [
                    pe.x.eq(self.x[c]),
                    pe.w.eq(self.w[r]),
                    pe.en.eq(self.en),
                    pe.last.eq(self.last),
                ]
                with m.If(self.en & self.last):
                    m.d.sync += shadow[c].eq(pe.sum)
                if c + 1 < self.cols:
                    with m.Elif(self.shift):
                        m.d.sync += shadow[c].eq(shadow[c + 1])
            m.d.comb += self.col[r].eq(shadow[0])
        return m


def pe_array_ref(array: PEArray, ws: Sequence[Sequence[int]], xs: Sequence[Sequence[int]],
                 ens: Sequence[int], lasts: Sequence[int], shifts: Sequence[int]) -> list[list[int]]:
    """Numpy reference of :class:`PEArray`: ``col`` after each cycle's clock edge.

    ``ws[i]`` has ``rows`` values, ``xs[i]`` ``cols`` values; ``ens``,
    ``lasts``, ``shifts`` are per-cycle bits.  Accumulators wrap at
    ``array.acc_bits`` exactly as the hardware would.
    """
    n = len(ws)
    if not (len(xs) == n and len(ens) == n and len(lasts) == n and len(shifts) == n):
        raise ValueError("ws, xs, ens, lasts and shifts must have the same length")
    rows, cols = array.rows, array.cols
    sgn = array.pe == "mult"
    acc = np.zeros((rows, cols), dtype=object)
    shadow = np.zeros((rows, cols), dtype=object)
    out = []
    for i in range(n):
        w = np.asarray(ws[i], dtype=np.int64).reshape(rows, 1)
        x = np.asarray(xs[i], dtype=np.int64).reshape(1, cols)
        term = np.abs(x - w) if array.pe == "adder" else x * w
        total = np.vectorize(lambda v: wrap_code(int(v), array.acc_bits, sgn), otypes=[object])(
            acc + term.astype(object)
        )
        if ens[i] and lasts[i]:
            shadow = total.copy()
        elif shifts[i]:
            shadow = np.concatenate([shadow[:, 1:], shadow[:, -1:]], axis=1)
        if ens[i]:
            acc = np.zeros((rows, cols), dtype=object) if lasts[i] else total
        out.append([int(v) for v in shadow[:, 0]])
    return out


def simulate_pe_array(array: PEArray, ws, xs, ens, lasts, shifts) -> list[list[int]]:
    """Run ``array`` in the Amaranth simulator; same arguments and result as :func:`pe_array_ref`."""
    from amaranth.sim import Simulator

    n = len(ws)
    if not (len(xs) == n and len(ens) == n and len(lasts) == n and len(shifts) == n):
        raise ValueError("ws, xs, ens, lasts and shifts must have the same length")
    out: list[list[int]] = []

    async def bench(ctx):
        for i in range(n):
            ctx.set(array.w, list(ws[i]))
            ctx.set(array.x, list(xs[i]))
            ctx.set(array.en, ens[i])
            ctx.set(array.last, lasts[i])
            ctx.set(array.shift, shifts[i])
            await ctx.tick()
            col = ctx.get(array.col)
            out.append([int(col[r]) for r in range(array.rows)])

    sim = Simulator(array)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out
