"""What a ``verify`` run will take, said before it starts: cycles and time.

* Cycles are hwsim's (:class:`hwsim.engine.EngineModel`): the engine's
  cycles per image are predicted exactly, so the planned work is exact.
* Time is an estimate: simulated cycles per wall second of each simulator,
  measured on this machine by earlier runs of the same engine and kept
  beside the cached builds (:func:`record_speed`, :data:`SPEEDS_FILE` in the
  build folder).  Builds and simulator start-up are not counted.  Before the
  first run of an engine on a simulator there is no figure, and the plan
  says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from quant.base.files import atomic_write_text

__all__ = [
    "SPEEDS_FILE",
    "RunPlan",
    "load_speeds",
    "record_speed",
    "plan_lines",
]

#: File of measured simulator speeds in the build folder: ``{"<sim> <design>[ waves]": cycles per second}``.
SPEEDS_FILE = "sim_speeds.json"


def _key(sim: str, design: str, waves: bool) -> str:
    return f"{sim} {design}" + (" waves" if waves else "")


def load_speeds(build_root: Path) -> dict[str, float]:
    """Measured cycles per second by ``"<sim> <design>[ waves]"`` (empty when none were measured or the file is
    unreadable: the speeds are a cache, never an input that fails a run)."""
    try:
        data = json.loads((Path(build_root) / SPEEDS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0}


def record_speed(build_root: Path, sim: str, design: str, *, waves: bool, cycles: int | None,
                 wall_s: float | None) -> None:
    """Keep the speed of a finished run (its simulated ``cycles`` in ``wall_s`` seconds; recording waves
    or not) for later plans."""
    if not cycles or not wall_s or wall_s <= 0:
        return
    speeds = load_speeds(build_root)
    speeds[_key(sim, design, waves)] = round(cycles / wall_s, 1)
    Path(build_root).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(build_root) / SPEEDS_FILE, json.dumps(speeds, indent=1, sort_keys=True) + "\n")


@dataclass(frozen=True, kw_only=True)
class RunPlan:
    """The work of one ``verify``: ``images`` images (``images`` test) plus ``bp_images`` (``back_pressure``
    test, 0 without it) on each of ``sims``, ``cycles_per_image`` each (hwsim); ``waves``: recorded."""

    design: str
    sims: tuple[str, ...]
    waves: bool
    images: int
    bp_images: int
    cycles_per_image: int

    @property
    def cycles_per_sim(self) -> int:
        """Cycles each simulator runs (the back-pressure images at hwsim's figure: they take no fewer)."""
        return (self.images + self.bp_images) * self.cycles_per_image


def _duration(s: float) -> str:
    if s < 1:
        return "under 1 s"
    if s < 60:
        return f"about {s:.0f} s"
    if s < 3600:
        return f"about {s / 60:.0f} min"
    return f"about {s / 3600:.1f} h"


def plan_lines(plan: RunPlan, speeds: dict[str, float]) -> list[str]:
    """The lines ``verify`` prints before its runs: the work and the estimated time per simulator."""
    sims = ", ".join(plan.sims)
    bp = f" + {plan.bp_images} with back-pressure" if plan.bp_images else ""
    lines = [f"plan: {plan.images} images{bp} x {len(plan.sims)} simulator{'s' if len(plan.sims) > 1 else ''} "
             f"({sims}), hwsim {plan.cycles_per_image:,} cycles per image, {plan.cycles_per_sim:,} per simulator"]
    est = []
    for sim in plan.sims:
        rate = speeds.get(_key(sim, plan.design, plan.waves))
        if rate is None:
            est.append(f"{sim} unknown (no earlier run of this engine on {sim}{' with waves' if plan.waves else ''} "
                       "here; this run measures it)")
        else:
            est.append(f"{sim} {_duration(plan.cycles_per_sim / rate)} ({rate:,.0f} cycles/s)")
    lines.append("estimated simulation time (from speeds measured on this machine; builds not counted): "
                 + "; ".join(est))
    return lines
