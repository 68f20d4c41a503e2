"""The one payload codec: describe an Amaranth layout as fields, pack and unpack payloads from them.

The generator describes every stream payload of a design once
(:func:`describe_layout`) into its metadata (:mod:`rtl.design`);
:class:`Payload` is the one codec over that description: the engine's
testbench and its model pack and unpack payloads with it, from data, never
from hard-coded offsets, and it packs exactly as Amaranth's
``Layout.const(...).as_bits()`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from amaranth.hdl import Shape
from amaranth.lib import data

from quant.base.intops import code_range

__all__ = [
    "describe_layout",
    "FIELD_KEYS",
    "Field",
    "Payload",
    "pack_payload",
    "unpack_payload",
]


def describe_layout(layout, name: str = "payload") -> list[dict]:
    """JSON description of a payload: one entry per field.

    A ``StructLayout`` gives one entry per leaf field, nested struct fields
    named with ``.`` (``ag.height``); any other layout is one field called
    ``name``.  Each entry has ``name``, ``offset`` (LSB of the first
    element), ``width`` and ``signed`` of one element, ``shape`` (``[]`` for
    a scalar, ``[n]`` or ``[n, m]`` for arrays, row-major) and ``stride``
    (bits between consecutive elements, equal to ``width``).  Element
    ``[i]`` / ``[i][j]`` starts at ``offset + (i * m + j) * stride``.
    """
    out: list[dict] = []

    def add(fname, offset, shape):
        if isinstance(shape, data.StructLayout):
            for sub, field in shape:
                add(f"{fname}.{sub}" if fname else sub, offset + field.offset, field.shape)
            return
        dims: list[int] = []
        while isinstance(shape, data.ArrayLayout):
            dims.append(shape.length)
            shape = shape.elem_shape
        s = Shape.cast(shape)
        out.append({"name": fname, "offset": offset, "width": s.width, "signed": s.signed,
                    "shape": dims, "stride": s.width})

    add("" if isinstance(layout, data.StructLayout) else name, 0, layout)
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

    def to_dict(self) -> dict:
        """The :func:`describe_layout` entry of this field."""
        return {"name": self.name, "offset": self.offset, "width": self.width, "signed": self.signed,
                "shape": list(self.shape), "stride": self.stride}

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

    The one payload codec of the project: the RTL's layout (the engine's
    :func:`rtl.engine.top.desc_layout`, ...) is described once by
    :func:`describe_layout`, that description goes into the metadata JSON, and
    every packer and unpacker (the engine's testbench and its model) is a
    :class:`Payload` over it, so the packing equals
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
