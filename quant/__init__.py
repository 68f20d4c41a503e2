"""quant: float AdderNet layers and models, datasets, training, the quantizer,
the integer model file format and the golden integer model.

Kept light on import (no torch at import time): hwsim and the RTL side load
integer artifacts through ``quant.intmodel.artifact`` / ``quant.intmodel.golden`` (numpy only).

The ground floor of the whole project lives here (DESIGN §1), importable
without torch: :mod:`quant.base.intops` (integer widths and code ranges, the
accumulator width, conv output sizes, the kind and mode enums ``LayerKind``,
``PeKind``, ``RequantMode``, and the one integer rounding/requant code path) and :mod:`quant.base.files` (atomic writes, staged
output folders, digests, tool versions; standard library only).  Nothing in
``quant`` imports hwsim, rtl or verification.

The quantizer, in pipeline order, with its settings below it in
:mod:`quant.quantizer.config` (``QuantConfig``, torch-free): :mod:`quant.quantizer.calibrate` (tracing,
calibration, float helpers), :mod:`quant.quantizer.convert` (one handler per node
kind), :mod:`quant.quantizer.fold` (BN/ReLU folding and the one fixed-point requant
builder), :mod:`quant.quantizer.passes` (bias correction), :mod:`quant.quantizer.quantize`
(``quantize_model``), :mod:`quant.quantizer.report` (the report
dataclass) and :mod:`quant.quantizer.workflow` (what ``quantize``/``predict`` do).
"""

__all__: list[str] = []
