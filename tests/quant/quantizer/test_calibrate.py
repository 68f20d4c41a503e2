"""Tests of quant.quantizer.calibrate: tracing, calibration statistics, clipping ranges, float helpers."""

from __future__ import annotations

import numpy as np
import torch

from quant.quantizer.calibrate import (
    AUTO_PERCENTILES,
    Calibration,
    calibrate,
    float_logits,
    float_node_outputs,
    is_adder_module,
    normalise,
    recalibrate_bn,
    synthetic_images,
    trace,
)
from quant.net.models import lenet5_bn

SEED = 5


def test_trace_keeps_adder_layers_as_leaves():
    model = lenet5_bn("adder")
    assert is_adder_module(model.conv1) and not is_adder_module(model)
    gm = trace(model)
    called = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    assert "conv1" in called and "fc3" in called


def test_calibrate_records_exact_ranges_and_channel_means():
    torch.manual_seed(SEED)
    model = recalibrate_bn(lenet5_bn("adder"), synthetic_images(16, (1, 28, 28), seed=SEED), (0.5,), (0.25,))
    x = synthetic_images(10, (1, 28, 28), seed=SEED + 1)
    gm = trace(model)
    cal = calibrate(gm, x, (0.5,), (0.25,), batch=4, mean_images=6)
    ref = float_node_outputs(gm, x, (0.5,), (0.25,), ["bn1"])["bn1"]
    assert cal.shapes["bn1"] == ref.shape[1:]
    assert np.isclose(cal.min["bn1"], ref.min()) and np.isclose(cal.max["bn1"], ref.max())
    assert np.allclose(cal.chan_mean["bn1"], ref[:6].mean(axis=(0, 2, 3)), atol=1e-5)
    fl = float_logits(model, x, (0.5,), (0.25,), batch=3)
    assert fl.shape == (10, 10) and fl.dtype == np.float64


def test_clip_range_given_and_auto():
    x = np.concatenate([np.linspace(0, 1, 10_000), [50.0]]).astype(np.float32)
    cal = Calibration(samples={"t": x})
    lo, hi = cal.clip_range("t", True, 15, percentile=100.0)
    assert (lo, hi) == (0.0, 50.0)
    lo, hi = cal.clip_range("t", True, 15, percentile=None)  # the outlier costs more than clipping it
    assert lo == 0.0 and hi < 2.0
    assert hi in [cal.percentile("t", p) for p in AUTO_PERCENTILES]
    cal2 = Calibration(samples={"s": np.array([-3.0, -1.0, 0.0, 2.0], dtype=np.float32)})
    assert cal2.clip_range("s", False, 254, percentile=100.0, symmetric=True) == (-3.0, 3.0)
    assert cal2.clip_range("s", False, 254, percentile=100.0) == (-3.0, 2.0)


def test_normalise_and_synthetic_images():
    img = synthetic_images(3, (2, 8, 8), seed=1)
    assert img.dtype == np.float32 and img.shape == (3, 2, 8, 8) and img.min() >= 0 and img.max() <= 1
    assert np.array_equal(img, synthetic_images(3, (2, 8, 8), seed=1))
    t = normalise(img, (0.5, 0.25), (2.0, 4.0))
    assert torch.allclose(t[:, 1], (torch.from_numpy(img[:, 1]) - 0.25) / 4.0)
