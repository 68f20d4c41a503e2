"""Numpy model of the whole engine, executed the way the hardware executes it.

Same inputs as the RTL: the :class:`~hwsim.compiler.Program` (``prog``
stream), the :class:`~hwsim.compiler.WeightStream` (``w``) and one image's
codes (``x``, sent as HWC words).  Outputs: the logits (``o``), every layer's
output codes (what tracing would show) and the counters the RTL exposes, per
operation.  Nothing here calls :mod:`quant.intmodel.golden`; a test holds the two
equal.

How it executes (the hardware's units, DESIGN §4b):

* activation regions are arrays ``[depth, cols]`` of raw ``act_bits``-bit
  lane values (two's complement for signed tensors), written with lane
  enables: an output word write sets the lanes of the channels it carries
  and, in the word holding the tensor's last channel, clears the lanes
  beyond it;
* a conv tile loads its weight words into the weight buffer and its
  parameter beats into the requant bank (one of two, after the drain's
  last read of that bank for the tile two before: rule 2's bank wait), then, pixel tile by pixel tile
  (``config.pixel_tile`` output pixels), reads weight word ``s`` once for
  every step ``s`` and one activation word (or takes the pad word) for each
  pixel of the tile; PE ``(r, n)`` forms ``|x_n - w_rn|`` (or ``x_n * w_rn``),
  each row's tree sums its ``cols`` terms and the pixel's accumulator adds
  them; a pixel tile's pixels' ``rows`` sums then pass the shared requant
  unit one per cycle, pixel by pixel;
* pools and the residual add work on words (lane-parallel max / sum / two
  reads), then the requant unit takes the word's lanes one per cycle.

With two weight buffers (``config.weight_buffers`` 2, :mod:`hwsim.engine`
rule 2) tile ``t`` loads into half ``t mod 2`` and its ``w`` beats are
timed one by one, each as early as rule 2 allows (the previous beat, the
half's previous tile's last step, the bank's previous tile's last drain
read, all taken from the events this model counted).

With resident weights (:mod:`hwsim.engine` rule 7) :func:`load_store` runs
the load phase (the ``w`` beats into the weight store, counted) and
:func:`run_engine` takes the store it filled: a tile then reads its
parameter beats and its steps' weight words from the store at the
operation's ``wbase``.

Cycles follow the contract of :mod:`hwsim.engine`; here they are computed
event by event (every shadow-register handover, every write), there in
closed form.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwsim.compiler import (PAD, EngineOp, Op, Program, TensorMap, Unit, WeightStream, from_words, to_words,
                            unpack_params, window_addresses)
from hwsim.engine import COUNTER_NAMES, LOAD_COUNTERS, EngineLayer, counter_totals
from quant.base.intops import RequantMode, requant_fixed, requant_threshold

__all__ = ["EngineRun", "StoreLoad", "load_store", "run_engine"]



@dataclass
class EngineRun:
    """Result of :func:`run_engine`."""

    logits: np.ndarray
    outputs: dict
    ops: list
    prog_beats: int
    x_beats: int
    total_cycles: int
    region_reads: list = field(default_factory=list)
    region_writes: list = field(default_factory=list)
    traces: dict = field(default_factory=dict)  # with config.trace: op name -> its o beats (raw lanes)

    def totals(self) -> dict:
        """Sum of every counter over the operations, plus the ``prog`` / ``x`` beats
        (:func:`hwsim.engine.counter_totals`)."""
        return counter_totals(self.ops, total_cycles=self.total_cycles, prog_beats=self.prog_beats,
                              x_beats=self.x_beats)


@dataclass
class StoreLoad:
    """Result of :func:`load_store`: the weight store (one entry per address: a weight word ``[rows, cols]``
    or a parameter beat, an int) and the load phase's counters (:data:`hwsim.engine.LOAD_COUNTERS`)."""

    store: list
    counters: dict


