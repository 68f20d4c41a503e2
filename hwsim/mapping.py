"""Mapping of array layers onto the output-stationary array: tiles, cycles, stalls, traffic.

One layer with ``O`` output channels, ``P`` output pixels and reduction length
``K`` is cut into ``ceil(O/rows) x ceil(P/cols)`` tiles (row-tile major, see
:func:`hwsim.schedule.tile_grid`); every tile takes ``K`` reduction steps and
drains ``cols`` output beats through the requant unit.  With the default
config (input streams offer a beat every cycle) the layer's cycle count is
exactly :func:`hwsim.schedule.layer_cycles` — the number the RTL is checked
against.  Two limits the RTL testbench does not exercise are modelled on top:

Stream stalls
    ``stream_beats_per_cycle = f < 1``: the ``w``/``x`` streams offer a beat
    in a fraction ``f`` of cycles, evenly spaced, so a tile's ``K`` steps span
    ``K_eff = ceil(K / f)`` cycles.  The schedule recurrence of
    ``hwsim/schedule.py`` is applied with ``K_eff`` in place of ``K``:
    ``l_0 = K_eff``, ``l_{i+1} = l_i + max(K_eff, L + cols - 1)``,
    ``total = l_last + L + cols``.
Off-chip bandwidth
    Reported beside the schedule, not folded into ``total_cycles`` (which
    stays the array's cycle count, the number the RTL is checked against):
    ``dram_cycles = ceil(dram_bytes / dram_bytes_per_cycle)`` and the
    roofline ``dram_bound_cycles = max(total_cycles, dram_cycles)``, the
    latency when the layer's off-chip traffic cannot overlap other layers.
    Off-chip traffic: the weights once when one row tile of them
    (``rows * K`` values) fits the weight buffer, else once per tile; the input
    feature map once when it fits the activation buffer (and is read from
    DRAM only for the first layer or when the previous output did not fit),
    else once per row tile; the output is written off chip only when it does
    not fit the activation buffer or the layer is the last one.

The multiplier path: in the adder design, multiply layers (``conv``,
``linear``: the first conv and the classifier of ResNet-20) run on an array of
the same shape with multiplier PEs (``cfg.replace(pe="mult")``); in the
multiplier design every layer does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from hwsim.config import ArrayConfig, acc_bits_for
from hwsim.layers import LayerShape
from hwsim.schedule import layer_cycles, tile_grid

__all__ = [
    "LayerMapping",
    "layer_config",
    "check_layer_fits",
    "map_layer",
    "map_layers",
    "DESIGNS",
]

#: The two designs compared: the adder array (multiply layers on the
#: multiplier path) and the all-multiplier baseline.
DESIGNS = ("adder", "mult")


@dataclass(frozen=True)
class LayerMapping:
    """One layer on one array configuration (all counts are exact integers).

    Attributes
    ----------
    layer : LayerShape
    cfg : ArrayConfig
        The configuration the layer runs on (``pe`` is the PE it uses).
    tiles_rows, tiles_cols, tiles : int
        Tile grid ``ceil(O/rows) x ceil(P/cols)`` and its size.
    k_eff : int
        Cycles a tile's ``K`` steps span (``K`` with no stream stalls).
    fill_cycles, steady_cycles, drain_cycles : int
        ``l_0`` (cfg beat plus first tile's steps), ``l_last - l_0`` and
        ``L + cols``; they add up to ``schedule_cycles``.
    schedule_cycles : int
        Cycles of the tile schedule (== ``hwsim.schedule.layer_cycles`` when
        ``stream_beats_per_cycle == 1``).
    shadow_stall_cycles : int
        Cycles last steps waited for the shadow bank (drain-bound tiles).
    stream_stall_cycles : int
        Extra cycles caused by ``stream_beats_per_cycle < 1``.
    weight_dram_bytes, act_dram_bytes, out_dram_bytes : int
        Off-chip bytes moved for the layer (see the module docstring).
    dram_cycles : int
        ``ceil(dram_bytes / dram_bytes_per_cycle)``.
    total_cycles : int
        Cycles of the layer on the array: ``schedule_cycles``.
    """

    layer: LayerShape
    cfg: ArrayConfig
    tiles_rows: int
    tiles_cols: int
    tiles: int
    k_eff: int
    fill_cycles: int
    steady_cycles: int
    drain_cycles: int
    schedule_cycles: int
    shadow_stall_cycles: int
    stream_stall_cycles: int
    weight_dram_bytes: int
    act_dram_bytes: int
    out_dram_bytes: int
    dram_cycles: int
    total_cycles: int

    @property
    def dram_bytes(self) -> int:
        return self.weight_dram_bytes + self.act_dram_bytes + self.out_dram_bytes

    @property
    def dram_stall_cycles(self) -> int:
        """Cycles the off-chip traffic would add beyond the schedule (roofline)."""
        return max(0, self.dram_cycles - self.total_cycles)

    @property
    def dram_bound_cycles(self) -> int:
        """``max(total_cycles, dram_cycles)``: latency with the off-chip bandwidth."""
        return max(self.total_cycles, self.dram_cycles)

    @property
    def pe_ops(self) -> int:
        """PE operations the array executes, padded rows/columns of partial tiles included."""
        return self.tiles * self.cfg.rows * self.cfg.cols * self.layer.k

    @property
    def rescales(self) -> int:
        """Input values re-scaled for the layer's group-shared scales (one multiply and one add
        each, :attr:`hwsim.layers.LayerShape.rescales`) when it runs on adder PEs; 0 on
        multiplier PEs, where a per-channel weight scale folds into the output requant and needs
        no re-scaled input (the multiplier design, a CNN of the same shape)."""
        return self.layer.rescales if self.cfg.pe == "adder" else 0

    @property
    def utilization(self) -> float:
        """Useful operations over PE-cycles: ``O*P*K / (rows*cols*total_cycles)``."""
        return self.layer.macs / (self.cfg.rows * self.cfg.cols * self.total_cycles)

    @property
    def latency_us(self) -> float:
        return self.total_cycles / self.cfg.clock_mhz


def layer_config(layer: LayerShape, cfg: ArrayConfig, design: str) -> ArrayConfig:
    """The configuration ``layer`` runs on in ``design`` ("adder" or "mult").

    Adder layers use adder PEs in the adder design; multiply layers always use
    multiplier PEs; in the multiplier design every layer does.  Switching the
    PE kind derives ``acc_bits`` again (``acc_bits_for(bits, max_k, pe)``).
    """
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {', '.join(DESIGNS)}, not {design!r}")
    pe = "adder" if (design == "adder" and layer.is_adder) else "mult"
    # replace() derives acc_bits again for the other PE kind
    return cfg if cfg.pe == pe else cfg.replace(pe=pe)


def check_layer_fits(layer: LayerShape, cfg: ArrayConfig) -> None:
    """Refuse a layer the array cannot run exactly.

    Raises
    ------
    ValueError
        The layer's operands are wider than ``cfg.bits``, its ``K`` exceeds
        ``cfg.max_k``, or its accumulator (``acc_bits_for(bits, K, pe)``)
        is wider than ``cfg.acc_bits``.
    """
    if layer.bits > cfg.bits:
        raise ValueError(
            f"layer {layer.name} has {layer.bits}-bit operands but the array has bits={cfg.bits}"
        )
    if layer.k > cfg.max_k:
        raise ValueError(
            f"layer {layer.name} has K={layer.k}, more than the array's max_k={cfg.max_k}"
        )
    need = acc_bits_for(layer.bits, layer.k, cfg.pe)
    if need > cfg.acc_bits:
        raise ValueError(
            f"layer {layer.name} needs a {need}-bit accumulator on {cfg.pe} PEs "
            f"(bits={layer.bits}, K={layer.k}) but the array has acc_bits={cfg.acc_bits}"
        )


def _k_eff(k: int, f: float) -> int:
    if f >= 1:
        return k
    # smallest n with n * f >= k, computed without float drift for exact fractions
    n = math.ceil(k / f)
    while (n - 1) * f >= k:
        n -= 1
    return n


def map_layer(layer: LayerShape, cfg: ArrayConfig, *, first: bool = True, last: bool = True,
              input_on_chip: bool = False) -> LayerMapping:
    """Map one layer onto ``cfg`` (whose ``pe`` is the PE kind the layer uses).

    Parameters
    ----------
    layer : LayerShape
    cfg : ArrayConfig
    first, last : bool
        Whether the layer is the first/last of its model (off-chip traffic).
    input_on_chip : bool
        The layer's input is still in the activation buffer (written there by
        the previous layer); ignored for the first layer.
    """
    check_layer_fits(layer, cfg)
    tr, tc = tile_grid(layer.out_channels, layer.out_pixels, cfg)
    n = tr * tc
    lat = cfg.requant_latency
    k_eff = _k_eff(layer.k, cfg.stream_beats_per_cycle)
    drain_bound = lat + cfg.cols - 1
    period = max(k_eff, drain_bound)
    fill = k_eff
    steady = (n - 1) * period
    drain = lat + cfg.cols
    sched = fill + steady + drain
    base = layer_cycles(layer.out_channels, layer.out_pixels, layer.k, cfg)
    shadow = (n - 1) * max(0, drain_bound - k_eff)

    bits = layer.bits
    w_bytes = math.ceil(layer.out_channels * layer.k * bits / 8)
    if cfg.rows * layer.k * bits > cfg.weight_buffer_kib * 8192:
        w_bytes = math.ceil(n * cfg.rows * layer.k * bits / 8)
    act_buf_bits = cfg.act_buffer_kib * 8192
    in_bits = layer.in_elems * bits
    if in_bits > act_buf_bits:
        a_bytes = math.ceil(tr * in_bits / 8)
    elif first or not input_on_chip:
        a_bytes = math.ceil(in_bits / 8)
    else:
        a_bytes = 0
    out_bits_total = layer.out_elems * cfg.out_bits
    o_bytes = math.ceil(out_bits_total / 8) if (last or out_bits_total > act_buf_bits) else 0
    dram_cycles = math.ceil((w_bytes + a_bytes + o_bytes) / cfg.dram_bytes_per_cycle)
    return LayerMapping(
        layer=layer,
        cfg=cfg,
        tiles_rows=tr,
        tiles_cols=tc,
        tiles=n,
        k_eff=k_eff,
        fill_cycles=fill,
        steady_cycles=steady,
        drain_cycles=drain,
        schedule_cycles=sched,
        shadow_stall_cycles=shadow,
        stream_stall_cycles=sched - base,
        weight_dram_bytes=w_bytes,
        act_dram_bytes=a_bytes,
        out_dram_bytes=o_bytes,
        dram_cycles=dram_cycles,
        total_cycles=sched,
    )


def map_layers(layers: Sequence[LayerShape], cfg: ArrayConfig, design: str) -> list[LayerMapping]:
    """Map a model's array layers, in execution order, for ``design``.

    A layer's input is taken to be on chip when the previous array layer's
    output fit the activation buffer.
    """
    if not layers:
        raise ValueError("no layers to map")
    out = []
    prev_fit = False
    for i, layer in enumerate(layers):
        lcfg = layer_config(layer, cfg, design)
        m = map_layer(layer, lcfg, first=(i == 0), last=(i == len(layers) - 1), input_on_chip=prev_fit)
        out.append(m)
        prev_fit = layer.out_elems * lcfg.out_bits <= lcfg.act_buffer_kib * 8192
    return out
