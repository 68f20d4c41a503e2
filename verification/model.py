"""Reference model of the accelerator at tile level, and the host's tiling of a layer.

The accelerator (``docs/interfaces.md`` §3) computes, for one tile with
reduction length ``K``, weights ``w[rows, K]`` and activations ``x[K, cols]``::

    acc[r, c] = sum_k f(x[k, c], w[r, k])      f = |x - w| (adder) or x * w (mult)
    out[c]    = requant(acc[:, c])             one output beat per column

The requant arithmetic is :func:`quant.intops.requant_fixed` /
:func:`quant.intops.requant_threshold` — the golden model's own functions, so
the testbench has no second copy of it.

A layer ``[O, K] x [K, P]`` is cut into tiles by :func:`hwsim.schedule.tile_layer`,
the tiler hwsim's functional mode uses too: row-tile major (for each block of
``rows`` output channels, every block of ``cols`` output pixels); partial
tiles are padded (weights and requant rows with zeros, activations with the
layer's input zero point) and their padded outputs discarded (:func:`assemble`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hwsim.config import ArrayConfig
from hwsim.schedule import tile_layer
from quant import golden
from quant.intops import code_range, requant_fixed, requant_threshold

__all__ = [
    "TileRequant",
    "Tile",
    "tile_acc",
    "tile_outputs",
    "plan_layer",
    "assemble",
    "random_tile",
    "extreme_tile",
]


@dataclass(frozen=True, eq=False)
class TileRequant:
    """Requant parameters of one tile's ``rows`` output channels.

    Fixed point: ``q = clamp((m*acc + n) >> shift, lo, hi)``; thresholds:
    ``cnt = #{t: acc >= thr[t]}``, ``q = neg ? 2**bits-1 - cnt : cnt``.
    Arrays are int64: ``m``, ``n``, ``neg`` ``[rows]``, ``thr`` ``[rows, 2**bits-1]``.
    """

    mode: str
    shift: int = 0
    lo: int = 0
    hi: int = 0
    m: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    n: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    thr: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    neg: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        if self.mode not in ("fixed", "threshold"):
            raise ValueError(f"requant mode must be 'fixed' or 'threshold', not {self.mode!r}")
        for name in ("m", "n", "thr", "neg"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.int64))

    def rows(self) -> int:
        return len(self.m) if self.mode == "fixed" else len(self.neg)

    def apply(self, acc: np.ndarray, bits: int) -> np.ndarray:
        """Requantised ``acc[rows, cols]`` (int64)."""
        if self.mode == "fixed":
            return requant_fixed(acc, self.m, self.n, self.shift, self.lo, self.hi)
        return requant_threshold(acc, self.thr, self.neg, bits)

    def fields(self) -> dict:
        """Field name -> int or list of int, as the cfg payload names them."""
        if self.mode == "fixed":
            return {"shift": self.shift, "lo": self.lo, "hi": self.hi,
                    "m": [int(v) for v in self.m], "n": [int(v) for v in self.n]}
        return {"neg": [int(v) for v in self.neg], "thr": [[int(v) for v in row] for row in self.thr]}

    def slice_rows(self, o0: int, rows: int) -> "TileRequant":
        """Rows ``o0 .. o0+rows`` of a per-layer requant, zero-padded past the end."""
        def pad(a, width=None):
            a = a[o0:o0 + rows]
            shape = (rows,) + a.shape[1:]
            out = np.zeros(shape, dtype=np.int64)
            out[: len(a)] = a
            return out
        if self.mode == "fixed":
            return TileRequant(mode="fixed", shift=self.shift, lo=self.lo, hi=self.hi,
                               m=pad(self.m), n=pad(self.n))
        return TileRequant(mode="threshold", thr=pad(self.thr), neg=pad(self.neg))


@dataclass(frozen=True, eq=False)
class Tile:
    """One tile: ``w[rows, K]``, ``x[K, cols]``, its requant, and where it sits in the layer."""

    w: np.ndarray
    x: np.ndarray
    rq: TileRequant
    o0: int = 0
    p0: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "w", np.asarray(self.w, dtype=np.int64))
        object.__setattr__(self, "x", np.asarray(self.x, dtype=np.int64))
        if self.w.ndim != 2 or self.x.ndim != 2 or self.w.shape[1] != self.x.shape[0]:
            raise ValueError(
                f"a tile needs w [rows, K] and x [K, cols], not {self.w.shape} and {self.x.shape}"
            )

    @property
    def k(self) -> int:
        return self.w.shape[1]


def tile_acc(tile: Tile, pe: str) -> np.ndarray:
    """Accumulators ``acc[rows, cols]`` (int64, exact), from the golden model's kernels."""
    acc = golden.adder_acc if pe == "adder" else golden.mult_acc
    return acc(tile.x, tile.w)


