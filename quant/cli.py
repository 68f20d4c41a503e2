"""Subcommands of the ``quant`` package for the ``adderhw`` command.

``train``/``eval`` live in :mod:`quant.training.cli`, ``quantize``/``predict`` in
:mod:`quant.quantizer.cli`; neither imports torch until a command runs.
"""

from __future__ import annotations

import argparse
import importlib

__all__ = ["register"]

_COMMAND_MODULES = ("quant.training.cli", "quant.quantizer.cli")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to the ``adderhw`` parser."""
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
