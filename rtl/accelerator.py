"""Accelerator top: PE array + shadow bank + requant behind four valid/ready streams.

Ports (docs/interfaces.md §3; payload layouts in :mod:`rtl.layout`)::

    cfg  In  stream  k and the tile's requant parameters (one beat per tile)
    w    In  stream  rows weights   (one beat per reduction step)
    x    In  stream  cols activations (one beat per reduction step)
    o    Out stream  rows outputs of one column (cols beats per tile)

The schedule is ``hwsim/schedule.py``'s contract, cycle for cycle:

1. ``cfg.ready`` is high when no tile is in its reduction phase, or in the
   cycle of the current tile's last step.  The tile's first step can fire the
   cycle after.
2. A step fires when ``w`` and ``x`` are both valid (they transfer together:
   ``w.ready`` needs ``x.valid`` and vice versa); every PE adds its term.
3. The last step (``k - 1``; ``k = 0`` acts as 1) fires only when the shadow
   bank is free or is freed in the same cycle (the previous tile's last
   output beat fires), and loads the shadow bank; the tile's requant
   parameters move to the drain copy at the same edge.
4. The shadow bank drains one column per cycle into :class:`~rtl.requant.Requant`:
   column ``c`` of a tile whose last step fired in cycle ``l`` is on ``o`` in
   cycle ``l + L + c`` (``L = config.requant_latency``: the shadow register
   plus the requant pipeline) when ``o`` is always ready.  Back-pressure on
   ``o`` stalls the drain; a stalled drain keeps the shadow bank busy, which
   stalls the next tile's last step and nothing else.

Latency: :attr:`Accelerator.latency` (``L``).  Throughput: one reduction step
per cycle while ``K >= cols + L - 1``; otherwise one tile per
``cols + L - 1`` cycles (drain bound).

``mutation`` is a **test-only** hook for the verification's mutation check
(:data:`MUTATIONS`): the generated hardware is deliberately wrong, the
metadata is unchanged.  Never use it for anything else.
"""

from __future__ import annotations

import random
from typing import Mapping, Sequence

import numpy as np
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.config import ArrayConfig
from rtl.array import PEArray
from rtl.layout import (
    Payload,
    cfg_layout,
    check_config,
    o_layout,
    requant_layout,
    w_layout,
    x_layout,
)
from quant.intops import wrap_code
from rtl.construct import construction
from rtl.pe import ADDER_FORMS
from rtl.requant import Requant, requant_values

__all__ = ["Accelerator", "MUTATIONS", "accelerator_ref", "simulate_accelerator"]

#: Test-only deliberate bugs: ``acc_minus_one`` builds one accumulator bit
#: fewer than ``config.acc_bits`` (wraps at the largest K), ``drop_carry_in``
#: drops the ``+ sign`` carry-in of the adder PE's conditional inversion
#: (``|x - w|`` is one too small whenever ``x < w``; adder PE only).
MUTATIONS = ("acc_minus_one", "drop_carry_in")


