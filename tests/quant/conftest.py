"""Shared fixtures of the quant tests."""

import os

import pytest

from tests.quant import int_models

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


@pytest.fixture
def tiny_int_model():
    """Function ``(rng, mode="fixed") -> IntModel`` building a tiny random integer model."""
    return int_models.tiny_int_model


@pytest.fixture
def every_kind_model():
    """Function ``(rng, mode=..., pool_padding=..., avg_signed=..., bits=...) -> IntModel`` of every layer kind."""
    return int_models.every_kind_model


@pytest.fixture
def mult_model():
    """Function ``(rng, bits=8) -> IntModel`` of multiply layers (conv, flatten, linear)."""
    return int_models.mult_model


@pytest.fixture(scope="session")
def data():
    """Fashion-MNIST: 256 training images, and 200 test images with their labels."""
    from quant.training.datasets import load_dataset

    xtr, _ = load_dataset("fashion-mnist", "train")
    xte, yte = load_dataset("fashion-mnist", "test")
    return xtr[:256], xte[:200], yte[:200]


@pytest.fixture(scope="session")
def calibrated_lenet():
    """Function ``(train images, seed=99) -> float adder LeNet-5-BN`` with random weights and BN
    statistics recalibrated on those images (a model whose quantisation is well-posed)."""
    def build(xtr, seed=99):
        import torch

        from quant.quantizer.calibrate import recalibrate_bn
        from quant.training.datasets import NORMALIZATION
        from quant.net.models import lenet5_bn

        torch.manual_seed(seed)
        torch.set_num_threads(2)
        return recalibrate_bn(lenet5_bn("adder"), xtr, *NORMALIZATION["fashion-mnist"])
    return build