def tile_outputs(tile: Tile, cfg: ArrayConfig) -> np.ndarray:
    """The tile's output beats: ``out[cols, rows]`` (beat ``c`` carries column ``c``)."""
    acc = tile_acc(tile, cfg.pe)
    return tile.rq.apply(acc, cfg.bits).T.copy()


def plan_layer(w: np.ndarray, x_cols: np.ndarray, rq: TileRequant, cfg: ArrayConfig,
               pad_value: int) -> list[Tile]:
    """Tiles of a layer ``w[O, K] x x_cols[K, P]`` in the array's order (row-tile major).

    Parameters
    ----------
    w : ndarray
        Weight codes ``[O, K]`` (im2col order).
    x_cols : ndarray
        Activation codes ``[K, P]`` (``quant.golden.im2col``).
    rq : TileRequant
        Per-layer requant (``[O]`` rows).
    cfg : ArrayConfig
        The array.
    pad_value : int
        Activation code of padded columns (the layer's input zero point).
    """
    k = np.shape(w)[1]
    if np.shape(x_cols)[0] != k:
        raise ValueError(f"weights have K={k} but the activations {np.shape(x_cols)[0]}")
    if k > cfg.max_k:
        raise ValueError(f"layer K={k} exceeds the array's max_k={cfg.max_k}")
    tiles = []
    rqs: dict = {}
    for t in tile_layer(w, x_cols, cfg, pad_value):
        if t.o0 not in rqs:
            rqs[t.o0] = rq.slice_rows(t.o0, cfg.rows)
        tiles.append(Tile(w=t.w, x=t.x, rq=rqs[t.o0], o0=t.o0, p0=t.p0))
    return tiles


def assemble(tiles: list[Tile], outputs: list[np.ndarray], out_channels: int, out_pixels: int) -> np.ndarray:
    """Layer output ``[O, P]`` from each tile's beats ``[cols, rows]`` (padding dropped)."""
    if len(tiles) != len(outputs):
        raise ValueError(f"{len(tiles)} tiles but {len(outputs)} output blocks")
    out = np.zeros((out_channels, out_pixels), dtype=np.int64)
    for t, o in zip(tiles, outputs):
        blk = np.asarray(o, dtype=np.int64).T  # [rows, cols]
        r = min(blk.shape[0], out_channels - t.o0)
        c = min(blk.shape[1], out_pixels - t.p0)
        out[t.o0:t.o0 + r, t.p0:t.p0 + c] = blk[:r, :c]
    return out


def _operand_range(cfg: ArrayConfig) -> tuple[int, int]:
    return code_range(cfg.bits, cfg.pe == "mult")


