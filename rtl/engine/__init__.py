"""The network engine (DESIGN §4b, dataflow ``cp``): compiler, numpy reference, blocks.

* :mod:`hwsim.compiler`: the compiler ``IntModel -> (Program, WeightStream)``
  (layer descriptors, the memory map of the activation regions, the weight
  stream in engine K order with the per-tile requant parameters);
* :mod:`rtl.engine.addrgen`: window address generation (numpy reference of
  the address generator);
* :mod:`hwsim.reference`: the numpy model of the whole engine, executed
  as the hardware does (words, weight words, row trees, requant per row) with
  every counter the RTL exposes.

The engine's configuration is :class:`hwsim.config.EngineConfig`; its
cycle contract is the docstring of :mod:`hwsim.engine`.
"""

__all__: list = []
