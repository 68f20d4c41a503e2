"""Post-training quantisation of a float AdderNet into an :class:`~quant.intmodel.artifact.IntModel`.

A pipeline of small steps, each in its own module:

1. :func:`quant.quantizer.calibrate.trace` (adder layers are leaves) and
   :func:`quant.quantizer.calibrate.calibrate` (ranges, percentiles, channel means);
2. :func:`quant.quantizer.convert.convert`: the graph in execution order, one handler
   per node kind, every requant built by :mod:`quant.quantizer.fold`;
3. passes (:mod:`quant.quantizer.passes`): :class:`~quant.quantizer.passes.OutputRounding` when
   ``rounding`` is ``"greedy"`` (bias correction included, layer by layer),
   else :class:`~quant.quantizer.passes.BiasCorrection` when ``bias_correction`` is set.

Formulas (DESIGN section 2):

* **Shared scale per adder layer.**  The input of every adder layer is
  quantised to unsigned ``act_bits`` codes ``x = s*(x_q - z)``; ``s, z`` come
  from the calibrated range of that tensor: ``[0, pct_P]`` when it is
  non-negative (post-ReLU), else ``[pct_(100-P), pct_P]``, with ``P`` given
  or (default) chosen per tensor from :data:`quant.quantizer.calibrate.AUTO_PERCENTILES` by the
  smallest quantise-dequantise MSE.  The layer's weights use the same ``s, z``.
* **Exact clamp.**  Weight codes ``w/s + z`` are clamped to ``[0, 2**A-1]``;
  the per-channel compensation ``C_o = sum_k dist(w_ok/s + z, [0, 2**A-1])``
  is exact (:func:`quant.base.intops.exact_clamp`) and goes into the bias, so
  ``sum_k |x - w| = s * (acc + C_o)`` with ``acc = sum_k |x_q - w_q|`` up to
  the rounding of ``w_q``.  With ``bits < act_bits`` the weights are rounded
  to every ``2**(act_bits-bits)``-th code (``bits``-bit weights on the
  activation grid); ``layer_bits`` gives named layers their own ``bits``.
* **Folding.**  Adder output ``-s*(acc + C_o) + bias``, then BatchNorm (eval
  statistics), give ``y_o = A_o*acc + B_o``; ReLU and the next tensor's
  quantiser give ``q = clamp(round(y_o/s' + z'), lo, hi)`` (``lo = z'`` with
  ReLU), written as fixed point ``clamp((m*acc + n) >> shift, lo, hi)`` with
  ``m`` a signed ``mult_bits`` integer (:func:`quant.base.intops.fixed_point_params`),
  or as thresholds derived exactly from that fixed-point form.
* **Rounding of adder weights** (``rounding``): ``"nearest"`` as above, or
  ``"greedy"``: each weight rounded down or up on its grid, chosen by
  coordinate descent to minimise the layer's output error
  ``sum_p (r_po - mean r_o)**2``, ``r_po = sum_k |x_pk - w_ok| - t_po``, on
  ``rounding_patches`` samples of the first ``bias_correction_images``
  calibration images (:mod:`quant.quantizer.rounding`, :class:`quant.quantizer.passes.OutputRounding`,
  which also applies bias correction, layer by layer).
* **Multiply layers** (``nn.Conv2d``/``nn.Linear``: the ResNet stem and
  classifier): int8 signed symmetric per-channel weights, int8 signed inputs
  with zero point 0, ``y_o = s_x*s_w[o]*acc + bias``.
* **Bias correction** (default on): ``B_o`` is shifted so that the mean of
  ``A_o*acc_o + B_o`` on calibration images, with integer inputs from the
  layers already quantised, equals the float model's per-channel mean.
* **Residual adds** requantise both inputs into one fixed-point sum
  ``clamp((m_a*a + m_b*b + n) >> shift, lo, hi)``; the branch that ends in BN
  (no ReLU) is kept as signed ``mid_bits`` codes first.
* **Average pooling** sums the window in integers and requantises the sum.
* **Logits** are signed ``logit_bits`` fixed-point codes (zero point 0, scale
  twice the calibrated maximum over ``2**(logit_bits-1)-1``), in both modes.

* **Group-shared scales** (``groups = G > 1``, AdderQuant): each adder
  layer's output channels are clustered into ``G`` groups by weight range
  (optimal 1-D k-means, :mod:`quant.quantizer.groups`); group ``g`` has its own scale
  ``s_g`` (range chosen by quantised ``|x - w|`` error on calibration
  samples) for its weights and its copy of the input.  The producer emits
  one set of codes, ``act_bits + 4`` bits wide (at most 16), and the adder
  layer re-scales them once per group in integers,
  ``x_g = clamp((m_g*x + n_g) >> shift, 0, 2**act_bits - 1)``
  (:class:`quant.intmodel.artifact.GroupScales`).  ``G = 1`` is the single-scale
  model above, unchanged.
"""

