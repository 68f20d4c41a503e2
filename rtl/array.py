"""The bare PE array of the PE-arithmetic study: ``rows x cols`` PEs with a double-buffered (shadow) bank.

Output-stationary, as the AdderNet FPGA repo's single layer, so its
synthesis is the number comparable with theirs (``adderhw generate --block
array``, then ``adderhw synth``); :class:`BlockConfig` is what such a study
block is built from.

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

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from quant.base.intops import PeKind, check_int, wrap_code
from rtl.construct import Checked
from rtl.pe import ADDER_FORMS, AdderForm, AdderPE, MultPE, check_pe_args

__all__ = ["ARRAY_LATENCY", "BlockConfig", "PEArray", "pe_array_ref", "simulate_pe_array"]

#: Cycles from a step with ``last`` high to its column 0 at ``col``.
ARRAY_LATENCY = 1


@dataclass(frozen=True)
class BlockConfig:
    """A block of the PE-arithmetic study: one PE (``rows = cols = 1``) or a ``rows x cols`` :class:`PEArray`.

    Parameters
    ----------
    rows, cols : int
        Array shape (positive).
    pe : PeKind
    bits : int
        Operand width, 2..16.
    max_k : int
        Longest reduction; fixes the accumulator (:func:`rtl.pe.check_pe_args`).
    form : AdderForm
        Adder PE formulation (ignored for multiplier PEs: always ``cinv`` there).
    """

    rows: int = 1
    cols: int = 1
    pe: PeKind = PeKind.ADDER
    bits: int = 8
    max_k: int = 4096
    form: AdderForm = AdderForm.CINV

    def __post_init__(self) -> None:
        check_int("rows", self.rows)
        check_int("cols", self.cols)
        try:
            object.__setattr__(self, "pe", PeKind(self.pe))
        except ValueError:
            raise ValueError(f"pe must be one of {', '.join(PeKind)}, not {self.pe!r}") from None
        try:
            object.__setattr__(self, "form", AdderForm(self.form))
        except ValueError:
            raise ValueError(f"form must be one of {', '.join(AdderForm)}, not {self.form!r}") from None
        if self.pe == PeKind.MULT:
            object.__setattr__(self, "form", AdderForm.CINV)
        check_pe_args(self.pe, self.bits, self.max_k, None)

    @property
    def acc_bits(self) -> int:
        """Accumulator width (:func:`rtl.pe.check_pe_args`)."""
        return check_pe_args(self.pe, self.bits, self.max_k, None)

    def replace(self, **changes) -> "BlockConfig":
        return BlockConfig(**{**asdict(self), **changes})

    def to_dict(self) -> dict:
        """Plain JSON types (enums as their values)."""
        return {k: str(v) if isinstance(v, str) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "BlockConfig":
        """Inverse of :meth:`to_dict`; unknown or missing keys refused."""
        keys = tuple(cls.__dataclass_fields__)
        if not isinstance(data, dict) or set(data) != set(keys):
            raise ValueError(f"a study block config needs exactly the keys {', '.join(keys)}, not {data!r}")
        return cls(**data)


class PEArray(Checked, wiring.Component):
    """A ``rows x cols`` array of :class:`~rtl.pe.AdderPE` or :class:`~rtl.pe.MultPE`.

    Parameters
    ----------
    rows, cols : int
        Array shape (positive).
    pe : PeKind
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

    @classmethod
    def check(cls, *, rows: int, cols: int, pe: PeKind = PeKind.ADDER, bits: int,
              max_k: int | None = None, acc_bits: int | None = None, form: AdderForm = AdderForm.CINV) -> None:
        """Refuse a bad argument (one line naming it) before the component exists."""
        check_int("rows", rows)
        check_int("cols", cols)
        if pe not in tuple(PeKind):
            raise ValueError(f"pe must be one of {', '.join(PeKind)}, not {pe!r}")
        check_pe_args(pe, bits, max_k, acc_bits)
        if pe == PeKind.ADDER and form not in ADDER_FORMS:
            raise ValueError(f"form must be one of {', '.join(ADDER_FORMS)}, not {form!r}")

    def __init__(self, *, rows: int, cols: int, pe: PeKind = PeKind.ADDER, bits: int,
                 max_k: int | None = None, acc_bits: int | None = None, form: AdderForm = AdderForm.CINV):
        self.acc_bits = check_pe_args(pe, bits, max_k, acc_bits)
        self.rows, self.cols, self.pe, self.bits = rows, cols, PeKind(pe), bits
        self.max_k = max_k
        self.form = form
        self.latency = ARRAY_LATENCY
        op = unsigned(bits) if pe == PeKind.ADDER else signed(bits)
        acc = unsigned(self.acc_bits) if pe == PeKind.ADDER else signed(self.acc_bits)
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
        if self.pe == PeKind.ADDER:
            return AdderPE(bits=self.bits, acc_bits=self.acc_bits, form=self.form)
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
    sgn = array.pe == PeKind.MULT
    acc = np.zeros((rows, cols), dtype=object)
    shadow = np.zeros((rows, cols), dtype=object)
    out = []
    for i in range(n):
        w = np.asarray(ws[i], dtype=np.int64).reshape(rows, 1)
        x = np.asarray(xs[i], dtype=np.int64).reshape(1, cols)
        term = np.abs(x - w) if array.pe == PeKind.ADDER else x * w
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
