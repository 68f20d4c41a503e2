"""Subcommands of the `verification` package for the ``adderhw`` command."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to the ``adderhw`` parser."""
