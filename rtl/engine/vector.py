"""The engine's vector unit: lane-parallel max / sum over a window, or a pair of words (residual add).

One step brings one activation word ``x`` (``cols`` lanes, sign-extended
codes), a second word ``y`` (the add's other input), ``pad`` (a padded
window position: it contributes nothing), ``first`` and ``last``.  Per lane::

    max:  acc = max(first ? lowest : acc, x)      (skipped at padding)
    sum:  acc = (first ? 0 : acc) + x             (skipped at padding)
    pair: the shadow takes (x, y) as they are

A ``last`` step hands the lanes (and ``y``) to the shadow register, the
``o`` stream, which holds until the drain takes it.

Latency: :attr:`VectorUnit.latency` = 1 cycle from a step's ``i`` handshake
to its shadow on ``o`` (with the memory read before it, the contract's
``D_v = config.vector_latency``).  Throughput: one step per cycle.  Behind
the shadow sits a skid register (:func:`~rtl.engine.array.elastic_shadow`):
a ``last`` step meeting a full shadow that is not being taken goes into the
skid, and only a full skid stalls (``i.ready`` is a register's output).
"""

from __future__ import annotations

from typing import Sequence

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.config import EngineConfig
from hwsim.energy import vector_lane_bits
from rtl.construct import ConfigChecked
from rtl.engine.array import elastic_shadow

__all__ = ["VECTOR_OPS", "VectorUnit", "vector_ref", "vector_shadow_layout", "vector_step_layout"]

#: Operations of the vector unit, by their code on the ``op`` port.
VECTOR_OPS = ("max", "sum", "pair")


def vector_step_layout(config: EngineConfig) -> data.StructLayout:
    """The ``i`` payload of :class:`VectorUnit`: ``x``, ``y`` (``cols`` signed ``act_bits + 1`` lanes), ``pad``,
    ``first``, ``last``."""
    lane = signed(config.act_bits + 1)
    return data.StructLayout({"x": data.ArrayLayout(lane, config.cols), "y": data.ArrayLayout(lane, config.cols),
                              "pad": 1, "first": 1, "last": 1})


def vector_shadow_layout(config: EngineConfig) -> data.StructLayout:
    """The ``o`` payload of :class:`VectorUnit`: ``a`` (the lanes' results) and ``b`` (``y``)."""
    return data.StructLayout({"a": data.ArrayLayout(signed(vector_lane_bits(config)), config.cols),
                              "b": data.ArrayLayout(signed(config.act_bits + 1), config.cols)})


class VectorUnit(ConfigChecked, wiring.Component):
    """The vector unit (module docstring).

    Parameters
    ----------
    config : EngineConfig
        ``cols`` lanes of ``act_bits``-bit codes; lane sums are
        ``act_bits + 1 + bit_length(max_k - 1)`` bits (a window of at most
        ``max_k`` positions).

    Notes
    -----
    Ports: ``op`` (In, index into :data:`VECTOR_OPS`, held for a whole
    operation), ``lowest`` (In, the max's initial value), ``i`` (In stream of
    ``x``, ``y``, ``pad``, ``first``, ``last``), ``o`` (Out stream of ``a``
    (the lanes' result) and ``b`` (``y``)).
    """

    def __init__(self, *, config: EngineConfig):
        self.config = config
        self.latency = 1
        self.lane_shape = signed(config.act_bits + 1)
        self.sum_shape = signed(vector_lane_bits(config))
        self.step_layout = vector_step_layout(config)
        self.shadow_layout = vector_shadow_layout(config)
        super().__init__({
            "op": In(range(len(VECTOR_OPS))),
            "lowest": In(self.lane_shape),
            "i": In(stream.Signature(self.step_layout)),
            "o": Out(stream.Signature(self.shadow_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        cols = self.config.cols
        p = self.i.payload
        acc = [Signal(self.sum_shape, name=f"acc_{n}", reset_less=True) for n in range(cols)]
        total = [Signal(self.sum_shape, name=f"total_{n}") for n in range(cols)]
        for n in range(cols):
            base = Signal(self.sum_shape, name=f"base_{n}")
            m.d.comb += base.eq(Mux(p.first, Mux(self.op == 0, self.lowest, 0), acc[n]))
            with m.Switch(self.op):
                with m.Case(0):
                    m.d.comb += total[n].eq(Mux(~p.pad & (p.x[n] > base), p.x[n], base))
                with m.Case(1):
                    m.d.comb += total[n].eq(Mux(p.pad, base, base + p.x[n]))
                with m.Default():
                    m.d.comb += total[n].eq(p.x[n])
        adv = Signal()
        shadow = Signal(self.shadow_layout)
        for n in range(cols):
            m.d.comb += [shadow.a[n].eq(total[n]), shadow.b[n].eq(p.y[n])]
        # a skid behind the shadow: only its valid (a register) stalls, never o.ready through logic
        skid_full = elastic_shadow(m, self.o, self.i.valid & adv & p.last, shadow)
        m.d.comb += [adv.eq(~skid_full), self.i.ready.eq(adv)]
        with m.If(self.i.valid & adv):
            for n in range(cols):
                m.d.sync += acc[n].eq(total[n])
        return m


def vector_ref(unit: VectorUnit, op: str, lowest: int, steps: Sequence) -> list:
    """Reference of :class:`VectorUnit`: ``(a lanes, b lanes)`` of every ``last`` step.

    ``steps`` are ``(x [cols], y [cols], pad, first, last)``.
    """
    cols = unit.config.cols
    acc = [0] * cols
    out = []
    for x, y, pad, first, last in steps:
        for n in range(cols):
            base = (lowest if op == "max" else 0) if first else acc[n]
            if op == "max":
                acc[n] = base if pad else max(base, int(x[n]))
            elif op == "sum":
                acc[n] = base if pad else base + int(x[n])
            else:
                acc[n] = int(x[n])
        if last:
            out.append((list(acc), [int(v) for v in y]))
    return out
