"""rtl: Amaranth components of the adder-array accelerator, Verilog emission, synthesis.

Never imports torch; shares only ``hwsim.config.ArrayConfig`` with hwsim.
"""

__all__: list[str] = []
