"""Shared fixtures of the quant tests."""

import os

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
