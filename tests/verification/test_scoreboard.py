"""verification.scoreboard: in-order exact checking."""

from __future__ import annotations

import pytest

from verification.scoreboard import Scoreboard


def test_all_matched():
    sb = Scoreboard()
    sb.expect([1, -2], "a")
    sb.expect([3, 4], "b")
    sb.got([1, -2], cycle=5)
    sb.got((3, 4), cycle=6)
    sb.check()
    assert sb.matched == 2 and sb.outstanding == 0


def test_mismatch_missing_and_unexpected_are_reported():
    sb = Scoreboard()
    sb.expect([1, 2], "tile 0 col 0")
    sb.expect([3, 4], "tile 0 col 1")
    sb.got([1, 3], cycle=9)
    with pytest.raises(AssertionError, match=r"beat 0 \[tile 0 col 0\] \(cycle 9\): expected \[1, 2\], got \[1, 3\]"):
        sb.check()
    assert "1 missing" in sb.summary()
    sb.got([3, 4])
    sb.got([5, 6])
    assert sb.unexpected == [(5, 6)]
    with pytest.raises(AssertionError, match="1 unexpected"):
        sb.check()
    sb.clear()
    sb.check()
