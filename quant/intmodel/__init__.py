"""The integer model: the artifact format (reader beside writer), the golden integer model and its C kernels (numpy only; no torch)."""

__all__: list[str] = []
