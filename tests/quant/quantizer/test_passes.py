"""Tests of quant.quantizer.passes: bias correction after the layers are built."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from quant.intmodel import golden
from quant.quantizer.calibrate import calibrate, trace
from quant.quantizer.convert import convert
from quant.quantizer.passes import BiasCorrection
from quant.training.datasets import NORMALIZATION
from quant.quantizer.config import QuantConfig
from quant.quantizer.quantize import quantize_model

SEED = 99
FM = NORMALIZATION["fashion-mnist"]


def test_bias_correction_matches_the_float_channel_means(data, calibrated_lenet):
    xtr, _, _ = data
    model = calibrated_lenet(xtr)
    calib = xtr[:96]
    cfg = QuantConfig(bits=4, bias_correction_images=64, rounding="nearest")
    im, _ = quantize_model(model, calib, mean=FM[0], std=FM[1], cfg=cfg)
    off, _ = quantize_model(model, calib, mean=FM[0], std=FM[1],
                            cfg=QuantConfig(bits=4, bias_correction=False, rounding="nearest"))
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


def test_output_rounding_lowers_the_first_layers_error_and_stays_on_the_candidates(data, calibrated_lenet):
    """Greedy rounding of conv1 (whose integer input is the same either way): every weight is its floor or
    ceil, and the output error over all the patches it saw is at most nearest rounding's."""
    from quant.quantizer.calibrate import normalise
    from quant.quantizer.passes import OutputRounding
    from quant.quantizer.rounding import l1_sums, output_error, patches_at, weight_candidates

    xtr, _, _ = data
    model = calibrated_lenet(xtr)
    images = xtr[:8]
    cfg = QuantConfig(bits=4, rounding="nearest")
    gm = trace(model)
    cal = calibrate(gm, xtr[:64], FM[0], FM[1])
    graph = convert(gm, cal, cfg, FM[0], FM[1])
    new, modified = OutputRounding(gm, images, FM[0], FM[1], patches=10**6).apply(graph)
    again, _ = OutputRounding(gm, images, FM[0], FM[1], patches=10**6).apply(graph)
    assert modified
    for old, got, rep in zip(graph.layers, new.layers, again.layers):
        if got.pe == "adder":
            down, up = weight_candidates(np.clip(graph.real_weights[got.name], 0, 15), 1, 15)
            assert np.all((got.weight == down) | (got.weight == up)), got.name
            assert np.array_equal(got.weight, rep.weight)  # deterministic
            assert np.array_equal(got.requant.n, old.requant.n)  # without cal: weights only
    c_old, c_new = graph.layers[0], new.layers[0]
    assert c_old.name == "conv1" and not np.array_equal(c_old.weight, c_new.weight)
    n, p = np.divmod(np.arange(8 * 784), 784)
    xq = patches_at(golden.quantize_input(images, graph.input), c_old.kernel, c_old.stride, c_old.padding,
                    c_old.in_zero_point, n, p)
    xf = patches_at(normalise(images, *FM).numpy() / c_old.in_scale + c_old.in_zero_point, c_old.kernel, c_old.stride,
                    c_old.padding, c_old.in_zero_point, n, p)
    t = l1_sums(xf, graph.real_weights["conv1"])
    e_near, e_greedy = output_error(c_old.weight, xq, t), output_error(c_new.weight, xq, t)
    assert np.all(e_greedy <= e_near * (1 + 1e-9)) and e_greedy.sum() < e_near.sum()
    with pytest.raises(ValueError, match="patches must be a positive integer, not 0"):
        OutputRounding(gm, images, FM[0], FM[1], patches=0)
    with pytest.raises(ValueError, match="non-empty batch of images"):
        OutputRounding(gm, images[:0], FM[0], FM[1])


@pytest.mark.parametrize("groups", [1, 2])
def test_greedy_rounding_golden_equals_fakequant_and_corrects_the_bias(data, calibrated_lenet, groups):
    from quant.quantizer.fakequant import FakeQuantModel

    xtr, xte, _ = data
    model = calibrated_lenet(xtr)
    cfg = QuantConfig(bits=4, groups=groups, rounding="greedy", bias_correction_images=64, rounding_patches=2048)
    im, _ = quantize_model(model, xtr[:96], mean=FM[0], std=FM[1], cfg=cfg)
    near, _ = quantize_model(model, xtr[:96], mean=FM[0], std=FM[1], cfg=QuantConfig(bits=4, groups=groups,
                             rounding="nearest", bias_correction_images=64))
    assert im.quantization["rounding"] == "greedy"
    assert any(not np.array_equal(a.weight, b.weight) for a, b in zip(im.compute_layers, near.compute_layers))
    x = xte[:40]
    assert np.array_equal(golden.run(im, x), FakeQuantModel(im).forward_int(torch.from_numpy(x)).numpy())
    # bias correction is applied layer by layer inside the pass: conv1's mean output matches the float model's
    conv1 = im.layer("conv1")
    if groups == 1:
        rq = conv1.requant
        acc = golden.layer_acc(conv1, golden.quantize_input(xtr[:64], im.input))
        y_int = ((rq.m[None, :, None] * acc + rq.n[None, :, None] - 2 ** (rq.shift - 1)) / 2.0**rq.shift
                 - rq.out_zero_point) * rq.out_scale
        with torch.no_grad():
            y_float = model.bn1(model.conv1((torch.from_numpy(xtr[:64]) - FM[0][0]) / FM[1][0])).double().numpy()
        assert np.all(np.abs(y_int.mean(axis=(0, 2)) - y_float.mean(axis=(0, 2, 3))) < 0.01 * rq.out_scale)
