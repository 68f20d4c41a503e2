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
