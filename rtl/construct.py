"""What every Amaranth component of ``rtl`` uses while it is being built."""

from __future__ import annotations

__all__ = ["Checked", "ConfigChecked", "check_config"]


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


def check_config(config) -> None:
    """Refuse a ``config`` that is not an :class:`~hwsim.config.EngineConfig` (one line naming it)."""
    from hwsim.config import EngineConfig

    if not isinstance(config, EngineConfig):
        raise ValueError(f"config must be an EngineConfig, not {type(config).__name__}")


class ConfigChecked(Checked):
    """:class:`Checked` for an engine unit whose one argument is ``config``, an EngineConfig."""

    @classmethod
    def check(cls, *, config) -> None:
        """Refuse a bad argument (one line naming it) before the component exists."""
        check_config(config)
