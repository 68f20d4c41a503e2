"""Sizing the network engine to a model: its widths, its memories, its all-multiplier twin.

One rule derives an engine's widths from an integer model
(:func:`engine_config_for`), one function sizes its memories by the
compiler (:func:`size_engine`, what ``adderhw generate --model`` and
``adderhw estimate`` build), and :func:`mult_engine` gives the all-multiplier
baseline of a config.  numpy only (DESIGN §1: the architecture, below rtl).

Where the weights live is :class:`WeightChoice` (``--weights``): streamed
(the default, today's engine), resident (the weight buffer holds the whole
``w`` stream, :mod:`hwsim.engine` rule 7; refused in one line naming the
sizes when the store does not fit the budget), or auto (resident when it
fits, else streamed with one line saying so).  The budget: with a target
part (:mod:`hwsim.parts`), the part's block RAMs, counted for the whole
resident engine (its activation regions and the store, as yosys maps them);
without one, the deepest weight store a config allows
(:data:`~hwsim.config.MAX_WEIGHT_WORDS` words).

``weight_buffers=2`` (a config field, ``--weight-buffers 2``) sizes a
streamed engine's weight buffer for two tiles (:mod:`hwsim.engine` rule 2:
loads overlap steps), each half the largest tile rounded up to a power of
two; an engine that ends up resident loads no tiles from
``w`` and has one buffer, the store.
"""

from __future__ import annotations

import enum
import sys

from hwsim.compiler import CompiledModel, RegionTooSmall, compile_model
from hwsim.config import MAX_REGIONS, MAX_REGION_WORDS, MAX_WEIGHT_WORDS, EngineConfig, WeightMode
from quant.intmodel.artifact import IntModel
from quant.base.intops import PeKind, RequantMode

__all__ = ["WeightChoice", "buffer_words", "engine_config_for", "size_engine", "mult_engine", "resident_fit"]


class WeightChoice(enum.StrEnum):
    """``--weights``: where :func:`size_engine` puts the weights (module docstring)."""

    AUTO = "auto"
    RESIDENT = "resident"
    STREAMED = "streamed"


def resident_fit(config: EngineConfig, store_words: int, part=None) -> str | None:
    """None when a store of ``store_words`` words fits the budget (module docstring) with the rest of
    ``config``'s memories; else one line naming the sizes."""
    wb = config.weight_word_bits
    need = f"the weight store needs {store_words} words ({store_words * wb // 8} bytes of {wb}-bit words)"
    if store_words > MAX_WEIGHT_WORDS:
        return f"{need}, an engine's store holds at most {MAX_WEIGHT_WORDS} words"
    if part is None:
        return None
    from hwsim.parts import bram_blocks, part as part_of

    p = part_of(part) if isinstance(part, str) else part
    res = config.replace(weights=WeightMode.RESIDENT, weight_words=store_words, weight_buffers=1)
    blocks = bram_blocks(res, p)
    if blocks > p.bram_blocks:
        act = bram_blocks(res.replace(weight_words=1), p)
        return (f"{need}: the resident engine needs {blocks} BRAM blocks ({p.bram_cell}; {blocks - act} for the "
                f"store, {act} for the activations), {p.name} has {p.bram_blocks}")
    return None


def buffer_words(tile_words: int, weight_buffers: int) -> int:
    """Depth of a streamed engine's weight buffer for tiles of at most ``tile_words`` words: one tile, or
    with two buffers two halves, each a power of two (:mod:`hwsim.engine` rule 2: a half's address is a
    concatenation)."""
    return tile_words if weight_buffers == 1 else 2 << (tile_words - 1).bit_length()


def mult_engine(config: EngineConfig) -> EngineConfig:
    """The all-multiplier engine of ``config``: multiplier PEs everywhere, no multiplier unit."""
    return config.replace(pe=PeKind.MULT, mult_rows=0, mult_acc_bits=None)


