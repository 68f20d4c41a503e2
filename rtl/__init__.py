"""rtl: Amaranth components of the adder-array accelerator, Verilog emission, synthesis.

Modules, in pipeline order:

* :mod:`rtl.pe` — :class:`~rtl.pe.AdderPE`, :class:`~rtl.pe.MultPE` and their reference;
* :mod:`rtl.array` — :class:`~rtl.array.PEArray` with the shadow (double) bank;
* :mod:`rtl.requant` — :class:`~rtl.requant.Requant`, fixed point or thresholds;
* :mod:`rtl.layout` — the stream payload layouts, field widths and the one payload codec (:class:`~rtl.layout.Payload`);
* :mod:`rtl.accelerator` — :class:`~rtl.accelerator.Accelerator`, the top with four streams;
* :mod:`rtl.generate` — Verilog + metadata JSON, its writer and strict reader (``adderhw generate``);
* :mod:`rtl.synth` — yosys/nextpnr runs and ``synth.json``, its writer and reader (``adderhw synth``);
* :mod:`rtl.construct` — the construction guard every component's ``__init__`` uses.

Never imports torch; shares only ``hwsim.config`` with hwsim, and uses the
torch-free ground floor of quant (:mod:`quant.intops`, :mod:`quant.files`).
"""

__all__: list[str] = []
