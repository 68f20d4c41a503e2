"""The float network: adder layers, their C kernels, models (torch)."""

__all__: list[str] = []
