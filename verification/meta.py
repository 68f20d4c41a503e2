"""The testbenches' view of a generated design: its metadata and the Verilog beside it.

The metadata JSON's reader lives beside its writer
(:func:`rtl.generate.read_metadata`, strict) and payloads are packed and
unpacked by the project's one codec (:class:`rtl.layout.Payload`, the
:class:`~rtl.generate.DesignMeta`'s ``cfg``/``w``/``x``/``o``).
:func:`load_meta` adds what a simulation of the accelerator needs on top.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rtl.generate import DesignMeta

__all__ = ["load_meta"]


def load_meta(path: Path) -> DesignMeta:
    """:func:`rtl.generate.read_metadata` of an accelerator design whose Verilog is beside it.

    Raises
    ------
    FileNotFoundError
        When the file or the Verilog beside it is missing.
    ValueError
        When :func:`~rtl.generate.read_metadata` refuses the file, or it
        describes a lone PE or array instead of the accelerator top.
    """
    from rtl.generate import read_metadata  # amaranth loads only when a design is read

    meta = read_metadata(path)
    if meta.block != "accelerator":
        raise ValueError(f"{meta.path} describes a {meta.block!r} block, not the accelerator top")
    if not meta.verilog.exists():
        raise FileNotFoundError(f"Verilog of the design not found: {meta.verilog}")
    return meta
