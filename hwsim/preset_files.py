"""ArrayConfig presets stored as TOML (``hwsim/presets/*.toml``), read at the CLI edge.

A preset is a TOML table whose keys are :class:`hwsim.config.ArrayConfig`
fields, plus an optional ``description``.  Leaving out ``max_k`` lets the
caller derive it from the layers it maps (:func:`config_for_layers`).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import fields
from importlib import resources
from typing import Sequence

from hwsim.config import ArrayConfig

__all__ = ["list_presets", "load_preset", "config_for_layers"]


def list_presets() -> list[str]:
    """Names of the shipped presets."""
    d = resources.files("hwsim").joinpath("presets")
    return sorted(p.name[:-5] for p in d.iterdir() if p.name.endswith(".toml"))


def load_preset(spec: str) -> dict:
    """The ArrayConfig fields of a preset name or a ``.toml`` path (``description`` dropped).

    Raises
    ------
    ValueError
        Unknown preset name, invalid TOML or not UTF-8, keys that are not
        ArrayConfig fields, or no ``rows``/``cols``.
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
    data.pop("description", None)
    known = {f.name for f in fields(ArrayConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown array config key(s) {', '.join(unknown)}")
    missing = [k for k in ("rows", "cols") if k not in data]
    if missing:
        raise ValueError(f"{where}: the preset needs {' and '.join(missing)} (ArrayConfig has no default for them)")
    return data


def config_for_layers(fields_: dict, ks: Sequence[int]) -> ArrayConfig:
    """Build the ArrayConfig of a preset for layers with reduction lengths ``ks``.

    ``max_k`` defaults to ``max(ks)`` (so ``acc_bits`` is derived from the
    layers); a given ``acc_bits`` is validated against it by ArrayConfig.
    """
    data = dict(fields_)
    if "max_k" not in data:
        data["max_k"] = max(ks)
    return ArrayConfig(**data)