def _sensitive_requant(acc: np.ndarray, cfg: ArrayConfig, rng: np.random.Generator,
                       field_bits: dict) -> TileRequant:
    """Requant parameters that spread this tile's accumulators over the output range.

    Chosen from the accumulators themselves so that a wrong accumulator almost
    always changes the output (nothing is saturated by construction).
    ``field_bits`` gives the widths of ``m``, ``n``, ``shift``, ``lo``/``hi``
    and ``thr`` in the cfg payload.
    """
    rows = acc.shape[0]
    qmax = (1 << cfg.bits) - 1
    if cfg.requant == "threshold":
        thr_min, thr_max = code_range(field_bits["thr"], field_bits.get("thr_signed", False))
        thr = np.zeros((rows, qmax), dtype=np.int64)
        for r in range(rows):
            lo_a, hi_a = int(acc[r].min()), int(acc[r].max())
            cand = rng.integers(max(thr_min, lo_a - 2), min(thr_max, hi_a + 2) + 1, size=qmax)
            thr[r] = np.sort(cand)
        neg = rng.integers(0, 2, size=rows)
        return TileRequant(mode="threshold", thr=thr, neg=neg)
    out_lo = -(1 << cfg.out_bits) if field_bits.get("lo_signed", True) else 0
    out_hi = (1 << cfg.out_bits) - 1
    # clamp bounds: a random window inside the representable output range
    lo = int(rng.integers(max(out_lo, -(1 << (cfg.out_bits - 1))), 1))
    hi = int(rng.integers(max(lo + 1, out_hi // 2), out_hi + 1))
    m_bits = field_bits["m"]
    n_bits = field_bits["n"]
    s_max = (1 << field_bits["shift"]) - 1
    m = rng.integers(1 << (m_bits - 3), 1 << (m_bits - 2), size=rows) * rng.choice([-1, 1], size=rows)
    spread = int(np.max(acc.max(axis=1) - acc.min(axis=1))) + 1
    span = hi - lo + 1
    want = max(0, math.ceil(math.log2(max(1, int(np.abs(m).max()) * spread / span))))
    shift = min(want, s_max)
    n_lim = (1 << (n_bits - 1)) - 1
    n = np.zeros(rows, dtype=np.int64)
    for r in range(rows):
        centre = int(m[r]) * int(acc[r].mean())
        target = ((lo + hi) // 2) << shift
        n[r] = int(np.clip(target - centre + int(rng.integers(-(1 << shift), (1 << shift) + 1)), -n_lim - 1, n_lim))
    return TileRequant(mode="fixed", shift=int(shift), lo=lo, hi=hi, m=m, n=n)


def random_tile(cfg: ArrayConfig, k: int, rng: np.random.Generator, field_bits: dict) -> Tile:
    """A tile of uniformly random operands with requant parameters fitted to it."""
    lo, hi = _operand_range(cfg)
    w = rng.integers(lo, hi + 1, size=(cfg.rows, k))
    x = rng.integers(lo, hi + 1, size=(k, cfg.cols))
    t = Tile(w=w, x=x, rq=TileRequant(mode="fixed", m=np.zeros(cfg.rows), n=np.zeros(cfg.rows)))
    rq = _sensitive_requant(tile_acc(t, cfg.pe), cfg, rng, field_bits)
    return Tile(w=w, x=x, rq=rq)


def extreme_tile(cfg: ArrayConfig, k: int, field_bits: dict) -> Tile:
    """Largest-magnitude terms on every step (no accumulator may wrap).

    Adder: ``|x - w| = 2**bits - 1`` every step (``x``/``w`` alternate between
    0 and the maximum code).  Multiplier: rows alternate between the most
    positive product ``(-2**(b-1))**2`` and the most negative
    ``-2**(b-1) * (2**(b-1)-1)``.  The requant maps the exact expected
    accumulator to the middle of the output range with slope 1, so any
    lost carry changes the output.
    """
    lo, hi = _operand_range(cfg)
    if cfg.pe == "adder":
        steps = np.arange(k) % 2 == 0
        w = np.tile(np.where(steps, lo, hi), (cfg.rows, 1))
        x = np.tile(np.where(steps, hi, lo)[:, None], (1, cfg.cols))
    else:
        w = np.where((np.arange(cfg.rows)[:, None] % 2) == 0, lo, hi) * np.ones((1, k), dtype=np.int64)
        x = np.full((k, cfg.cols), lo, dtype=np.int64)
    t = Tile(w=w, x=x, rq=TileRequant(mode="fixed", m=np.zeros(cfg.rows), n=np.zeros(cfg.rows)))
    acc = tile_acc(t, cfg.pe)
    rows = cfg.rows
    qmax = (1 << cfg.bits) - 1
    if cfg.requant == "threshold":
        # thresholds packed right below the expected value: cnt == qmax only if acc is exact
        thr = np.zeros((rows, qmax), dtype=np.int64)
        for r in range(rows):
            e = int(acc[r, 0])
            thr[r] = np.clip(np.arange(e - qmax + 1, e + 1) + (r % 2),
                             *code_range(field_bits["thr"], field_bits.get("thr_signed", False)))
        return Tile(w=w, x=x, rq=TileRequant(mode="threshold", thr=thr, neg=np.arange(rows) % 2))
    n_lim = (1 << (field_bits["n"] - 1)) - 1
    mid = ((1 << cfg.out_bits) - 1) // 2
    n = np.array([mid - int(acc[r, 0]) for r in range(rows)], dtype=np.int64)
    if np.any(np.abs(n) > n_lim):
        raise ValueError(
            f"the requant bias field ({field_bits['n']} bits) cannot hold the offset "
            f"{int(np.abs(n).max())} an exact extreme check needs"
        )
    return Tile(w=w, x=x, rq=TileRequant(mode="fixed", shift=0, lo=0, hi=(1 << cfg.out_bits) - 1,
                                         m=np.ones(rows, dtype=np.int64), n=n))
