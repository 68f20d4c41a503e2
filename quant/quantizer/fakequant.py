"""Fake-quant PyTorch model built from an integer artifact; equal to the golden model.

Each layer receives the *dequantised* tensor ``s*(q - z)`` (float64), recovers
the integer codes with the same ``to_int`` (:func:`to_int`, exact for
dequantised codes), accumulates with torch kernels (``F.unfold`` +
``torch.cdist(p=1)`` for adder layers, a float64 matmul for multiply layers:
float64 holds every partial sum exactly, asserted below ``2**53``), and
re-quantises through :mod:`quant.base.intops` — the code path the golden model
uses, so the two cannot drift (Brevitas' ``to_int`` idea).  The input
quantiser is :func:`quant.base.intops.quantize_input`, also shared.  An adder
layer with group-shared scales re-scales its (padded) input codes per group
with :meth:`quant.intmodel.artifact.GroupScales.codes` (``intops.requant_fixed``)
and accumulates each group's channels over its own copy.

``FakeQuantModel(int_model)(images)`` returns real logits (float64);
:meth:`FakeQuantModel.forward_int` the integer logits.  Inference only.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from quant.base import intops
from quant.intmodel.artifact import (
    AddLayer,
    AdderLayer,
    AvgPoolLayer,
    ComputeLayer,
    FlattenLayer,
    IntLayer,
    IntModel,
    MaxPoolLayer,
)
from quant.base.intops import PeKind, RequantMode

__all__ = ["FakeQuantModel", "FakeQuantLayer", "to_int", "from_int"]

_EXACT = float(1 << 53)


def to_int(x: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """Codes of a dequantised tensor: ``rint(x / scale) + zero_point`` (int64)."""
    return torch.round(x / scale).to(torch.int64) + int(zero_point)


def from_int(q, scale: float, zero_point: int) -> torch.Tensor:
    """``scale * (q - zero_point)`` as float64 (via :func:`quant.base.intops.dequantize`)."""
    arr = q.numpy() if isinstance(q, torch.Tensor) else q
    return torch.from_numpy(intops.dequantize(arr, scale, zero_point))


def _requant(acc: torch.Tensor, rq) -> torch.Tensor:
    a = acc.numpy()
    if rq.mode == RequantMode.FIXED:
        q = intops.requant_fixed(a, rq.m, rq.n, rq.shift, rq.lo, rq.hi)
    else:
        q = intops.requant_threshold(a, rq.thr, rq.neg, rq.out_bits)
    return torch.from_numpy(np.ascontiguousarray(q))


class FakeQuantLayer(nn.Module):
    """One integer layer as a torch module on dequantised float64 tensors.

    Parameters
    ----------
    layer : IntLayer
        The artifact layer.
    in_quant : list of (scale, zero_point)
        Quantisation of each input tensor (from the producing layers).
    """

    def __init__(self, layer: IntLayer, in_quant: list):
        super().__init__()
        self.layer = layer
        self.in_quant = list(in_quant)
        if isinstance(layer, ComputeLayer):
            self.register_buffer("weight_q", torch.from_numpy(np.asarray(layer.weight, dtype=np.int64).copy()))
        if isinstance(layer, (MaxPoolLayer, FlattenLayer)):
            self.out_quant = self.in_quant[0]
        else:
            self.out_quant = (layer.requant.out_scale, layer.requant.out_zero_point)

    def _acc(self, q: torch.Tensor) -> torch.Tensor:
        layer = self.layer
        n = q.shape[0]
        x = q.reshape(n, -1, 1, 1) if len(layer.in_shape) == 1 else q
        p = layer.padding
        x = F.pad(x.to(torch.float64), (p, p, p, p), value=float(layer.in_zero_point)) if p else x.to(torch.float64)
        cols = F.unfold(x, layer.kernel, stride=layer.stride)  # [N, K, P], k = c*kh*kw + i*kw + j
        sg = layer.scale_groups if isinstance(layer, AdderLayer) else None
        if sg is not None:  # group g: its channels over its re-scaled copy of the (padded) input codes
            codes = torch.round(cols).to(torch.int64).numpy()
            acc = torch.empty((n, layer.out_channels, cols.shape[2]), dtype=torch.int64)
            for g in range(sg.count):
                rows = torch.from_numpy(sg.channels(g))
                xg = torch.from_numpy(sg.codes(codes, layer.bits, g)).to(torch.float64)
                acc[:, rows] = self._adder_sum(xg, self.weight_q[rows].to(torch.float64))
            return acc
        w = self.weight_q.to(torch.float64)
        if layer.pe == PeKind.ADDER:
            return self._adder_sum(cols, w)
        bound = layer.K * float(cols.abs().max()) * float(w.abs().max()) if cols.numel() else 0.0
        assert bound < _EXACT, "multiply partial sums exceed float64's exact range"
        acc = torch.matmul(w, cols)
        return torch.round(acc).to(torch.int64).contiguous()

    def _adder_sum(self, cols: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``sum_k |cols[n, k, p] - w[o, k]|`` as int64 ``[N, O, P]`` (float64 cdist, exact below 2**53)."""
        n = cols.shape[0]
        bound = self.layer.K * (float(cols.abs().max()) + float(w.abs().max())) if cols.numel() else 0.0
        assert bound < _EXACT, "adder partial sums exceed float64's exact range"
        acc = torch.cdist(cols.transpose(1, 2).contiguous(), w.unsqueeze(0).expand(n, -1, -1).contiguous(), p=1.0)
        acc = acc.transpose(1, 2)  # [N, O, P]
        return torch.round(acc).to(torch.int64).contiguous()

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        layer = self.layer
        qs = [to_int(x, s, z) for x, (s, z) in zip(xs, self.in_quant)]
        n = qs[0].shape[0]
        if isinstance(layer, ComputeLayer):
            q = _requant(self._acc(qs[0]), layer.requant).reshape((n,) + layer.out_shape)
        elif isinstance(layer, MaxPoolLayer):
            return F.max_pool2d(xs[0], layer.kernel, layer.stride, layer.padding)
        elif isinstance(layer, AvgPoolLayer):
            # window sums of the codes; padded positions hold the code 0 (interfaces §4.3)
            s = F.avg_pool2d(qs[0].to(torch.float64), layer.kernel, layer.stride, layer.padding,
                             count_include_pad=True, divisor_override=1)
            rq = layer.requant
            q = torch.from_numpy(intops.requant_fixed(torch.round(s).to(torch.int64).numpy(), rq.m, rq.n, rq.shift, rq.lo, rq.hi))
        elif isinstance(layer, AddLayer):
            rq = layer.requant
            q = torch.from_numpy(intops.requant_add(qs[0].numpy(), qs[1].numpy(), rq.m, rq.n, rq.shift, rq.lo, rq.hi))
        elif isinstance(layer, FlattenLayer):
            return xs[0].reshape(n, -1)
        else:  # pragma: no cover - every layer class is above
            raise ValueError(f"unknown layer class {type(layer).__name__}")
        return from_int(q, *self.out_quant)


