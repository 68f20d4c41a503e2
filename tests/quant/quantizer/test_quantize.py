"""Tests of quant.quantizer.quantize: the whole pipeline.

The steps have their own tests: test_calibrate, test_convert, test_fold,
test_passes; the settings test_config; the CLI test_cli_quantize.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.intmodel import golden
from quant.quantizer.calibrate import calibrate, trace
from quant.quantizer.convert import convert
from quant.training.datasets import NORMALIZATION
from quant.base.intops import exact_clamp, fixed_point_params, requant_fixed
from quant.quantizer.config import QuantConfig
from quant.quantizer.passes import BiasCorrection, OutputRounding
from quant.quantizer.quantize import adder_layer_names, quantize_model

SEED = 99
FM = NORMALIZATION["fashion-mnist"]


@settings(max_examples=60, deadline=None)
@given(bits=st.integers(2, 10), o=st.integers(1, 4), k=st.integers(1, 30), seed=st.integers(0, 2**32 - 1))
def test_exact_clamp_with_compensation_changes_no_integer_output(bits, o, k, seed):
    """Integer weights far outside [0, qmax]: clamping them and folding C_o into n is exact."""
    rng = np.random.default_rng(seed)
    qmax = (1 << bits) - 1
    w = rng.integers(-4 * qmax, 5 * qmax + 1, size=(o, k))  # integer codes, many out of range
    x = rng.integers(0, qmax + 1, size=(k, 7))
    clamped, comp = exact_clamp(w, qmax)
    assert np.array_equal(comp, np.rint(comp))  # integer codes give integer compensation
    acc_raw = np.abs(x[None, :, :] - w[:, :, None]).sum(1)
    acc = golden.adder_acc(x, clamped.astype(np.int64))
    assert np.array_equal(acc_raw, acc + comp.astype(np.int64)[:, None])
    a = rng.uniform(-2, 2, size=o) * qmax / (k * qmax + 1)
    b = rng.uniform(0, qmax, size=o)
    m, n, shift = fixed_point_params(a, b)
    q_raw = requant_fixed(acc_raw, m, n, shift, 0, qmax)
    q_clamped = requant_fixed(acc, m, n + m * comp.astype(np.int64), shift, 0, qmax)
    assert np.array_equal(q_raw, q_clamped)


def test_threshold_and_fixed_modes_give_identical_outputs(data, calibrated_lenet):
    xtr, xte, _ = data
    model = calibrated_lenet(xtr)
    imf, _ = quantize_model(model, xtr[:128], mean=FM[0], std=FM[1], cfg=QuantConfig(bits=4, requant="fixed"))
    imt, _ = quantize_model(model, xtr[:128], mean=FM[0], std=FM[1], cfg=QuantConfig(bits=4, requant="threshold"))
    modes = [l.requant.mode for l in imt.compute_layers]
    assert modes == ["threshold"] * 4 + ["fixed"]  # the logits stay fixed point
    assert imt.logits_requant.out_bits == 16 and imt.logits_requant.out_signed
    assert np.array_equal(golden.run(imf, xte), golden.run(imt, xte))


def test_threshold_logits_make_the_model_multiplier_free(data, calibrated_lenet):
    """--logits threshold: the logits are unsigned act_bits codes made by thresholds derived exactly from the
    fixed-point form of the same target; with threshold requant the integer model counts no multiplication."""
    from dataclasses import replace

    from quant.base.opcount import count_int_layer

    xtr, xte, _ = data
    model = calibrated_lenet(xtr)
    cfg = QuantConfig(bits=4, requant="threshold", logits="threshold", rounding="nearest", bias_correction=False)
    im, _ = quantize_model(model, xtr[:128], mean=FM[0], std=FM[1], cfg=cfg)
    assert [l.requant.mode for l in im.compute_layers] == ["threshold"] * 5
    rq = im.logits_requant
    assert rq.out_bits == 4 and not rq.out_signed and rq.thr.shape == (10, 15)
    assert sum(count_int_layer(l).multiplications for l in im.layers) == 0
    # the thresholds are the fixed-point form of the same target, exactly (no passes: graph == model)
    gm = trace(model)
    graph = convert(gm, calibrate(gm, xtr[:128], FM[0], FM[1]), cfg, FM[0], FM[1])
    _same_layers(im.layers, graph.layers)
    last = im.layers[-1]
    fixed = replace(graph.folds[last.name], threshold=False).requant()
    assert fixed.mode == "fixed" and (fixed.lo, fixed.hi) == (0, 15)
    codes = golden.run_codes(im, golden.quantize_input(xte, im.input))
    acc = golden.layer_acc(last, codes[last.inputs[0]])
    assert np.array_equal(golden.requant(acc, rq), golden.requant(acc, fixed))
    assert np.array_equal(golden.requant(acc, rq)[..., 0], codes[last.name])
    assert len(np.unique(codes[last.name])) > 4  # real logits, not a constant
    with pytest.raises(ValueError, match="logits must be fixed or threshold, not 'x'"):
        QuantConfig(logits="x")


def test_threshold_logits_of_a_multiply_classifier_are_refused_by_name():
    """Thresholds are an adder layer's requant: a multiply classifier (the ResNet's fc) cannot have them."""
    from torch import nn

    torch.manual_seed(SEED)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    x = np.random.default_rng(SEED).uniform(0, 1, size=(16, 1, 4, 4)).astype(np.float32)
    cfg = QuantConfig(bits=4, requant="threshold", logits="threshold", rounding="nearest")
    with pytest.raises(ValueError, match=r"layer 1: threshold logits need an adder layer, not a linear layer "
                                         r"\(use --logits fixed\)"):
        quantize_model(model, x, mean=FM[0], std=FM[1], cfg=cfg)


def test_int8_tracks_float(data, calibrated_lenet):
    xtr, xte, _ = data
    model = calibrated_lenet(xtr)
    im, fmap = quantize_model(model, xtr[:128], mean=FM[0], std=FM[1], cfg=QuantConfig(bits=8))
    with torch.no_grad():
        fl = model((torch.from_numpy(xte) - FM[0][0]) / FM[1][0]).numpy()
    agree = np.mean(golden.run(im, xte).argmax(1) == fl.argmax(1))
    assert agree >= 0.97, agree
    assert set(fmap) == {l.name for l in im.layers}


def _same_layers(got, want):
    assert [l.name for l in got] == [l.name for l in want]
    for a, b in zip(got, want):
        assert type(a) is type(b)
        ra, rb = getattr(a, "requant", None), getattr(b, "requant", None)  # max pooling and flatten have none
        assert (ra is None) == (rb is None)
        if ra is not None:
            for f in ("m", "n", "shift", "lo", "hi", "thr", "neg", "out_scale", "out_zero_point", "sum_bits"):
                assert np.array_equal(np.asarray(getattr(ra, f)), np.asarray(getattr(rb, f))), (a.name, f)


@pytest.mark.parametrize("bias_correction", [False, True])
def test_quantize_model_is_trace_calibrate_convert_then_passes(data, bias_correction, calibrated_lenet):
    xtr, _, _ = data
    model = calibrated_lenet(xtr)
    calib = xtr[:80]
    cfg = QuantConfig(bits=4, requant="threshold", bias_correction=bias_correction, bias_correction_images=48)
    im, fmap = quantize_model(model, calib, mean=FM[0], std=FM[1], cfg=cfg, dataset="fashion-mnist")
    gm = trace(model)
    cal = calibrate(gm, calib, FM[0], FM[1], mean_images=48)
    graph = convert(gm, cal, cfg, FM[0], FM[1])
    assert cfg.rounding == "greedy"  # "auto" at 4 bits: output rounding, bias correction inside it
    graph, modified = OutputRounding(gm, calib[:48], FM[0], FM[1], patches=cfg.rounding_patches,
                                     cal=cal if bias_correction else None).apply(graph)
    assert modified
    _same_layers(im.layers, graph.layers)
    assert all(np.array_equal(a.weight, b.weight) for a, b in zip(im.layers, graph.layers) if a.pe)
    assert fmap == graph.float_node and im.input == graph.input
    near = QuantConfig(bits=4, requant="threshold", bias_correction=bias_correction, bias_correction_images=48,
                       rounding="nearest")
    im, _ = quantize_model(model, calib, mean=FM[0], std=FM[1], cfg=near, dataset="fashion-mnist")
    graph = convert(gm, cal, near, FM[0], FM[1])
    if bias_correction:
        graph, modified = BiasCorrection(cal, calib[:48]).apply(graph)
        assert modified
    _same_layers(im.layers, graph.layers)


def test_mixed_layer_bits_are_exact_and_unknown_names_refused(data, calibrated_lenet):
    """Per-layer weight bits: each adder layer's codes sit on its own grid of the shared activation grid,
    golden == fake-quant bit for bit; a name that is no adder layer is refused by name."""
    from quant.quantizer.fakequant import FakeQuantModel

    xtr, xte, _ = data
    model = calibrated_lenet(xtr)
    assert adder_layer_names(model) == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    bits = {"conv1": 6, "conv2": 3, "fc1": 4, "fc3": 5}
    cfg = QuantConfig(bits=8, act_bits=8, layer_bits=bits, rounding="nearest")
    im, _ = quantize_model(model, xtr[:64], mean=FM[0], std=FM[1], cfg=cfg)
    for layer in im.compute_layers:
        want = bits.get(layer.name, 8)
        assert layer.bits == 8 and layer.weight_bits == want, layer.name
        step = 1 << (8 - want)
        assert np.all(layer.weight % step == 0) and 0 <= layer.weight.min() and layer.weight.max() <= 255
        assert len(np.unique(layer.weight)) <= 1 << want
    assert im.quantization["layer_bits"] == bits
    q = golden.run(im, xte[:100])
    assert np.array_equal(q, FakeQuantModel(im).forward_int(torch.from_numpy(xte[:100])).numpy())
    with pytest.raises(ValueError, match=r"layer_bits names unknown layer 'fc9' \(adder layers: conv1, conv2, "
                                         r"fc1, fc2, fc3\)"):
        quantize_model(model, xtr[:8], mean=FM[0], std=FM[1], cfg=QuantConfig(layer_bits={"fc9": 4}))
