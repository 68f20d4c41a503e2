"""verification: cocotb testbenches proving the generated Verilog bit-exact
against the golden integer model and cycle-exact against hwsim.

Light on import; cocotb modules live under ``verification/tb`` and are loaded
by the simulator, not by pytest.
"""

__all__: list[str] = []
