"""A VGG-style AdderNet built from adderhw's layers, trained briefly, quantized and saved.

Usage: python docs/tutorials/vgg_adder.py OUT_DIR   (writes OUT_DIR/int8, the integer model)
"""

import sys

import torch
from torch import nn

from quant.intmodel.artifact import save_int_model
from quant.quantizer.calibrate import recalibrate_bn
from quant.training.datasets import NORMALIZATION, load_dataset
from quant.intmodel.golden import run
from quant.net.layers import AdderConv2d, AdderLinear
from quant.quantizer.config import QuantConfig
from quant.quantizer.quantize import quantize_model

out = sys.argv[1]
torch.manual_seed(0)


def block(cin, cout):
    """An adder 3x3 conv, then batch norm and ReLU: the BN restores the range of -sum|x - w|."""
    return [AdderConv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]


model = nn.Sequential(
    *block(1, 8), *block(8, 8), nn.MaxPool2d(2),     # 28x28 -> 14x14
    *block(8, 16), *block(16, 16), nn.MaxPool2d(2),  # 14x14 -> 7x7
    nn.Flatten(),
    AdderLinear(16 * 7 * 7, 10), nn.BatchNorm1d(10),
)

# Fashion-MNIST from the Debian package: float32 [N, 1, 28, 28] in 0..1
images, labels = load_dataset("fashion-mnist", "train")
test_images, test_labels = load_dataset("fashion-mnist", "test")
mean, std = NORMALIZATION["fashion-mnist"]

# 32 steps of SGD on 4,096 images: enough to show the flow, not a training recipe. Adder layers
# rescale their own weight gradients (the adaptive learning rate), so plain SGD with momentum works.
x = (torch.from_numpy(images[:4096]) - mean[0]) / std[0]
y = torch.from_numpy(labels[:4096]).long()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
model.train()
for i in range(0, len(x), 128):
    opt.zero_grad()
    nn.functional.cross_entropy(model(x[i:i + 128]), y[i:i + 128]).backward()
    opt.step()
recalibrate_bn(model, images[:1024], mean, std)  # BN statistics of the final weights; leaves eval mode

# Quantize: calibration images in 0..1 (before normalisation), 8-bit weights and activations
int_model, _ = quantize_model(model, images[:256], mean=mean, std=std, cfg=QuantConfig(bits=8),
                              name="vgg-adder", dataset="fashion-mnist")
save_int_model(int_model, f"{out}/int8")

# The golden integer model is what the hardware must compute
logits = run(int_model, test_images[:500])
print(f"integer model: top-1 {100 * (logits.argmax(1) == test_labels[:500]).mean():.1f} % on 500 test images")
print(f"wrote {out}/int8")
