"""quant: float AdderNet layers and models, datasets, training, the quantizer,
the integer model file format and the golden integer model.

Kept light on import (no torch at import time): hwsim and the RTL side load
integer artifacts through ``quant.artifact`` / ``quant.golden`` (numpy only).

The ground floor of the whole project lives here (DESIGN §1), importable
without torch: :mod:`quant.intops` (integer widths and code ranges, the
accumulator width, conv output sizes, the kind and mode enums ``LayerKind``,
``PeKind``, ``RequantMode``, and the one integer rounding/requant code path) and :mod:`quant.files` (atomic writes, staged
output folders, digests, tool versions; standard library only).  Nothing in
``quant`` imports hwsim, rtl or verification.

The quantizer, in pipeline order, with its settings below it in
:mod:`quant.config` (``QuantConfig``, torch-free): :mod:`quant.calibrate` (tracing,
calibration, float helpers), :mod:`quant.convert` (one handler per node
kind), :mod:`quant.fold` (BN/ReLU folding and the one fixed-point requant
builder), :mod:`quant.passes` (bias correction), :mod:`quant.quantize`
(``quantize_model``), :mod:`quant.report` (the report
dataclass) and :mod:`quant.workflow` (what ``quantize``/``predict`` do).
"""

__all__: list[str] = []
