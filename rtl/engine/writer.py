"""The writer: an operation's outputs into its destination region, or onto ``o`` (the last operation).

Inputs: ``desc`` (the operation's descriptor, :func:`~rtl.engine.layouts.desc_layout`),
``i`` (a stream of requant outputs, signed ``out_bits + 1``, in the drain's
order) and ``pool`` (a max pool's items: ``cols`` lanes of ``act_bits``, one
item per beat, always taken).  Outputs: ``wr`` (a region write,
:func:`~rtl.engine.layouts.region_write_signature`: the destination is
``desc.dst``), ``o`` (the outputs of the last operation, ``desc.last``; then
nothing is written) and ``done`` (high in the cycle of the operation's last
write or ``o`` beat; the writer's counters are back at zero in the next cycle).

The orders it gathers (the drain's, DESIGN §4b):

* **conv** — tile by tile (``rows_u`` output channels), pixel by pixel, row by
  row: channel ``o`` of pixel ``p`` is lane ``o % cols`` of word
  ``p * out_g + o // cols``.  A word is written when its last lane or the
  item's last row arrives, with the lane enables of the lanes gathered since
  its last write; after the layer's last channel the lanes above it are
  enabled too (they hold zeros), so every lane of the tensor is written.
* **add** — pixel by pixel, group by group (``lanes_of(g)`` lanes), words in
  address order (``in_words``).
* **average pool** — group by group, pixel by pixel (``lanes_of(g)`` lanes).
* **max pool** — the same order, a whole word per ``pool`` beat (lanes beyond
  the group's channels zeroed).

``i.ready`` is high unless the operation is the last and ``o`` is not ready.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.compiler import Op
from hwsim.config import EngineConfig
from hwsim.descriptor import DIM_BITS, addr_bits
from rtl.construct import ConfigChecked
from rtl.engine.layouts import desc_layout, is_op, region_write_signature

__all__ = ["Writer", "lanes_of", "writer_ref"]


def lanes_of(m, desc, cols, group, name="lanes_rem"):
    """Lanes of channel group ``group`` of ``desc``'s source: ``min(cols, in_c - group * cols)``."""
    rem = Signal(signed(DIM_BITS + 8), name=name)
    m.d.comb += rem.eq(desc.in_c - group * cols)
    return Mux(rem < cols, rem, cols)


