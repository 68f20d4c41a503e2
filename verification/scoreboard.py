"""Checker: compares the output beats the monitor sees with the model's, in order and exactly.

Pure Python (no cocotb): the cocotb environment feeds it beats as they fire,
and tests can use it on plain lists.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Sequence

__all__ = ["Mismatch", "Scoreboard"]


@dataclass(frozen=True)
class Mismatch:
    """One wrong output beat."""

    index: int
    cycle: int | None
    tag: str
    expected: tuple
    got: tuple

    def __str__(self) -> str:
        at = f" (cycle {self.cycle})" if self.cycle is not None else ""
        return f"beat {self.index} [{self.tag}]{at}: expected {list(self.expected)}, got {list(self.got)}"


class Scoreboard:
    """In-order exact comparison of output beats.

    :meth:`expect` queues expected beats (each a sequence of ints, with a tag
    naming where it comes from, e.g. ``"tile 3 col 1"``); :meth:`got` checks
    one observed beat against the oldest expected one.  Nothing is raised
    while the simulation runs: :meth:`check` raises at the end, listing the
    first mismatches.
    """

    def __init__(self, name: str = "o", max_report: int = 8) -> None:
        self.name = name
        self.max_report = max_report
        self._expected: deque[tuple[tuple, str]] = deque()
        self.mismatches: list[Mismatch] = []
        self.unexpected: list[tuple] = []
        self.matched = 0
        self._index = 0

    def expect(self, values: Sequence[int], tag: str = "") -> None:
        self._expected.append((tuple(int(v) for v in values), tag))

    def got(self, values: Sequence[int], cycle: int | None = None) -> None:
        vals = tuple(int(v) for v in values)
        idx = self._index
        self._index += 1
        if not self._expected:
            self.unexpected.append(vals)
            return
        exp, tag = self._expected.popleft()
        if exp == vals:
            self.matched += 1
        else:
            self.mismatches.append(Mismatch(idx, cycle, tag, exp, vals))

    @property
    def outstanding(self) -> int:
        """Expected beats not seen yet."""
        return len(self._expected)

    def clear(self) -> None:
        """Forget expectations and results (after a reset)."""
        self._expected.clear()
        self.mismatches = []
        self.unexpected = []
        self.matched = 0
        self._index = 0

    def summary(self) -> str:
        return (f"{self.name}: {self.matched} matched, {len(self.mismatches)} mismatched, "
                f"{self.outstanding} missing, {len(self.unexpected)} unexpected")

    def check(self) -> None:
        """Raise AssertionError unless every expected beat arrived and matched."""
        if self.mismatches or self.outstanding or self.unexpected:
            lines = [self.summary()]
            lines += [str(m) for m in self.mismatches[: self.max_report]]
            if self.unexpected:
                lines.append(f"first unexpected beat: {list(self.unexpected[0])}")
            raise AssertionError("\n".join(lines))