class Accelerator(wiring.Component):
    """The accelerator top (module docstring).

    Parameters
    ----------
    config : hwsim.config.ArrayConfig
        Shape, PE kind, widths, requant mode.
    form : str
        Adder PE formulation (:data:`rtl.pe.ADDER_FORMS`).
    mutation : str, optional
        Test-only (:data:`MUTATIONS`).

    Attributes
    ----------
    latency : int
        ``L = config.requant_latency``.
    """

    def __init__(self, *, config: ArrayConfig, form: str = "cinv", mutation: str | None = None):
        with construction(self):
            self.config = check_config(config)
            if form not in ADDER_FORMS:
                raise ValueError(f"form must be one of {', '.join(ADDER_FORMS)}, not {form!r}")
            if mutation is not None and mutation not in MUTATIONS:
                raise ValueError(
                    f"mutation must be one of {', '.join(MUTATIONS)}, not {mutation!r}")
            if mutation == "drop_carry_in" and config.pe != "adder":
                raise ValueError("mutation drop_carry_in needs the adder PE")
        self.form = form
        self.mutation = mutation
        self.latency = config.requant_latency
        super().__init__(
            {
                "cfg": In(stream.Signature(cfg_layout(config))),
                "w": In(stream.Signature(w_layout(config))),
                "x": In(stream.Signature(x_layout(config))),
                "o": Out(stream.Signature(o_layout(config))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        acc_bits = cfg.acc_bits - (1 if self.mutation == "acc_minus_one" else 0)
        if self.mutation is None:
            array = PEArray(rows=cfg.rows, cols=cfg.cols, pe=cfg.pe, bits=cfg.bits,
                            max_k=cfg.max_k, acc_bits=cfg.acc_bits, form=self.form)
        else:
            array = PEArray(rows=cfg.rows, cols=cfg.cols, pe=cfg.pe, bits=cfg.bits,
                            acc_bits=acc_bits, form=self.form,
                            _drop_carry_in=self.mutation == "drop_carry_in")
        m.submodules.array = array
        rq = Requant(config=cfg, acc_bits=acc_bits)
        m.submodules.requant = rq

        # --- reduction phase ---------------------------------------------------
        busy = Signal()  # a tile is in its reduction phase
        step = Signal(range(max(cfg.max_k, 2)))
        k_last = Signal(range(max(cfg.max_k, 2)))  # index of the tile's last step
        pend = Signal(requant_layout(cfg), reset_less=True)  # requant parameters of the computing tile
        drain = Signal(requant_layout(cfg), reset_less=True)  # ... of the tile in the shadow bank
        # --- drain phase -------------------------------------------------------
        shadow_busy = Signal()
        to_read = Signal(range(cfg.cols + 1))  # shadow columns not yet read
        out_cnt = Signal(range(max(cfg.cols, 2)))  # output beats of the draining tile

        o_fire = Signal()
        freeing = Signal()
        is_last = Signal()
        step_ok = Signal()
        step_fire = Signal()
        last_fire = Signal()
        cfg_fire = Signal()
        m.d.comb += [
            o_fire.eq(self.o.valid & self.o.ready),
            freeing.eq(o_fire & (out_cnt == cfg.cols - 1)),
            is_last.eq(step == k_last),
            step_ok.eq(busy & (~is_last | ~shadow_busy | freeing)),
            self.w.ready.eq(step_ok & self.x.valid),
            self.x.ready.eq(step_ok & self.w.valid),
            step_fire.eq(step_ok & self.w.valid & self.x.valid),
            last_fire.eq(step_fire & is_last),
            self.cfg.ready.eq(~busy | last_fire),
            cfg_fire.eq(self.cfg.valid & self.cfg.ready),
        ]

        with m.If(step_fire):
            m.d.sync += step.eq(Mux(is_last, 0, step + 1))
        with m.If(cfg_fire):
            k = self.cfg.payload.k
            m.d.sync += [
                busy.eq(1),
                step.eq(0),
                k_last.eq(Mux(k == 0, 0, k - 1)),
                pend.eq(self.cfg.payload.as_value()[len(k):]),
            ]
        with m.Elif(last_fire):
            m.d.sync += busy.eq(0)

        m.d.comb += [
            array.w.eq(self.w.payload),
            array.x.eq(self.x.payload),
            array.en.eq(step_fire),
            array.last.eq(is_last),
        ]

        # --- drain: shadow bank -> requant -> o ---------------------------------
        read = Signal()
        m.d.comb += [
            rq.i.valid.eq(to_read != 0),
            rq.i.payload.eq(array.col),
            read.eq(rq.i.valid & rq.i.ready),
            array.shift.eq(read),
            rq.params.eq(drain),
        ]
        wiring.connect(m, rq.o, wiring.flipped(self.o))
        with m.If(last_fire):
            m.d.sync += [shadow_busy.eq(1), to_read.eq(cfg.cols), drain.eq(pend)]
        with m.Else():
            with m.If(freeing):
                m.d.sync += shadow_busy.eq(0)
            with m.If(read):
                m.d.sync += to_read.eq(to_read - 1)
        with m.If(o_fire):
            m.d.sync += out_cnt.eq(Mux(out_cnt == cfg.cols - 1, 0, out_cnt + 1))
        return m


def _tile_acc(config: ArrayConfig, tile: Mapping, acc_bits: int) -> list[list[int]]:
    w = np.asarray(tile["w"], dtype=np.int64).reshape(-1, config.rows)
    x = np.asarray(tile["x"], dtype=np.int64).reshape(-1, config.cols)
    if config.pe == "adder":
        acc = np.abs(x[:, None, :] - w[:, :, None]).sum(axis=0)
    else:
        acc = (x[:, None, :] * w[:, :, None]).sum(axis=0)
    return [[wrap_code(int(v), acc_bits, config.pe == "mult") for v in row] for row in acc]


def _check_tiles(config: ArrayConfig, tiles: Sequence[Mapping]) -> None:
    if len(tiles) == 0:
        raise ValueError("at least one tile is needed")
    for i, t in enumerate(tiles):
        k = t["k"]
        if not 1 <= k <= config.max_k:
            raise ValueError(f"tile {i}: k={k} is outside 1..max_k={config.max_k}")
        if len(t["w"]) != k or len(t["x"]) != k:
            raise ValueError(f"tile {i}: w and x need k={k} beats, not {len(t['w'])} and {len(t['x'])}")


def accelerator_ref(accel: Accelerator, tiles: Sequence[Mapping], *, seed: int | None = None,
                    trace: dict | None = None) -> list[list[list[int]]]:
    """Integer reference of :class:`Accelerator`: the ``o`` beats of every tile.

    Parameters
    ----------
    accel : Accelerator
        Supplies the config (and the accumulator width, also under a mutation).
    tiles : sequence of mapping
        Each tile: ``k``, the :func:`rtl.layout.requant_layout` fields, ``w``
        (``k`` beats of ``rows`` values) and ``x`` (``k`` beats of ``cols``).
    seed, trace
        Accepted for :func:`simulate_accelerator`'s call signature and
        ignored: stalls do not change outputs, and the cycle reference is
        ``hwsim.schedule.schedule_tiles`` (rtl imports only ``hwsim.config``).

    Returns
    -------
    list
        Per tile, ``cols`` beats of ``rows`` outputs.
    """
    cfg = accel.config
    _check_tiles(cfg, tiles)
    acc_bits = cfg.acc_bits - (1 if accel.mutation == "acc_minus_one" else 0)
    out = []
    for t in tiles:
        acc = _tile_acc(cfg, t, acc_bits)
        cols = [[acc[r][c] for r in range(cfg.rows)] for c in range(cfg.cols)]
        out.append([requant_values(cfg, col, t) for col in cols])
    return out


def simulate_accelerator(accel: Accelerator, tiles: Sequence[Mapping], *, seed: int | None = None,
                         trace: dict | None = None) -> list[list[list[int]]]:
    """Run ``accel`` in the Amaranth simulator; same arguments and result as
    :func:`accelerator_ref`.

    Without ``seed`` the host offers a beat on every input stream every cycle
    and ``o`` is always ready (the schedule's no-back-pressure case).  With
    ``seed``, every input valid and the output ready drop at random
    (seeded), independently per stream.  ``trace`` (if given) receives lists of
    the cycles in which ``cfg``, steps (``w``+``x``) and ``o`` fired, counted
    from the first ``cfg`` transfer (cycle 0), and ``total_cycles``
    (last output cycle + 1).
    """
    from amaranth.sim import Simulator

    cfg = accel.config
    _check_tiles(cfg, tiles)
    cfg_p = Payload.of(cfg_layout(cfg), stream="cfg")
    w_p = Payload.of(w_layout(cfg), "w", stream="w")
    x_p = Payload.of(x_layout(cfg), "x", stream="x")
    cfg_beats = [cfg_p.pack({f.name: t[f.name] for f in cfg_p.fields})
                 for t in tiles]
    w_beats = [w_p.pack_vector(list(b)) for t in tiles for b in t["w"]]
    x_beats = [x_p.pack_vector(list(b)) for t in tiles for b in t["x"]]
    o_p = Payload.of(o_layout(cfg), "o", stream="o")
    n_out = len(tiles) * cfg.cols
    rng = random.Random(seed)
    gap = 0.0 if seed is None else 0.3
    beats: list[list[int]] = []
    fired: dict[str, list[int]] = {"cfg": [], "step": [], "o": []}
    limit = 50 + 4 * (sum(t["k"] for t in tiles) + len(tiles) * (cfg.cols + accel.latency + 2))

    async def bench(ctx):
        ci = wi = xi = 0
        cycle = 0
        start = None
        while len(beats) < n_out:
            if cycle > limit:
                raise RuntimeError(f"accelerator hung: {len(beats)} of {n_out} output beats "
                                   f"after {cycle} cycles")
            cv = ci < len(cfg_beats) and rng.random() >= gap
            wv = wi < len(w_beats) and rng.random() >= gap
            xv = xi < len(x_beats) and rng.random() >= gap
            ordy = rng.random() >= gap
            ctx.set(accel.cfg.valid, cv)
            ctx.set(accel.w.valid, wv)
            ctx.set(accel.x.valid, xv)
            ctx.set(accel.o.ready, ordy)
            if cv:
                ctx.set(accel.cfg.payload.as_value(), cfg_beats[ci])
            if wv:
                ctx.set(accel.w.payload.as_value(), w_beats[wi])
            if xv:
                ctx.set(accel.x.payload.as_value(), x_beats[xi])
            cf = cv and ctx.get(accel.cfg.ready)
            wf = wv and ctx.get(accel.w.ready)
            xf = xv and ctx.get(accel.x.ready)
            of = ordy and ctx.get(accel.o.valid)
            if wf != xf:
                raise RuntimeError(f"w and x transferred separately in cycle {cycle}")
            if cf and start is None:
                start = cycle
            when = cycle - (start if start is not None else cycle)
            if cf:
                fired["cfg"].append(when)
                ci += 1
            if wf:
                fired["step"].append(when)
                wi += 1
                xi += 1
            if of:
                fired["o"].append(when)
                word = ctx.get(accel.o.payload.as_value())
                beats.append(o_p.unpack_vector(word))
            await ctx.tick()
            cycle += 1

    sim = Simulator(accel)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    if trace is not None:
        trace.update(fired)
        trace["total_cycles"] = fired["o"][-1] + 1
    return [beats[i * cfg.cols:(i + 1) * cfg.cols] for i in range(len(tiles))]