def load_store(program: Program, weights: WeightStream) -> StoreLoad:
    """The load phase of a resident engine (:mod:`hwsim.engine` rule 7), beat by beat."""
    cfg = program.config
    if not cfg.resident:
        raise ValueError(f"the engine's weights are {cfg.weights}: only a resident engine has a load phase")
    store: list = []
    c = dict.fromkeys(LOAD_COUNTERS, 0)
    c["prog_beats"] = 1  # cycle 0: the load descriptor
    cycle = 0
    wpos = ppos = 0
    for op in program.ops:
        if op.op != Op.CONV:
            continue
        if op.wbase != len(store):
            raise ValueError(f"operation {op.name}: wbase {op.wbase}, but its first beat is store word {len(store)}")
        for _ in range(op.tiles):
            beats = [w for w in weights.words[wpos : wpos + op.weight_words]]
            beats += list(weights.params[ppos : ppos + op.param_beats])
            wpos += op.weight_words
            ppos += op.param_beats
            for b in beats:  # one w beat per cycle, written into the next address
                cycle += 1
                store.append(b)
                c["w_beats"] += 1
                c["wbuf_writes"] += 1
    if len(store) > cfg.weight_words:
        raise ValueError(f"the store holds {cfg.weight_words} words, the stream has {len(store)}")
    c["cycles"] = cycle + 1
    return StoreLoad(store=store, counters=c)


class _Machine:
    def __init__(self, program: Program, weights: WeightStream, store: list | None = None):
        cfg = program.config
        self.p = program
        self.cfg = cfg
        self.mask = (1 << cfg.act_bits) - 1
        self.mem = [np.zeros((d, cfg.cols), dtype=np.int64) for d in cfg.act_words]
        self.reads = [0] * cfg.regions
        self.writes = [0] * cfg.regions
        self.wbuf = np.zeros((cfg.weight_words, cfg.rows, cfg.cols), dtype=np.int64)
        self.words = weights.words
        self.params = weights.params
        self.wpos = 0
        self.ppos = 0
        self.store = store
        self.logits: dict = {}

    # --- memories ---
    def read(self, t: TensorMap, addr: np.ndarray) -> np.ndarray:
        """Words at ``addr`` (all valid) decoded to lane values."""
        raw = self.mem[t.region][addr]
        self.reads[t.region] += int(addr.size)
        if t.signed:
            top = 1 << (self.cfg.act_bits - 1)
            raw = np.where(raw >= top, raw - (1 << self.cfg.act_bits), raw)
        return raw

    def write(self, t: TensorMap, addr: int, lanes: dict) -> None:
        """One word write with lane enables (``lanes``: lane -> value)."""
        word = self.mem[t.region][addr]
        for lane, v in lanes.items():
            word[lane] = int(v) & self.mask
        self.writes[t.region] += 1

    def lane_enables(self, t: TensorMap, g: int, lanes: dict) -> dict:
        """Add the cleared lanes beyond the tensor's last channel (in its last word)."""
        cols = self.cfg.cols
        if g == t.groups - 1:
            for lane in range(t.channels - g * cols, cols):
                lanes.setdefault(lane, 0)
        return lanes


