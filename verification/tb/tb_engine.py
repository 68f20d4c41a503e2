"""cocotb tests of the network engine (loaded by the simulator, not by pytest).

Parameters come from the job JSON named by ``$ADDERHW_VERIFY_JOB``
(:func:`verification.engine_host.run_engine_tests` writes it): ``design``
(the path of the design's metadata, :func:`rtl.design.read_design`: config,
``max_ops``, ports and payload fields), ``program`` (the file of the model
compiled by the host, :func:`verification.engine_host.load_program`: never
compiled again here), ``model_dir`` (the integer model), ``images`` (input
codes), ``seed``, ``back_pressure``, ``reset_after_ops``, ``records``
(JSON-lines file each test appends its measurements to), ``progress`` (where
each finished image is reported, :func:`verification.runner.report_progress`).

Environment (Driver / Monitor / Model / Checker):

* drivers (:class:`~verification.engine_streams.DmaDriver`): ``prog`` (the
  compiled descriptors, packed with the component's field list), ``x`` (every
  image queued up front) and ``w`` (the compiled weight stream, once per
  image, fed whenever the engine is ready: the DMA port);
* monitors (:class:`~verification.engine_streams.HandshakeMonitor`) of
  ``prog``, ``x``, ``w`` and ``o`` push what fired into
  :class:`~verification.engine_model.ObservedRun`, the ``op_done`` monitor
  the counters after each operation;
* the model computes each image's expectation from the observed beats
  (engine reference and ``quant.intmodel.golden``); the checker
  (:func:`~verification.engine_model.check_image`) compares logits, every
  operation's cycles and counters with hwsim ``cp``.

Resident weights (``config.weights``, ``hwsim.engine`` rule 7): every test
first sends the load phase (the load descriptor and the whole weight stream,
once), then per image only the program and the image; the load phase is
checked too (:func:`~verification.engine_model.check_load`).
``reset_mid_network`` then runs its two images after the reset without a
new load: the store keeps its words over a reset.

Tests: ``images`` (every job image back to back, exact cycles),
``back_pressure`` (random gaps on ``prog``/``x``/``w`` and ready drops on
``o``: outputs and counters exact, cycles no fewer), ``reset_mid_network``
(reset after some operations of the first image, then two images, exact).
Python wakes only on handshakes (DESIGN §6); the records say how often.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, FallingEdge, SimTimeoutError, Timer, with_timeout
from cocotb.utils import get_sim_steps

from hwsim.engine import EngineModel
from quant.intmodel.artifact import load_int_model
from rtl.design import read_design
from rtl.engine.top import COUNTERS, encode_load, encode_program, w_beats, x_beats
from verification.engine_host import load_program
from verification.engine_model import ObservedRun, check_image, check_load, flat_values
from verification.engine_streams import DmaDriver, HandshakeMonitor, PulseMonitor, ReadySink
from verification.runner import append_record, load_job, report_progress

__all__: list[str] = []

#: Clock period (ns); cycle numbers do not depend on it.
PERIOD_NS = 10
INPUTS = ("prog", "x", "w")


_SETTLED = []
_PROGRAMS: dict = {}


def _program(path: str):
    """The compiled model the host wrote (read once per simulator process)."""
    if path not in _PROGRAMS:
        _PROGRAMS[path] = load_program(path)
    return _PROGRAMS[path]


def _trigger_registers(handle):
    """yosys' ``dump_module$1`` trigger registers of ``handle`` and of every module instance below it.

    Every module of the hierarchy (the engine core is a submodule of the top) has its own.
    """
    for h in handle:
        if "dump_module" in h._name:
            yield h
        elif isinstance(h, cocotb.handle.HierarchyObject):
            yield from _trigger_registers(h)


async def _settle_combinational(dut) -> None:
    """Make every ``always @*`` block of yosys' Verilog run once (Icarus), by toggling yosys' trigger register.

    yosys' ``write_verilog`` declares ``reg \\$auto$verilog_backend.cc:NNNN:dump_module$1 = 0`` and reads
    it in every ``always @*`` so that the blocks run at time 0; under cocotb's Icarus they may not, and
    a block whose inputs never change (``prog__ready`` from a state register that reset leaves at 0)
    then stays ``X``.  Toggling the register once re-runs them; Verilator needs nothing.
    """
    if _SETTLED:
        return
    _SETTLED.append(True)
    if not cocotb.SIM_NAME.lower().startswith("icarus"):
        return
    for h in _trigger_registers(dut):
        h.value = 1
        await Timer(1, "step")
        h.value = 0
        await Timer(1, "step")
        cocotb.log.info("toggled %s (Icarus: run every always @* once)", h._name)


class EngineEnv:
    """Clock, reset, three drivers, five monitors, the model (module docstring)."""

    def __init__(self, dut, job: dict, *, gaps: dict | None = None, drop: float = 0.0, tag: str = "") -> None:
        self.dut = dut
        self.tag = tag
        self.job = job
        design = read_design(job["design"])
        self.cfg = design.config
        model = load_int_model(Path(job["model_dir"]))
        cm = _program(job["program"])
        p = cm.program
        self.est = EngineModel(self.cfg).estimate(model)
        self.run = ObservedRun(model=model, compiled=cm, prog_payload=design.payloads["prog"],
                               o_payload=design.payloads["o"])
        self.words = {"prog": [design.payloads["prog"].pack(flat_values(b)) for b in encode_program(p)],
                      "w": w_beats(p, cm.weights)}
        self.x_words = [x_beats(p, im) for im in job["images"]]
        self.resident = self.cfg.resident
        if self.resident:
            self.words["load"] = [design.payloads["prog"].pack(flat_values(encode_load(p)))]
        seed = int(job["seed"])
        self.seed = seed
        cocotb.log.info("%s: seed %d, %d ops, %d w beats per image, hwsim %d cycles per image",
                        tag, seed, len(p.ops), len(self.words["w"]), self.est.total_cycles)
        steps = int(get_sim_steps(PERIOD_NS, "ns"))
        gaps = gaps or {}

        def rng(name):
            return random.Random(f"{seed}:{tag}:{name}")

        self.drivers = {s: DmaDriver(dut.clk, getattr(dut, f"{s}__valid"), getattr(dut, f"{s}__ready"),
                                     getattr(dut, f"{s}__payload"), period_steps=steps, name=s,
                                     gap=gaps.get(s, 0.0), rng=rng(s))
                        for s in INPUTS}
        self.sink = ReadySink(dut.clk, dut.o__valid, dut.o__ready, period_steps=steps, name="o", drop=drop,
                              rng=rng("o"))
        self._ops_event = Event()
        self._ops_target = 0
        self.image_times: list[float] = []
        self.monitors = [
            HandshakeMonitor(dut.clk, getattr(dut, f"{s}__valid"), getattr(dut, f"{s}__ready"),
                             getattr(dut, f"{s}__payload"), period_steps=steps, name=s,
                             callback=getattr(self.run, f"on_{s}"))
            for s in (*INPUTS, "o")
        ]
        self.monitors.append(PulseMonitor(
            dut.clk, dut.op_done, period_steps=steps, name="op_done",
            now_signals={"op_index": dut.op_index, "cycles": dut.cycles},
            after_signals={n: getattr(dut, n) for n in COUNTERS}, callback=self._on_op_done))

    def _on_op_done(self, cycle, now, after) -> None:
        n = len(self.run.ops)
        self.run.on_op_done(cycle, now, after)
        if len(self.run.ops) == n:
            return  # the load phase's end (resident weights)
        if len(self.run.ops) % self.run.n_ops == 0:
            self.image_times.append(time.monotonic())
            report_progress(self.job, test=self.tag, image=len(self.image_times) - 1)
        if self._ops_target and len(self.run.ops) >= self._ops_target:
            self._ops_target = 0
            self._ops_event.set()

    async def start(self) -> None:
        """Start the clock, reset the DUT, start every driver and monitor."""
        await _settle_combinational(self.dut)
        cocotb.start_soon(Clock(self.dut.clk, PERIOD_NS, unit="ns").start())
        for d in self.drivers.values():
            d.valid.value = 0
        self.dut.o__ready.value = 0
        await self.reset(3)
        for m in self.monitors:
            m.start()
        self.sink.start()

    async def reset(self, cycles: int) -> None:
        """Hold ``rst`` for ``cycles`` cycles; queued beats are dropped, the model forgets everything."""
        await FallingEdge(self.dut.clk)
        for d in self.drivers.values():
            d.stop()
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles, rising=False)
        self.dut.rst.value = 0
        self.run.reset()
        self.image_times = []
        for d in self.drivers.values():
            d.start()

    def queue(self, images, *, load: bool = True) -> None:
        """Per image the program (streamed: the engine takes one descriptor per operation), its ``x``
        words and the whole weight stream, all queued up front; resident weights: the load phase first
        (``load``: else the images run on the store as it is), then no ``w``."""
        if self.resident and load:
            self.run.loading = True
            self.drivers["prog"].send(self.words["load"])
            self.drivers["w"].send(self.words["w"])
        for i in images:
            self.drivers["prog"].send(self.words["prog"])
            self.drivers["x"].send(self.x_words[i])
            if not self.resident:
                self.drivers["w"].send(self.words["w"])

    async def wait_ops(self, n: int, *, factor: float = 4.0) -> None:
        """Return once ``n`` operations (since the reset) have finished; fail after a generous cycle limit."""
        if len(self.run.ops) >= n:
            return
        images = -(-n // self.run.n_ops)
        limit = int(factor * images * self.est.total_cycles) + 2000
        self._ops_target = n
        self._ops_event.clear()
        try:
            await with_timeout(self._ops_event.wait(), limit * PERIOD_NS, "ns")
        except SimTimeoutError:
            raise AssertionError(f"{len(self.run.ops)} of {n} operations finished within {limit} cycles "
                                 f"({self.state()})") from None

    def state(self) -> str:
        """Beats seen so far, for messages."""
        r = self.run
        return (f"beats seen: prog {len(r.prog)}, x {len(r.x)}, w {len(r.w)}, o {len(r.o)}; "
                f"queued: {', '.join(f'{s} {d.pending}' for s, d in self.drivers.items())}")

    def wakeups(self) -> int:
        return sum(getattr(x, "wakeups", 0) for x in (*self.drivers.values(), *self.monitors))


def _checked(name: str, env: EngineEnv, n_images: int, *, exact_cycles: bool, wall_s: float, **extra) -> None:
    recs = [check_image(env.run, k, env.est, exact_cycles=exact_cycles) for k in range(n_images)]
    if env.run.loading:
        load = check_load(env.run, env.est, exact_cycles=exact_cycles)
        extra["load"] = load
        recs[0]["mismatches"] = [f"load: {m}" for m in load["mismatches"]] + recs[0]["mismatches"]
    t = env.image_times
    per_image = [round(b - a, 3) for a, b in zip([extra.pop("t0")] + t[:-1], t)]
    cycles = sum(r["cycles_measured"] or 0 for r in recs)
    append_record(name, images=recs, exact_cycles=exact_cycles, wall_s=round(wall_s, 3), wall_s_per_image=per_image,
            cycles_measured=cycles, cycles_predicted=sum(r["cycles_predicted"] for r in recs),
            mismatches=sum(len(r["mismatches"]) for r in recs), python_wakeups=env.wakeups(),
            seed=env.seed, **extra)
    bad = [f"image {r['image']}: {m}" for r in recs for m in r["mismatches"]]
    assert not bad, f"{name}: {len(bad)} mismatches:\n" + "\n".join(bad[:12])


@cocotb.test()
async def images(dut):
    """Every job image back to back, no stalls: logits exact, every operation's cycles and counters == hwsim."""
    job = load_job()
    env = EngineEnv(dut, job, tag="images")
    await env.start()
    n = len(job["images"])
    t0 = time.monotonic()
    env.queue(range(n))
    await env.wait_ops(n * env.run.n_ops)
    await ClockCycles(dut.clk, 2)
    _checked("images", env, n, exact_cycles=True, wall_s=time.monotonic() - t0, t0=t0)


