"""Layer runner: one layer (or a whole network, layer by layer) of an integer model artifact through the array.

The host side of the accelerator, as a DMA would do it: ``im2col`` of the
layer's input with the input zero point as padding (:func:`quant.golden.im2col`),
tiling row-tile major (:func:`verification.model.plan_layer` over
:func:`hwsim.schedule.tile_layer`, the tiler of hwsim's functional mode), and — between compute layers — pooling and
flattening with the golden model's own integer functions
(:func:`quant.golden.run_layer`).

Every compute layer's output is compared **bit-exactly** with
:func:`quant.golden.run_layer` on the same input, and its measured cycle count
**exactly** with :func:`hwsim.schedule.layer_cycles` (when there is no
back-pressure).

:func:`plan_layer_run` and :func:`check_layer_fits` are plain numpy;
:func:`run_layer` and :func:`run_network` are coroutines that need an
:class:`verification.host.AcceleratorEnv` inside a simulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hwsim.config import ArrayConfig
from hwsim.schedule import layer_cycles
from quant import golden
from quant.artifact import IntLayer, IntModel
from verification.model import TileRequant, assemble, plan_layer

if TYPE_CHECKING:
    from rtl.generate import DesignMeta

__all__ = [
    "LayerPlan",
    "LayerResult",
    "layer_requant",
    "check_layer_fits",
    "plan_layer_run",
    "run_layer",
    "run_network",
]


@dataclass(frozen=True, eq=False)
class LayerPlan:
    """Everything needed to run one compute layer on one input and check it."""

    layer: IntLayer
    tiles: list
    out_channels: int
    out_pixels: int
    expected: np.ndarray  # golden output codes [O, P]
    cycles_predicted: int


@dataclass(frozen=True, eq=False)
class LayerResult:
    """Outcome of one compute layer on the RTL."""

    name: str
    output: np.ndarray  # [*out_shape]
    expected: np.ndarray  # [*out_shape]
    cycles_measured: int
    cycles_predicted: int

    @property
    def mismatches(self) -> int:
        return int(np.count_nonzero(self.output != self.expected))

    @property
    def exact(self) -> bool:
        return self.mismatches == 0

    def record(self) -> dict:
        return {"layer": self.name, "mismatches": self.mismatches,
                "cycles_measured": self.cycles_measured, "cycles_predicted": self.cycles_predicted}


def layer_requant(layer: IntLayer) -> TileRequant:
    """The layer's requant as per-row tile parameters (``[O]`` rows)."""
    rq = layer.requant
    if rq.mode == "fixed":
        o = layer.out_channels
        m = np.broadcast_to(np.asarray(rq.m, dtype=np.int64), (o,)).copy()
        n = np.broadcast_to(np.asarray(rq.n, dtype=np.int64), (o,)).copy()
        return TileRequant(mode="fixed", shift=int(rq.shift), lo=int(rq.lo), hi=int(rq.hi), m=m, n=n)
    return TileRequant(mode="threshold", thr=rq.thr, neg=rq.neg)


def check_layer_fits(layer: IntLayer, meta: DesignMeta) -> None:
    """Raise ValueError naming the mismatch when ``layer`` cannot run on the design."""
    cfg = meta.config
    if layer.pe is None:
        raise ValueError(f"layer {layer.name} is a {layer.kind}: it does not run on the array")
    if layer.pe != cfg.pe:
        raise ValueError(
            f"layer {layer.name} ({layer.kind}) needs {layer.pe} PEs; the design has {cfg.pe} PEs"
        )
    if layer.bits != cfg.bits:
        raise ValueError(f"layer {layer.name} has {layer.bits}-bit operands; the design {cfg.bits}-bit")
    k = int(np.asarray(layer.weight).shape[1])
    if k > cfg.max_k:
        raise ValueError(f"layer {layer.name} has K={k}, beyond the design's max_k={cfg.max_k}")
    rq = layer.requant
    if rq.mode != cfg.requant:
        raise ValueError(
            f"layer {layer.name} uses {rq.mode} requant; the design was generated for {cfg.requant}"
        )
    if rq.out_bits > cfg.out_bits:
        raise ValueError(
            f"layer {layer.name} has {rq.out_bits}-bit outputs; the design's out_bits is {cfg.out_bits}"
        )
    if rq.mode == "threshold" and rq.out_bits != cfg.bits:
        raise ValueError(
            f"layer {layer.name}: threshold requant with {rq.out_bits}-bit outputs needs a "
            f"{rq.out_bits}-bit design, not {cfg.bits}-bit"
        )


def _columns(layer: IntLayer, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    if x.shape != tuple(layer.in_shape):
        raise ValueError(f"layer {layer.name} expects an input of shape {tuple(layer.in_shape)}, not {x.shape}")
    if x.ndim == 1:  # linear: one pixel, K = features
        return x.reshape(-1, 1)
    return golden.im2col(x, layer.kernel, layer.stride, layer.padding, layer.in_zero_point)


def plan_layer_run(layer: IntLayer, x, meta: DesignMeta) -> LayerPlan:
    """Tiles, golden output and predicted cycles of ``layer`` on input ``x [*in_shape]``."""
    check_layer_fits(layer, meta)
    cfg: ArrayConfig = meta.config
    cols = _columns(layer, x)
    w = np.asarray(layer.weight, dtype=np.int64)
    o_ch, k = w.shape
    p_n = cols.shape[1]
    tiles = plan_layer(w, cols, layer_requant(layer), cfg, int(layer.in_zero_point))
    expected = golden.run_layer(layer, [np.asarray(x, dtype=np.int64)[None]])[0].reshape(o_ch, p_n)
    return LayerPlan(layer=layer, tiles=tiles, out_channels=o_ch, out_pixels=p_n,
                     expected=expected, cycles_predicted=layer_cycles(o_ch, p_n, k, cfg))


async def run_layer(env, layer: IntLayer, x) -> LayerResult:
    """Run one compute layer through the DUT of ``env`` (an :class:`~verification.host.AcceleratorEnv`)."""
    plan = plan_layer_run(layer, x, env.meta)
    run = await env.run_tiles(plan.tiles, tag=f"{layer.name} ")
    out = assemble(plan.tiles, run.outputs, plan.out_channels, plan.out_pixels)
    shape = tuple(layer.out_shape)
    return LayerResult(name=layer.name, output=out.reshape(shape), expected=plan.expected.reshape(shape),
                       cycles_measured=run.cycles, cycles_predicted=plan.cycles_predicted)


async def run_network(env, model: IntModel, x_q, *, gap_cycles: int = 4) -> tuple[list[LayerResult], np.ndarray, np.ndarray]:
    """Run every compute layer of ``model`` on the DUT, the others on the host.

    Each layer's input is the previous layer's **RTL** output (not the
    golden one), so an error anywhere shows up in the logits.

    Returns
    -------
    results : list of LayerResult
        One per compute layer, compared against the golden layer on the same input.
    logits : ndarray
        The network's output codes computed through the RTL.
    golden_logits : ndarray
        :func:`quant.golden.run_codes` on the same input codes.
    """
    x_q = np.asarray(x_q, dtype=np.int64)
    ref = golden.run_codes(model, x_q[None])
    values = {"input": x_q}
    results = []
    for layer in model.layers:
        ins = [values[s] for s in layer.inputs]
        if layer.pe is not None:
            res = await run_layer(env, layer, ins[0])
            results.append(res)
            values[layer.name] = res.output
            await env.idle(gap_cycles)
        else:
            values[layer.name] = golden.run_layer(layer, [v[None] for v in ins])[0]
    last = model.layers[-1].name
    return results, values[last], ref[last][0]