class Writer(ConfigChecked, wiring.Component):
    """The writer of an engine of ``config`` (module docstring)."""

    def __init__(self, *, config: EngineConfig):
        self.config = config
        super().__init__({
            "desc": In(desc_layout(config)),
            "i": In(stream.Signature(signed(config.out_bits + 1))),
            "pool": In(stream.Signature(data.ArrayLayout(unsigned(config.act_bits), config.cols), always_ready=True)),
            "o": Out(stream.Signature(signed(config.out_bits + 1))),
            "wr": Out(region_write_signature(config)),
            "done": Out(1),
        })

    def elaborate(self, platform):  # noqa: C901 - one counter set per order, read top to bottom
        m = Module()
        cfg = self.config
        cols, ab = cfg.cols, cfg.act_bits
        A = addr_bits(cfg)
        d = self.desc
        is_conv, is_max, is_add = is_op(d, Op.CONV), is_op(d, Op.MAXPOOL), is_op(d, Op.ADD)
        done_op = self.done

        q = self.i.payload
        m.d.comb += [self.i.ready.eq(Mux(d.last, self.o.ready, 1)), self.o.valid.eq(d.last & self.i.valid),
                     self.o.payload.eq(q)]
        wfire = Signal()
        m.d.comb += wfire.eq(self.i.valid & self.i.ready)
        wreg = Signal(cols * ab)
        wmask = Signal(cols)
        wlane = Signal(range(cols))
        wg = Signal(DIM_BITS)
        wr = Signal(DIM_BITS)
        wo = Signal(DIM_BITS)
        wo0 = Signal(DIM_BITS)
        tl = Signal(range(cols))
        tg = Signal(DIM_BITS)
        wp_ = Signal(A)
        wbase = Signal(A)
        wt = Signal(DIM_BITS)
        wn = Signal(range(cols))
        wgv = Signal(DIM_BITS)
        waddr = Signal(A)
        wreg_next = Signal(cols * ab)
        cur_lane = Mux(is_conv, wlane, wn)
        m.d.comb += wreg_next.eq(wreg)
        with m.Switch(cur_lane):
            for n in range(cols):
                with m.Case(n):
                    m.d.comb += wreg_next[n * ab : (n + 1) * ab].eq(q[:ab])
        wr_en, wr_addr, wr_data, wr_mask = self.wr.en, self.wr.addr, self.wr.data, self.wr.mask

        def rows_of(o0, name):
            """The rows of the tile whose first channel is ``o0``: min(out_c - o0, rows_u)."""
            rem = Signal(signed(DIM_BITS + 2), name=f"rem_{name}")
            n = Signal(DIM_BITS, name=name)
            m.d.comb += [rem.eq(d.out_c - o0), n.eq(Mux(rem < d.rows_u, rem, d.rows_u))]
            return n

        # the tile's rows (nrw) and whether the current row is its last (wr_last) are registers, so the
        # row/lane/group advance below starts from flip-flops, not from a subtract-compare chain on wo0.
        # Each follows its inputs one cycle later by default (the descriptor is stable a cycle before an
        # operation's first beat) and is loaded exactly on every beat and at the end of an operation.
        rows_cur = rows_of(wo0, "rows_cur")
        rows_next = rows_of(wo0 + d.rows_u, "rows_next")  # the next tile's
        nrw = Signal(DIM_BITS)
        wr_last = Signal()
        m.d.sync += [nrw.eq(rows_cur), wr_last.eq(wr + 1 == rows_cur)]
        # (ntg, ntl): the lane/group digits (base cols) of the next tile's first channel wo0 + rows_u, a
        # register that follows (tg, tl) + rows_u a cycle later and at a tile's end steps with them (else the
        # digit arithmetic would sit between the beat's handshake and tg)
        ntl = Signal(range(cols))
        ntg = Signal(DIM_BITS)
        step_g, step_l = _divmod_const(m, d.rows_u, cols)
        after_cur = _lane_add(m, tl, tg, step_l, step_g, cols, "cur")
        after_next = _lane_add(m, ntl, ntg, step_l, step_g, cols, "next")
        m.d.sync += [ntl.eq(after_cur[0]), ntg.eq(after_cur[1])]
        # the vector writer's group: rem = in_c - wgv * cols (its channels and the later groups'), so its lanes
        # are v_w = min(cols, rem), and v_last == (wn == v_w - 1): registers that follow their formulas a cycle
        # later and are loaded exactly where wn and wgv step (and at an operation's end), so an item's end (and
        # done, which resets every counter) starts from flip-flops, not from the lanes' subtract-min-compare
        rem = Signal(signed(DIM_BITS + 2), name="lanes_rem")
        m.d.sync += rem.eq(d.in_c - wgv * cols)

        def lanes(r):
            return Mux(r < cols, r, cols)

        v_w = lanes(rem)
        v_last = Signal()
        m.d.sync += v_last.eq(wn + 1 == v_w)
        group = {"rem": rem, "v_last": v_last, "lanes": lanes, "cols": cols}
        last_item_pool = (wgv == d.in_g - 1) & (wp_ == d.pixels - 1)
        with m.If(is_conv & wfire):
            last_row = wr_last
            last_ch = wo == d.out_c - 1
            onehot = Signal(cols)
            above = Signal(cols)
            m.d.comb += [onehot.eq(Const(1, cols) << wlane), above.eq(~((onehot << 1) - 1))]
            with m.If((wlane == cols - 1) | last_row):
                m.d.comb += [wr_en.eq(~d.last), wr_addr.eq(wbase + wg), wr_data.eq(wreg_next),
                             wr_mask.eq(wmask | onehot | Mux(last_ch, above, 0))]
                m.d.sync += [wreg.eq(0), wmask.eq(0)]
            with m.Else():
                m.d.sync += [wreg.eq(wreg_next), wmask.eq(wmask | onehot)]
            with m.If(last_row):
                m.d.sync += [wr.eq(0), wo.eq(wo0), wlane.eq(tl), wg.eq(tg), wr_last.eq(nrw == 1)]
                with m.If(wp_ == d.pixels - 1):
                    # the tile is done: the next tile's first channel is wo0 + rows_u
                    m.d.sync += [wp_.eq(0), wbase.eq(0), wt.eq(wt + 1), wo0.eq(wo0 + d.rows_u),
                                 wo.eq(wo0 + d.rows_u), nrw.eq(rows_next), wr_last.eq(rows_next == 1)]
                    # the next tile's base lane/group (channel wo0 + rows_u), precomputed in ntl/ntg
                    m.d.sync += [tl.eq(ntl), tg.eq(ntg), wlane.eq(ntl), wg.eq(ntg),
                                 ntl.eq(after_next[0]), ntg.eq(after_next[1])]
                    with m.If(wt == d.tiles - 1):
                        m.d.comb += done_op.eq(1)
                with m.Else():
                    m.d.sync += [wp_.eq(wp_ + 1), wbase.eq(wbase + d.out_g)]
            with m.Else():
                m.d.sync += [wr.eq(wr + 1), wo.eq(wo + 1), wr_last.eq(wr + 2 == nrw)]
                with m.If(wlane == cols - 1):
                    m.d.sync += [wlane.eq(0), wg.eq(wg + 1)]
                with m.Else():
                    m.d.sync += wlane.eq(wlane + 1)
        with m.If(~is_conv & ~is_max & wfire):
            with m.If(v_last):
                m.d.comb += [wr_en.eq(~d.last), wr_addr.eq(waddr), wr_data.eq(wreg_next),
                             wr_mask.eq(Const(-1, cols))]
                m.d.sync += [wreg.eq(0), wn.eq(0)]
                _advance_item(m, is_add, d, wgv, wp_, waddr, done_op, last_item_pool, group)
            with m.Else():
                m.d.sync += [wreg.eq(wreg_next), wn.eq(wn + 1), v_last.eq(wn + 2 == v_w)]
        with m.If(self.pool.valid):
            data_w = Signal(cols * ab)
            for n in range(cols):
                m.d.comb += data_w[n * ab : (n + 1) * ab].eq(Mux(n < v_w, self.pool.payload[n], 0))
            m.d.comb += [wr_en.eq(1), wr_addr.eq(waddr), wr_data.eq(data_w), wr_mask.eq(Const(-1, cols))]
            _advance_item(m, is_add, d, wgv, wp_, waddr, done_op, last_item_pool, group)
        with m.If(done_op):
            m.d.sync += [wreg.eq(0), wmask.eq(0), wlane.eq(0), wg.eq(0), wr.eq(0), wo.eq(0), wo0.eq(0),
                         tl.eq(0), tg.eq(0), ntl.eq(step_l), ntg.eq(step_g), wp_.eq(0), wbase.eq(0), wt.eq(0),
                         wn.eq(0), wgv.eq(0), waddr.eq(0), nrw.eq(rows_of(0, "rows_first")),
                         wr_last.eq(rows_of(0, "rows_first1") == 1), rem.eq(d.in_c), v_last.eq(lanes(d.in_c) == 1)]
        return m


