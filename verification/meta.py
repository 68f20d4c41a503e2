"""The generated design's metadata JSON, and payload packing from its bit layouts.

``adderhw generate`` writes ``<name>.json`` beside ``<name>.v``
(``docs/interfaces.md`` §3): ports with widths and directions, the bit layout
of every stream payload (field, offset, width, signedness), the
:class:`~hwsim.config.ArrayConfig`, latencies and the accumulator width.  The
testbenches read every parameter from it and pack payloads from its layouts,
never from hard-coded offsets.

Array fields carry a ``shape`` (row-major) and a ``stride``, so a value dict
``{"k": 25, "m": [...], "thr": [[...], ...]}`` packs into a payload by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from hwsim.config import ArrayConfig
from quant.intops import code_range

__all__ = ["Field", "Layout", "DesignMeta", "load_meta"]

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

    @property
    def count(self) -> int:
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

    def offsets(self) -> list[int]:
        return [self.offset + i * self.stride for i in range(self.count)]


def _flatten(value, shape: tuple[int, ...], name: str) -> list[int]:
    if not shape:
        return [int(value)]
    if len(value) != shape[0]:
        raise ValueError(f"payload field {name} needs {shape[0]} elements along a dimension, not {len(value)}")
    out: list[int] = []
    for v in value:
        out.extend(_flatten(v, shape[1:], name))
    return out


class Layout:
    """Bit layout of one stream payload, as the metadata JSON describes it.

    Parameters
    ----------
    stream : str
        Stream name (``cfg``, ``w``, ``x``, ``o``).
    width : int
        Payload width in bits.
    fields : sequence of dict
        Each with ``name``, ``offset``, ``width``, ``signed`` and optionally
        ``shape`` (array dimensions, row-major) and ``stride`` (bits between
        elements, default ``width``).
    """

    def __init__(self, stream: str, width: int, fields: Sequence[Mapping]) -> None:
        self.stream = stream
        self.width = int(width)
        out = []
        for f in fields:
            try:
                fld = Field(name=str(f["name"]), offset=int(f["offset"]), width=int(f["width"]),
                            signed=bool(f.get("signed", False)),
                            shape=tuple(int(d) for d in f.get("shape", ())),
                            stride=int(f.get("stride", f["width"])))
            except KeyError as exc:
                raise ValueError(f"{stream} payload field entry {dict(f)} lacks {exc.args[0]!r}") from None
            end = fld.offset + (fld.count - 1) * fld.stride + fld.width
            if fld.width < 1 or fld.offset < 0 or end > self.width:
                raise ValueError(
                    f"{stream} payload field {fld.name} (offset {fld.offset}, {fld.count} x "
                    f"{fld.width} bits) does not fit the {self.width}-bit payload"
                )
            out.append(fld)
        if not out:
            raise ValueError(f"{stream} payload layout has no fields")
        self.fields: tuple[Field, ...] = tuple(sorted(out, key=lambda f: f.offset))
        self.by_name: dict[str, Field] = {f.name: f for f in self.fields}
        # flat element list (vector streams have one array field)
        self._elems = [(off, f) for f in self.fields for off in f.offsets()]

    def __getitem__(self, name: str) -> Field:
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"{self.stream} payload has no field {name!r} (has {', '.join(self.by_name)})") from None

    def _encode(self, f: Field, v: int, off: int) -> int:
        if not f.lo <= v <= f.hi:
            raise ValueError(
                f"{self.stream}.{f.name} = {v} does not fit its {f.width}-bit "
                f"{'signed' if f.signed else 'unsigned'} field"
            )
        return (v & ((1 << f.width) - 1)) << off

    def pack(self, values: Mapping[str, object]) -> int:
        """Pack ``{name: int or nested list}`` into the payload integer.

        Every field must be given; unknown names are refused.
        """
        extra = sorted(set(values) - set(self.by_name))
        if extra:
            raise ValueError(f"{self.stream} payload has no field(s) {', '.join(extra)}")
        word = 0
        for f in self.fields:
            if f.name not in values:
                raise ValueError(f"{self.stream} payload field {f.name!r} not given")
            flat = _flatten(values[f.name], f.shape, f.name)
            for v, off in zip(flat, f.offsets()):
                word |= self._encode(f, v, off)
        return word

    @property
    def elements(self) -> int:
        """Number of scalar elements in the payload."""
        return len(self._elems)

    def pack_vector(self, values: Sequence[int]) -> int:
        """Pack a vector payload (``w``, ``x``): element ``i`` into the ``i``-th element slot."""
        if len(values) != len(self._elems):
            raise ValueError(f"{self.stream} payload has {len(self._elems)} elements, not {len(values)}")
        word = 0
        for (off, f), v in zip(self._elems, values):
            word |= self._encode(f, int(v), off)
        return word

    def unpack_vector(self, word: int) -> list[int]:
        """Element values of a vector payload (``o``), signed fields sign-extended."""
        out = []
        for off, f in self._elems:
            v = (word >> off) & ((1 << f.width) - 1)
            if f.signed and v >> (f.width - 1):
                v -= 1 << f.width
            out.append(v)
        return out


@dataclass(frozen=True, eq=False)
class DesignMeta:
    """Everything a testbench needs to know about one generated design."""

    path: Path
    name: str
    verilog: Path
    config: ArrayConfig
    layouts: dict
    ports: dict
    latency: dict
    acc_bits: int
    raw: dict

    @property
    def cfg(self) -> Layout:
        return self.layouts["cfg"]

    @property
    def w(self) -> Layout:
        return self.layouts["w"]

    @property
    def x(self) -> Layout:
        return self.layouts["x"]

    @property
    def o(self) -> Layout:
        return self.layouts["o"]

    def field_bits(self) -> dict:
        """Widths of the requant fields of the cfg payload (for choosing test parameters)."""
        out = {}
        for name in ("m", "n", "shift", "thr", "lo", "k"):
            if name in self.cfg.by_name:
                out[name] = self.cfg[name].width
        for name in ("lo", "thr"):
            if name in self.cfg.by_name:
                out[f"{name}_signed"] = self.cfg[name].signed
        return out


def _first(d: Mapping, *keys, what: str):
    for k in keys:
        if k in d:
            return d[k]
    raise ValueError(f"design metadata has no {what} (looked for {', '.join(keys)})")


def load_meta(path: Path) -> DesignMeta:
    """Read a design's metadata JSON (``<name>.json`` beside ``<name>.v``).

    Raises
    ------
    OSError
        When the file or the Verilog beside it is missing.
    ValueError
        When the JSON lacks a port, layout or config the testbench needs.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"design metadata not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    cfg_d = _first(raw, "config", "array_config", what="array config")
    config = ArrayConfig.from_dict(cfg_d)
    name = str(raw.get("top") or raw.get("name") or path.stem)
    if raw.get("block", "accelerator") != "accelerator":
        raise ValueError(f"{path} describes a {raw['block']!r} block, not the accelerator top")
    ports_raw = _first(raw, "ports", what="port list")
    if isinstance(ports_raw, Mapping):
        ports = {k: dict(v) for k, v in ports_raw.items()}
    else:
        ports = {p["name"]: dict(p) for p in ports_raw}
    lay_raw = _first(raw, "payloads", "layouts", "streams", what="payload layouts")
    layouts = {}
    for stream in ("cfg", "w", "x", "o"):
        if stream not in lay_raw:
            raise ValueError(f"design metadata has no payload layout for stream {stream!r}")
        spec = lay_raw[stream]
        fields = spec["fields"] if isinstance(spec, Mapping) else spec
        width = spec.get("width") if isinstance(spec, Mapping) else None
        if width is None:
            width = ports.get(f"{stream}__payload", {}).get("width")
        if width is None:
            width = max(int(f["offset"]) + int(f["width"]) for f in fields)
        layouts[stream] = Layout(stream, width, fields)
    for stream in ("cfg", "w", "x", "o"):
        for sig in ("payload", "valid", "ready"):
            if f"{stream}__{sig}" not in ports:
                raise ValueError(f"design metadata lists no port {stream}__{sig}")
    verilog = Path(raw.get("verilog", path.with_suffix(".v").name))
    if not verilog.is_absolute():
        verilog = path.parent / verilog
    if not verilog.exists():
        raise FileNotFoundError(f"Verilog of the design not found: {verilog}")
    lat = raw.get("latency", raw.get("latencies", {}))
    if not isinstance(lat, Mapping):
        lat = {"requant": lat}
    acc_bits = int(raw.get("acc_bits", config.acc_bits))
    return DesignMeta(path=path, name=name, verilog=verilog, config=config, layouts=layouts,
                      ports=ports, latency=dict(lat), acc_bits=acc_bits, raw=raw)