from __future__ import annotations

import numpy as np
from torch import fx, nn

from quant.intmodel.artifact import IntModel
from quant.quantizer.calibrate import calibrate, is_adder_module, trace
from quant.quantizer.config import QuantConfig
from quant.quantizer.convert import convert
from quant.quantizer.passes import BiasCorrection, OutputRounding
from quant.quantizer.rounding import Rounding

__all__ = ["adder_layer_names", "check_layer_bits", "quantize_model"]


def adder_layer_names(model: nn.Module) -> list[str]:
    """Names of the adder layers of ``model`` in execution order (module paths; :func:`quant.quantizer.calibrate.trace`)."""
    gm = trace(model) if not isinstance(model, fx.GraphModule) else model
    names = [str(n.target) for n in gm.graph.nodes
             if n.op == "call_module" and is_adder_module(gm.get_submodule(n.target))]
    return list(dict.fromkeys(names))


def check_layer_bits(model: nn.Module, cfg: QuantConfig, *, what: str = "layer_bits") -> None:
    """Refuse ``cfg.layer_bits`` names that are not adder layers of ``model`` (``what`` names the setting)."""
    names = adder_layer_names(model)
    for name, _ in cfg.layer_bits:
        if name not in names:
            raise ValueError(f"{what} names unknown layer {name!r} (adder layers: {', '.join(names) or 'none'})")


def quantize_model(
    model: nn.Module,
    calib_images: np.ndarray,
    *,
    mean,
    std,
    cfg: QuantConfig,
    name: str = "model",
    dataset: str = "",
    class_names=(),
    source: dict | None = None,
    seed: int = 0,
) -> tuple[IntModel, dict]:
    """Quantise a float model into an integer model.

    Parameters
    ----------
    model : torch.nn.Module
        Float model in eval mode taking normalised images.
    calib_images : numpy.ndarray
        Calibration images ``[N, C, H, W]`` in 0..1 (before normalisation).
    mean, std : sequence of float
        Input normalisation.
    cfg : QuantConfig

    Returns
    -------
    (IntModel, dict)
        The integer model and ``{int layer name: float FX node name}`` (the
        float tensor each layer's output codes approximate; for SQNR).
    """
    imgs = np.asarray(calib_images, dtype=np.float32)
    if imgs.ndim != 4 or imgs.shape[0] < 1:
        raise ValueError(f"calibration images must be a non-empty [N, C, H, W] array, not shape {imgs.shape}")
    model = model.eval()
    gm = trace(model)
    check_layer_bits(gm, cfg)
    n_bc = min(imgs.shape[0], cfg.bias_correction_images)
    cal = calibrate(gm, imgs, mean, std, seed=seed, mean_images=n_bc)
    graph = convert(gm, cal, cfg, mean, std)
    if cfg.rounding == Rounding.GREEDY:  # rounds and (with bias correction) corrects layer by layer
        graph, _ = OutputRounding(gm, imgs[:n_bc], mean, std, patches=cfg.rounding_patches, seed=seed,
                                  cal=cal if cfg.bias_correction else None).apply(graph)
    elif cfg.bias_correction:
        graph, _ = BiasCorrection(cal, imgs[:n_bc]).apply(graph)
    im = IntModel(
        name=name,
        dataset=dataset,
        input=graph.input,
        input_shape=graph.input_shape,
        layers=graph.layers,
        class_names=tuple(class_names),
        source=dict(source or {}),
        quantization={**cfg.to_dict(), "calib_images": int(imgs.shape[0]), "seed": seed},
    )
    return im, dict(graph.float_node)
