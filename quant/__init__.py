"""quant: float AdderNet layers and models, datasets, training, the quantizer,
the integer model file format and the golden integer model.

Kept light on import (no torch at import time): hwsim and the RTL side load
integer artifacts through ``quant.artifact`` / ``quant.golden`` (numpy only).
"""

__all__: list[str] = []
