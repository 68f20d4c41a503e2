"""Tests of quant.quantizer.convert: node kinds, the handler table, weight codes of compute layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from quant.quantizer.convert import HANDLERS, NodeKind, choose_target, classify
from quant.quantizer.fold import CodeKind
from quant.quantizer.calibrate import Calibration, trace
from quant.base.intops import exact_clamp
from quant.training.datasets import NORMALIZATION
from quant.net.models import lenet5_bn
from quant.quantizer.config import QuantConfig
from quant.quantizer.quantize import quantize_model

SEED = 99
FM = NORMALIZATION["fashion-mnist"]


def test_every_node_of_lenet_has_a_kind_and_a_handler():
    gm = trace(lenet5_bn("adder"))
    kinds = [classify(gm, n) for n in gm.graph.nodes]
    assert all(isinstance(k, NodeKind) for k in kinds)
    assert kinds[0] is NodeKind.INPUT and kinds[-1] is NodeKind.OUTPUT
    assert kinds.count(NodeKind.ADDER) == 5 and kinds.count(NodeKind.BN) == 5 and kinds.count(NodeKind.MAXPOOL) == 2
    assert set(HANDLERS) == set(NodeKind) - {NodeKind.OTHER}


def test_classify_functions_and_methods():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)

        def forward(self, x):
            y = torch.relu(x.view(x.size(0), -1))
            return torch.sigmoid(self.fc(y) + y)

    gm = trace(Net())
    got = {n.name: classify(gm, n) for n in gm.graph.nodes}
    assert got["size"] is NodeKind.SIZE and got["view"] is NodeKind.FLATTEN and got["relu"] is NodeKind.RELU
    assert got["fc"] is NodeKind.LINEAR and got["add"] is NodeKind.ADD and got["sigmoid"] is NodeKind.OTHER


def test_choose_target_follows_the_consumers():
    x = np.linspace(-1.0, 3.0, 401, dtype=np.float32)
    cal = Calibration(samples={"t": x}, min={"t": -1.0}, max={"t": 3.0})
    cfg = QuantConfig(bits=4, percentile=100.0)

    def pick(cons, relu=False, pending=False):
        return choose_target(cons, "t", cal, cfg, relu=relu, pending_compute=pending, where="n")

    t = pick([NodeKind.OUTPUT])
    assert t.kind is CodeKind.LOGITS and t.signed and t.zero_point == 0 and t.scale == 2 * 3.0 / 32767
    t = pick([NodeKind.CONV])
    assert t.kind is CodeKind.MULT_IN and (t.lo, t.hi, t.zero_point) == (-127, 127, 0) and np.isclose(t.scale, 3.0 / 127)
    assert pick([NodeKind.LINEAR], relu=True).lo == 0
    t = pick([NodeKind.ADD], pending=True)
    assert t.kind is CodeKind.MID and t.bits == 16 and t.scale == 3.0 / 32767
    assert pick([NodeKind.ADD]).kind is CodeKind.ACT  # an emitted tensor feeding an add stays act codes
    t = pick([NodeKind.ADDER])
    assert t.kind is CodeKind.ACT and (t.lo, t.hi) == (0, 15) and np.isclose(t.scale, 4.0 / 15) and t.zero_point == 4
    assert pick([NodeKind.ADDER], relu=True).zero_point == 0
    with pytest.raises(ValueError, match="node n: the logits are also used inside the network"):
        pick([NodeKind.OUTPUT, NodeKind.ADD])
    with pytest.raises(ValueError, match="node n feeds both adder and multiply layers"):
        pick([NodeKind.CONV, NodeKind.ADDER])


def test_first_layer_weights_are_the_clamped_codes(data, calibrated_lenet):
    xtr, _, _ = data
    model = calibrated_lenet(xtr)
    im, _ = quantize_model(model, xtr[:128], mean=FM[0], std=FM[1], cfg=QuantConfig(bits=6, rounding="nearest"))
    conv1 = im.layer("conv1")
    s, z = conv1.in_scale, conv1.in_zero_point
    assert (s, z) == (im.input.scale, im.input.zero_point)
    w = model.conv1.adder.detach().double().numpy().reshape(6, -1)
    clamped, comp = exact_clamp(w / s + z, 63)
    assert np.array_equal(conv1.weight, np.rint(clamped).astype(np.int64))
    assert np.allclose(conv1.compensation, comp)
    assert conv1.acc_bits == 6 + 5  # K = 25
    # moving weights that are above the range further out changes only the compensation
    with torch.no_grad():
        hi_real = s * (63 - z)
        wt = model.conv1.adder
        mask = wt > hi_real
        assert mask.any()
        wt[mask] += 10.0
    im2, _ = quantize_model(model, xtr[:128], mean=FM[0], std=FM[1], cfg=QuantConfig(bits=6, rounding="nearest"))
    c2 = im2.layer("conv1")
    assert np.array_equal(c2.weight, conv1.weight)
    moved = mask.reshape(6, -1).sum(1).numpy()
    assert np.allclose(c2.compensation - conv1.compensation, moved * 10.0 / s)


def test_act_bits_put_weights_on_a_coarser_grid(data, calibrated_lenet):
    xtr, _, _ = data
    im, _ = quantize_model(calibrated_lenet(xtr), xtr[:128], mean=FM[0], std=FM[1], cfg=QuantConfig(bits=4, act_bits=8))
    for layer in im.compute_layers:
        assert layer.bits == 8 and layer.weight_bits == 4
        assert np.all(layer.weight % 16 == 0) and layer.weight.max() <= 240


def test_unsupported_operation_is_named():
    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x):
            return torch.sigmoid(self.fc(x.flatten(1)))

    with pytest.raises(ValueError, match="operation .*sigmoid.* is not supported"):
        quantize_model(Odd(), np.random.default_rng(0).random((4, 1, 2, 2), dtype=np.float32), mean=(0.0,), std=(1.0,), cfg=QuantConfig())
