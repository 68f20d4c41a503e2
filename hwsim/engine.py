"""The network engine's exact cycle and access model (dataflow ``cp``, DESIGN §4b).

Predicts, per operation and in closed form from an ``IntModel`` and an
:class:`~hwsim.config.EngineConfig` (no simulation), the cycle count
and every counter the engine exposes: activation-memory reads and writes,
weight-buffer reads and writes, ``w`` and ``o`` stream beats, requant
outputs, busy cycles of the unit that runs the operation.  The RTL and its
numpy reference (:mod:`hwsim.reference`) must produce the same numbers.

The cycle contract
------------------
Cycle 0 is the cycle of the first ``prog`` beat.  "In cycle n" means the
event (a handshake, a memory access, a register load) takes effect at the
clock edge that ends cycle n.  No back-pressure: the host offers a beat on
every input stream in every cycle and ``o`` is always ready.  ``D`` is
``config.step_latency``, ``D_v`` ``config.vector_latency``, ``L_q``
``config.requant_latency``.

1. **Program and image.**  The program is streamed: the engine holds one
   descriptor, and takes operation ``k``'s ``prog`` beat when it is about to
   run it, for every image.  Operation 0's beat fires in cycle 0; then the
   ``x`` beats, one HWC word of the image per cycle (cycles ``1 .. n_x``),
   each written into the input's region in the cycle it fires.  Operation 0
   starts the cycle after the last ``x`` beat.  Operation ``k > 0``'s
   descriptor beat fires the cycle after operation ``k-1``'s last event
   (its last memory write or ``o`` beat), and operation ``k`` starts the
   cycle after that beat.  The run ends with the last ``o`` beat;
   ``total_cycles`` is that cycle + 1, and the next image's operation-0
   beat fires in cycle ``total_cycles`` (each image repeats the schedule).
   An operation's ``cycles`` is its last event's cycle - its first cycle + 1.
2. **Conv tiles** (conv, linear; ``rows_u`` = ``rows`` or ``mult_rows``).
   Tiles of ``rows_u`` output channels run in order.  A tile first takes its
   ``S = kh*kw*G`` weight words and then its ``n_p``
   (:meth:`EngineConfig.param_beats`) parameter beats on ``w``, one beat per
   cycle, each weight word written into the weight buffer; tile 0 starts
   loading in the operation's first cycle, tile ``t > 0`` in the cycle after
   tile ``t-1``'s last step.  Tile ``t``'s parameter beats go into
   parameter bank ``t mod 2`` (there are two; the drain reads the bank of
   the tile it drains, rule 4), so a load never waits for the previous
   tile's drain, but (*the bank wait*) its first parameter beat comes not
   before the cycle after the drain's last read of bank ``t mod 2`` for
   tile ``t-2``, ``l(t-2, Q-1) + D + n_{Q-1} rows_{t-2}`` (rule 4), so it
   never overwrites parameters still in use; the load stalls until then.
   It binds only where tiles are short against ``D`` (small ``S``, few
   pixels, a drain of many rows), e.g. a resident fc layer of a few input
   words at cols 16; LeNet-5-BN at 4x4 and ResNet-20 at 16x16 never meet
   it.  With resident weights (rule 7) the load is ``n_load = n_p`` store
   reads instead (the first of them after the bank wait) and no ``w`` beat;
   otherwise ``n_load = S + n_p``.

   *Two weight buffers* (``config.weight_buffers`` 2, streamed, ``Tp = 1``): the
   weight buffer has two halves of ``H = weight_words // 2`` words and the
   loads overlap the steps.  Tile ``t`` writes weight word ``s`` at
   ``(t mod 2) H + s``, its parameter beats into bank ``t mod 2``, and its
   steps read word ``s`` at ``(t mod 2) H + s``.  Its beats are taken one
   per cycle, in stream order, as early as these allow: its first beat not
   before the cycle after tile ``t-1``'s last beat and (its half is free)
   not before the cycle after tile ``t-2``'s last step; its first
   parameter beat after the bank wait (above).
   With ``e(t)`` the cycle of tile ``t``'s last beat, its steps start in ``first_issue(t) = max(e(t), l(t-1, P-1)) + 1``
   (``e(0) + 1`` for tile 0): the cycle after both its load and tile
   ``t-1``'s steps are done.  With one buffer (the default),
   ``first_issue(t) = e(t) + 1``, ``e(t)`` its last beat (or store read).
3. **Steps.**  ``Tp`` is ``config.pixel_tile``.  From ``first_issue(t)``
   (rule 2: the cycle after its load) the tile issues steps, one per cycle: its output pixels (raster
   order) run in pixel tiles of ``Tp`` (the last one holds the rest, ``n_q``
   pixels in pixel tile ``q``), and a pixel tile issues its ``S * n_q``
   steps in order ``(s, p)``: for each step ``s = (i, j, g)`` of the window,
   for each of its pixels ``p``.  A step reads the activation word of its
   pixel's window position, or, at a padded position, nothing (the pad
   word); the step ``(s, 0)`` reads weight word ``s``, which the steps
   ``(s, p > 0)`` reuse (one weight-buffer read per ``s`` and pixel tile).
   Row ``r``'s accumulator ``p`` (one per pixel of the tile) sums pixel
   ``p``'s terms.  The pixel tile's last step ``(S-1, n_q-1)`` hands its
   ``n_q * rows_t`` sums to the shadow register ``D`` cycles after its issue,
   and may issue only ``n_{q-1} * rows_t`` cycles or more after the previous
   pixel tile's last step (the shadow's previous contents must have drained,
   rule 4), so with ``l`` the cycle of a pixel tile's last step::

       l(t, 0)   = first_issue(t) + S*n_0 - 1  (and >= l(t-1, Q-1) + n_{Q-1} * rows_{t-1})
       l(t, q+1) = l(t, q) + max(S * n_{q+1}, n_q * rows_t)

   (with ``Tp = 1`` a pixel tile is a pixel: ``l(t, p+1) = l(t, p) + max(S, rows_t)``).
4. **Requant drain.**  The shared requant unit reads the shadow's entries
   pixel by pixel, row by row: entry ``(p, r)`` (pixel ``p`` of the pixel
   tile, output channel ``o0 + r``) in cycle ``l + D + 1 + p * rows_t + r``,
   and its output is ready ``L_q`` cycles later; the writer gathers outputs
   into a word and writes it (with lane enables: the channels it carries,
   and in the word of the tensor's last channel the cleared lanes beyond it)
   in the cycle of the last output that goes into that word, i.e. at channel
   ``o`` with ``o % cols == cols - 1`` or the tile's last row.  The last
   operation's outputs are not written: each is an ``o`` beat in its cycle.
5. **Vector operations** (pools, add) take the address generator's command
   in their first cycle and issue their first step in the next.  They work
   on items ``(pixel, g)``: a pool one channel group at a time (for each
   ``g``, every output pixel), the add pixel by pixel (for each pixel, every
   ``g``), with ``S = kh*kw`` steps (pools; one read per in-bounds position, none at
   padding) or ``S = 1`` (add: one read of each input, in two regions, in the
   same cycle).  The item's value (lane max, lane sums, or the two words)
   enters the shadow ``D_v`` cycles after its last step.  Max pool writes
   the word the cycle after (``l + D_v + 1``), one entry; average pool and
   add requantise the item's ``v = min(cols, C - g*cols)`` lanes one per
   cycle as in rule 4 (lane ``n`` read in ``l + D_v + 1 + n``, ready ``L_q``
   later) and write the word with the last lane.  An item's last step waits
   for the previous item's ``v`` entries (1 for max pool) to drain, as in
   rule 3: ``l(j+1) = l(j) + max(S, n_j)``.

6. **Trace** (``config.trace``).  After its last write, an operation other
   than the last sends its output tensor on ``o``: its ``W = P * G`` words
   (every output pixel, every channel group) in address order, each read
   once from the tensor's region and sent as ``cols`` beats, lane 0 first
   (raw lane bits, zero-extended; lanes beyond the channels are 0).  Word 0
   is read the cycle after the last write, and its lanes go out in the
   ``cols`` cycles after that; word ``q + 1`` is read in the cycle of word
   ``q``'s last beat, so the beats run back to back.  The operation's last
   event is its last beat: ``1 + W * cols`` cycles after the last write; it
   adds ``W`` activation reads and ``W * cols`` ``o`` beats.

7. **Resident weights** (``config.weights`` is ``WeightMode.RESIDENT``).
   The weight buffer is the weight store: the whole ``w`` stream of rule 2
   (every conv tile's ``S`` weight words then its ``n_p`` parameter beats, in
   program order), beat ``i`` at address ``i``, ``N`` words in all; an
   operation's tiles start at its descriptor's ``wbase``, tile ``t`` at
   ``b_t = wbase + t (S + n_p)``.  *The load phase* runs once, before the
   images (and again only if the host wants new weights; it is taken where
   an operation-0 descriptor would be): its descriptor
   (``load`` set, ``in_words = N``) fires in cycle 0 of the phase, then the
   ``N`` ``w`` beats, one per cycle (cycles ``1 .. N``), beat ``i`` written
   into store address ``i`` in the cycle it fires.  Its last event is the
   last beat (``op_done`` pulses there, ``op_index`` 0): it takes ``N + 1``
   cycles, 1 ``prog`` beat, ``N`` ``w`` beats, ``N`` weight-buffer writes
   (:class:`LoadPhase`); the first image's
   operation-0 beat fires in the cycle after, which is that image's cycle 0
   (rule 1: every image repeats the schedule, with no ``w`` beat).  *A
   tile's load* (rule 2) is ``n_p`` store reads, one per cycle from the
   bank wait on: parameter beat ``k`` read from ``b_t + S + k`` in the
   tile's ``k``-th load cycle
   and written into the parameter bank the cycle after; the tile's steps
   then issue as in rule 3 and step ``(s, 0)`` reads weight word ``b_t + s``.
   Per tile: ``n_p`` more weight-buffer reads, no write, no ``w`` beat.  A
   reset leaves the store as it was (memories are not reset).

Closed forms used here (``T`` tiles, ``P`` pixels, ``R = rows_u``; the last
tile has ``rows_T = O - (T-1)R`` rows; ``Q = ceil(P / Tp)`` pixel tiles, the
first of ``n_0 = min(Tp, P)`` pixels, the last of ``n_L = P - (Q-1) Tp``;
``in(r) = (Q-2) Tp max(S, r) + max(S n_L, Tp r)`` when ``Q >= 2``, else 0):
with ``A = max(n_load + S n_0, n_L R)`` (a tile's load and first pixel
tile, or the previous tile's last shadow) and ``B = D + n_L R + n_p + S n_0``
(the bank wait's, from the last step two tiles before), full tile ``k``'s
last step is ``m(k) = a + n_load + S n_0 - 1 + in(R) + k (in(R) + A)`` when
``B <= in(R) + 2A`` (the wait never binds), else ``... + floor(k/2) (in(R) +
B) + (k mod 2) (in(R) + A)`` (it binds in every second tile); the last
step of a conv is at ``max(m(T-2) + A, m(T-3) + B) + in(rows_T)`` (the
first term alone when ``T = 2``; ``a + n_load + S n_0 - 1 + in(rows_T)``
when ``T = 1``) and its last event ``D + n_L rows_T + L_q`` later; it reads ``T Q S`` weight words (with two weight buffers, where ``Tp = 1``, the
tiles' loads, ``e``, ``first_issue`` and last steps follow from rule 2's maxima tile by tile); a
vector op's last step is at ``a + S + P sum_g max(S, n_g) - max(S, n_G)``.

Memory reads of a windowed operation are ``G * (sum_i rows_in(i)) * (sum_j
cols_in(j))`` per tile, where ``rows_in(i)`` counts the output rows whose
kernel row ``i`` falls inside the input (padding reads nothing).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from hwsim.config import ENGINE_COUNTERS as COUNTER_NAMES
from hwsim.compiler import Op, Unit
from hwsim.config import EngineConfig
from quant.intmodel.artifact import IntModel
from quant.base.intops import LayerKind, PeKind, RequantMode, conv_out_size

__all__ = ["DATAFLOW", "EngineLayer", "EngineEstimate", "EngineModel", "LoadPhase", "OpShape", "op_shapes",
           "COUNTER_NAMES", "LOAD_COUNTERS", "counter_totals", "in_bounds"]

#: Name of the engine's dataflow (channel-parallel), as ``summary.json`` records it.
DATAFLOW = "cp"



def in_bounds(size: int, kernel: int, stride: int, padding: int) -> int:
    """``sum_i #{o : 0 <= o*stride - padding + i < size}`` over kernel offsets ``i``."""
    n = conv_out_size(size, kernel, stride, padding)
    total = 0
    for i in range(kernel):
        lo = max(0, -(-(padding - i) // stride))  # ceil((padding - i) / stride)
        hi = min(n - 1, (size - 1 + padding - i) // stride)
        total += max(0, hi - lo + 1)
    return total


@dataclass(frozen=True)
class EngineLayer:
    """The counters of one engine operation (one model layer; flatten has none).

    The one counter record: :class:`EngineModel` predicts it in closed form,
    :func:`hwsim.reference.run_engine` counts it event by event, and the
    testbenches read it from the RTL's counter ports (:data:`COUNTER_NAMES`).
    ``start`` / ``end`` are the operation's first cycle and its last event's.
    """

    name: str
    op: Op
    unit: Unit
    start: int
    end: int
    cycles: int
    busy_cycles: int
    act_reads: int
    act_writes: int
    wbuf_reads: int
    wbuf_writes: int
    w_beats: int
    o_beats: int
    requant_ops: int
    mode: RequantMode | None = None  # the requant form the operation uses (None: max pool)
    #: Requant parameter beats written into the parameter bank (``T * n_p`` of a conv, from ``w`` or, resident,
    #: from the store; 0 elsewhere).  Priced by the energy model; not one of the RTL's counters.
    param_writes: int = 0

    @property
    def util(self) -> float:
        """Busy fraction of the operation's unit over the operation's cycles."""
        return self.busy_cycles / self.cycles

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in COUNTER_NAMES}


def counter_totals(layers, *, total_cycles: int, prog_beats: int, x_beats: int) -> dict:
    """Every counter summed over ``layers`` (:class:`EngineLayer`), ``cycles`` the run's
    ``total_cycles``, plus the ``prog`` and ``x`` beats."""
    out = {k: sum(getattr(l, k) for l in layers) for k in COUNTER_NAMES if k != "cycles"}
    out.update(cycles=total_cycles, prog_beats=prog_beats, x_beats=x_beats)
    return out


#: The counters of a resident engine's load phase (:class:`LoadPhase`), in the order the testbenches report them.
LOAD_COUNTERS = ("cycles", "prog_beats", "w_beats", "wbuf_writes")


@dataclass(frozen=True)
class LoadPhase:
    """A resident engine's load phase (rule 7): ``words`` store words taken on ``w``.

    Apart from every per-image figure; the one record hwsim predicts, the
    numpy reference counts and the testbenches read (:data:`LOAD_COUNTERS`).
    """

    words: int

    @property
    def cycles(self) -> int:
        return self.words + 1

    @property
    def prog_beats(self) -> int:
        return 1

    @property
    def w_beats(self) -> int:
        return self.words

    @property
    def wbuf_writes(self) -> int:
        return self.words

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in LOAD_COUNTERS}


@dataclass(frozen=True)
class EngineEstimate:
    """Every operation's numbers and the run's totals (one image); ``load``: the load phase of a
    resident engine (None when streamed), apart from them."""

    layers: tuple
    prog_beats: int
    x_beats: int
    total_cycles: int
    config: EngineConfig
    load: LoadPhase | None = None

    def totals(self) -> dict:
        """:func:`counter_totals` of the run."""
        return counter_totals(self.layers, total_cycles=self.total_cycles, prog_beats=self.prog_beats,
                              x_beats=self.x_beats)

    def layer(self, name: str) -> EngineLayer:
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(f"no engine operation named {name!r}")

    @property
    def latency_us(self) -> float:
        return self.total_cycles / self.config.clock_mhz


@dataclass(frozen=True)
class OpShape:
    """What the cycle contract needs of one engine operation: no weights, no parameters.

    ``kind`` is the model layer's :class:`LayerKind` (any but ``flatten``;
    a string is converted);
    ``src`` / ``dst`` the ``(h, w, c)`` geometry of its (first) input and its
    output as stored (a linear layer reads its input tensor with an
    ``h x w`` kernel); ``mode`` its :class:`RequantMode` (None for max pool).
    """

    name: str
    kind: LayerKind
    src: tuple
    dst: tuple
    kernel: tuple = (1, 1)
    stride: int = 1
    padding: int = 0
    mode: RequantMode | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", LayerKind(self.kind))
        if self.mode is not None:
            object.__setattr__(self, "mode", RequantMode(self.mode))


def op_shapes(model: IntModel) -> tuple[tuple, tuple]:
    """The engine operations of ``model`` as :class:`OpShape` (flatten is address order: none),
    and the ``(h, w, c)`` geometry of its input."""
    shape = model.input_shape
    geo = {"input": (shape[1], shape[2], shape[0]) if len(shape) == 3 else (1, 1, shape[0])}
    alias: dict = {}
    ops = []
    for layer in model.layers:
        if layer.kind == LayerKind.FLATTEN:
            alias[layer.name] = alias.get(layer.inputs[0], layer.inputs[0])
            continue
        src = geo[alias.get(layer.inputs[0], layer.inputs[0])]
        if layer.kind.linear:
            geo[layer.name] = (1, 1, layer.out_channels)
        elif len(layer.out_shape) == 3:
            geo[layer.name] = (layer.out_shape[1], layer.out_shape[2], layer.out_shape[0])
        else:
            geo[layer.name] = (1, 1, layer.out_shape[0])
        windowed = layer.kind != LayerKind.ADD and not layer.kind.linear
        rq = getattr(layer, "requant", None)
        ops.append(OpShape(name=layer.name, kind=layer.kind, src=src, dst=geo[layer.name],
                           kernel=tuple(layer.kernel) if windowed else (1, 1),
                           stride=int(layer.stride) if windowed else 1,
                           padding=int(layer.padding) if windowed else 0,
                           mode=None if rq is None else rq.mode))
    return tuple(ops), geo["input"]


class EngineModel:
    """Dataflow ``cp``: the network engine (module docstring for the contract).

    Parameters
    ----------
    config : EngineConfig
        The engine.  Predictions hold for models :func:`hwsim.compiler.compile_model`
        accepts for this config (this class does not repeat its refusals).
    """

    dataflow = DATAFLOW

    def __init__(self, config: EngineConfig):
        if not isinstance(config, EngineConfig):
            raise ValueError(f"config must be an EngineConfig, not {type(config).__name__}")
        self.config = config

    def estimate(self, model: IntModel) -> EngineEstimate:
        """Per-operation cycles and counters of one image through ``model``."""
        ops, source = op_shapes(model)
        return self.estimate_ops(ops, source)

    def estimate_ops(self, ops, source: tuple) -> EngineEstimate:
        """Per-operation cycles and counters of one image through the operations ``ops``
        (:class:`OpShape`, in program order), the image an ``(h, w, c)`` tensor ``source``.

        Only shapes, kinds and requant forms enter (module docstring): this is
        how an estimate from layer shapes alone runs the same closed form.
        """
        cfg = self.config
        if not ops:
            raise ValueError("no engine operation to estimate")
        x_beats = source[0] * source[1] * -(-source[2] // cfg.cols)
        start = 1 + x_beats  # rule 1: operation 0's descriptor, then the image
        out = []
        store = 0
        for i, op in enumerate(ops):
            last = i == len(ops) - 1
            if op.kind.pe is not None:
                est = self._conv(op, start, last)
                store += self._store_words(op)
            else:
                est = self._vector(op, start, last)
            if cfg.trace and not last:
                est = self._traced(est, op.dst)
            out.append(est)
            start = est.end + 2  # rule 1: the next descriptor beat, then the next operation
        return EngineEstimate(layers=tuple(out), prog_beats=len(ops), x_beats=x_beats,
                              total_cycles=out[-1].end + 1, config=cfg,
                              load=LoadPhase(words=store) if cfg.resident else None)

    def _store_words(self, layer: "OpShape") -> int:
        """Rule 7: the ``w`` beats (store words) of a conv or linear operation, ``T (S + n_p)``."""
        cfg = self.config
        h, w, c = layer.src
        kh, kw = (h, w) if layer.kind.linear else layer.kernel
        rows = cfg.mult_rows if cfg.pe == PeKind.ADDER and layer.kind.pe == PeKind.MULT else cfg.rows
        return -(-layer.dst[2] // rows) * (kh * kw * -(-c // cfg.cols) + cfg.param_beats(layer.mode, rows))

    def _traced(self, est: EngineLayer, dst) -> EngineLayer:
        """Rule 6: ``est`` followed by the trace of its ``(h, w, c)`` output."""
        cols = self.config.cols
        h, w, c = dst
        words = h * w * -(-c // cols)
        end = est.end + 1 + words * cols
        return dataclasses.replace(est, end=end, cycles=end - est.start + 1, act_reads=est.act_reads + words,
                                   o_beats=est.o_beats + words * cols)

    def _conv(self, layer: "OpShape", a: int, last: bool) -> EngineLayer:
        cfg = self.config
        cols = cfg.cols
        h, w, c = layer.src
        oh, ow, o = layer.dst
        g = -(-c // cols)
        if layer.kind.linear:
            kh, kw, stride, pad = h, w, 1, 0
        else:
            (kh, kw), stride, pad = layer.kernel, layer.stride, layer.padding
        if cfg.pe == PeKind.MULT:
            unit, rows = Unit.MULT, cfg.rows
        elif layer.kind.pe == PeKind.ADDER:
            unit, rows = Unit.ADDER, cfg.rows
        else:
            unit, rows = Unit.MULT, cfg.mult_rows
        S = kh * kw * g
        P = oh * ow
        T = -(-o // rows)
        n_p = cfg.param_beats(layer.mode, rows)
        n_load = n_p if cfg.resident else S + n_p  # rule 2 / rule 7
        r_last = o - (T - 1) * rows
        tp = cfg.pixel_tile
        Q = -(-P // tp)  # pixel tiles
        n0, n_last = min(tp, P), P - (Q - 1) * tp

        def within(r):  # from a tile's first pixel tile's last step to its last one's (rule 3)
            return 0 if Q == 1 else (Q - 2) * tp * max(S, r) + max(S * n_last, tp * r)

        if cfg.weight_buffers == 2:  # rule 2, tile by tile (pixel_tile is 1 with two buffers)
            l_end = self._overlapped_last_step(a, S, n_p, P, T, rows, r_last)
        else:  # the full tiles' last steps, then the last tile's (rule 2's bank wait: the term B)
            W, A = within(rows), max(n_load + S * n0, n_last * rows)
            B = cfg.step_latency + n_last * rows + n_p + S * n0
            m0 = a + n_load + S * n0 - 1

            def full_last(k):  # tile k's last step, k < T - 1; the wait binds in every second tile or never
                return m0 + W + ((k // 2) * (W + B) + (k % 2) * (W + A) if B > W + 2 * A else k * (W + A))

            if T == 1:
                l_end = m0 + within(r_last)
            else:
                l_end = within(r_last) + max(full_last(T - 2) + A, full_last(T - 3) + B if T >= 3 else 0)
        end = l_end + cfg.step_latency + n_last * r_last + cfg.requant_latency
        reads = T * g * in_bounds(h, kh, stride, pad) * in_bounds(w, kw, stride, pad)
        words_per_pixel = sum((min(o, t * rows + rows) - 1) // cols - (t * rows) // cols + 1 for t in range(T))
        if cfg.resident:  # rule 7: the parameters are store reads, the weights are already there
            wbuf_reads, wbuf_writes, w_beats = T * Q * S + T * n_p, 0, 0
        else:
            wbuf_reads, wbuf_writes, w_beats = T * Q * S, T * S, T * n_load
        return EngineLayer(
            name=layer.name, op=Op.CONV, unit=unit, start=a, end=end, cycles=end - a + 1,
            busy_cycles=T * P * S, act_reads=reads, act_writes=0 if last else P * words_per_pixel,
            wbuf_reads=wbuf_reads, wbuf_writes=wbuf_writes, w_beats=w_beats, o_beats=o * P if last else 0,
            requant_ops=o * P, mode=layer.mode, param_writes=T * n_p)

    def _overlapped_last_step(self, a: int, S: int, n_p: int, P: int, T: int, rows: int, r_last: int) -> int:
        """Rule 2 with two weight buffers: the conv's last step, tile by tile (each tile's load start,
        first parameter beat, last beat, first step and last step from rule 2's and rule 3's maxima)."""
        D = self.config.step_latency
        L: list = []  # each tile's last step
        e = a - 1  # the previous tile's last beat
        for t in range(T):
            rt = rows if t < T - 1 else r_last
            ld = e + 1
            pb = ld + S
            if t >= 2:
                ld = max(ld, L[t - 2] + 1)  # its half is free
                pb = max(ld + S, L[t - 2] + D + rows + 1)  # its bank is drained
            e = pb + n_p - 1
            first = e + 1 if t == 0 else max(e, L[t - 1]) + 1
            l0 = first + S - 1 if t == 0 else max(first + S - 1, L[t - 1] + rows)
            L.append(l0 + (P - 1) * max(S, rt))
        return L[-1]

    def _vector(self, layer: "OpShape", a: int, last: bool) -> EngineLayer:
        cfg = self.config
        cols = cfg.cols
        h, w, c = layer.src
        g = -(-c // cols)
        lanes = [min(cols, c - k * cols) for k in range(g)]
        if layer.kind == LayerKind.ADD:
            S, P = 1, h * w
            reads = 2 * P * g
        else:
            (kh, kw), stride, pad = layer.kernel, layer.stride, layer.padding
            S = kh * kw
            P = conv_out_size(h, kh, stride, pad) * conv_out_size(w, kw, stride, pad)
            reads = g * in_bounds(h, kh, stride, pad) * in_bounds(w, kw, stride, pad)
        entries = [1] * g if layer.kind == LayerKind.MAXPOOL else lanes
        l_end = a + S + P * sum(max(S, n) for n in entries) - max(S, entries[-1])
        if layer.kind == LayerKind.MAXPOOL:
            end = l_end + cfg.vector_latency + 1
            rq = 0
        else:
            end = l_end + cfg.vector_latency + entries[-1] + cfg.requant_latency
            rq = P * c
        return EngineLayer(
            name=layer.name, op=Op(layer.kind), unit=Unit.VECTOR, start=a, end=end, cycles=end - a + 1,
            busy_cycles=P * g * S, act_reads=reads, act_writes=0 if last else P * g, wbuf_reads=0,
            wbuf_writes=0, w_beats=0, o_beats=P * c if last else 0, requant_ops=rq, mode=layer.mode)
