"""Stream payload layouts of the accelerator and the widths of every field.

One place decides the bit layout of the four streams (``cfg``, ``w``, ``x``,
``o``, docs/interfaces.md §3); the Amaranth components build their ports from
it and the generator writes the same description into the metadata JSON, so
testbenches pack and unpack payloads from data, not from hard-coded offsets.

Field widths (``A = acc_bits``, ``M = mult_bits``, ``B = bits``,
``Q = out_bits``):

====================  ===============================  ==========================
field                 width                            meaning
====================  ===============================  ==========================
``k``                 ``max_k.bit_length()`` unsigned  K of the tile, 1..max_k (0 acts as 1)
``shift``             ``(P+1).bit_length()`` unsigned  arithmetic right shift, 0..P
``lo``, ``hi``        ``Q+1`` signed                   clamp bounds (``lo <= hi``)
``m[r]``              ``M`` signed                     requant multiplier of row r
``n[r]``              ``P`` signed                     requant bias of row r
``neg[r]``            1                                threshold: count down
``thr[r][t]``         ``A+1`` (signed iff mult PE)     threshold t of row r, t < 2**B-1
``w[r]``, ``x[c]``    ``B`` (unsigned adder, signed    operands
                      mult)
``o[r]``              fixed: ``Q+1`` signed;           output of row r
                      threshold: ``Q`` unsigned
====================  ===============================  ==========================

``P = M + A + 1`` for the adder PE (unsigned accumulator widened by a sign
bit) and ``M + A`` for the multiplier PE: the exact width of ``m*acc``.  The
fixed-point requant computes ``(m*acc + n)`` on ``P+1`` bits (never wraps),
shifts it right arithmetically by ``shift`` and clamps to ``[lo, hi]``
(``max(v, lo)`` first, then ``min(., hi)``).
"""

from __future__ import annotations

from typing import Iterable, Mapping

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data

from hwsim.config import ArrayConfig
from quant.intops import code_range

__all__ = [
    "MAX_THRESHOLD_BITS",
    "check_config",
    "operand_shape",
    "acc_shape",
    "fixed_widths",
    "requant_layout",
    "cfg_layout",
    "w_layout",
    "x_layout",
    "o_layout",
    "describe_layout",
    "pack_payload",
    "unpack_payload",
]

#: Threshold requant stores ``2**bits - 1`` thresholds per row; above 8 bits
#: that is no longer hardware (65535 comparators per row at 16 bits).
MAX_THRESHOLD_BITS = 8


def check_config(config) -> ArrayConfig:
    """Refuse configurations the generator cannot build; return ``config``."""
    if not isinstance(config, ArrayConfig):
        raise ValueError(f"config must be an hwsim.config.ArrayConfig, not {config!r}")
    if config.requant == "threshold" and config.bits > MAX_THRESHOLD_BITS:
        raise ValueError(
            f"threshold requant needs 2**bits-1 comparators per row: bits must be "
            f"at most {MAX_THRESHOLD_BITS} in threshold mode, not {config.bits}"
        )
    return config


def operand_shape(config: ArrayConfig) -> Shape:
    """``w``/``x`` element: unsigned for the adder PE, signed for the multiplier PE."""
    return unsigned(config.bits) if config.pe == "adder" else signed(config.bits)


def acc_shape(config: ArrayConfig, acc_bits: int | None = None) -> Shape:
    """Accumulator: unsigned for the adder PE, signed for the multiplier PE."""
    a = config.acc_bits if acc_bits is None else acc_bits
    return unsigned(a) if config.pe == "adder" else signed(a)


def fixed_widths(config: ArrayConfig) -> dict[str, int]:
    """Widths of the fixed-point requant datapath (module docstring)."""
    prod = config.mult_bits + config.acc_bits + (1 if config.pe == "adder" else 0)
    return {
        "mult_bits": config.mult_bits,
        "prod_bits": prod,
        "n_bits": prod,
        "sum_bits": prod + 1,
        "shift_bits": (prod + 1).bit_length(),
        "bound_bits": config.out_bits + 1,
    }


def cfg_layout(config: ArrayConfig) -> data.StructLayout:
    """Payload of the ``cfg`` stream (one beat per tile): ``k``, then the
    fields of :func:`requant_layout`."""
    fields: dict[str, object] = {"k": unsigned(config.max_k.bit_length())}
    for name, field in requant_layout(config):
        fields[name] = field.shape
    return data.StructLayout(fields)


