"""The ground floor: integer widths and code ranges, kinds, op counts, atomic files, digests, versions, and the C-kernel build machinery (numpy and the standard library only; no torch)."""

__all__: list[str] = []
