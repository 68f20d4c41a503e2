"""Random small integer models that exercise every engine operation (for tests and testbenches).

``small_model(rng, ...)`` builds ``input -> stem conv (adder or multiply) ->
3x3 adder conv -> residual add -> max or average pool -> flatten -> linear``
with random widths; every intermediate tensor is unsigned ``bits``-bit codes
(the stem's clamp is set to ``0 .. 2**bits - 1``), the logits are the linear
layer's codes.  :data:`SMALL_ENGINE` is the small engine that runs them
(one Verilator build shared by the test modules that use it).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from quant.intmodel import golden
from quant.intmodel.artifact import AddLayer, AvgPoolLayer, ComputeLayer, FlattenLayer, IntModel, MaxPoolLayer, Requant
from quant.base.intops import InputQuant, LayerKind, RequantMode, conv_out_size

__all__ = ["SMALL_ENGINE", "small_model", "unsigned_requant"]

#: ``EngineConfig`` fields of a small engine for these models: a 2x2 adder array, a 1-row multiplier unit,
#: both requant forms, 5-bit codes.
SMALL_ENGINE = dict(rows=2, cols=2, bits=5, mult_rows=1, requant=(RequantMode.FIXED, RequantMode.THRESHOLD), act_words=(64, 64, 64),
                    weight_words=64, max_k=128)


def unsigned_requant(layer: ComputeLayer, bits: int) -> ComputeLayer:
    """``layer`` with its fixed requant clamped to unsigned ``bits``-bit codes."""
    rq = layer.requant
    new = Requant(mode=RequantMode.FIXED, m=rq.m, n=rq.n, shift=rq.shift, lo=0,
                  hi=(1 << bits) - 1, out_scale=1.0, out_zero_point=0, out_bits=bits, out_signed=False)
    return replace(layer, requant=new)


def _fixed(rng, m, shift, bits, n_lo, n_hi):
    return Requant(mode=RequantMode.FIXED, m=np.asarray(m, dtype=np.int64), n=np.asarray(int(rng.integers(n_lo, n_hi + 1))),
                   shift=shift, lo=0, hi=(1 << bits) - 1, out_scale=1.0, out_zero_point=0, out_bits=bits)


def small_model(rng, *, c0=2, h=6, w=5, c1=3, k1=3, s1=1, p1=1, bits=8, stem=LayerKind.ADDER_CONV,
                mode=RequantMode.FIXED, pool=LayerKind.MAXPOOL, pool_pad=0, head=LayerKind.ADDER_LINEAR, classes=4) -> IntModel:
    """The random model described in the module docstring."""
    signed_in = stem == LayerKind.CONV
    qmax = (1 << bits) - 1
    stem_l = golden.random_layer(rng, kind=stem, in_shape=(c0, h, w), out_channels=c1, kernel=(k1, k1),
                                 stride=s1, padding=p1, bits=bits, mode=RequantMode.FIXED, name="stem")
    stem_l = unsigned_requant(stem_l, bits)
    shape1 = stem_l.out_shape
    conv = golden.random_layer(rng, kind=LayerKind.ADDER_CONV, in_shape=shape1, out_channels=c1, kernel=(3, 3),
                               stride=1, padding=1, bits=bits, mode=mode, name="conv", inputs=("stem",))
    add = AddLayer(name="add", inputs=("conv", "stem"), in_shape=shape1, out_shape=shape1,
                   requant=_fixed(rng, [int(rng.integers(1, 5)), int(rng.integers(-3, 5))], 2, bits,
                                  -qmax, qmax))
    _, hh, ww = shape1
    kp = 2
    oh, ow = conv_out_size(hh, kp, 2, pool_pad), conv_out_size(ww, kp, 2, pool_pad)
    if pool == LayerKind.MAXPOOL:
        pl = MaxPoolLayer(name="pool", inputs=("add",), in_shape=shape1, out_shape=(c1, oh, ow),
                      kernel=(kp, kp), stride=2, padding=pool_pad)
    else:
        pl = AvgPoolLayer(name="pool", inputs=("add",), in_shape=shape1, out_shape=(c1, oh, ow),
                      kernel=(kp, kp), stride=2, padding=pool_pad, requant=_fixed(rng, 3, 3, bits, 0, 8))
    flat = FlattenLayer(name="flatten", inputs=("pool",), in_shape=(c1, oh, ow),
                    out_shape=(c1 * oh * ow,))
    fc = golden.random_layer(rng, kind=head, in_shape=(c1 * oh * ow,), out_channels=classes, bits=bits,
                             mode=RequantMode.FIXED, name="fc", inputs=("flatten",))
    spec = InputQuant(mean=(0.5,) * c0, std=(0.25,) * c0, scale=0.05, zero_point=0 if signed_in else int(rng.integers(0, qmax + 1)),
                      bits=bits, signed=signed_in)
    return IntModel(name="small", dataset="none", input=spec, input_shape=(c0, h, w),
                    layers=[stem_l, conv, add, pl, flat, fc])
