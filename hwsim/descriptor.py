"""The ``prog`` beat: the fields of one operation's descriptor and their widths.

A descriptor is what the engine holds of one :class:`~hwsim.compiler.EngineOp`
(one ``prog`` beat; DESIGN §4b): its op code, the regions it reads and
writes, the address generator's command for its windows, its channel and
tile counts, its requant scalars.  Fields are ``name -> (width, signed)``,
or a nested dict for the address generator's command (``ag``), in the
order they are packed (first field in the low bits).  A resident engine
(:attr:`EngineConfig.resident`) has two more, last: ``load`` (the load
phase's descriptor, :mod:`hwsim.engine` rule 7) and ``wbase`` (the
operation's first word in the weight store).  The RTL builds its
payload layouts from these (:func:`rtl.engine.top.desc_layout`,
:class:`rtl.engine.addrgen.AddrGen`), and the energy model charges a
``prog`` beat :func:`descriptor_bits` bits.
"""

from __future__ import annotations

from hwsim.compiler import Op
from hwsim.config import EngineConfig
from hwsim.energy import requant_widths

__all__ = ["OP_CODES", "DIM_BITS", "addr_bits", "addrgen_command_fields", "descriptor_fields", "descriptor_bits",
           "field_bits"]

#: Operation codes of a descriptor's ``op`` field (the code is the index).
OP_CODES = tuple(Op)
#: Width of the dimension fields (heights, widths, channels, groups, tiles, steps).
DIM_BITS = 16


def addr_bits(config: EngineConfig) -> int:
    """Width of an activation or weight-buffer address: one bit more than the deepest memory needs."""
    return max(max(config.act_words), config.weight_words).bit_length() + 1


def _index_bits(n: int) -> int:
    """Unsigned width of an index in ``0 .. n-1`` (at least 1 bit)."""
    return max(1, (n - 1).bit_length())


def addrgen_command_fields(addr: int, dim: int) -> dict:
    """The address generator's command (one pass over every window) for ``addr``-bit addresses
    and ``dim``-bit dimensions."""
    d = (dim, False)
    step = (addr + 1, False)
    return {"height": d, "width": d, "groups": d, "kh": d, "kw": d, "stride": d, "padding": d,
            "out_h": d, "out_w": d, "col_words": d, "step_x": step, "step_y": step, "row_words": step,
            "base0": (addr + dim + 2, True)}


def descriptor_fields(config: EngineConfig) -> dict:
    """Every field of ``config``'s descriptor, in packing order (module docstring)."""
    cfg = config
    a = addr_bits(cfg)
    d = (DIM_BITS, False)
    region = (_index_bits(cfg.regions), False)
    lim = (cfg.out_bits + 1, True)
    m = (cfg.mult_bits, True)
    fields = {
        "op": (_index_bits(len(OP_CODES)), False), "mult": (1, False), "last": (1, False),
        "threshold": (1, False), "src0": region, "src1": region, "dst": region,
        "src_signed": (1, False), "src1_signed": (1, False), "in_words": (a, False),
        "ag": addrgen_command_fields(a, DIM_BITS), "in_c": d, "in_g": d, "out_c": d, "out_g": d,
        "pixels": (a, False), "tiles": d, "rows_u": d, "steps": d, "param_beats": d,
        "shift": (requant_widths(cfg)["sum_bits"].bit_length(), False), "lo": lim, "hi": lim,
        "top": (cfg.bits, False), "m0": m, "m1": m, "n": (cfg.n_bits, True),
        "pad_value": (cfg.bits + 1, True),
    }
    if cfg.resident:
        fields.update(load=(1, False), wbase=(a, False))
    return fields


def field_bits(fields: dict) -> int:
    """Total width of ``fields`` (nested dicts included)."""
    return sum(field_bits(f) if isinstance(f, dict) else f[0] for f in fields.values())


def descriptor_bits(config: EngineConfig) -> int:
    """Width of one ``prog`` beat."""
    return field_bits(descriptor_fields(config))
