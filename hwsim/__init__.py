"""hwsim: cycle-aware simulator of the adder-array accelerator vs a multiplier array.

Kept light on import: ``rtl`` imports ``hwsim.config`` and must not pull in
torch or the rest of hwsim.
"""

__all__: list[str] = []
