"""Passes over a converted model (:class:`quant.convert.QuantGraph`).

A pass is a :class:`Transformation`: ``apply(graph) -> (graph, modified)``,
the graph left unchanged (passes build a new one).  The quantizer runs them
after :func:`quant.convert.convert` has built every layer
(:func:`quant.quantize.quantize_model`).

* :class:`BiasCorrection`: empirical bias correction.  On ``N`` calibration
  images, in layer order and with integer inputs from the layers already
  corrected, each compute layer's accumulators ``acc_o`` (golden
  :func:`quant.golden.layer_acc`) give the correction

      ``B_o' = B_o - (A_o * mean(acc_o) + B_o - mu_o)``

  where ``mu_o`` is the float model's mean of that channel before ReLU
  (:attr:`quant.calibrate.Calibration.chan_mean`, over the same images), so
  the mean of ``A_o*acc_o + B_o'`` equals ``mu_o``; the layer's requant is
  rebuilt from its :class:`quant.fold.LayerFold` with ``B'``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from quant import golden
from quant.calibrate import Calibration
from quant.convert import QuantGraph

__all__ = ["Transformation", "BiasCorrection"]


class Transformation:
    """A pass: :meth:`apply` returns ``(new graph, modified)``."""

    def apply(self, graph: QuantGraph) -> tuple[QuantGraph, bool]:  # pragma: no cover - interface
        raise NotImplementedError


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
            if layer.pe is not None and fold is not None and fold.pre_node in self.cal.chan_mean:
                acc = golden.layer_acc(layer, inputs[0])
                af = fold.affine
                mean_acc = acc.mean(axis=(0, 2))
                fold = fold.with_bias(af.b - (af.a * mean_acc + af.b - self.cal.chan_mean[fold.pre_node]))
                layer = dataclasses.replace(layer, requant=fold.requant())
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