@cocotb.test()
async def back_pressure(dut):
    """Random valid gaps on prog/x/w, ready drops on o (two images): outputs and counters exact, cycles >= hwsim."""
    job = load_job()
    bp = job["back_pressure"]
    env = EngineEnv(dut, job, gaps={s: bp[s] for s in INPUTS}, drop=bp["o"], tag="back_pressure")
    await env.start()
    n = min(2, len(job["images"]))
    t0 = time.monotonic()
    env.queue(range(n))
    await env.wait_ops(n * env.run.n_ops, factor=12.0)
    await ClockCycles(dut.clk, 2)
    _checked("back_pressure", env, n, exact_cycles=False, wall_s=time.monotonic() - t0, t0=t0, back_pressure=bp)


@cocotb.test()
async def reset_mid_network(dut):
    """Reset after some operations of the first image, then two images from the start: exact."""
    job = load_job()
    env = EngineEnv(dut, job, tag="reset_mid_network")
    await env.start()
    n_ops = env.run.n_ops
    after = job.get("reset_after_ops") or max(1, n_ops // 2)
    after = min(after, n_ops - 1) if n_ops > 1 else 0
    env.queue([0, 1 % len(job["images"])])
    if after:
        await env.wait_ops(after)
    await ClockCycles(dut.clk, 3, rising=False)  # into the next operation
    info = {"reset_after_ops": len(env.run.ops), "reset_w_beats": len(env.run.w), "reset_o_beats": len(env.run.o)}
    cocotb.log.info("reset after %d operations, %d w beats", info["reset_after_ops"], info["reset_w_beats"])
    await env.reset(3)
    n = min(2, len(job["images"]))
    t0 = time.monotonic()
    env.queue(range(n), load=False)  # resident: the store keeps its words over the reset
    await env.wait_ops(n * n_ops)
    await ClockCycles(dut.clk, 2)
    _checked("reset_mid_network", env, n, exact_cycles=True, wall_s=time.monotonic() - t0, t0=t0, **info)
