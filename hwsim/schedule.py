"""The v1 tile schedule of the output-stationary array — the contract the RTL follows.

Cycle numbering: cycle 0 is the cycle in which the first tile's configuration
beat is transferred on the ``cfg`` stream.  "Fires in cycle n" means the
handshake (valid and ready) is high in cycle n and takes effect at the clock
edge that ends it.  A layer's measured cycle count is
``last_output_cycle - first_cfg_cycle + 1``.

Rules (no back-pressure: the host offers a beat on every input stream every
cycle and the output is always ready):

1. A ``cfg`` beat (``K`` and the tile's requant parameters) is accepted when
   no tile is in its reduction phase, or in the same cycle as the current
   tile's last reduction step.  The tile's first step fires the cycle after.
2. A reduction step consumes one ``w`` beat (``rows`` values) and one ``x``
   beat (``cols`` values) together; every PE does ``acc = (first ? 0 : acc) +
   f(x, w)``.  Steps of a tile fire in consecutive cycles.
3. The last step (``k == K-1``) writes its result into the shadow bank
   instead of the accumulators.  It may fire only when the shadow bank is
   free, or is being freed in the same cycle (the previous tile's last
   output beat fires in that cycle).  Earlier steps never wait for the
   shadow bank.
4. A tile whose last step fired in cycle ``l`` drains ``cols`` output beats
   (one per column, ``rows`` values each): column ``c`` fires in cycle
   ``l + L + c``, where ``L = ArrayConfig.requant_latency``.  The shadow bank
   is freed by the last of them.

Hence, with ``l_0 = K_0`` (first step in cycle 1)::

    l_{i+1} = max(l_i + K_{i+1}, l_i + L + cols - 1)
    total   = l_last + L + cols

Every tile drains all ``cols`` columns and every row computes, also in a
partial tile (the host pads; padded outputs are discarded by the host).
:func:`tile_layer` is that tiling of a layer's operands, the one shared by
hwsim's functional mode and the verification host: weight rows past ``O``
are 0, activation columns past ``P`` hold the layer's input zero point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from hwsim.config import ArrayConfig

__all__ = ["TileTiming", "LayerTiming", "TileOperands", "tile_grid", "tile_layer", "schedule_tiles",
           "layer_cycles"]


@dataclass(frozen=True)
class TileTiming:
    """Cycle numbers of one tile (see the module docstring)."""

    cfg_cycle: int
    first_step_cycle: int
    last_step_cycle: int
    first_out_cycle: int
    last_out_cycle: int
    shadow_stall_cycles: int


@dataclass(frozen=True)
class LayerTiming:
    """The whole schedule of a sequence of tiles."""

    tiles: tuple[TileTiming, ...]
    total_cycles: int
    compute_cycles: int
    stall_cycles: int


def tile_grid(out_channels: int, out_pixels: int, cfg: ArrayConfig) -> tuple[int, int]:
    """Number of row tiles and column tiles: ``ceil(O/rows), ceil(P/cols)``.

    Tile order is row-tile major: for each block of ``rows`` output channels,
    all blocks of ``cols`` output pixels.
    """
    if out_channels < 1 or out_pixels < 1:
        raise ValueError(
            f"a layer needs at least one output channel and pixel, not {out_channels}x{out_pixels}"
        )
    return -(-out_channels // cfg.rows), -(-out_pixels // cfg.cols)


@dataclass(frozen=True, eq=False)
class TileOperands:
    """The operands of one tile: output channels ``o0:o1`` x output pixels ``p0:p1`` of the layer.

    ``w`` is ``[rows, K]`` (rows past ``o1 - o0`` are 0; one array shared by
    every tile of a row tile); ``x`` is ``[..., K, cols]`` (columns past
    ``p1 - p0`` hold the padding value).
    """

    o0: int
    o1: int
    p0: int
    p1: int
    w: np.ndarray
    x: np.ndarray


def tile_layer(w, x_cols, cfg: ArrayConfig, pad_value: int) -> Iterator[TileOperands]:
    """The tiles of a layer ``w [O, K] x x_cols [..., K, P]`` in execution order (:func:`tile_grid`).

    Parameters
    ----------
    w : array_like
        Weight codes ``[O, K]`` (im2col order).
    x_cols : array_like
        Activation codes ``[K, P]`` or a batch ``[N, K, P]`` (``quant.golden.im2col``).
    cfg : ArrayConfig
        The array (``rows``, ``cols``).
    pad_value : int
        Activation code of the padded columns (the layer's input zero point).

    Raises
    ------
    ValueError
        ``w`` and ``x_cols`` disagree on ``K``; an empty layer (:func:`tile_grid`).
    """
    w = np.asarray(w, dtype=np.int64)
    x_cols = np.asarray(x_cols, dtype=np.int64)
    o_total, k = w.shape
    if x_cols.shape[-2] != k:
        raise ValueError(f"weights have K={k} but the activations {x_cols.shape[-2]}")
    p_total = x_cols.shape[-1]
    tr, tc = tile_grid(o_total, p_total, cfg)
    for i in range(tr):
        o0 = i * cfg.rows
        o1 = min(o0 + cfg.rows, o_total)
        w_tile = np.zeros((cfg.rows, k), dtype=np.int64)
        w_tile[: o1 - o0] = w[o0:o1]
        for j in range(tc):
            p0 = j * cfg.cols
            p1 = min(p0 + cfg.cols, p_total)
            x_tile = np.full(x_cols.shape[:-1] + (cfg.cols,), pad_value, dtype=np.int64)
            x_tile[..., : p1 - p0] = x_cols[..., p0:p1]
            yield TileOperands(o0=o0, o1=o1, p0=p0, p1=p1, w=w_tile, x=x_tile)


def schedule_tiles(ks: Sequence[int], cfg: ArrayConfig) -> LayerTiming:
    """Exact cycle schedule of tiles with reduction lengths ``ks`` (no back-pressure)."""
    if len(ks) == 0:
        raise ValueError("a schedule needs at least one tile")
    lat = cfg.requant_latency
    tiles: list[TileTiming] = []
    prev_last = None
    stall_total = 0
    for k in ks:
        if k < 1 or k > cfg.max_k:
            raise ValueError(f"tile reduction length K={k} is outside 1..max_k={cfg.max_k}")
        if prev_last is None:
            cfg_cycle = 0
            last = k
            stall = 0
        else:
            cfg_cycle = prev_last
            natural = prev_last + k
            free = prev_last + lat + cfg.cols - 1
            last = max(natural, free)
            stall = last - natural
        first = cfg_cycle + 1
        tiles.append(
            TileTiming(
                cfg_cycle=cfg_cycle,
                first_step_cycle=first,
                last_step_cycle=last,
                first_out_cycle=last + lat,
                last_out_cycle=last + lat + cfg.cols - 1,
                shadow_stall_cycles=stall,
            )
        )
        stall_total += stall
        prev_last = last
    total = tiles[-1].last_out_cycle + 1
    return LayerTiming(
        tiles=tuple(tiles),
        total_cycles=total,
        compute_cycles=sum(ks),
        stall_cycles=stall_total,
    )


def layer_cycles(out_channels: int, out_pixels: int, k: int, cfg: ArrayConfig) -> int:
    """Total cycles of one layer tiled onto the array (closed form of the schedule)."""
    tr, tc = tile_grid(out_channels, out_pixels, cfg)
    n = tr * tc
    if k < 1 or k > cfg.max_k:
        raise ValueError(f"layer reduction length K={k} is outside 1..max_k={cfg.max_k}")
    period = max(k, cfg.requant_latency + cfg.cols - 1)
    return k + (n - 1) * period + cfg.requant_latency + cfg.cols
