"""rtl: the network engine's implementation (Amaranth), Verilog emission and its metadata, the PE study, synthesis.

Modules:

* :mod:`rtl.engine` — the network engine's blocks (:mod:`rtl.engine.top` and its parts) and its
  generator (:mod:`rtl.engine.generate`: Verilog + metadata, sized to a model);
* :mod:`rtl.design` — the one design-metadata type (:class:`~rtl.design.Design`), its writer and
  strict reader, the port lister and the Verilog emitter;
* :mod:`rtl.layout` — the one layout describer and payload codec (:class:`~rtl.layout.Payload`);
* :mod:`rtl.pe`, :mod:`rtl.array`, :mod:`rtl.study` — the PE-arithmetic study: adder PE forms vs
  the multiplier PE, the bare PE array, and both as designs (``adderhw generate --block``);
* :mod:`rtl.synth` — yosys/nextpnr runs and ``synth.json``, its writer and reader (``adderhw synth``);
* :mod:`rtl.construct` — :class:`~rtl.construct.Checked`, the base that refuses bad constructor arguments before a component exists.

Never imports torch; shares only ``hwsim.config`` with hwsim, and uses the
torch-free ground floor of quant (:mod:`quant.base.intops`, :mod:`quant.base.files`).
"""

__all__: list[str] = []
