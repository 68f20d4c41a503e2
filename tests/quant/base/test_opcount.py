"""Tests of quant.base.opcount: counts from shapes, from IntLayers and from a float model."""

from __future__ import annotations

import numpy as np
import pytest

from quant.intmodel import golden
from quant.base.opcount import OpCount, count_int_layer, count_layer_ops, count_requant_ops


def test_count_layer_ops_conventions():
    assert count_layer_ops("adder_conv", 6, 784, 25) == OpCount(additions=2 * 117_600)
    assert count_layer_ops("adder", 6, 784, 25) == OpCount(additions=2 * 117_600)
    assert count_layer_ops("conv", 6, 784, 25) == OpCount(additions=117_600, multiplications=117_600)
    assert count_layer_ops("linear", 10, 1, 84).multiplications == 840


def test_count_layer_ops_refuses_bad_input():
    with pytest.raises(ValueError, match="kind must be one of"):
        count_layer_ops("dense", 1, 1, 1)
    with pytest.raises(ValueError, match="out_pixels must be a positive integer, not 0"):
        count_layer_ops("adder", 1, 0, 1)


def test_requant_ops():
    assert count_requant_ops("fixed", 10) == OpCount(additions=10, multiplications=10)
    assert count_requant_ops("threshold", 10, 4) == OpCount(comparisons=150)
    with pytest.raises(ValueError, match="need bits"):
        count_requant_ops("threshold", 10)


def test_int_layer_counts_match_shape_counts():
    layer = golden.random_layer(np.random.default_rng(5), kind="adder_conv", in_shape=(3, 8, 8), out_channels=4, bits=4, mode="threshold")
    ops = count_int_layer(layer)
    assert ops.additions == 2 * 4 * 64 * 27
    assert ops.comparisons == 4 * 64 * 15
    assert count_int_layer(layer, include_requant=False) == count_layer_ops("adder_conv", 4, 64, 27)
