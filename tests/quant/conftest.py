"""Shared fixtures of the quant tests."""

import os

import numpy as np
import pytest

# Spinning OpenMP workers make torch ~10x slower on a shared 2-core machine;
# this takes effect when no earlier test module has imported torch yet.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _reference_resnet_keys(blocks):
    """State-dict keys (no num_batches_tracked) of the reference AdderNet CIFAR ResNet (DESIGN.md §3)."""
    bn = ("weight", "bias", "running_mean", "running_var")
    keys = ["conv1.weight"] + [f"bn1.{p}" for p in bn]
    for layer in (1, 2, 3):
        for i in range(blocks):
            pre = f"layer{layer}.{i}."
            keys += [pre + "conv1.adder", pre + "conv2.adder"]
            keys += [pre + f"bn{j}.{p}" for j in (1, 2) for p in bn]
            if i == 0 and layer > 1:
                keys += [pre + "downsample.0.adder"] + [pre + f"downsample.1.{p}" for p in bn]
    keys += ["fc.weight"] + [f"bn2.{p}" for p in bn]
    return keys


@pytest.fixture
def reference_resnet_keys():
    """Function ``blocks -> list of keys`` of the reference CIFAR ResNet layout."""
    return _reference_resnet_keys


def _tiny_int_model(rng, mode="fixed"):
    """A small valid integer model: adder conv, max pool, flatten, adder linear with 16-bit logits."""
    from quant import golden
    from quant.artifact import IntLayer, IntModel, Requant
    from quant.intops import InputQuant

    conv = golden.random_layer(rng, kind="adder_conv", in_shape=(1, 6, 6), out_channels=3, bits=6, mode=mode, name="c1")
    pool = IntLayer(name="p1", kind="maxpool", inputs=("c1",), in_shape=(3, 6, 6), out_shape=(3, 3, 3), kernel=(2, 2), stride=2, padding=0)
    flat = IntLayer(name="f", kind="flatten", inputs=("p1",), in_shape=(3, 3, 3), out_shape=(27,))
    fc = golden.random_layer(rng, kind="adder_linear", in_shape=(27,), out_channels=4, bits=6, mode="fixed", name="fc", inputs=("f",))
    rq = fc.requant
    logits = Requant(mode="fixed", m=rq.m, n=rq.n, shift=rq.shift, lo=-(1 << 15), hi=(1 << 15) - 1, out_scale=0.5,
                     out_zero_point=0, out_bits=16, out_signed=True)
    fc = IntLayer(**{**{f: getattr(fc, f) for f in fc.__dataclass_fields__}, "requant": logits})
    spec = InputQuant(mean=(0.5,), std=(0.25,), scale=4.0 / 63, zero_point=int(rng.integers(0, 64)), bits=6, signed=False)
    return IntModel(name="tiny", dataset="none", input=spec, input_shape=(1, 6, 6), layers=[conv, pool, flat, fc],
                    class_names=[f"c{i}" for i in range(4)])


@pytest.fixture
def tiny_int_model():
    """Function ``(rng, mode="fixed") -> IntModel`` building a tiny random integer model."""
    return _tiny_int_model