def _requant_rows(op: EngineOp, acc: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Requant of ``acc [pixels, rows]`` by the tile's parameter bank (``quant.base.intops``' formulas): ``[rows, pixels]``."""
    a = np.asarray(acc, dtype=np.int64).T
    rows = a.shape[0]
    if op.mode == RequantMode.FIXED:
        return requant_fixed(a, bank[:rows, 0], bank[:rows, 1], op.shift, op.lo, op.hi)
    used = (1 << op.out_bits) - 1  # the bank's further thresholds pad a narrower layer (never reached)
    return requant_threshold(a, bank[:rows, :used], bank[:rows, -1], op.out_bits)


def _conv(mc: _Machine, op: EngineOp, start: int, c: dict) -> int:
    """Run one conv op from cycle ``start``; returns its last event cycle."""
    cfg = mc.cfg
    p = mc.p
    xt = p.tensors[op.srcs[0]]
    yt = p.tensors[op.dst]
    cols = cfg.cols
    kh, kw = op.kernel
    addr = window_addresses(xt.height, xt.width, xt.groups, op.kernel, op.stride, op.padding)
    npix = addr.shape[0]
    addr = addr.reshape(npix, kh * kw * xt.groups)
    gidx = np.tile(np.arange(xt.groups), kh * kw)  # channel group of each step
    lanes_c = np.arange(cols)
    D, Lq = cfg.step_latency, cfg.requant_latency
    S = op.steps
    o_total = yt.channels
    end = start
    tp = cfg.pixel_tile
    prev_last = None  # last-step cycle of the previous tile's last pixel tile
    prev_entries = 0  # its shadow entries (pixels x rows)
    two = cfg.weight_buffers == 2  # rule 2: tile t loads into half t % 2 while tile t-1 issues
    lasts: list = []  # each tile's last step
    bank_reads: list = []  # each tile's last read of its parameter bank (the drain's, rule 4)
    beat = start - 1  # the cycle of the last w beat taken
    for t in range(op.tiles):
        # weight load: S words then the parameter beats, one beat per cycle
        load_start = start if t == 0 else prev_last + 1
        if two:  # beat by beat: each as early as rule 2 allows
            for k in range(op.weight_words + op.param_beats):
                beat += 1
                if k == 0 and t >= 2:
                    beat = max(beat, lasts[t - 2] + 1)  # the half tile t-2 read is free
                if k == op.weight_words and t >= 2:
                    beat = max(beat, bank_reads[t - 2] + 1)  # the bank tile t-2's requant read is free
        if cfg.resident:  # rule 7: the parameter beats are store reads; steps read the store at the tile's base
            n_load = op.param_beats
            base = op.wbase + t * (op.weight_words + op.param_beats)
            tile_words = np.asarray(mc.store[base : base + op.weight_words], dtype=np.int64)
            beats = mc.store[base + op.weight_words : base + op.weight_words + op.param_beats]
            c["wbuf_reads"] += op.param_beats
        else:
            n_load = op.weight_words + op.param_beats
            half = (t % 2) * cfg.half_words if two else 0
            mc.wbuf[half : half + op.weight_words] = mc.words[mc.wpos : mc.wpos + op.weight_words]
            mc.wpos += op.weight_words
            c["wbuf_writes"] += op.weight_words
            beats = mc.params[mc.ppos : mc.ppos + op.param_beats]
            mc.ppos += op.param_beats
            c["w_beats"] += n_load
            tile_words = mc.wbuf[half:]
        bank = unpack_params(cfg, op.mode, beats, op.rows)
        c["param_writes"] += len(beats)
        o0 = t * op.rows
        rt = min(op.rows, o_total - o0)
        # compute: pixel tiles of Tp pixels; for each step s weight word s is read once, at the tile's
        # first pixel, and every pixel of the pixel tile reads one word (or takes the pad word)
        acc = np.zeros((npix, cfg.rows), dtype=np.int64)
        tiles_p = [np.arange(q0, min(q0 + tp, npix)) for q0 in range(0, npix, tp)]
        for pix in tiles_p:
            for s in range(S):
                w = tile_words[s]
                c["wbuf_reads"] += 1
                a = addr[pix, s]
                valid = a != PAD
                g = int(gidx[s])
                pad_word = np.where(lanes_c < xt.channels - g * cols, op.pad_value, 0)
                x = np.broadcast_to(pad_word, (pix.size, cols)).copy()
                if valid.any():
                    x[valid] = mc.read(xt, a[valid])
                c["act_reads"] += int(valid.sum())
                if op.unit == Unit.ADDER:
                    terms = np.abs(x[:, None, :] - w[None, :, :])
                else:
                    terms = x[:, None, :] * w[None, :, :]
                acc[pix] += terms.sum(axis=2)  # the row trees, then accumulator p of each row
        c["busy_cycles"] += npix * S
        # per pixel tile: shadow handover, requant one entry (pixel, row) per cycle, word writes
        # one buffer: the parameter beats (w beats, or resident store reads) after the weight words, and not
        # before the cycle after the drain's last read of bank t % 2 for tile t-2 (rule 2's bank wait)
        params_at = load_start + n_load - op.param_beats
        if t >= 2:
            params_at = max(params_at, bank_reads[t - 2] + 1)
        first = params_at + op.param_beats
        if two:  # rule 2: the cycle after both its last beat and the previous tile's last step
            first = beat + 1 if t == 0 else max(beat, prev_last) + 1
        qs = _requant_rows(op, acc[:, :rt], bank)
        last = None
        for pix in tiles_p:
            if last is None:
                last = first + S * pix.size - 1
                if prev_last is not None:
                    last = max(last, prev_last + prev_entries)
            else:
                last = last + max(S * pix.size, prev_entries)
            prev_entries = pix.size * rt
            for k, px in enumerate(pix.tolist()):
                pending: dict = {}
                for r in range(rt):
                    o = o0 + r
                    q = int(qs[r, px])
                    c["requant_ops"] += 1
                    when = last + D + 1 + k * rt + r + Lq
                    if op.last:
                        mc.logits[o] = q
                        c["o_beats"] += 1
                        end = max(end, when)
                        continue
                    pending[o % cols] = q
                    if o % cols == cols - 1 or r == rt - 1:
                        g = o // cols
                        mc.write(yt, px * yt.groups + g, mc.lane_enables(yt, g, pending))
                        c["act_writes"] += 1
                        end = max(end, when)
                        pending = {}
        prev_last = last
        lasts.append(last)
        bank_reads.append(last + D + prev_entries)  # rule 4: the last pixel's last entry reads the bank
    return end


def _vector(mc: _Machine, op: EngineOp, start: int, c: dict) -> int:
    """Run one pool or add op from cycle ``start``; returns its last event cycle."""
    cfg = mc.cfg
    p = mc.p
    cols = cfg.cols
    yt = p.tensors[op.dst]
    srcs = [p.tensors[s] for s in op.srcs]
    xt = srcs[0]
    D, Lq = cfg.vector_latency, cfg.requant_latency
    S = op.steps
    if op.op == Op.ADD:
        addr = np.arange(xt.words).reshape(xt.pixels, 1, xt.groups)
    else:
        addr = window_addresses(xt.height, xt.width, xt.groups, op.kernel, op.stride, op.padding)
        addr = addr.reshape(addr.shape[0], S, xt.groups)
    npix = addr.shape[0]
    end = start
    last = None
    prev_n = 0
    # pools walk one channel group at a time (g, then pixels); the add goes pixel by pixel (p, then g)
    if op.op == Op.ADD:
        items = [(px, g) for px in range(npix) for g in range(xt.groups)]
    else:
        items = [(px, g) for g in range(xt.groups) for px in range(npix)]
    for px, g in items:
        last = start + S if last is None else last + max(S, prev_n)  # cycle `start`: the command
        a = addr[px, :, g]
        valid = a != PAD
        v = min(cols, xt.channels - g * cols)
        if op.op == Op.MAXPOOL:
            lo = -(1 << (cfg.act_bits - 1)) if xt.signed else 0
            val = np.full(cols, lo, dtype=np.int64)
            if valid.any():
                val = np.maximum(val, mc.read(xt, a[valid]).max(axis=0))
            c["act_reads"] += int(valid.sum())
            lanes = {n: int(val[n]) for n in range(v)}
            mc.write(yt, px * yt.groups + g, mc.lane_enables(yt, g, lanes))
            c["act_writes"] += 1
            end = max(end, last + D + 1)
            prev_n = 1
            continue
        if op.op == Op.AVGPOOL:
            acc = np.zeros(cols, dtype=np.int64)
            if valid.any():
                acc = mc.read(xt, a[valid]).sum(axis=0)
            c["act_reads"] += int(valid.sum())
            vals = requant_fixed(acc[:v], op.m[0], op.n, op.shift, op.lo, op.hi).tolist()
        else:
            ra = mc.read(srcs[0], a)[0]
            rb = mc.read(srcs[1], a)[0]
            c["act_reads"] += 2
            vals = [min(max((op.m[0] * int(ra[n]) + op.m[1] * int(rb[n]) + op.n) >> op.shift, op.lo), op.hi)
                    for n in range(v)]
        c["requant_ops"] += v
        for n in range(v):
            when = last + D + 1 + n + Lq
            end = max(end, when)
            if op.last:
                mc.logits[g * cols + n] = vals[n]
                c["o_beats"] += 1
        if not op.last:
            mc.write(yt, px * yt.groups + g, mc.lane_enables(yt, g, dict(enumerate(vals))))
            c["act_writes"] += 1
        prev_n = v
    c["busy_cycles"] += npix * xt.groups * S
    return end


def run_engine(program: Program, weights: WeightStream, image, store: StoreLoad | None = None) -> EngineRun:
    """Run one image through the engine.

    Parameters
    ----------
    program : Program
        The compiled program (its ``config`` is the engine's).
    weights : WeightStream
        The ``w`` stream in program order.
    image : array of int
        Input codes ``[*input_shape]`` of one image (the host sends them as
        HWC words on ``x``).
    store : StoreLoad, optional
        A resident engine's store, as :func:`load_store` filled it (loaded
        here from ``weights`` when None); the run's counters are the image's
        alone, without the load phase.

    Returns
    -------
    EngineRun
        Logits ``[classes]`` (int64), ``outputs`` (layer name -> codes in the
        model's shape), per-operation counters (:class:`hwsim.engine.EngineLayer`), stream beats,
        total cycles and reads/writes per region.
    """
    cfg = program.config
    if cfg.resident and store is None:
        store = load_store(program, weights)
    elif not cfg.resident and store is not None:
        raise ValueError(f"the engine's weights are {cfg.weights}: it has no store to take")
    mc = _Machine(program, weights, None if store is None else store.store)
    xt = program.tensors[program.input]
    x = np.asarray(image, dtype=np.int64)
    if x.shape != program.layer_shapes["input"]:
        raise ValueError(f"image codes must be {list(program.layer_shapes['input'])}, not {list(x.shape)}")
    if x.size and (x.min() < xt.lo or x.max() > xt.hi):
        raise ValueError(f"image codes outside the input range {xt.lo}..{xt.hi}")
    words = to_words(x.reshape(xt.channels, xt.height, xt.width), cfg.cols)
    # cycle 0: operation 0's descriptor; then one x beat (one word write) per cycle
    mc.mem[xt.region][: words.shape[0]] = words & mc.mask
    mc.writes[xt.region] += words.shape[0]
    cycle = 1 + words.shape[0]
    outputs = {"input": x}
    counters = []
    traces: dict = {}
    for op in program.ops:
        # the operation's counters but its cycles, and its parameter-bank writes, tallied below
        c = dict.fromkeys((*COUNTER_NAMES[1:], "param_writes"), 0)
        if op.op == Op.CONV:
            end = _conv(mc, op, cycle, c)
        else:
            end = _vector(mc, op, cycle, c)
        t = program.tensors[op.dst]
        if cfg.trace and not op.last:
            # rule 6: every word of the output, read once, its lanes sent one beat each
            raw = mc.mem[t.region][: t.words]
            mc.reads[t.region] += t.words
            traces[op.name] = [int(v) for v in raw.reshape(-1)]
            c["act_reads"] += t.words
            c["o_beats"] += t.words * cfg.cols
            end += 1 + t.words * cfg.cols
        counters.append(EngineLayer(name=op.name, op=op.op, unit=op.unit, start=cycle, end=end,
                                    cycles=end - cycle + 1, **c, mode=op.mode))
        cycle = end + 2  # the next operation's descriptor beat, then its first cycle
        shape = program.layer_shapes[op.name]
        if op.last:
            outputs[op.name] = np.array([mc.logits[o] for o in range(t.channels)], dtype=np.int64).reshape(shape)
        else:
            raw = mc.mem[t.region][: t.words].copy()
            if t.signed:
                top = 1 << (cfg.act_bits - 1)
                raw = np.where(raw >= top, raw - (1 << cfg.act_bits), raw)
            outputs[op.name] = from_words(raw, t.channels, t.height, t.width).reshape(shape)
    if not cfg.resident and (mc.wpos != weights.words.shape[0] or mc.ppos != len(weights.params)):
        raise ValueError(
            f"the weight stream has {weights.beats} beats but the program consumed "
            f"{mc.wpos + mc.ppos}")
    for alias, s in program.aliases.items():
        outputs[alias] = outputs[s].reshape(program.layer_shapes[alias])
    logits_name = program.output
    logits = outputs[logits_name].reshape(-1)
    return EngineRun(logits=logits, outputs=outputs, ops=counters, prog_beats=program.prog_beats,
                     x_beats=int(words.shape[0]), total_cycles=cycle - 1, region_reads=mc.reads,
                     region_writes=mc.writes, traces=traces)

