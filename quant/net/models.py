"""Model zoo: LeNet-5-BN (1x28x28) and CIFAR ResNet-20/32 (3x32x32).

Every builder takes ``kind="adder"`` (adder layers, :mod:`quant.net.layers`) or
``kind="cnn"`` (``nn.Conv2d``/``nn.Linear`` without bias in the same places).
The quantizer walks these structures by attribute name; they are part of the
interface.

``lenet5_bn(kind)`` — input ``[N, 1, 28, 28]``, output logits ``[N, 10]``::

    conv1  5x5, padding 2, 1 -> 6     bn1 (BatchNorm2d 6)   relu  maxpool 2  -> 6x14x14
    conv2  5x5, padding 0, 6 -> 16    bn2 (BatchNorm2d 16)  relu  maxpool 2  -> 16x5x5
    flatten                                                                  -> 400
    fc1    400 -> 120                 bn3 (BatchNorm1d 120) relu
    fc2    120 -> 84                  bn4 (BatchNorm1d 84)  relu
    fc3    84 -> 10                   bn5 (BatchNorm1d 10, over the logits)

  In the adder kind all five of conv1, conv2, fc1, fc2, fc3 are adder layers
  (:class:`~quant.net.layers.AdderConv2d` / :class:`~quant.net.layers.AdderLinear`,
  parameter ``adder``); in the cnn kind they are ``nn.Conv2d`` / ``nn.Linear``
  with ``bias=False`` (parameter ``weight``).  Pooling is ``nn.MaxPool2d(2)``
  (attributes ``pool1``, ``pool2``).

``resnet20(kind)`` / ``resnet32(kind)`` — input ``[N, 3, 32, 32]``, the layout
of the reference AdderNet CIFAR code, so its state dicts load unchanged::

    conv1  ordinary nn.Conv2d 3x3, padding 1, 3 -> 16, no bias;  bn1;  relu
    layer1.{i}, layer2.{i}, layer3.{i}   (i < 3 for ResNet-20, i < 5 for ResNet-32)
        BasicBlock: conv1 (3x3, padding 1, stride s) bn1 relu  conv2 (3x3, padding 1) bn2
                    + residual (identity, or downsample(x))  relu
        layer1: 16 channels at 32x32; layer2: 32 at 16x16; layer3: 64 at 8x8
        the first block of layer2 and layer3 has stride 2 and
        downsample = Sequential(0: 1x1 stride-2 adder conv, 1: BatchNorm2d)
    avgpool  nn.AvgPool2d(8, stride=1)                           -> 64x1x1
    fc     ordinary nn.Conv2d 1x1, 64 -> 10, no bias (multiply layer in both kinds)
    bn2    BatchNorm2d(10) over the logits;  flatten             -> [N, 10]

  Block convolutions and downsample convolutions are adder layers (parameter
  ``adder``, shape ``[out, in, kh, kw]``) in the adder kind and ``nn.Conv2d``
  in the cnn kind.

:data:`MODELS` maps the names ``"lenet5-bn"``, ``"resnet20"`` and
``"resnet32"`` to their builders; :func:`build_model` builds one by name, and
:data:`INPUT_SHAPES` gives each model's ``(C, H, W)``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from quant.base.intops import NetKind
from quant.net.layers import AdderConv2d, AdderLinear

__all__ = [
    "KINDS",
    "MODELS",
    "INPUT_SHAPES",
    "LeNet5BN",
    "BasicBlock",
    "ResNetCifar",
    "lenet5_bn",
    "resnet20",
    "resnet32",
    "build_model",
]

#: The network kinds (:class:`quant.base.intops.NetKind`).
KINDS = tuple(NetKind)


def _check_kind(kind: str) -> NetKind:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return NetKind(kind)


def _conv(kind: str, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0, eta=0.2) -> nn.Module:
    if kind == NetKind.ADDER:
        return AdderConv2d(cin, cout, k, stride=stride, padding=padding, bias=False, eta=eta)
    return nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=False)


def _linear(kind: str, fin: int, fout: int, eta=0.2) -> nn.Module:
    if kind == NetKind.ADDER:
        return AdderLinear(fin, fout, bias=False, eta=eta)
    return nn.Linear(fin, fout, bias=False)


class LeNet5BN(nn.Module):
    """LeNet-5 with batch norm after every conv/fc (see the module docstring)."""

    def __init__(self, kind: str = "adder", num_classes: int = 10, eta=0.2):
        super().__init__()
        self.kind = _check_kind(kind)
        self.conv1 = _conv(kind, 1, 6, 5, padding=2, eta=eta)
        self.bn1 = nn.BatchNorm2d(6)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = _conv(kind, 6, 16, 5, eta=eta)
        self.bn2 = nn.BatchNorm2d(16)
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = _linear(kind, 400, 120, eta=eta)
        self.bn3 = nn.BatchNorm1d(120)
        self.fc2 = _linear(kind, 120, 84, eta=eta)
        self.bn4 = nn.BatchNorm1d(84)
        self.fc3 = _linear(kind, 84, num_classes, eta=eta)
        self.bn5 = nn.BatchNorm1d(num_classes)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu(self.bn1(self.conv1(x))))
        x = self.pool2(self.relu(self.bn2(self.conv2(x))))
        x = torch.flatten(x, 1)
        x = self.relu(self.bn3(self.fc1(x)))
        x = self.relu(self.bn4(self.fc2(x)))
        return self.bn5(self.fc3(x))


class BasicBlock(nn.Module):
    """Residual block of the CIFAR ResNet (two 3x3 convs, optional downsample)."""

    def __init__(self, kind: str, inplanes: int, planes: int, stride: int = 1, downsample=None, eta=0.2):
        super().__init__()
        self.conv1 = _conv(kind, inplanes, planes, 3, stride=stride, padding=1, eta=eta)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = _conv(kind, planes, planes, 3, padding=1, eta=eta)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


class ResNetCifar(nn.Module):
    """CIFAR ResNet in the reference AdderNet layout (see the module docstring)."""

    def __init__(self, kind: str, blocks: int, num_classes: int = 10, eta=0.2):
        super().__init__()
        self.kind = _check_kind(kind)
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self._inplanes = 16
        self.layer1 = self._make_layer(kind, 16, blocks, 1, eta)
        self.layer2 = self._make_layer(kind, 32, blocks, 2, eta)
        self.layer3 = self._make_layer(kind, 64, blocks, 2, eta)
        self.avgpool = nn.AvgPool2d(8, stride=1)
        self.fc = nn.Conv2d(64, num_classes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(num_classes)

    def _make_layer(self, kind: str, planes: int, blocks: int, stride: int, eta) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._inplanes != planes:
            downsample = nn.Sequential(
                _conv(kind, self._inplanes, planes, 1, stride=stride, eta=eta),
                nn.BatchNorm2d(planes),
            )
        layers = [BasicBlock(kind, self._inplanes, planes, stride, downsample, eta)]
        self._inplanes = planes
        layers += [BasicBlock(kind, planes, planes, eta=eta) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = self.bn2(self.fc(self.avgpool(x)))
        return torch.flatten(x, 1)


def lenet5_bn(kind: str = "adder", eta=0.2) -> LeNet5BN:
    """LeNet-5-BN for 1x28x28 inputs (Fashion-MNIST, MNIST)."""
    return LeNet5BN(kind, eta=eta)


def resnet20(kind: str = "adder", eta=0.2) -> ResNetCifar:
    """CIFAR ResNet-20 (3 blocks per stage) in the reference layout."""
    return ResNetCifar(kind, 3, eta=eta)


def resnet32(kind: str = "adder", eta=0.2) -> ResNetCifar:
    """CIFAR ResNet-32 (5 blocks per stage) in the reference layout."""
    return ResNetCifar(kind, 5, eta=eta)


#: Builders by model name.
MODELS: dict[str, Callable[..., nn.Module]] = {
    "lenet5-bn": lenet5_bn,
    "resnet20": resnet20,
    "resnet32": resnet32,
}

#: Input shape ``(C, H, W)`` by model name.
INPUT_SHAPES: dict[str, tuple[int, int, int]] = {
    "lenet5-bn": (1, 28, 28),
    "resnet20": (3, 32, 32),
    "resnet32": (3, 32, 32),
}


def build_model(name: str, kind: str = "adder", eta=0.2) -> nn.Module:
    """Build the model called ``name`` (a key of :data:`MODELS`) of ``kind``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return MODELS[name](_check_kind(kind), eta=eta)
