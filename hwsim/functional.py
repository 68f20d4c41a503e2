"""Functional mode: run an integer model tile by tile, the way the array computes it.

Every array layer (``adder_conv``, ``adder_linear``, ``conv``, ``linear``) is
cut into the tiles of :func:`hwsim.schedule.tile_layer` (the verification
host's tiler too), in the schedule's row-tile-major order.  Per tile, like the host and the array of DESIGN §4:

1. the host builds the tile's ``K`` weight beats (``rows`` weights each; rows
   past ``O`` padded with 0) and ``K`` activation beats (``cols`` im2col
   values each; columns past ``P`` padded with the layer's input zero point);
2. the PEs accumulate ``sum_k |x - w|`` (or ``sum_k x * w`` on the multiplier
   path) over the ``K`` steps — :func:`quant.golden.adder_acc` /
   :func:`quant.golden.mult_acc` on the tile — and the accumulator must fit
   the array's ``acc_bits`` (checked: the hardware would wrap);
3. the tile drains column by column through the per-row requant
   (:func:`quant.golden.requant` with the tile's rows of the parameters);
   the host keeps the real rows and columns.

Layers that do not run on the array (pooling, flatten, residual add) run
through :func:`quant.golden.run_layer`.  The result must equal the golden
model exactly; :func:`run_functional` returns every layer's codes and the
tile schedule it executed, so a test can hold both against the golden model
and :mod:`hwsim.schedule`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from hwsim.config import ArrayConfig
from hwsim.layers import shapes_from_int_model
from hwsim.mapping import check_layer_fits, layer_config
from hwsim.schedule import schedule_tiles, tile_grid, tile_layer
from quant.intops import code_range

__all__ = ["FunctionalResult", "run_array_layer", "run_functional"]


@dataclass(frozen=True)
class FunctionalResult:
    """Outputs of a functional run.

    Attributes
    ----------
    values : dict
        ``{layer name: codes [N, *out_shape]}`` plus ``"input"``.
    timings : dict
        ``{array layer name: LayerTiming}`` of the tiles executed, in order.
    tiles : dict
        ``{array layer name: [(o0, p0), ...]}`` tile origins in execution order.
    """

    values: dict
    timings: dict
    tiles: dict


def _rows_of(rq, o0: int, o1: int):
    """The requant parameters of output channels ``o0:o1`` (scalars stay scalars)."""

    def cut(a):
        a = np.asarray(a)
        return a[o0:o1] if a.ndim >= 1 and a.shape[0] > 1 else a

    if rq.mode == "fixed":
        return dataclasses.replace(rq, m=cut(rq.m), n=cut(rq.n))
    return dataclasses.replace(rq, thr=rq.thr[o0:o1], neg=rq.neg[o0:o1])


def _acc_range(cfg: ArrayConfig) -> tuple[int, int]:
    return code_range(cfg.acc_bits, cfg.pe == "mult")


def _check_operands(name: str, what: str, a: np.ndarray, cfg: ArrayConfig) -> None:
    lo, hi = code_range(cfg.bits, cfg.pe == "mult")
    kind = "signed" if cfg.pe == "mult" else "unsigned"
    if a.size and (a.min() < lo or a.max() > hi):
        raise ValueError(
            f"layer {name}: {what} codes {int(a.min())}..{int(a.max())} do not fit the "
            f"{cfg.bits}-bit {kind} operands of the {cfg.pe} PEs"
        )


def run_array_layer(layer, x, cfg: ArrayConfig):
    """One array layer on a batch ``x [N, *in_shape]``, tile by tile on ``cfg``.

    ``cfg.pe`` must be the PE kind the layer uses.  Returns
    ``(codes [N, *out_shape], [(o0, p0), ...])``.

    Raises
    ------
    ValueError
        A weight or activation code does not fit the PEs' operands (unsigned
        ``bits`` for adder PEs, signed for multiplier PEs), or a tile's
        accumulator leaves the ``acc_bits`` range, or the layer has
        group-shared scales (the array has one input scale per layer).
    """
    from quant import golden

    if getattr(layer, "groups", 1) != 1:
        raise ValueError(
            f"layer {layer.name} has group-shared scales (groups={layer.groups}): the array streams one set of "
            f"input codes per layer, so hwsim's functional mode cannot run it (the golden model and fake-quant "
            f"can); quantize with --groups 1 for the hardware"
        )
    x = np.asarray(x, dtype=np.int64)
    n = x.shape[0]
    x4 = x.reshape(n, -1, 1, 1) if len(layer.in_shape) == 1 else x
    cols_all = golden.im2col_batch(x4, layer.kernel, layer.stride, layer.padding, layer.in_zero_point)
    w_all = np.asarray(layer.weight, dtype=np.int64)
    o_total = w_all.shape[0]
    p_total = cols_all.shape[2]
    acc_fn = golden.adder_acc if cfg.pe == "adder" else golden.mult_acc
    _check_operands(layer.name, "weight", w_all, cfg)
    _check_operands(layer.name, "activation", cols_all, cfg)
    lo, hi = _acc_range(cfg)
    out = np.empty((n, o_total, p_total), dtype=np.int64)
    order = []
    rqs: dict = {}
    for t in tile_layer(w_all, cols_all, cfg, layer.in_zero_point):
        o0, o1, p0, p1 = t.o0, t.o1, t.p0, t.p1
        if o0 not in rqs:
            rqs[o0] = _rows_of(layer.requant, o0, o1)
        acc = acc_fn(t.x, t.w)  # [N, rows, cols]
        if acc.size and (acc.min() < lo or acc.max() > hi):
            raise ValueError(
                f"layer {layer.name}: tile ({o0}, {p0}) accumulator reaches "
                f"{int(acc.min())}..{int(acc.max())}, outside the {cfg.acc_bits}-bit accumulator"
            )
        # drain: column c of the tile leaves through the rows' requant
        for c in range(p1 - p0):
            out[:, o0:o1, p0 + c] = golden.requant(acc[:, : o1 - o0, c : c + 1], rqs[o0])[:, :, 0]
        order.append((o0, p0))
    return out.reshape((n,) + tuple(layer.out_shape)), order


def run_functional(model, x_q, cfg: ArrayConfig) -> FunctionalResult:
    """Run ``model`` (an ``IntModel``) on input codes ``x_q [N, *input_shape]``.

    Adder layers run on ``cfg`` with adder PEs, multiply layers on the
    multiplier path (``cfg`` with ``pe="mult"``), as in the adder design of
    :mod:`hwsim.mapping`.
    """
    from quant import golden

    x = np.asarray(x_q, dtype=np.int64)
    if x.shape[1:] != tuple(model.input_shape):
        raise ValueError(f"input codes must be [N, {', '.join(map(str, model.input_shape))}], not {x.shape}")
    shapes = {s.name: s for s in shapes_from_int_model(model)}
    values = {"input": x}
    timings, tiles = {}, {}
    for layer in model.layers:
        inputs = [values[s] for s in layer.inputs]
        if layer.name in shapes:
            shape = shapes[layer.name]
            lcfg = layer_config(shape, cfg, "adder")
            check_layer_fits(shape, lcfg)
            values[layer.name], order = run_array_layer(layer, inputs[0], lcfg)
            tr, tc = tile_grid(shape.out_channels, shape.out_pixels, lcfg)
            timings[layer.name] = schedule_tiles([shape.k] * (tr * tc), lcfg)
            tiles[layer.name] = order
        else:
            values[layer.name] = golden.run_layer(layer, inputs)
    return FunctionalResult(values=values, timings=timings, tiles=tiles)