class FakeQuantModel(nn.Module):
    """The artifact as a PyTorch module (inference; outputs equal :func:`quant.intmodel.golden.run`)."""

    def __init__(self, model: IntModel):
        super().__init__()
        self.int_model = model
        inp = model.input
        quant = {"input": (inp.scale, inp.zero_point)}
        self.order = []
        self.layer_modules = nn.ModuleDict()
        for i, layer in enumerate(model.layers):
            mod = FakeQuantLayer(layer, [quant[s] for s in layer.inputs])
            key = f"l{i}"
            self.layer_modules[key] = mod
            self.order.append((key, layer))
            quant[layer.name] = mod.out_quant
        self.out_quant = quant[model.output.name]

    def forward_all(self, images) -> dict:
        """Dequantised outputs of every layer (float64 tensors) for images in 0..1."""
        arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
        q = intops.quantize_input(arr, self.int_model.input)
        vals = {"input": from_int(q, self.int_model.input.scale, self.int_model.input.zero_point)}
        with torch.no_grad():
            for key, layer in self.order:
                vals[layer.name] = self.layer_modules[key](*[vals[s] for s in layer.inputs])
        return vals

    def forward(self, images) -> torch.Tensor:
        """Real logits (float64) ``out_scale * (q - out_zero_point)``."""
        return self.forward_all(images)[self.int_model.output.name]

    def forward_int(self, images) -> torch.Tensor:
        """Integer logits (int64)."""
        return to_int(self.forward(images), *self.out_quant)
