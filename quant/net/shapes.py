"""Compute-layer shapes of a float torch model, seen in one forward pass (torch).

:func:`float_layer_shapes` records every adder and multiply layer of a model
with the shapes it sees, in execution order, as :class:`ComputeShape`
records whose ``kind`` is an integer-model kind; the op counts of
:mod:`quant.base.opcount` take them.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import torch
from torch import nn

from quant.base.intops import LayerKind
from quant.net.layers import AdderConv2d, AdderLinear

__all__ = ["ComputeShape", "float_layer_shapes"]


@dataclass(frozen=True)
class ComputeShape:
    """Shape of one compute layer of a float model, as seen in a forward pass.

    ``kind`` is an integer-model kind (:data:`quant.base.intops.COMPUTE_KINDS`);
    ``out_pixels`` is 1 for linear layers; ``in_elems`` counts the layer's
    input elements per image.
    """

    name: str
    kind: LayerKind
    out_channels: int
    out_pixels: int
    k: int
    in_elems: int


def float_layer_shapes(model, input_shape) -> list[ComputeShape]:
    """The compute layers of a float model (``quant.net.models``), in execution order.

    Every ``AdderConv2d``/``AdderLinear`` (adder layers) and ``nn.Conv2d``/
    ``nn.Linear`` (multiply layers) is recorded with the shapes it sees in one
    forward pass on zeros of ``[1, *input_shape]`` (eval mode; the training
    flag is restored); names are the module paths (``layer2.0.downsample.0``).
    """
    kinds = ((AdderConv2d, LayerKind.ADDER_CONV), (AdderLinear, LayerKind.ADDER_LINEAR),
             (nn.Conv2d, LayerKind.CONV), (nn.Linear, LayerKind.LINEAR))
    found: list[ComputeShape] = []
    hooks = []

    def hook(name, kind):
        def fn(mod, inputs, output):
            x = inputs[0]
            if kind.linear:
                o, p, k = output.shape[-1], 1, x.shape[-1]
            else:
                kh, kw = mod.kernel_size
                o, p, k = output.shape[1], output.shape[2] * output.shape[3], x.shape[1] * kh * kw
            found.append(ComputeShape(name=name, kind=kind, out_channels=int(o), out_pixels=int(p),
                                      k=int(k), in_elems=int(prod(x.shape[1:]))))
        return fn

    for name, mod in model.named_modules():
        for cls, kind in kinds:
            if isinstance(mod, cls):
                hooks.append(mod.register_forward_hook(hook(name, kind)))
                break
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1,) + tuple(input_shape)))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return found
