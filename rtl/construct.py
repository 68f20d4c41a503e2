"""What every Amaranth component of ``rtl`` uses while it is being built."""

from __future__ import annotations

__all__ = ["Checked"]


class Checked:
    """Base (before ``wiring.Component``) of a component whose constructor refuses bad arguments.

    The subclass's classmethod ``check`` takes the constructor's keyword
    arguments and raises ``ValueError`` (one line naming the argument).  It
    runs in ``__new__``, before the elaboratable exists, so a refused
    configuration raises only its error: Amaranth warns about an elaboratable
    that was made and never used when it is collected, and this way none is
    made (no private Amaranth attribute is touched).
    """

    @classmethod
    def check(cls, **kwargs) -> None:
        """Refuse a bad argument; the subclass's own (nothing here)."""

    def __new__(cls, *args, src_loc_at: int = 0, **kwargs):
        cls.check(*args, **kwargs)
        return super().__new__(cls, *args, src_loc_at=src_loc_at + 1, **kwargs)