def engine_config_for(model: IntModel, *, rows: int, cols: int, mult_rows: int | None = None,
                      clock_mhz: float = 100.0, **fields) -> EngineConfig:
    """The adder engine of ``rows x cols`` with ``model``'s widths and operations.

    ``bits`` is the model's operand width, ``act_bits`` the widest code of a
    stored tensor (the input and every requant output but the logits),
    ``requant`` the forms its layers use, ``max_k`` its longest reduction,
    ``out_bits`` its logits' width (at least ``bits``), ``mult_rows``
    ``max(1, rows // 2)`` when it has multiply layers (else 0).  Memory
    depths are the config's defaults unless given in ``fields`` (which
    override any field): they change no cycle or count; :func:`size_engine`
    sizes them.

    Raises
    ------
    ValueError
        The model has no conv or linear layer, or ``EngineConfig`` refuses the fields.
    """
    computes = [l for l in model.layers if l.kind.pe is not None]
    if not computes:
        raise ValueError(f"model {model.name}: no conv or linear layer to run on the engine")
    has_mult = any(l.kind.pe == PeKind.MULT for l in computes)
    modes = tuple(sorted({l.requant.mode for l in model.layers if getattr(l, "requant", None) is not None}))
    bits = max(int(l.bits) for l in computes)
    last = next((l for l in reversed(model.layers) if getattr(l, "requant", None) is not None), None)
    out_bits = bits if last is None else max(bits, int(last.requant.out_bits))  # the logits (flatten has none)
    stored = [int(l.requant.out_bits) for l in model.layers
              if getattr(l, "requant", None) is not None and l is not last]
    act_bits = max([bits, int(model.input.bits), *stored])  # every stored tensor's codes
    if mult_rows is None:
        mult_rows = max(1, rows // 2) if has_mult else 0
    cfg = dict(rows=rows, cols=cols, mult_rows=mult_rows, bits=bits, max_k=max(int(l.K) for l in computes),
               requant=modes or (RequantMode.FIXED,), out_bits=out_bits, act_bits=act_bits, clock_mhz=clock_mhz)
    cfg.update(fields)
    return EngineConfig(**cfg)


def size_engine(model: IntModel, *, rows: int, cols: int, mult_rows: int | None = None,
                weights: WeightChoice | str = WeightChoice.STREAMED, part=None, note=None,
                **fields) -> tuple[EngineConfig, CompiledModel]:
    """The adder engine of ``rows x cols`` sized to ``model`` by the compiler, and the compiled model.

    Widths by :func:`engine_config_for`; memories from one probe compilation
    with :data:`~hwsim.config.MAX_REGIONS` regions of the largest depth: as
    many regions as the liveness placement uses (2 for a chain, 3 with
    residual adds), each as deep as the largest tensor placed in it, and a
    weight buffer as deep as the largest tile (two tiles with ``weight_buffers=2``); then the model is compiled for
    those memories (once more, with equal depths, when the placement of
    unequal ones does not fit: at most three compilations).  ``fields``
    override any :class:`EngineConfig` field; with both ``act_words`` and
    ``weight_words`` given the model is compiled once for them.

    ``weights`` (:class:`WeightChoice`) and ``part`` (a :mod:`hwsim.parts`
    name or part: the budget) choose the weight mode (module docstring); a
    resident engine's weight buffer is then as deep as the whole ``w``
    stream.  ``note`` takes auto's one line when it streams (default: print
    it on stderr).

    Raises
    ------
    ValueError
        The model does not fit the engine (the compiler's refusal; a tensor
        larger than every region is :class:`~hwsim.compiler.RegionTooSmall`),
        or forced resident weights do not fit (one line naming the sizes).
    """
    if weights not in tuple(WeightChoice):
        raise ValueError(f"weights must be one of {', '.join(WeightChoice)}, not {weights!r}")
    weights = WeightChoice(weights)
    if "weights" in fields:
        raise ValueError("weights: give the choice (auto, resident, streamed), not a config field")
    cfg, compiled = _size_streamed(model, rows=rows, cols=cols, mult_rows=mult_rows, **fields)
    if weights == WeightChoice.STREAMED:
        return cfg, compiled
    n = compiled.program.store_words
    why = resident_fit(cfg, n, part)
    if why is not None:
        if weights == WeightChoice.RESIDENT:
            raise ValueError(f"resident weights do not fit: {why}")
        (note or (lambda line: print(line, file=sys.stderr)))(f"weights streamed, not resident: {why}")
        return cfg, compiled
    cfg = cfg.replace(weights=WeightMode.RESIDENT, weight_buffers=1, weight_words=max(n, cfg.weight_words if "weight_words" in fields
                                                                    else 1))
    return cfg, compile_model(model, cfg)


def _size_streamed(model: IntModel, *, rows: int, cols: int, mult_rows: int | None = None,
                   **fields) -> tuple[EngineConfig, CompiledModel]:
    """:func:`size_engine` of a streamed engine."""
    base = engine_config_for(model, rows=rows, cols=cols, mult_rows=mult_rows, **fields)
    if "act_words" in fields and "weight_words" in fields:
        return base, compile_model(model, base)
    # one probe with every region as deep as allowed: the placement takes the lowest free region, so it
    # uses as few regions as the liveness needs, and each region's peak is its largest tensor
    probe = compile_model(model, base.replace(act_words=(MAX_REGION_WORDS,) * MAX_REGIONS,
                                              weight_words=MAX_WEIGHT_WORDS))
    mm = probe.program.memory_map()
    used = [mm[f"R{r}"]["peak_words"] for r in range(probe.program.config.regions) if mm[f"R{r}"]["peak_words"]]
    while len(used) < 2:
        used.append(1)
    weight_words = buffer_words(max(1, mm["weights"]["peak_words"]), base.weight_buffers)
    try:
        cfg = base.replace(**{"act_words": tuple(used), "weight_words": weight_words, **fields})
        return cfg, compile_model(model, cfg)
    except RegionTooSmall:  # the placement differs with unequal depths: equal depths always fit
        cfg = base.replace(**{"act_words": (max(used),) * len(used), "weight_words": weight_words, **fields})
        return cfg, compile_model(model, cfg)