def _every_kind_model(rng, *, mode="fixed", pool_padding=1, avg_signed=False, bits=6, groups=1):
    """A small valid integer model with every layer kind of the artifact.

    ``input [2, 6, 6]`` -> ``c1`` adder_conv (fixed) -> ``c2`` adder_conv (``mode``)
    -> ``sum = add(c1, c2)`` -> ``mp`` maxpool 2x2 stride 2 (``pool_padding``) ->
    ``ap`` avgpool 2x2 stride 1 (padding 1 when ``pool_padding``) -> ``f`` flatten
    -> ``fc`` adder_linear with 16-bit signed logits; every parameter random.
    ``groups > 1``: ``c2`` (3 channels, at most 3 groups) and ``fc`` (5) have
    random group-shared scales over their ``bits``-bit input codes.
    """
    from quant import golden
    from quant.artifact import IntLayer, IntModel, Requant
    from quant.intops import InputQuant, code_range, conv_out_size

    qmax = (1 << bits) - 1
    c1 = golden.random_layer(rng, kind="adder_conv", in_shape=(2, 6, 6), out_channels=3, bits=bits, name="c1")
    c2 = golden.random_layer(rng, kind="adder_conv", in_shape=(3, 6, 6), out_channels=3, bits=bits, mode=mode,
                             stride=1, padding=1, name="c2", inputs=("c1",), groups=min(groups, 3), in_bits=bits)
    shift = int(rng.integers(2, 6))
    add_rq = Requant(mode="fixed", m=rng.integers(1, 1 << shift, size=2), n=rng.integers(-qmax, qmax, size=1),
                     shift=shift, lo=0, hi=qmax, out_scale=0.1, out_zero_point=0, out_bits=bits)
    add = IntLayer(name="sum", kind="add", inputs=("c1", "c2"), in_shape=(3, 6, 6), out_shape=(3, 6, 6), requant=add_rq)
    p = pool_padding
    mh = conv_out_size(6, 2, 2, p)
    mp = IntLayer(name="mp", kind="maxpool", inputs=("sum",), in_shape=(3, 6, 6), out_shape=(3, mh, mh),
                  kernel=(2, 2), stride=2, padding=p)
    ah = conv_out_size(mh, 2, 1, p)
    lo, hi = code_range(bits, avg_signed)
    avg_rq = Requant(mode="fixed", m=np.array([int(rng.integers(1, 64))]), n=np.array([int(rng.integers(-64, 64))]),
                     shift=int(rng.integers(6, 10)), lo=lo, hi=hi, out_scale=0.1, out_zero_point=0,
                     out_bits=bits, out_signed=avg_signed)
    ap = IntLayer(name="ap", kind="avgpool", inputs=("mp",), in_shape=(3, mh, mh), out_shape=(3, ah, ah),
                  kernel=(2, 2), stride=1, padding=p, requant=avg_rq)
    flat = IntLayer(name="f", kind="flatten", inputs=("ap",), in_shape=(3, ah, ah), out_shape=(3 * ah * ah,))
    fc = golden.random_layer(rng, kind="adder_linear", in_shape=(3 * ah * ah,), out_channels=5, bits=bits,
                             name="fc", inputs=("f",), groups=groups, in_bits=bits)
    rq = fc.requant
    logits = Requant(mode="fixed", m=rq.m, n=rq.n, shift=rq.shift, lo=-(1 << 15), hi=(1 << 15) - 1, out_scale=0.25,
                     out_zero_point=int(rng.integers(-3, 4)), out_bits=16, out_signed=True)
    fc = IntLayer(**{**{f: getattr(fc, f) for f in fc.__dataclass_fields__}, "requant": logits})
    spec = InputQuant(mean=(0.5, 0.4), std=(0.25, 0.3), scale=4.0 / qmax, zero_point=int(rng.integers(0, qmax + 1)),
                      bits=bits, signed=False)
    return IntModel(name="every_kind", dataset="none", input=spec, input_shape=(2, 6, 6),
                    layers=[c1, c2, add, mp, ap, flat, fc], class_names=[f"k{i}" for i in range(5)])


def _mult_model(rng, *, bits=8):
    """A small valid integer model of multiply layers: ``conv`` (signed codes) -> flatten -> ``linear`` logits."""
    from quant import golden
    from quant.artifact import IntLayer, IntModel, Requant
    from quant.intops import InputQuant

    conv = golden.random_layer(rng, kind="conv", in_shape=(3, 5, 5), out_channels=4, bits=bits, stride=2,
                               padding=1, name="conv")
    flat = IntLayer(name="flat", kind="flatten", inputs=("conv",), in_shape=(4, 3, 3), out_shape=(36,))
    fc = golden.random_layer(rng, kind="linear", in_shape=(36,), out_channels=3, bits=bits, name="fc",
                             inputs=("flat",))
    rq = fc.requant
    logits = Requant(mode="fixed", m=rq.m, n=rq.n, shift=rq.shift, lo=-(1 << 15), hi=(1 << 15) - 1, out_scale=0.5,
                     out_zero_point=0, out_bits=16, out_signed=True)
    fc = IntLayer(**{**{f: getattr(fc, f) for f in fc.__dataclass_fields__}, "requant": logits})
    spec = InputQuant(mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2), scale=8.0 / (1 << bits), zero_point=0,
                      bits=bits, signed=True)
    return IntModel(name="mult", dataset="none", input=spec, input_shape=(3, 5, 5), layers=[conv, flat, fc],
                    class_names=["a", "b", "c"])


@pytest.fixture
def every_kind_model():
    """Function ``(rng, mode=..., pool_padding=..., avg_signed=..., bits=...) -> IntModel`` of every layer kind."""
    return _every_kind_model


@pytest.fixture
def mult_model():
    """Function ``(rng, bits=8) -> IntModel`` of multiply layers (conv, flatten, linear)."""
    return _mult_model


@pytest.fixture(scope="session")
def data():
    """Fashion-MNIST: 256 training images, and 200 test images with their labels."""
    from quant.datasets import load_dataset

    xtr, _ = load_dataset("fashion-mnist", "train")
    xte, yte = load_dataset("fashion-mnist", "test")
    return xtr[:256], xte[:200], yte[:200]


@pytest.fixture(scope="session")
def calibrated_lenet():
    """Function ``(train images, seed=99) -> float adder LeNet-5-BN`` with random weights and BN
    statistics recalibrated on those images (a model whose quantisation is well-posed)."""
    def build(xtr, seed=99):
        import torch

        from quant.calibrate import recalibrate_bn
        from quant.datasets import NORMALIZATION
        from quant.models import lenet5_bn

        torch.manual_seed(seed)
        torch.set_num_threads(2)
        return recalibrate_bn(lenet5_bn("adder"), xtr, *NORMALIZATION["fashion-mnist"])
    return build
