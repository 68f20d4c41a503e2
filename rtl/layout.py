"""Stream payload layouts of the accelerator and the widths of every field.

One place decides the bit layout of the four streams (``cfg``, ``w``, ``x``,
``o``, docs/interfaces.md §3); the Amaranth components build their ports from
it and the generator writes the same description (:func:`describe_layout`)
into the metadata JSON.  :class:`Payload` is the one codec over that
description: the reference simulation, the engine's testbench and the v1
testbenches all pack and unpack payloads with it, from data, never from
hard-coded offsets, and it packs exactly as Amaranth's
``Layout.const(...).as_bits()`` does.

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

from dataclasses import dataclass
from typing import Mapping, Sequence

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
    "FIELD_KEYS",
    "Field",
    "Payload",
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


#: Keys of one field entry of :func:`describe_layout` (and of the metadata's ``payloads``).
FIELD_KEYS = ("name", "offset", "width", "signed", "shape", "stride")


@dataclass(frozen=True)
class Field:
    """One payload field: ``count`` elements of ``width`` bits from ``offset``, ``stride`` apart.

    ``shape`` is ``()`` for a scalar or the array dimensions (row-major);
    element ``[i][j]`` starts at ``offset + (i*shape[1] + j) * stride``.
    """

    name: str
    offset: int
    width: int
    signed: bool
    shape: tuple[int, ...]
    stride: int

    @classmethod
    def from_dict(cls, entry: Mapping) -> "Field":
        """A field from one :func:`describe_layout` entry (exactly :data:`FIELD_KEYS`)."""
        if not isinstance(entry, Mapping):
            raise ValueError(f"a payload field entry must be an object, not {entry!r}")
        unknown = sorted(set(entry) - set(FIELD_KEYS))
        missing = [k for k in FIELD_KEYS if k not in entry]
        if unknown:
            raise ValueError(f"payload field entry {dict(entry)} has unknown keys: {', '.join(unknown)}")
        if missing:
            raise ValueError(f"payload field entry {dict(entry)} lacks keys: {', '.join(missing)}")
        return cls(name=str(entry["name"]), offset=int(entry["offset"]), width=int(entry["width"]),
                   signed=bool(entry["signed"]), shape=tuple(int(d) for d in entry["shape"]),
                   stride=int(entry["stride"]))

    @property
    def count(self) -> int:
        """Number of elements (1 for a scalar)."""
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def lo(self) -> int:
        return code_range(self.width, self.signed)[0]

    @property
    def hi(self) -> int:
        return code_range(self.width, self.signed)[1]

    @property
    def end(self) -> int:
        """One past the last bit of the last element."""
        return self.offset + (self.count - 1) * self.stride + self.width

    def offsets(self) -> list[int]:
        """LSB of every element, in row-major order."""
        return [self.offset + i * self.stride for i in range(self.count)]

    def index(self, flat: int) -> str:
        """``name[i][j]`` of element ``flat`` (``name`` for a scalar)."""
        idx = []
        for d in reversed(self.shape):
            idx.append(flat % d)
            flat //= d
        return self.name + "".join(f"[{i}]" for i in reversed(idx))


class Payload:
    """Packs and unpacks one stream payload from the fields of its Amaranth layout.

    The one payload codec of the project: the RTL's layout
    (:func:`cfg_layout`, :func:`w_layout`, ...) is described once by
    :func:`describe_layout`, that description goes into the metadata JSON, and
    every packer and unpacker (the reference simulation here, the
    testbenches) is a :class:`Payload` over it, so the packing equals
    ``layout.const(values).as_bits()`` and ``layout.from_bits(word)``.

    Parameters
    ----------
    fields : sequence of dict or Field
        :func:`describe_layout` entries (or the metadata's ``payloads[stream]``).
    width : int, optional
        Payload width in bits; default the end of the last field.
    stream : str, optional
        Stream name, used in error messages.

    Raises
    ------
    ValueError
        No fields, a malformed entry, or a field that does not fit ``width``.
    """

    def __init__(self, fields: Sequence, *, width: int | None = None, stream: str | None = None) -> None:
        self.stream = stream
        self._what = "payload" if stream is None else f"{stream} payload"
        self.fields: tuple[Field, ...] = tuple(f if isinstance(f, Field) else Field.from_dict(f) for f in fields)
        if not self.fields:
            raise ValueError(f"{self._what} layout has no fields")
        self.width = max(f.end for f in self.fields) if width is None else int(width)
        for f in self.fields:
            if f.width < 1 or f.offset < 0 or f.end > self.width:
                raise ValueError(
                    f"{self._what} field {f.name} (offset {f.offset}, {f.count} x {f.width} bits) "
                    f"does not fit the {self.width}-bit payload"
                )
        self.by_name: dict[str, Field] = {f.name: f for f in self.fields}
        self._offsets = {f.name: f.offsets() for f in self.fields}

    @classmethod
    def of(cls, layout, name: str = "payload", *, stream: str | None = None) -> "Payload":
        """The codec of an Amaranth layout (:func:`describe_layout` of it)."""
        return cls(describe_layout(layout, name), width=Shape.cast(layout).width, stream=stream)

    def __getitem__(self, name: str) -> Field:
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"{self._what} has no field {name!r} (has {', '.join(self.by_name)})") from None

    @property
    def elements(self) -> int:
        """Number of scalar elements in the payload."""
        return sum(f.count for f in self.fields)

    def _encode(self, f: Field, flat: Sequence) -> int:
        lo, hi = code_range(f.width, f.signed)
        mask = (1 << f.width) - 1
        word = 0
        for i, (v, off) in enumerate(zip(flat, self._offsets[f.name])):
            v = int(v)
            if not lo <= v <= hi:
                raise ValueError(f"{self._what} field {f.index(i)}={v} is outside {lo}..{hi}")
            word |= (v & mask) << off
        return word

    def _decode(self, f: Field, word: int) -> list[int]:
        mask = (1 << f.width) - 1
        sign = 1 << (f.width - 1)
        out = []
        for off in self._offsets[f.name]:
            v = (word >> off) & mask
            out.append(v - (mask + 1) if f.signed and v & sign else v)
        return out

    def _flatten(self, f: Field, value, dims: tuple[int, ...]) -> list:
        if not dims:
            return [value]
        if len(value) != dims[0]:
            raise ValueError(f"{self._what} field {f.name} needs {dims[0]} elements along a "
                             f"dimension, not {len(value)}")
        out: list = []
        for v in value:
            out.extend(self._flatten(f, v, dims[1:]))
        return out

    def pack(self, values: Mapping[str, object]) -> int:
        """Pack ``{name: int or nested lists}`` into the payload integer.

        Every field must be given and every element in range for its width
        and signedness; unknown names are refused (:class:`ValueError`).
        """
        missing = [f.name for f in self.fields if f.name not in values]
        if missing:
            raise ValueError(f"{self._what} fields missing: {', '.join(missing)}")
        extra = sorted(set(values) - set(self.by_name))
        if extra:
            raise ValueError(f"unknown {self._what} fields: {', '.join(extra)}")
        word = 0
        for f in self.fields:
            word |= self._encode(f, self._flatten(f, values[f.name], f.shape))
        return word

    def unpack(self, word: int) -> dict[str, object]:
        """Inverse of :meth:`pack`: name -> int or nested lists of int (signed fields sign-extended)."""
        out: dict[str, object] = {}
        for f in self.fields:
            flat: list = self._decode(f, word)
            for d in reversed(f.shape[1:]):
                flat = [flat[i:i + d] for i in range(0, len(flat), d)]
            out[f.name] = flat if f.shape else flat[0]
        return out

    def _vector(self) -> Field:
        if len(self.fields) != 1:
            raise ValueError(f"{self._what} has {len(self.fields)} fields, not the one of a vector payload")
        return self.fields[0]

    def pack_vector(self, values: Sequence[int]) -> int:
        """Pack a vector payload (``w``, ``x``: one field): element ``i`` into slot ``i``."""
        f = self._vector()
        if len(values) != f.count:
            raise ValueError(f"{self._what} has {f.count} elements, not {len(values)}")
        return self._encode(f, values)

    def unpack_vector(self, word: int) -> list[int]:
        """Element values of a vector payload (``o``), row-major, signed fields sign-extended."""
        return self._decode(self._vector(), word)


def pack_payload(fields: Sequence, values: Mapping[str, object]) -> int:
    """:meth:`Payload.pack` of the described ``fields`` (:func:`describe_layout`'s output or the
    metadata JSON's ``payloads[...]`` list)."""
    return Payload(fields).pack(values)


def unpack_payload(fields: Sequence, word: int) -> dict[str, object]:
    """:meth:`Payload.unpack` of the described ``fields``: name -> int or nested lists of int."""
    return Payload(fields).unpack(word)
