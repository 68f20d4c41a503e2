"""The quantizer: config, calibrate -> convert -> fold -> passes, rounding, groups, reports and the quantize/predict workflow (torch)."""

__all__: list[str] = []