def _divmod_const(m, value, cols):
    """``(value // cols, value % cols)`` of an unsigned ``value`` below 2**DIM_BITS: bit slices when ``cols``
    is a power of two, else an unrolled compare chain (``value`` <= 64 in an engine: a few subtractions)."""
    if cols & (cols - 1) == 0:
        k = cols.bit_length() - 1
        return value[k:], value[:k] if k else Const(0, 1)
    q = Signal(range(66), name="div_q")
    rest = Signal(range(cols + 65), name="div_r")
    # smallest k first, so the largest k that fits is the last assignment (the one that holds)
    m.d.comb += [q.eq(0), rest.eq(value)]
    for k in range(1, 64 // cols + 2):
        with m.If(value >= k * cols):
            m.d.comb += [q.eq(k), rest.eq(value - k * cols)]
    return q, rest


def _lane_add(m, lane, group, step_l, step_g, cols, name):
    """``(group, lane) + (step_g, step_l)`` in digits of base ``cols`` (``lane``, ``step_l`` < ``cols``):
    the new ``(lane, group)``."""
    total = Signal(range(2 * cols), name=f"lane_sum_{name}")
    m.d.comb += total.eq(lane + step_l)
    carry = total >= cols
    return Mux(carry, total - cols, total), group + step_g + carry


def _advance_item(m, is_add, d, wgv, wp_, waddr, done_op, last_item_pool, group):
    """The vector writer's next item: add (p, g) order, pools (g, p) order; ``group``'s registers (the
    writer's ``rem`` and ``v_last``) loaded with its group."""
    rem, v_last, lanes, cols = (group[k] for k in ("rem", "v_last", "lanes", "cols"))
    first_group = [wgv.eq(0), rem.eq(d.in_c), v_last.eq(lanes(d.in_c) == 1)]
    next_group = [wgv.eq(wgv + 1), rem.eq(rem - cols), v_last.eq(lanes(rem - cols) == 1)]
    with m.If(is_add):
        m.d.sync += waddr.eq(waddr + 1)
        with m.If(wgv == d.in_g - 1):
            m.d.sync += first_group
        with m.Else():
            m.d.sync += next_group
        with m.If(waddr == d.in_words - 1):
            m.d.comb += done_op.eq(1)
    with m.Else():
        with m.If(wp_ == d.pixels - 1):
            m.d.sync += [wp_.eq(0), waddr.eq(wgv + 1), *next_group]
        with m.Else():
            m.d.sync += [wp_.eq(wp_ + 1), waddr.eq(waddr + d.out_g), v_last.eq(lanes(rem) == 1)]
        with m.If(last_item_pool):
            m.d.comb += done_op.eq(1)


def writer_ref(config: EngineConfig, desc: dict, beats) -> tuple[dict, list]:
    """What :class:`Writer` does with ``beats`` for descriptor ``desc`` (a dict of its fields): the words it
    leaves in the destination (address -> integer of ``act_word_bits``) and its ``o`` beats.

    ``beats`` are the ``i`` payloads in the drain's order, or for a max pool
    (``op`` 1) the ``pool`` items (``cols`` lane codes each).
    """
    cols, ab = config.cols, config.act_bits
    mask = (1 << ab) - 1
    if desc.get("last"):
        return {}, list(beats)
    lanes: dict = {}
    it = iter(beats)
    op, pixels = desc["op"], desc["pixels"]
    if op == 0:
        out_c, rows_u = desc["out_c"], desc["rows_u"]
        for t in range(desc["tiles"]):
            for p in range(pixels):
                for r in range(min(rows_u, out_c - t * rows_u)):
                    o = t * rows_u + r
                    lanes.setdefault(p * desc["out_g"] + o // cols, [0] * cols)[o % cols] = next(it) & mask
    else:
        in_c, in_g = desc["in_c"], desc["in_g"]
        order = ([(p, g) for p in range(pixels) for g in range(in_g)] if op == 3
                 else [(p, g) for g in range(in_g) for p in range(pixels)])
        for p, g in order:
            n = min(cols, in_c - g * cols)
            word = [0] * cols
            if op == 1:
                word[:n] = [v & mask for v in next(it)[:n]]
            else:
                word[:n] = [next(it) & mask for _ in range(n)]
            lanes[p * (in_g if op == 3 else desc["out_g"]) + g] = word
    return {a: sum(v << (n * ab) for n, v in enumerate(w)) for a, w in lanes.items()}, []
