"""The retired v1 core's ``--dataflow`` flag, accepted for one release by every command that had it.

One design remains, the network engine (DESIGN §1, §4b).  ``--dataflow cp``
(the engine) still parses and prints one deprecation line on stderr;
``--dataflow os`` (the retired output-stationary core) is refused with one
line.  ``estimate``, ``verify`` and ``flow`` use these two functions, so the
flag means the same everywhere and goes in one change.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["RetiredDesign", "add_dataflow_flag", "check_dataflow"]


class RetiredDesign(ValueError):
    """``--dataflow os``: the v1 output-stationary core is retired."""


def add_dataflow_flag(parser: argparse.ArgumentParser) -> None:
    """Add the hidden, deprecated ``--dataflow {cp,os}`` to ``parser``."""
    parser.add_argument("--dataflow", choices=("cp", "os"), default=None, help=argparse.SUPPRESS)


def check_dataflow(command: str, dataflow: str | None) -> None:
    """Refuse ``os``; for ``cp`` print ``COMMAND: --dataflow cp is deprecated: ...`` on stderr.

    Raises
    ------
    RetiredDesign
        ``dataflow`` is ``"os"``.
    """
    if dataflow == "os":
        raise RetiredDesign("--dataflow os: the v1 output-stationary core is retired; the network engine is "
                            "the only design (drop --dataflow)")
    if dataflow == "cp":
        print(f"{command}: --dataflow cp is deprecated: the network engine is the only design", file=sys.stderr)
