"""Which engine a user gets: the deployable one or the verification build (:mod:`rtl.engine.top`)."""

from __future__ import annotations

import enum

__all__ = ["Build"]


class Build(enum.StrEnum):
    """``DEPLOY``: the engine alone, its four streams; ``VERIFY``: with the observers the testbenches read
    (the counters, ``op_done`` and ``op_index``).  The reasons are in :mod:`rtl.engine.top`'s docstring."""

    DEPLOY = "deploy"
    VERIFY = "verify"
