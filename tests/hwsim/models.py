"""Random integer models in our layouts, for the hwsim tests (a module, imported by name).

``random_lenet(rng, requant)`` builds a LeNet-5-BN-shaped ``IntModel``
(quant/net/models.py layout: conv1 5x5 pad 2 1->6, maxpool, conv2 5x5 6->16,
maxpool, flatten, fc 400->120->84->10, all adder layers);
``random_resnet20(rng)`` the reference CIFAR ResNet-20 layout (multiply conv1,
adder blocks with residual adds and 1x1 stride-2 downsamples, 8x8 average
pool, multiply classifier).  Weights and requant parameters are random but
chosen so that the output codes spread over their range (not all clamped).
"""

from __future__ import annotations

__all__ = ["TOPOLOGIES", "TOY_TABLE", "TOY_TABLE_SCALED", "compute_layer", "random_lenet", "random_resnet20",
           "tiny_engine_model"]

import math
from pathlib import Path

import numpy as np
from hwsim.config import acc_bits_for

TOPOLOGIES = Path(__file__).resolve().parents[2] / "hwsim" / "topologies"


def _fixed_rq(rng, o, k, *, signed_in=False, out_bits=8, out_signed=False, hi=None):
    from quant.intmodel.artifact import Requant

    # acc is ~ K*85 +- sqrt(K)*60 for uniform 8-bit operands; map that to ~128 +- 60
    shift = 16
    mean = k * 85.0 if not signed_in else 0.0
    m = np.rint(rng.uniform(0.7, 1.3, o) * (1 << shift) / math.sqrt(k) * (1.0 if signed_in else 1.0)).astype(np.int64)
    m *= rng.choice([-1, 1], o) if not signed_in else 1
    if signed_in:
        m = np.maximum(m // 16, 1)
    center = 0 if out_signed else 128
    n = (center * (1 << shift) - np.rint(mean * m)).astype(np.int64)
    lo = -(1 << (out_bits - 1)) if out_signed else 0
    top = (1 << (out_bits - 1)) - 1 if out_signed else (1 << out_bits) - 1
    return Requant(mode="fixed", out_scale=0.05, out_zero_point=0, out_bits=out_bits,
                   out_signed=out_signed, m=m, n=n, shift=shift, lo=lo, hi=top if hi is None else hi)


def _threshold_rq(rng, o, k):
    from quant.intmodel.artifact import Requant
    from quant.base.intops import thresholds_from_fixed

    f = _fixed_rq(rng, o, k)
    thr, neg = thresholds_from_fixed(f.m, f.n, f.shift, f.lo, f.hi, 8, k * 255)
    return Requant(mode="threshold", out_scale=0.05, out_zero_point=0, out_bits=8, thr=thr, neg=neg)


def compute_layer(rng, name, kind, inp, in_shape, out_c, kernel=1, stride=1, padding=0,
                  requant="fixed", **rq):
    from quant.intmodel.artifact import LAYER_CLASSES

    pe = "adder" if kind.startswith("adder") else "mult"
    if kind.endswith("linear"):
        k = in_shape[0]
        out_shape = (out_c,)
        kern = (1, 1)
    else:
        c, h, w = in_shape
        k = c * kernel * kernel
        oh = (h + 2 * padding - kernel) // stride + 1
        ow = (w + 2 * padding - kernel) // stride + 1
        out_shape = (out_c, oh, ow)
        kern = (kernel, kernel)
    if pe == "adder":
        weight = rng.integers(0, 256, (out_c, k), dtype=np.int64)
        zp = int(rng.integers(0, 256)) if padding else 0
    else:
        weight = rng.integers(-128, 128, (out_c, k), dtype=np.int64)
        zp = 0
    if requant == "threshold":
        r = _threshold_rq(rng, out_c, k)
    else:
        r = _fixed_rq(rng, out_c, k, signed_in=(pe == "mult"), **rq)
    extra = {"weight_scale": np.full(out_c, 0.01)} if pe == "mult" else {}
    return LAYER_CLASSES[kind](
        name=name, kind=kind, inputs=(inp,), in_shape=in_shape, out_shape=out_shape,
        kernel=kern, stride=stride if not kind.endswith("linear") else 1,
        padding=padding if not kind.endswith("linear") else 0, K=k, weight=weight,
        in_scale=0.05, in_zero_point=zp, bits=8, weight_bits=8,
        acc_bits=acc_bits_for(8, k, pe), requant=r, **extra,
    )


def _input(c, signed):
    from quant.base.intops import InputQuant

    return InputQuant(mean=(0.5,) * c, std=(0.25,) * c, scale=0.02, zero_point=0 if signed else 100,
                      bits=8, signed=signed)


def random_lenet(rng, requant="fixed"):
    from quant.intmodel.artifact import AddLayer, AvgPoolLayer, FlattenLayer, IntModel, MaxPoolLayer

    L = []
    L.append(compute_layer(rng, "conv1", "adder_conv", "input", (1, 28, 28), 6, 5, 1, 2, requant))
    L.append(MaxPoolLayer(name="pool1", inputs=("conv1",), in_shape=(6, 28, 28),
                      out_shape=(6, 14, 14), kernel=(2, 2), stride=2, padding=0))
    L.append(compute_layer(rng, "conv2", "adder_conv", "pool1", (6, 14, 14), 16, 5, 1, 0, requant))
    L.append(MaxPoolLayer(name="pool2", inputs=("conv2",), in_shape=(16, 10, 10),
                      out_shape=(16, 5, 5), kernel=(2, 2), stride=2, padding=0))
    L.append(FlattenLayer(name="flatten", inputs=("pool2",), in_shape=(16, 5, 5), out_shape=(400,)))
    L.append(compute_layer(rng, "fc1", "adder_linear", "flatten", (400,), 120, requant=requant))
    L.append(compute_layer(rng, "fc2", "adder_linear", "fc1", (120,), 84, requant=requant))
    L.append(compute_layer(rng, "fc3", "adder_linear", "fc2", (84,), 10))
    return IntModel(name="lenet5-bn", dataset="fashion-mnist", input=_input(1, False),
                    input_shape=(1, 28, 28), layers=L)


def random_resnet20(rng):
    from quant.intmodel.artifact import AddLayer, AvgPoolLayer, FlattenLayer, IntModel, MaxPoolLayer, Requant

    L = [compute_layer(rng, "conv1", "conv", "input", (3, 32, 32), 16, 3, 1, 1)]
    prev, shape = "conv1", (16, 32, 32)
    for stage, planes in ((1, 16), (2, 32), (3, 64)):
        for b in range(3):
            stride = 2 if (b == 0 and stage > 1) else 1
            pre = f"layer{stage}.{b}"
            c1 = compute_layer(rng, f"{pre}.conv1", "adder_conv", prev, shape, planes, 3, stride, 1)
            c2 = compute_layer(rng, f"{pre}.conv2", "adder_conv", c1.name, c1.out_shape, planes, 3, 1, 1)
            L += [c1, c2]
            skip = prev
            if stride != 1 or shape[0] != planes:
                ds = compute_layer(rng, f"{pre}.downsample", "adder_conv", prev, shape, planes, 1, stride, 0)
                L.append(ds)
                skip = ds.name
            add_rq = Requant(mode="fixed", out_scale=0.05, out_zero_point=0, out_bits=8,
                             m=np.array([1, 1]), n=np.array(-128 * 2 + 128), shift=1, lo=0, hi=255)
            L.append(AddLayer(name=f"{pre}.add", inputs=(c2.name, skip),
                              in_shape=c2.out_shape, out_shape=c2.out_shape, requant=add_rq))
            prev, shape = f"{pre}.add", c2.out_shape
    pool_rq = Requant(mode="fixed", out_scale=0.05, out_zero_point=0, out_bits=8,
                      m=np.array(1), n=np.array(64), shift=7, lo=0, hi=127)
    L.append(AvgPoolLayer(name="avgpool", inputs=(prev,), in_shape=shape, out_shape=(64, 1, 1),
                      kernel=(8, 8), stride=1, padding=0, requant=pool_rq))
    L.append(FlattenLayer(name="flatten", inputs=("avgpool",), in_shape=(64, 1, 1), out_shape=(64,)))
    L.append(compute_layer(rng, "fc", "linear", "flatten", (64,), 10, out_bits=16, out_signed=True))
    return IntModel(name="resnet20", dataset="cifar10", input=_input(3, True), input_shape=(3, 32, 32), layers=L)


#: An energy table of round numbers (hand-computed sums in the tests).
TOY_TABLE = """
name = "toy"
title = "round numbers"
source = "made up for the test"
area_unit = "um2"
[add]
ref_bits = 8
energy_pj = 1.0
area = 10.0
energy_width_exponent = 1.0
area_width_exponent = 1.0
[mult]
ref_bits = 8
energy_pj = 4.0
area = 100.0
energy_width_exponent = 2.0
area_width_exponent = 2.0
[register]
energy_pj_per_bit = 0.5
area_per_bit = 2.0
[sram]
energy_pj_per_bit = 3.0
[dram]
energy_pj_per_bit = 100.0
[adder_pe]
abs_in_adds = 1.0
"""

#: :data:`TOY_TABLE` with SRAM size scaling.
TOY_TABLE_SCALED = TOY_TABLE.replace("[sram]\nenergy_pj_per_bit = 3.0", """[sram]
energy_pj_per_bit = 3.0
ref_bytes = 8
size_exponent = 0.5
size_source = "made up: sqrt(size) from 8 bytes"
""")


def tiny_engine_model():
    """input [2, 2, 2] -> 1x1 adder conv to 3 channels (fixed) -> 2x2 max pool -> flatten -> adder
    linear 3 -> 2 (threshold requant, the logits)."""
    import numpy as np

    from quant.intmodel.artifact import AddLayer, AvgPoolLayer, FlattenLayer, IntModel, MaxPoolLayer

    rng = np.random.default_rng(3)
    print("seed 3")
    c1 = compute_layer(rng, "c1", "adder_conv", "input", (2, 2, 2), 3, 1, 1, 0)
    pool = MaxPoolLayer(name="pool", inputs=("c1",), in_shape=(3, 2, 2), out_shape=(3, 1, 1),
                    kernel=(2, 2), stride=2, padding=0)
    flat = FlattenLayer(name="flat", inputs=("pool",), in_shape=(3, 1, 1), out_shape=(3,))
    fc = compute_layer(rng, "fc", "adder_linear", "flat", (3,), 2, requant="threshold")
    return IntModel(name="tiny", dataset="fashion-mnist", input=_input(2, False), input_shape=(2, 2, 2),
                    layers=[c1, pool, flat, fc])
