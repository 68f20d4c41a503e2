"""Golden == fake-quant, exactly: every bit width of the sweep, both requant modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from quant.intmodel import golden
from quant.training.datasets import NORMALIZATION, load_dataset
from quant.quantizer.fakequant import FakeQuantModel, to_int
from quant.net.models import lenet5_bn, resnet20
from quant.quantizer.calibrate import recalibrate_bn, synthetic_images
from quant.quantizer.config import QuantConfig
from quant.quantizer.quantize import quantize_model

SEED = 2024
FM = NORMALIZATION["fashion-mnist"]
CIFAR = NORMALIZATION["cifar10"]


@pytest.fixture(scope="module")
def fmnist():
    x, y = load_dataset("fashion-mnist", "test")
    return x[:300], y[:300]


@pytest.fixture(scope="module")
def lenet(fmnist):
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    model = lenet5_bn("adder")
    xtr, _ = load_dataset("fashion-mnist", "train")
    return recalibrate_bn(model, xtr[:256], *FM), xtr[:128]


@pytest.mark.parametrize("mode", ["fixed", "threshold"])
@pytest.mark.parametrize("bits", [8, 6, 5, 4])
def test_lenet_golden_equals_fakequant(lenet, fmnist, bits, mode):
    model, calib = lenet
    im, _ = quantize_model(model, calib, mean=FM[0], std=FM[1], cfg=QuantConfig(bits=bits, requant=mode))
    x, _ = fmnist
    q_golden = golden.run(im, x)
    fq = FakeQuantModel(im)
    q_fake = fq.forward_int(torch.from_numpy(x)).numpy()
    assert q_fake.dtype == np.int64
    assert np.array_equal(q_golden, q_fake)
    # the float logits are the dequantised golden logits, bit for bit
    assert np.array_equal(fq(x).numpy(), golden.logits_real(im, q_golden))
    # and every intermediate layer agrees too
    codes = golden.run_codes(im, golden.quantize_input(x[:50], im.input))
    vals = fq.forward_all(x[:50])
    for layer in im.layers:
        s, z = fq.layer_modules[f"l{im.layers.index(layer)}"].out_quant
        assert np.array_equal(to_int(vals[layer.name], s, z).numpy(), codes[layer.name]), layer.name


def test_resnet20_reference_layout_golden_equals_fakequant():
    torch.manual_seed(SEED)
    model = resnet20("adder")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".adder"):
                p.normal_(0.0, 8.0)  # trained reference adder weights reach about +-50..70
    recalibrate_bn(model, synthetic_images(32, (3, 32, 32), seed=SEED), *CIFAR)
    im, _ = quantize_model(model, synthetic_images(24, (3, 32, 32), seed=SEED + 1), mean=CIFAR[0], std=CIFAR[1],
                           cfg=QuantConfig(bits=6))
    kinds = [l.kind for l in im.layers]
    assert kinds[0] == "conv" and kinds.count("add") == 9 and "avgpool" in kinds and kinds[-2:] == ["conv", "flatten"]
    x = synthetic_images(6, (3, 32, 32), seed=SEED + 2)
    assert np.array_equal(golden.run(im, x), FakeQuantModel(im).forward_int(x).numpy())
