"""Small random integer models for tests (numpy only): one per purpose, every layer class among them.

Plain functions, imported by name (``from tests.quant.int_models import every_kind_model``);
``tests/quant/conftest.py`` hands them to the quant tests as fixtures.
"""

from dataclasses import replace

import numpy as np

from quant.intmodel import golden
from quant.intmodel.artifact import AddLayer, AvgPoolLayer, FlattenLayer, IntModel, MaxPoolLayer, Requant
from quant.base.intops import InputQuant, code_range, conv_out_size

__all__ = ["tiny_int_model", "every_kind_model", "mult_model"]


def tiny_int_model(rng, mode="fixed"):
    """A small valid integer model: adder conv, max pool, flatten, adder linear with 16-bit logits."""

    conv = golden.random_layer(rng, kind="adder_conv", in_shape=(1, 6, 6), out_channels=3, bits=6, mode=mode, name="c1")
    pool = MaxPoolLayer(name="p1", inputs=("c1",), in_shape=(3, 6, 6), out_shape=(3, 3, 3), kernel=(2, 2), stride=2, padding=0)
    flat = FlattenLayer(name="f", inputs=("p1",), in_shape=(3, 3, 3), out_shape=(27,))
    fc = golden.random_layer(rng, kind="adder_linear", in_shape=(27,), out_channels=4, bits=6, mode="fixed", name="fc", inputs=("f",))
    rq = fc.requant
    logits = Requant(mode="fixed", m=rq.m, n=rq.n, shift=rq.shift, lo=-(1 << 15), hi=(1 << 15) - 1, out_scale=0.5,
                     out_zero_point=0, out_bits=16, out_signed=True)
    fc = replace(fc, requant=logits)
    spec = InputQuant(mean=(0.5,), std=(0.25,), scale=4.0 / 63, zero_point=int(rng.integers(0, 64)), bits=6, signed=False)
    return IntModel(name="tiny", dataset="none", input=spec, input_shape=(1, 6, 6), layers=[conv, pool, flat, fc],
                    class_names=[f"c{i}" for i in range(4)])


def every_kind_model(rng, *, mode="fixed", pool_padding=1, avg_signed=False, bits=6, groups=1):
    """A small valid integer model with every layer kind of the artifact.

    ``input [2, 6, 6]`` -> ``c1`` adder_conv (fixed) -> ``c2`` adder_conv (``mode``)
    -> ``sum = add(c1, c2)`` -> ``mp`` maxpool 2x2 stride 2 (``pool_padding``) ->
    ``ap`` avgpool 2x2 stride 1 (padding 1 when ``pool_padding``) -> ``f`` flatten
    -> ``fc`` adder_linear with 16-bit signed logits; every parameter random.
    ``groups > 1``: ``c2`` (3 channels, at most 3 groups) and ``fc`` (5) have
    random group-shared scales over their ``bits``-bit input codes.
    """

    qmax = (1 << bits) - 1
    c1 = golden.random_layer(rng, kind="adder_conv", in_shape=(2, 6, 6), out_channels=3, bits=bits, name="c1")
    c2 = golden.random_layer(rng, kind="adder_conv", in_shape=(3, 6, 6), out_channels=3, bits=bits, mode=mode,
                             stride=1, padding=1, name="c2", inputs=("c1",), groups=min(groups, 3), in_bits=bits)
    shift = int(rng.integers(2, 6))
    add_rq = Requant(mode="fixed", m=rng.integers(1, 1 << shift, size=2), n=rng.integers(-qmax, qmax, size=1),
                     shift=shift, lo=0, hi=qmax, out_scale=0.1, out_zero_point=0, out_bits=bits)
    add = AddLayer(name="sum", inputs=("c1", "c2"), in_shape=(3, 6, 6), out_shape=(3, 6, 6), requant=add_rq)
    p = pool_padding
    mh = conv_out_size(6, 2, 2, p)
    mp = MaxPoolLayer(name="mp", inputs=("sum",), in_shape=(3, 6, 6), out_shape=(3, mh, mh),
                  kernel=(2, 2), stride=2, padding=p)
    ah = conv_out_size(mh, 2, 1, p)
    lo, hi = code_range(bits, avg_signed)
    avg_rq = Requant(mode="fixed", m=np.array([int(rng.integers(1, 64))]), n=np.array([int(rng.integers(-64, 64))]),
                     shift=int(rng.integers(6, 10)), lo=lo, hi=hi, out_scale=0.1, out_zero_point=0,
                     out_bits=bits, out_signed=avg_signed)
    ap = AvgPoolLayer(name="ap", inputs=("mp",), in_shape=(3, mh, mh), out_shape=(3, ah, ah),
                  kernel=(2, 2), stride=1, padding=p, requant=avg_rq)
    flat = FlattenLayer(name="f", inputs=("ap",), in_shape=(3, ah, ah), out_shape=(3 * ah * ah,))
    fc = golden.random_layer(rng, kind="adder_linear", in_shape=(3 * ah * ah,), out_channels=5, bits=bits,
                             name="fc", inputs=("f",), groups=groups, in_bits=bits)
    rq = fc.requant
    logits = Requant(mode="fixed", m=rq.m, n=rq.n, shift=rq.shift, lo=-(1 << 15), hi=(1 << 15) - 1, out_scale=0.25,
                     out_zero_point=int(rng.integers(-3, 4)), out_bits=16, out_signed=True)
    fc = replace(fc, requant=logits)
    spec = InputQuant(mean=(0.5, 0.4), std=(0.25, 0.3), scale=4.0 / qmax, zero_point=int(rng.integers(0, qmax + 1)),
                      bits=bits, signed=False)
    return IntModel(name="every_kind", dataset="none", input=spec, input_shape=(2, 6, 6),
                    layers=[c1, c2, add, mp, ap, flat, fc], class_names=[f"k{i}" for i in range(5)])


def mult_model(rng, *, bits=8):
    """A small valid integer model of multiply layers: ``conv`` (signed codes) -> flatten -> ``linear`` logits."""

    conv = golden.random_layer(rng, kind="conv", in_shape=(3, 5, 5), out_channels=4, bits=bits, stride=2,
                               padding=1, name="conv")
    flat = FlattenLayer(name="flat", inputs=("conv",), in_shape=(4, 3, 3), out_shape=(36,))
    fc = golden.random_layer(rng, kind="linear", in_shape=(36,), out_channels=3, bits=bits, name="fc",
                             inputs=("flat",))
    rq = fc.requant
    logits = Requant(mode="fixed", m=rq.m, n=rq.n, shift=rq.shift, lo=-(1 << 15), hi=(1 << 15) - 1, out_scale=0.5,
                     out_zero_point=0, out_bits=16, out_signed=True)
    fc = replace(fc, requant=logits)
    spec = InputQuant(mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2), scale=8.0 / (1 << bits), zero_point=0,
                      bits=bits, signed=True)
    return IntModel(name="mult", dataset="none", input=spec, input_shape=(3, 5, 5), layers=[conv, flat, fc],
                    class_names=["a", "b", "c"])
