"""cocotb environment of the accelerator: clock, reset, three drivers, one monitor, model and scoreboard.

The host plays the role the contract (``hwsim/schedule.py``) gives it: with no
back-pressure it offers a beat on every input stream in every cycle (all of
a run's ``cfg``, ``w`` and ``x`` beats are queued up front) and keeps the
output ready.  :meth:`AcceleratorEnv.run_tiles` returns the output beats of
every tile and the measured cycle count
``last_output_cycle - first_cfg_cycle + 1``.

Only usable inside a simulator process (imports cocotb).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, with_timeout
from cocotb.utils import get_sim_steps

from verification.model import Tile, tile_outputs
from verification.scoreboard import Scoreboard
from verification.streams import BackPressure, Beat, StreamDriver, StreamMonitor

if TYPE_CHECKING:
    from rtl.generate import DesignMeta

__all__ = ["PERIOD_NS", "TilesRun", "AcceleratorEnv"]

#: Clock period of the testbench (ns); cycle numbers do not depend on it.
PERIOD_NS = 10


@dataclass(frozen=True)
class TilesRun:
    """Result of one :meth:`AcceleratorEnv.run_tiles`."""

    outputs: list  # per tile: int64 [cols, rows]
    first_cfg_cycle: int
    last_out_cycle: int

    @property
    def cycles(self) -> int:
        """``last_output_cycle - first_cfg_cycle + 1`` (the schedule's measure)."""
        return self.last_out_cycle - self.first_cfg_cycle + 1


class AcceleratorEnv:
    """Drives one accelerator instance (the DUT) from its metadata.

    Parameters
    ----------
    dut
        cocotb handle of the top level.
    meta : DesignMeta
        The design's metadata (config, layouts).
    back_pressure : BackPressure
        Random valid gaps on ``cfg``/``w``/``x`` and ready drops on ``o``.
    """

    def __init__(self, dut, meta: DesignMeta, back_pressure: BackPressure = BackPressure()) -> None:
        self.dut = dut
        self.meta = meta
        self.cfg = meta.config
        self.bp = back_pressure
        steps = int(get_sim_steps(PERIOD_NS, "ns"))
        self.period_steps = steps
        self.scoreboard = Scoreboard("o")
        self.drivers = {
            s: StreamDriver(dut.clk, getattr(dut, f"{s}__valid"), getattr(dut, f"{s}__ready"),
                            getattr(dut, f"{s}__payload"), period_steps=steps, name=s,
                            back_pressure=back_pressure)
            for s in ("cfg", "w", "x")
        }
        self.monitor = StreamMonitor(dut.clk, dut.o__valid, dut.o__ready, dut.o__payload,
                                     period_steps=steps, name="o", back_pressure=back_pressure,
                                     callback=self._on_beat)
        self._collect: list[list[int]] = []
        self._clock_started = False

    def _on_beat(self, beat: Beat) -> None:
        vals = self.meta.o.unpack_vector(beat.payload)
        self._collect.append(vals)
        self.scoreboard.got(vals, beat.cycle)

    async def start(self, reset_cycles: int = 2) -> None:
        """Start the clock, reset the DUT, start drivers and monitor."""
        if not self._clock_started:
            cocotb.start_soon(Clock(self.dut.clk, PERIOD_NS, unit="ns").start())
            self._clock_started = True
        await self.reset(reset_cycles)
        for d in self.drivers.values():
            d.start()
        self.monitor.start()

    async def reset(self, cycles: int = 2) -> None:
        """Hold ``rst`` high for ``cycles`` cycles; queued input beats are dropped."""
        await FallingEdge(self.dut.clk)
        for d in self.drivers.values():
            d.flush()
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles, rising=False)
        self.dut.rst.value = 0
        self.scoreboard.clear()
        self._collect = []

    # --- beat packing ---------------------------------------------------------
    def cfg_word(self, tile: Tile) -> int:
        values = {"k": tile.k}
        values.update(tile.rq.fields())
        return self.meta.cfg.pack(values)

    def w_words(self, tile: Tile) -> list[int]:
        pack = self.meta.w.pack_vector
        return [pack(tile.w[:, k].tolist()) for k in range(tile.k)]

    def x_words(self, tile: Tile) -> list[int]:
        pack = self.meta.x.pack_vector
        return [pack(tile.x[k].tolist()) for k in range(tile.k)]

    def queue_tiles(self, tiles: list[Tile], tag: str = "") -> int:
        """Queue the beats of ``tiles`` and their expected outputs; return the output beat count."""
        cfg_d, w_d, x_d = self.drivers["cfg"], self.drivers["w"], self.drivers["x"]
        w_cache: dict[int, list[int]] = {}
        beats = 0
        cfg_words, w_words, x_words = [], [], []
        for i, t in enumerate(tiles):
            if t.w.shape != (self.cfg.rows, t.k) or t.x.shape != (t.k, self.cfg.cols):
                raise ValueError(f"tile {i} does not fit a {self.cfg.rows}x{self.cfg.cols} array")
            if not 1 <= t.k <= self.cfg.max_k:
                raise ValueError(f"tile {i} has K={t.k} outside 1..max_k={self.cfg.max_k}")
            cfg_words.append(self.cfg_word(t))
            key = id(t.w)
            if key not in w_cache:
                w_cache[key] = self.w_words(t)
            w_words.extend(w_cache[key])
            x_words.extend(self.x_words(t))
            exp = tile_outputs(t, self.cfg)
            for c in range(exp.shape[0]):
                self.scoreboard.expect(exp[c], f"{tag}tile {i} col {c}")
            beats += exp.shape[0]
        cfg_d.send(cfg_words)
        w_d.send(w_words)
        x_d.send(x_words)
        return beats

    async def run_tiles(self, tiles: list[Tile], *, tag: str = "", timeout_cycles: int | None = None) -> TilesRun:
        """Send ``tiles`` back to back, wait for every output beat, return outputs and cycles.

        The scoreboard checks each beat against :func:`verification.model.tile_outputs`
        as it arrives; call ``env.scoreboard.check()`` to raise on mismatches.
        """
        n_cfg0 = len(self.drivers["cfg"].fired)
        n_out0 = len(self.monitor.beats)
        col0 = len(self._collect)
        beats = self.queue_tiles(tiles, tag)
        if timeout_cycles is None:
            work = sum(max(t.k, self.cfg.drain_cycles) for t in tiles) + 4 * (self.cfg.cols + 8)
            slow = 1.0 / max(0.05, (1 - self.bp.valid_gap) * (1 - self.bp.ready_drop))
            timeout_cycles = int(work * slow * 4) + 200
        try:
            await with_timeout(self.monitor.wait_for(n_out0 + beats),
                               timeout_cycles * PERIOD_NS, "ns")
        except Exception as exc:  # SimTimeoutError: the DUT stopped producing beats
            got = len(self.monitor.beats) - n_out0
            raise AssertionError(
                f"timeout after {timeout_cycles} cycles: {got} of {beats} output beats arrived "
                f"({exc.__class__.__name__}); {self.scoreboard.summary()}"
            ) from None
        first = self.drivers["cfg"].fired[n_cfg0].cycle
        last = self.monitor.beats[n_out0 + beats - 1].cycle
        flat = self._collect[col0:col0 + beats]
        outs = []
        pos = 0
        for _ in tiles:
            outs.append(np.asarray(flat[pos:pos + self.cfg.cols], dtype=np.int64))
            pos += self.cfg.cols
        return TilesRun(outputs=outs, first_cfg_cycle=first, last_out_cycle=last)

    async def idle(self, cycles: int) -> None:
        """Let ``cycles`` cycles pass."""
        await ClockCycles(self.dut.clk, cycles)
