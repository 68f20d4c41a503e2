"""hwsim: the network engine's architecture model (DESIGN §1, §4b, §5), numpy only.

Modules: :mod:`hwsim.config` (EngineConfig),
:mod:`hwsim.compiler` (IntModel -> program, memory map, weight stream),
:mod:`hwsim.descriptor` (the ``prog`` beat's fields), :mod:`hwsim.sizing`
(the engine sized to a model), :mod:`hwsim.reference` (word-level
functional reference), :mod:`hwsim.engine` (exact cycle and access model),
:mod:`hwsim.energy` and :mod:`hwsim.tables` (energy), :mod:`hwsim.synthfile`
(``synth.json``), :mod:`hwsim.topology` (shapes from a SCALE-Sim CSV),
:mod:`hwsim.estimate` (estimates, sweeps), :mod:`hwsim.report` (report
files), :mod:`hwsim.preset_files` (engine presets), :mod:`hwsim.samples`
(random small models), :mod:`hwsim.cpu` (the AdderNet paper's CPU latency model); the ``estimate`` command line is :mod:`scripts.estimate`.  Importing the
package loads none of them (``rtl`` imports only what it uses).
"""

__all__: list = []