def requant_layout(config: ArrayConfig) -> data.StructLayout:
    """The requant parameters of one tile (the ``cfg`` payload without ``k``)."""
    check_config(config)
    fields: dict[str, object] = {}
    if config.requant == "fixed":
        fw = fixed_widths(config)
        fields["shift"] = unsigned(fw["shift_bits"])
        fields["lo"] = signed(fw["bound_bits"])
        fields["hi"] = signed(fw["bound_bits"])
        fields["m"] = data.ArrayLayout(signed(fw["mult_bits"]), config.rows)
        fields["n"] = data.ArrayLayout(signed(fw["n_bits"]), config.rows)
    else:
        thr = (signed if config.pe == "mult" else unsigned)(config.acc_bits + 1)
        fields["neg"] = data.ArrayLayout(unsigned(1), config.rows)
        fields["thr"] = data.ArrayLayout(
            data.ArrayLayout(thr, config.threshold_count), config.rows
        )
    return data.StructLayout(fields)


def w_layout(config: ArrayConfig) -> data.ArrayLayout:
    """Payload of the ``w`` stream: ``rows`` weights."""
    return data.ArrayLayout(operand_shape(config), config.rows)


def x_layout(config: ArrayConfig) -> data.ArrayLayout:
    """Payload of the ``x`` stream: ``cols`` activations."""
    return data.ArrayLayout(operand_shape(config), config.cols)


def o_layout(config: ArrayConfig) -> data.ArrayLayout:
    """Payload of the ``o`` stream: ``rows`` outputs of one column."""
    if config.requant == "fixed":
        return data.ArrayLayout(signed(config.out_bits + 1), config.rows)
    return data.ArrayLayout(unsigned(config.out_bits), config.rows)


def _leaf(shape) -> tuple[int, bool]:
    s = Shape.cast(shape)
    return s.width, s.signed


def describe_layout(layout, name: str = "payload") -> list[dict]:
    """JSON description of a payload: one entry per field.

    Each entry has ``name``, ``offset`` (LSB of the first element),
    ``width`` and ``signed`` of one element, ``shape`` (``[]`` for a scalar,
    ``[n]`` or ``[n, m]`` for arrays, row-major) and ``stride`` (bits between
    consecutive elements, equal to ``width``).  Element ``[i]`` / ``[i][j]``
    starts at ``offset + (i * m + j) * stride``.
    """
    out: list[dict] = []

    def add(fname, offset, shape):
        dims: list[int] = []
        while isinstance(shape, data.ArrayLayout):
            dims.append(shape.length)
            shape = shape.elem_shape
        width, sgn = _leaf(shape)
        out.append({"name": fname, "offset": offset, "width": width, "signed": sgn,
                    "shape": dims, "stride": width})

    if isinstance(layout, data.StructLayout):
        for fname, field in layout:
            add(fname, field.offset, field.shape)
    else:
        add(name, 0, layout)
    return out


def _elements(entry: Mapping) -> Iterable[tuple[tuple[int, ...], int]]:
    dims = list(entry["shape"])
    count = 1
    for d in dims:
        count *= d
    for flat in range(count):
        idx = []
        rest = flat
        for d in reversed(dims):
            idx.append(rest % d)
            rest //= d
        yield tuple(reversed(idx)), entry["offset"] + flat * entry["stride"]


def pack_payload(fields: list[dict], values: Mapping[str, object]) -> int:
    """Pack ``values`` (name -> int or nested lists) into a payload integer.

    ``fields`` is :func:`describe_layout`'s output (or the metadata JSON's
    ``payloads[...]`` list).  Every field must be given and in range for its
    width and signedness; out-of-range values raise :class:`ValueError`.
    """
    missing = [f["name"] for f in fields if f["name"] not in values]
    if missing:
        raise ValueError(f"payload fields missing: {', '.join(missing)}")
    known = {f["name"] for f in fields}
    extra = sorted(set(values) - known)
    if extra:
        raise ValueError(f"unknown payload fields: {', '.join(extra)}")
    word = 0
    for f in fields:
        val = values[f["name"]]
        w, sgn = f["width"], f["signed"]
        lo, hi = code_range(w, sgn)
        for idx, off in _elements(f):
            v = val
            for i in idx:
                v = v[i]
            v = int(v)
            if not lo <= v <= hi:
                name = f["name"] + "".join(f"[{i}]" for i in idx)
                raise ValueError(f"payload field {name}={v} is outside {lo}..{hi}")
            word |= (v & ((1 << w) - 1)) << off
    return word


def unpack_payload(fields: list[dict], word: int) -> dict[str, object]:
    """Inverse of :func:`pack_payload`: name -> int or nested lists of int."""
    out: dict[str, object] = {}
    for f in fields:
        w, sgn = f["width"], f["signed"]
        flat = []
        for _, off in _elements(f):
            v = (word >> off) & ((1 << w) - 1)
            if sgn and v >> (w - 1):
                v -= 1 << w
            flat.append(v)
        dims = list(f["shape"])
        if not dims:
            out[f["name"]] = flat[0]
        elif len(dims) == 1:
            out[f["name"]] = flat
        else:
            m = dims[1]
            out[f["name"]] = [flat[i * m:(i + 1) * m] for i in range(dims[0])]
    return out
