"""The network engine's implementation (DESIGN §4b): Amaranth blocks, Verilog and its metadata.

The architecture they implement lives in hwsim: the config
(:class:`hwsim.config.EngineConfig`), the compiler and memory map
(:mod:`hwsim.compiler`), the descriptor's fields (:mod:`hwsim.descriptor`),
sizing (:mod:`hwsim.sizing`), the word-level reference
(:mod:`hwsim.reference`) and the exact cycle contract (:mod:`hwsim.engine`).
"""

__all__: list = []
