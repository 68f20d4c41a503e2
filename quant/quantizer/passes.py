"""Passes over a converted model (:class:`quant.quantizer.convert.QuantGraph`).

A pass is a :class:`Transformation`: ``apply(graph) -> (graph, modified)``,
the graph left unchanged (passes build a new one).  The quantizer runs them
after :func:`quant.quantizer.convert.convert` has built every layer
(:func:`quant.quantizer.quantize.quantize_model`).

* :class:`BiasCorrection`: empirical bias correction.  On ``N`` calibration
  images, in layer order and with integer inputs from the layers already
  corrected, each compute layer's accumulators ``acc_o`` (golden
  :func:`quant.intmodel.golden.layer_acc`) give the correction

      ``B_o' = B_o - (A_o * mean(acc_o) + B_o - mu_o)``

  where ``mu_o`` is the float model's mean of that channel before ReLU
  (:attr:`quant.quantizer.calibrate.Calibration.chan_mean`, over the same images), so
  the mean of ``A_o*acc_o + B_o'`` equals ``mu_o``; the layer's requant is
  rebuilt from its :class:`quant.quantizer.fold.LayerFold` with ``B'``.
* :class:`OutputRounding`: weight rounding chosen per weight to minimise
  each adder layer's output error (:func:`quant.quantizer.rounding.round_to_output`).
  In layer order, on ``N`` calibration images: the layer's integer input
  codes (from the layers already rounded) and the float model's input of
  the layer (its FX node, in the same codes: ``x/s + z``, per group with
  group-shared scales), both at ``patches`` seeded (image, position) samples;
  the target is ``t_po = sum_k |x^f_pk - c_ok|`` with ``c`` the real weight
  codes (:attr:`quant.quantizer.convert.QuantGraph.real_weights`).  Only weights
  change: ``A``, ``B`` and the requant stay (the compensation ``C_o`` is
  that of the exact clamp, not of the rounding).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from quant.intmodel import golden
from quant.intmodel.artifact import AdderLayer, ComputeLayer
from quant.quantizer.calibrate import Calibration, float_node_map
from quant.quantizer.convert import QuantGraph
from quant.quantizer.rounding import l1_sums, patches_at, round_to_output

__all__ = ["Transformation", "bias_corrected", "BiasCorrection", "OutputRounding"]


class Transformation:
    """A pass: :meth:`apply` returns ``(new graph, modified)``."""

    def apply(self, graph: QuantGraph) -> tuple[QuantGraph, bool]:  # pragma: no cover - interface
        raise NotImplementedError


def bias_corrected(layer, fold, acc: np.ndarray, chan_mean: np.ndarray):
    """``(layer, fold)`` with ``B_o' = B_o - (A_o * mean(acc_o) + B_o - mu_o)`` (module docstring), requant rebuilt.

    ``acc`` is ``[N, O, P]``; ``chan_mean`` the float per-channel means ``mu``.
    """
    af = fold.affine
    fold = fold.with_bias(af.b - (af.a * acc.mean(axis=(0, 2)) + af.b - chan_mean))
    return dataclasses.replace(layer, requant=fold.requant()), fold


class BiasCorrection(Transformation):
    """Shift each compute layer's ``B`` so its mean output matches the float model (module docstring).

    Parameters
    ----------
    cal : Calibration
        Holds ``chan_mean`` over ``images`` (``calibrate(..., mean_images=len(images))``).
    images : numpy.ndarray
        Float images ``[N, C, H, W]`` in 0..1, the first ``N`` calibration images.
    """

    def __init__(self, cal: Calibration, images: np.ndarray):
        imgs = np.asarray(images)
        if imgs.ndim < 2 or imgs.shape[0] < 1:
            raise ValueError(f"bias correction needs a non-empty batch of images, not shape {imgs.shape}")
        self.cal = cal
        self.images = imgs

    def apply(self, graph: QuantGraph) -> tuple[QuantGraph, bool]:
        last_use = {}
        for i, layer in enumerate(graph.layers):
            for src in layer.inputs:
                last_use[src] = i
        codes = {"input": golden.quantize_input(self.images, graph.input)}
        layers, folds = [], dict(graph.folds)
        modified = False
        for i, layer in enumerate(graph.layers):
            inputs = [codes[s] for s in layer.inputs]
            fold = folds.get(layer.name)
            if isinstance(layer, ComputeLayer) and fold is not None and fold.pre_node in self.cal.chan_mean:
                acc = golden.layer_acc(layer, inputs[0])
                layer, fold = bias_corrected(layer, fold, acc, self.cal.chan_mean[fold.pre_node])
                folds[layer.name] = fold
                modified = True
                out = golden.requant(acc, layer.requant).reshape((acc.shape[0],) + layer.out_shape)
            else:
                out = golden.run_layer(layer, inputs)
            codes[layer.name] = out
            layers.append(layer)
            for src in layer.inputs:
                if last_use[src] == i:
                    codes.pop(src, None)
        return dataclasses.replace(graph, layers=tuple(layers), folds=folds), modified


class OutputRounding(Transformation):
    """Round each adder layer's weights to minimise its output error on calibration patches (module docstring).

    Parameters
    ----------
    gm : torch.fx.GraphModule
        The traced float model (:func:`quant.quantizer.calibrate.trace`) the graph was converted from.
    images : numpy.ndarray
        Float images ``[N, C, H, W]`` in 0..1.
    mean, std : sequence of float
        Input normalisation.
    patches : int
        (Image, output position) samples per layer (all of them when fewer).
    sweeps : int
        Passes of the coordinate descent (:func:`quant.quantizer.rounding.round_to_output`).
    seed : int
        Seed of the samples.
    cal : Calibration or None
        With per-channel means over ``images``
        (:attr:`~quant.quantizer.calibrate.Calibration.chan_mean`): every compute layer
        is also bias corrected (:func:`bias_corrected`, as
        :class:`BiasCorrection` does, which then need not run) before the
        next layer's inputs are computed, so later layers are rounded for
        the inputs they will see (the rounding moves channel means, which
        the error ``E_o`` ignores).
    """

    def __init__(self, gm, images: np.ndarray, mean, std, *, patches: int = 4096, sweeps: int = 3, seed: int = 0,
                 cal: Calibration | None = None):
        imgs = np.asarray(images)
        if imgs.ndim < 2 or imgs.shape[0] < 1:
            raise ValueError(f"output rounding needs a non-empty batch of images, not shape {imgs.shape}")
        if not isinstance(patches, int) or isinstance(patches, bool) or patches < 1:
            raise ValueError(f"patches must be a positive integer, not {patches!r}")
        self.gm, self.images, self.mean, self.std = gm, imgs, mean, std
        self.patches, self.sweeps, self.seed = patches, sweeps, seed
        self.cal = cal

    def _samples(self, graph: QuantGraph, todo) -> dict:
        rng = np.random.default_rng(self.seed)
        n = self.images.shape[0]
        out = {}
        for layer in graph.layers:
            if layer.name not in todo:
                continue
            per = int(np.prod(layer.out_shape[1:])) if len(layer.out_shape) == 3 else 1
            flat = np.sort(rng.choice(n * per, size=min(self.patches, n * per), replace=False))
            out[layer.name] = (flat // per, flat % per)
        return out

    def _float_patches(self, graph: QuantGraph, todo, samples) -> dict:
        """``{layer: real float input patches [M, K]}`` from one float pass (padding reads real 0)."""
        placeholder = next(nd.name for nd in self.gm.graph.nodes if nd.op == "placeholder")
        users: dict = {}
        for layer in graph.layers:
            if layer.name in todo:
                src = layer.inputs[0]
                users.setdefault(placeholder if src == "input" else graph.float_node[src], []).append(layer)

        def extractor(layers):
            def fn(a):
                return {lay.name: patches_at(a.reshape((a.shape[0],) + lay.in_shape), lay.kernel, lay.stride,
                                             lay.padding, 0.0, *samples[lay.name]) for lay in layers}
            return fn

        got = float_node_map(self.gm, self.images, self.mean, self.std, {k: extractor(v) for k, v in users.items()})
        return {name: p for d in got.values() for name, p in d.items()}

    def _round(self, layer, xq, xr, real) -> np.ndarray:
        step = 1 << (layer.bits - layer.weight_bits)
        wmax = step * ((1 << layer.weight_bits) - 1)
        clamped = np.clip(real, 0.0, float((1 << layer.bits) - 1))
        sg = layer.scale_groups
        if sg is None:
            parts = [(np.arange(layer.out_channels), xq, xr / layer.in_scale + layer.in_zero_point)]
        else:
            parts = [(sg.channels(g), golden.group_codes(layer, xq, g), xr / sg.scale[g] + sg.zero_point[g])
                     for g in range(sg.count)]
        w = np.array(layer.weight, dtype=np.int64)
        for rows, xg, xf in parts:
            w[rows] = round_to_output(clamped[rows], xg, l1_sums(xf, real[rows]), step, wmax, sweeps=self.sweeps)
        return w

    def apply(self, graph: QuantGraph) -> tuple[QuantGraph, bool]:
        todo = {layer.name for layer in graph.layers if isinstance(layer, AdderLayer) and layer.name in graph.real_weights}
        if not todo:
            return graph, False
        samples = self._samples(graph, todo)
        fpatch = self._float_patches(graph, todo, samples)
        last_use = {}
        for i, layer in enumerate(graph.layers):
            for src in layer.inputs:
                last_use[src] = i
        n = self.images.shape[0]
        codes = {"input": golden.quantize_input(self.images, graph.input)}
        layers, folds = [], dict(graph.folds)
        modified = False
        for i, layer in enumerate(graph.layers):
            inputs = [codes[s] for s in layer.inputs]
            out = None
            if layer.name in todo:
                xq = patches_at(inputs[0].reshape((n,) + layer.in_shape), layer.kernel, layer.stride, layer.padding,
                                layer.in_zero_point, *samples[layer.name])
                w = self._round(layer, xq, fpatch[layer.name], graph.real_weights[layer.name])
                if not np.array_equal(w, layer.weight):
                    layer = dataclasses.replace(layer, weight=w)
                    modified = True
            fold = folds.get(layer.name)
            if self.cal is not None and isinstance(layer, ComputeLayer) and fold is not None and fold.pre_node in self.cal.chan_mean:
                acc = golden.layer_acc(layer, inputs[0])
                layer, folds[layer.name] = bias_corrected(layer, fold, acc, self.cal.chan_mean[fold.pre_node])
                out = golden.requant(acc, layer.requant).reshape((n,) + layer.out_shape)
                modified = True
            codes[layer.name] = golden.run_layer(layer, inputs) if out is None else out
            layers.append(layer)
            for src in layer.inputs:
                if last_use[src] == i:
                    codes.pop(src, None)
        return dataclasses.replace(graph, layers=tuple(layers), folds=folds), modified
