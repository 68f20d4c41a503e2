"""Settings of the post-training quantizer (numpy only, no torch): :class:`QuantConfig`.

Below the pipeline that reads it (:mod:`quant.quantizer.quantize`, :mod:`quant.quantizer.convert`,
:mod:`quant.quantizer.passes`, :mod:`quant.quantizer.report`, :mod:`quant.quantizer.workflow`), so every
one of them imports it and none imports another for it.  The formulas the
settings enter are in :mod:`quant.quantizer.quantize`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from quant.base.intops import MAX_BITS, MIN_BITS, RequantMode, check_int
from quant.quantizer.rounding import DEFAULT_ROUNDING, Rounding, resolve_rounding

__all__ = ["QuantConfig"]


@dataclass(frozen=True, kw_only=True)
class QuantConfig:
    """Settings of the post-training quantizer.

    Parameters
    ----------
    bits : int
        Weight bits of adder layers (2..16).
    layer_bits : mapping or sequence of (str, int)
        Per-layer weight bits overriding ``bits``: ``{adder layer name: bits}``
        (the module path, the integer model's layer name, e.g. ``"conv2"``),
        each in 2..``act_bits``; kept as a tuple of ``(name, bits)`` pairs
        sorted by name (a dict in :meth:`to_dict`).  Names that are not adder
        layers of the model are refused by :func:`check_layer_bits`.
    act_bits : int or None
        Activation bits of adder layers (operand width; ``bits`` when None;
        must be >= ``bits``).
    percentile : float or None
        Activation clipping percentile in (50, 100]; None chooses, per
        tensor, the candidate of :data:`quant.quantizer.calibrate.AUTO_PERCENTILES` whose
        quantise-dequantise mean squared error on the calibration samples is
        smallest (at the tensor's own bit width).
    requant : RequantMode or {"fixed", "threshold"}
        Requant form of adder layers whose output feeds another layer as
        ``act_bits`` codes (others are always fixed point).
    logits : RequantMode or {"fixed", "threshold"}
        Requant form of the logits layer: signed ``logit_bits`` fixed-point
        codes, or unsigned ``act_bits`` codes (zero point and scale from the
        calibrated, clipped range) made by thresholds, which needs an adder
        layer; with ``requant="threshold"`` too the integer model has no
        multiply at all.
    groups : int
        Scale groups per adder layer (1: one shared scale; at most the
        layer's output channels, else the layer is refused by name).
    mult_bits : int
        Signed width of the fixed-point multiplier ``m``.
    mult_layer_bits : int
        Operand bits of multiply layers (int8).
    mid_bits, logit_bits : int
        Signed widths of residual-branch intermediates and of the logits.
    max_shift : int
        Largest fixed-point shift.
    bias_correction : bool
        Empirical bias correction: per output channel, shift ``B_o`` so that
        the mean of ``A_o*acc_o + B_o`` over the first
        ``bias_correction_images`` calibration images (integer inputs from the
        already quantised layers) equals the float model's mean there.
    bias_correction_images : int
        Images used for bias correction.
    rounding : Rounding or {"auto", "nearest", "greedy"}
        Rounding of adder weight codes (:mod:`quant.quantizer.rounding`): to nearest,
        or each weight down or up, whichever lowers the layer's output
        error on calibration patches; ``"auto"`` (default) is resolved here,
        to ``"greedy"`` when ``act_bits <= 4``
        (:data:`quant.quantizer.rounding.AUTO_GREEDY_MAX_BITS`), else ``"nearest"``.
    rounding_patches : int
        (Image, position) samples per layer of ``"greedy"`` rounding, drawn
        from the first ``bias_correction_images`` calibration images.
    """

    bits: int = 8
    layer_bits: tuple = ()
    act_bits: int | None = None
    percentile: float | None = None
    requant: RequantMode = RequantMode.FIXED
    logits: RequantMode = RequantMode.FIXED
    groups: int = 1
    mult_bits: int = 16
    mult_layer_bits: int = 8
    mid_bits: int = 16
    logit_bits: int = 16
    max_shift: int = 40
    bias_correction: bool = True
    bias_correction_images: int = 256
    rounding: Rounding = DEFAULT_ROUNDING
    rounding_patches: int = 4096

    def __post_init__(self) -> None:
        def _int(name, lo, hi):
            check_int(name, getattr(self, name), lo, hi)

        _int("bits", MIN_BITS, MAX_BITS)
        if self.act_bits is None:
            object.__setattr__(self, "act_bits", self.bits)
        _int("act_bits", MIN_BITS, MAX_BITS)
        if self.act_bits < self.bits:
            raise ValueError(f"act_bits ({self.act_bits}) must be >= bits ({self.bits}): weights share the activation grid")
        self._check_layer_bits()
        if self.percentile is not None and not (
            isinstance(self.percentile, (int, float)) and not isinstance(self.percentile, bool) and 50 < self.percentile <= 100
        ):
            raise ValueError(f"percentile must be in (50, 100], not {self.percentile!r}")
        for name in ("requant", "logits"):
            if getattr(self, name) not in tuple(RequantMode):
                raise ValueError(f"{name} must be fixed or threshold, not {getattr(self, name)!r}")
            object.__setattr__(self, name, RequantMode(getattr(self, name)))
        _int("groups", 1, 1 << 16)
        _int("mult_bits", 2, 32)
        _int("mult_layer_bits", MIN_BITS, MAX_BITS)
        _int("mid_bits", 2, 32)
        _int("logit_bits", 2, 32)
        _int("max_shift", 0, 62)
        _int("bias_correction_images", 1, 1 << 20)
        object.__setattr__(self, "rounding", resolve_rounding(self.rounding, self.act_bits))
        _int("rounding_patches", 1, 1 << 24)

    def _check_layer_bits(self) -> None:
        pairs = self.layer_bits
        if isinstance(pairs, Mapping):
            pairs = pairs.items()
        try:
            pairs = [(name, b) for name, b in pairs]
        except (TypeError, ValueError):
            raise ValueError(f"layer_bits must be a mapping of layer name to bits, not {self.layer_bits!r}") from None
        for name, b in pairs:
            if not isinstance(name, str) or not name:
                raise ValueError(f"layer_bits names must be non-empty strings, not {name!r}")
            check_int(f"weight bits of layer {name!r}", b, MIN_BITS, MAX_BITS)
            if b > self.act_bits:
                raise ValueError(f"weight bits of layer {name!r} ({b}) must be <= act_bits ({self.act_bits}): "
                                 "weights share the activation grid")
        if len({name for name, _ in pairs}) != len(pairs):
            raise ValueError(f"layer_bits names a layer twice: {self.layer_bits!r}")
        object.__setattr__(self, "layer_bits", tuple(sorted(pairs)))

    def weight_bits(self, layer: str) -> int:
        """Weight bits of the adder layer ``layer``: its ``layer_bits`` entry, else ``bits``."""
        return dict(self.layer_bits).get(layer, self.bits)

    def to_dict(self) -> dict:
        """The settings as JSON values (modes as their strings; ``layer_bits`` a dict)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d.update({k: v.value for k, v in d.items() if isinstance(v, enum.Enum)})
        d["layer_bits"] = dict(self.layer_bits)
        return d
