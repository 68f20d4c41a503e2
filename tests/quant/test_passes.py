"""Tests of quant.passes: bias correction after the layers are built."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from quant import golden
from quant.calibrate import calibrate, trace
from quant.convert import convert
from quant.passes import BiasCorrection
from quant.datasets import NORMALIZATION
from quant.quantize import QuantConfig, quantize_model

SEED = 99
FM = NORMALIZATION["fashion-mnist"]


def test_bias_correction_matches_the_float_channel_means(data, calibrated_lenet):
    xtr, _, _ = data
    model = calibrated_lenet(xtr)
    calib = xtr[:96]
    cfg = QuantConfig(bits=4, bias_correction_images=64)
    im, _ = quantize_model(model, calib, mean=FM[0], std=FM[1], cfg=cfg)
    off, _ = quantize_model(model, calib, mean=FM[0], std=FM[1], cfg=QuantConfig(bits=4, bias_correction=False))
    conv1, conv1_off = im.layer("conv1"), off.layer("conv1")
    assert np.array_equal(conv1.weight, conv1_off.weight) and not np.array_equal(conv1.requant.n, conv1_off.requant.n)
    rq = conv1.requant
    acc = golden.layer_acc(conv1, golden.quantize_input(calib[:64], im.input))  # [N, O, P]
    y_int = (rq.m[None, :, None] * acc + rq.n[None, :, None] - 2 ** (rq.shift - 1)) / 2.0**rq.shift
    y_int = (y_int - rq.out_zero_point) * rq.out_scale  # the real BN output the codes stand for, before clamping
    with torch.no_grad():
        y_float = model.bn1(model.conv1((torch.from_numpy(calib[:64]) - FM[0][0]) / FM[1][0])).double().numpy()
    err = y_int.mean(axis=(0, 2)) - y_float.mean(axis=(0, 2, 3))
    assert np.all(np.abs(err) < 0.01 * rq.out_scale), err  # a hundredth of an output LSB


def test_bias_correction_changes_only_the_compute_requant_offsets(data, calibrated_lenet):
    xtr, _, _ = data
    model = calibrated_lenet(xtr)
    calib = xtr[:64]
    cfg = QuantConfig(bits=6)
    gm = trace(model)
    cal = calibrate(gm, calib, FM[0], FM[1], mean_images=32)
    graph = convert(gm, cal, cfg, FM[0], FM[1])
    new, modified = BiasCorrection(cal, calib[:32]).apply(graph)
    assert modified and new is not graph and len(new.layers) == len(graph.layers)
    for old, got in zip(graph.layers, new.layers):
        assert got.name == old.name and got.kind == old.kind
        if got.pe is None:
            assert got is old
            continue
        assert np.array_equal(got.weight, old.weight)
        assert np.array_equal(got.requant.m, old.requant.m) and got.requant.shift == old.requant.shift
        assert new.folds[got.name].affine.a is graph.folds[got.name].affine.a
    with pytest.raises(ValueError, match="non-empty batch of images"):
        BiasCorrection(cal, calib[:0])
