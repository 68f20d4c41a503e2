"""The C kernels' sources (adder layers, golden model, a shared thread pool) and their build machinery (:mod:`quant.base.native.build`: standard library only)."""

__all__: list[str] = []
