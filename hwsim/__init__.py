"""hwsim: cycle-aware simulator of the adder-array accelerator vs a multiplier array.

Kept light on import: ``rtl`` imports ``hwsim.config`` and must not pull in
torch or the rest of hwsim.  Modules: :mod:`hwsim.config` (ArrayConfig),
:mod:`hwsim.schedule` (the cycle contract), :mod:`hwsim.layers` (layer shapes),
:mod:`hwsim.mapping` (tiles, cycles, stalls, traffic), :mod:`hwsim.energy`
(energy and area of mapped layers), :mod:`hwsim.tables` (energy tables:
TOML files and the FPGA table from synthesis), :mod:`hwsim.cpu` (the paper's CPU latency model),
:mod:`hwsim.estimate` (both designs, sweeps), :mod:`hwsim.functional`
(tile-by-tile integer execution), :mod:`hwsim.report` (report files),
:mod:`hwsim.preset_files` (TOML presets), :mod:`hwsim.cli` (``estimate``).
"""

from hwsim.config import ArrayConfig

__all__ = ["ArrayConfig"]
