"""Engine presets stored as TOML (``hwsim/presets/*.toml``), read at the CLI edge.

A preset names an engine's array and clock: ``rows``, ``cols`` (required),
``clock_mhz`` (default 100), ``mult_rows`` (default: the sizing rule,
:func:`hwsim.sizing.engine_config_for`), ``bits`` (operand width of an
estimate from layer shapes alone, default 8; a model's own widths win), and
an optional ``description``.  Every other width and depth comes from the
model the engine is sized to.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from importlib import resources

from hwsim.config import MAX_ARRAY_DIM
from quant.base.intops import MAX_BITS, MIN_BITS, check_int

__all__ = ["EnginePreset", "list_presets", "load_preset"]


@dataclass(frozen=True, kw_only=True)
class EnginePreset:
    """An engine's array and clock (module docstring)."""

    rows: int
    cols: int
    clock_mhz: float = 100.0
    mult_rows: int | None = None
    bits: int = 8
    description: str = ""

    def __post_init__(self) -> None:
        check_int("rows", self.rows, 1, MAX_ARRAY_DIM)
        check_int("cols", self.cols, 1, MAX_ARRAY_DIM)
        if self.mult_rows is not None:
            check_int("mult_rows", self.mult_rows, 0, self.rows)
        check_int("bits", self.bits, MIN_BITS, MAX_BITS)
        if not isinstance(self.description, str):
            raise ValueError(f"description must be a string, not {self.description!r}")
        c = self.clock_mhz
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0 or c == float("inf"):
            raise ValueError(f"clock_mhz must be a positive number, not {c!r}")

    def replace(self, **changes) -> "EnginePreset":
        """A copy with the given fields changed (None values leave a field as it is)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def list_presets() -> list[str]:
    """Names of the shipped presets."""
    d = resources.files("hwsim").joinpath("presets")
    return sorted(p.name[:-5] for p in d.iterdir() if p.name.endswith(".toml"))


def load_preset(spec: str) -> EnginePreset:
    """The preset of a shipped name or a ``.toml`` path.

    Raises
    ------
    ValueError
        Unknown preset name, invalid TOML or not UTF-8, unknown keys, no
        ``rows``/``cols``, or a value :class:`EnginePreset` refuses.
    OSError
        A preset path cannot be read.
    """
    if spec in list_presets():
        text = resources.files("hwsim").joinpath("presets", f"{spec}.toml").read_text()
        where = f"preset {spec}"
    elif spec.endswith(".toml") or os.sep in spec:
        with open(spec, "rb") as fh:
            raw = fh.read()
        where = spec
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            raise ValueError(f"{where}: not a UTF-8 TOML file") from None
    else:
        raise ValueError(f"unknown preset {spec!r}: use one of {', '.join(list_presets())} or a .toml file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{where}: not a valid TOML preset: {exc}") from None
    known = {f.name for f in dataclasses.fields(EnginePreset)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown engine preset key(s) {', '.join(unknown)}")
    missing = [k for k in ("rows", "cols") if k not in data]
    if missing:
        raise ValueError(f"{where}: the preset needs {' and '.join(missing)}")
    try:
        return EnginePreset(**data)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
