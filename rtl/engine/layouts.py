"""The engine's payload layouts and port signatures, each a function of the config.

One home for the shapes that more than one engine component reads: the
descriptor (:func:`desc_layout`, its op code tested by :func:`is_op`; the ``prog`` payload and the ``desc`` port of
the controller, the drain and the writer), a region write port
(:func:`region_write_signature`) and the core's ``events`` (:data:`EVENTS`,
:func:`events_signature`).  Nothing here builds a component.
"""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import Out

from hwsim.compiler import Op
from hwsim.config import EngineConfig
from hwsim.descriptor import OP_CODES, addr_bits, descriptor_fields

__all__ = ["EVENTS", "desc_layout", "events_signature", "is_op", "region_write_signature", "struct_layout"]

#: The ``events`` members that count (name -> width): the increment of the counter of the same name in this cycle.
EVENTS = {"busy_cycles": 1, "act_reads": 2, "act_writes": 1, "wbuf_reads": 1, "wbuf_writes": 1, "w_beats": 1,
          "o_beats": 1, "requant_ops": 1, "prog_beats": 1, "x_beats": 1}


def struct_layout(fields: dict) -> data.StructLayout:
    """The Amaranth layout of hwsim's ``name -> (width, signed)`` fields (nested dicts nest)."""
    return data.StructLayout({name: struct_layout(f) if isinstance(f, dict) else (signed if f[1] else unsigned)(f[0])
                              for name, f in fields.items()})


def desc_layout(config: EngineConfig) -> data.StructLayout:
    """The ``prog`` payload: one engine operation (:func:`hwsim.descriptor.descriptor_fields`)."""
    return struct_layout(descriptor_fields(config))


def is_op(desc, op: Op):
    """``desc.op`` (a :func:`desc_layout` view) is ``op``'s code, its index in :data:`hwsim.descriptor.OP_CODES`."""
    return desc.op == OP_CODES.index(op)


def region_write_signature(config: EngineConfig) -> wiring.Signature:
    """A write into an activation region, as its writer sees it (all ``Out``): ``en``, ``addr``, ``data`` (one
    word of ``cols`` lanes) and ``mask`` (a lane enable per lane); the region is the descriptor's to choose."""
    return wiring.Signature({"en": Out(1), "addr": Out(addr_bits(config)), "data": Out(config.act_word_bits),
                             "mask": Out(config.cols)})


def events_signature(max_ops: int, names=tuple(EVENTS)) -> wiring.Signature:
    """The core's ``events`` (all ``Out``): the :data:`EVENTS` of ``names``, ``op_done`` (an operation's last
    event is in this cycle) and ``op_index`` (the current operation; at least one bit, a 0-bit port reads as X
    in Icarus).  The controller's own events are a part (``names``) of the core's."""
    members = {name: Out(EVENTS[name]) for name in names}
    members.update(op_done=Out(1), op_index=Out(range(max(2, max_ops))))
    return wiring.Signature(members)
