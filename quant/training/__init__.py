"""Data and training: datasets, train, distill, checkpoints (torch)."""

__all__: list[str] = []
