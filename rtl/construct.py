"""Helpers every Amaranth component of ``rtl`` uses while it is being built."""

from __future__ import annotations

from contextlib import contextmanager

__all__ = ["construction"]


@contextmanager
def construction(component):
    """Silence Amaranth's "created but never used" warning when a constructor raises.

    Use as ``with construction(self): ...`` around the validation in a
    component's ``__init__``, so a refused configuration raises only its
    ``ValueError``.
    """
    try:
        yield
    except Exception:
        component._MustUse__silence = True
        raise
