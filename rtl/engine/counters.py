"""The engine's counters: an observer of the core's ``events`` (the verification build only).

:class:`Counters` holds one 32-bit register per name of :data:`COUNTERS`,
cumulative since reset: ``cycles`` counts from the first ``prog`` beat (the
cycle of that beat is cycle 0), every other counter adds the core's event of
the same name (:data:`rtl.engine.layouts.EVENTS`) in every cycle.  ``op_done``
and ``op_index`` are passed through.  It reads the core and drives only its
own outputs, so the verification build is the deployable engine plus this
(the proof: ``tests/rtl/engine/test_build.py``).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.engine.layouts import EVENTS, events_signature

__all__ = ["COUNTERS", "COUNTER_BITS", "Counters", "counters_ref"]

#: The counter ports, in order.
COUNTERS = ("cycles", *EVENTS)

COUNTER_BITS = 32


class Counters(wiring.Component):
    """Counters of the events of an engine core of ``max_ops`` operations (module docstring)."""

    def __init__(self, *, max_ops: int):
        members = {"events": In(events_signature(max_ops))}
        members.update({name: Out(COUNTER_BITS) for name in COUNTERS})
        members.update(op_done=Out(1), op_index=Out(range(max(2, max_ops))))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        ev = self.events
        started = Signal()
        with m.If(started | ev.prog_beats):
            m.d.sync += [started.eq(1), self.cycles.eq(self.cycles + 1)]
        for name in EVENTS:
            with m.If(getattr(ev, name) != 0):
                m.d.sync += getattr(self, name).eq(getattr(self, name) + getattr(ev, name))
        m.d.comb += [self.op_done.eq(ev.op_done), self.op_index.eq(ev.op_index)]
        return m


def counters_ref(events: list) -> list:
    """The counters after each cycle of ``events`` (dicts of :data:`EVENTS` names, missing = 0), from reset."""
    mask = (1 << COUNTER_BITS) - 1
    now = dict.fromkeys(COUNTERS, 0)
    started = False
    out = []
    for ev in events:
        if started or ev.get("prog_beats", 0):
            started = True
            now["cycles"] = (now["cycles"] + 1) & mask
        for name in EVENTS:
            now[name] = (now[name] + ev.get(name, 0)) & mask
        out.append(dict(now))
    return out
