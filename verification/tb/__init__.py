"""cocotb test modules, loaded by the simulator (kept out of pytest collection: not named test_*)."""

__all__: list[str] = []
