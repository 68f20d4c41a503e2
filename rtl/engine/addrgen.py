"""Window address generation of the engine: the address generator (the numpy window addresses it
implements, :func:`hwsim.compiler.window_addresses`, are the architecture's).

im2col in the engine is pure address generation (DESIGN §4b): for output
pixel ``p = oy*OW + ox`` and kernel position ``(i, j)`` the input pixel is
``(iy, ix) = (oy*stride - padding + i, ox*stride - padding + j)``; inside the
input it is the word ``(iy*W + ix)*G + g`` of channel group ``g``, outside
(a padded position) there is no read and the datapath takes the pad word
(the zero point in the tensor's lanes, 0 beyond them).

The issue order of a conv's steps for one pixel is ``(i, j, g)`` with ``g``
fastest (K order ``(i, j, c)``); a pool issues ``(i, j)`` for one item
``(p, g)``.  With pixel tiles (``pixel_tile`` = ``Tp`` > 1, the engine's
weight reuse, :mod:`hwsim.engine` rule 3) the pixels run in tiles of ``Tp``
and a tile's steps go in order ``(s, p)``: window position ``s`` for each of
the tile's pixels, then ``s + 1``.  The generator keeps the walker (the
pixel's position and base address) of the tile's first pixel and returns to
it for every ``s``; the padding test is per pixel, as without tiles.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.compiler import PAD, window_addresses
from hwsim.config import MAX_PIXEL_TILE
from hwsim.descriptor import addrgen_command_fields
from quant.base.intops import check_int, conv_out_size
from rtl.construct import Checked

__all__ = ["LATENCY", "addrgen_cmd_layout", "addrgen_command", "addrgen_ref", "addrgen_step_layout", "AddrGen"]

#: Cycles from the ``cmd`` handshake to the first ``o`` beat (:attr:`AddrGen.latency`).
LATENCY = 1

#: Test-only wrong generators (:class:`AddrGen` ``mutation``); ``None`` is the real one.
MUTATIONS = (None, "pad_edge", "bank_off")


# --- the Amaranth address generator -------------------------------------------------

def addrgen_command(height: int, width: int, groups: int, kernel, stride: int, padding: int, *,
                    pixel_words: int | None = None, offset: int = 0) -> dict:
    """The :class:`AddrGen` command (``cmd`` payload) of one pass over every window.

    The pass visits ``groups`` channel groups per window position.  A tensor
    stored with ``pixel_words`` words per pixel (``groups`` when None) can be
    walked one group at a time: ``groups=1, pixel_words=G, offset=g`` (what a
    pool does).  Besides the sizes the command carries the address
    increments the generator adds (so the hardware has no multiplier):
    ``col_words = pixel_words``, ``row_words = W * pixel_words``, ``step_x =
    stride * pixel_words``, ``step_y = stride * W * pixel_words`` and the
    address of window position ``(0, 0)`` of output pixel ``(0, 0)``,
    ``base0 = -(padding*W + padding) * pixel_words + offset``.
    """
    kh, kw = kernel
    pw = groups if pixel_words is None else pixel_words
    if not 0 <= offset <= pw - groups:
        raise ValueError(f"groups {offset}..{offset + groups - 1} are outside the {pw} words of a pixel")
    oh = conv_out_size(height, kh, stride, padding)
    ow = conv_out_size(width, kw, stride, padding)
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {kh}x{kw} does not fit the padded input {height}x{width}")
    return {
        "height": height, "width": width, "groups": groups, "kh": kh, "kw": kw,
        "stride": stride, "padding": padding, "out_h": oh, "out_w": ow,
        "col_words": pw, "step_x": stride * pw, "step_y": stride * width * pw, "row_words": width * pw,
        "base0": -(padding * width + padding) * pw + offset,
    }


def addrgen_ref(gen: "AddrGen", commands) -> list:
    """Reference of :class:`AddrGen`: for each command, every step in issue order.

    Each step is ``(addr, s, g, last, end)``: ``addr`` the word address or
    None at a padded position, ``s`` the step's index within its pixel
    (``(i*kw + j)*G + g``, the weight word), ``g`` its channel group,
    ``last`` 1 on a pixel's last step (with pixel tiles: on the pixel tile's
    last step), ``end`` 1 on the command's last step.  With
    ``gen.pixel_tile > 1`` each step has a sixth member, ``p``: its pixel's
    index within the pixel tile, and the order is (pixel tile, ``s``, ``p``)
    for a command with ``"tiled": 1`` (the ``tiled`` input; pixel by pixel,
    ``p`` 0, without it).
    """
    out = []
    for cmd in commands:
        tp = gen.pixel_tile if cmd.get("tiled", 0) else 1
        pw = cmd["col_words"]
        off = cmd["base0"] + (cmd["padding"] * cmd["width"] + cmd["padding"]) * pw
        a = window_addresses(cmd["height"], cmd["width"], pw, (cmd["kh"], cmd["kw"]),
                             cmd["stride"], cmd["padding"])[..., off : off + cmd["groups"]]
        npix, kh, kw, g = a.shape
        flat = a.reshape(npix, kh * kw * g)
        steps = flat.shape[1]
        for q0 in range(0, npix, tp):
            n = min(tp, npix - q0)
            for s in range(steps):
                for k in range(n):
                    v = int(flat[q0 + k, s])
                    last = int(s == steps - 1 and k == n - 1)
                    step = (None if v == PAD else v, s, s % g, last, int(last and q0 + n == npix))
                    out.append(step + (k,) if gen.pixel_tile > 1 else step)
    return out


def addrgen_cmd_layout(addr_bits: int, dim_bits: int) -> data.StructLayout:
    """The ``cmd`` payload of :class:`AddrGen` (:func:`hwsim.descriptor.addrgen_command_fields`)."""
    return data.StructLayout({name: (signed if sgn else unsigned)(width)
                              for name, (width, sgn) in addrgen_command_fields(addr_bits, dim_bits).items()})


def addrgen_step_layout(addr_bits: int, dim_bits: int, pixel_tile: int = 1) -> data.StructLayout:
    """The ``o`` payload of :class:`AddrGen`: ``addr``, ``pad``, ``s``, ``g``, ``last``, ``end``, and with
    ``pixel_tile > 1`` ``p`` (the step's pixel within its pixel tile)."""
    fields = {"addr": unsigned(addr_bits), "pad": 1, "s": unsigned(2 * dim_bits + dim_bits),
              "g": unsigned(dim_bits), "last": 1, "end": 1}
    if pixel_tile > 1:
        fields["p"] = range(pixel_tile)
    return data.StructLayout(fields)


class AddrGen(Checked, wiring.Component):
    """Window address generator: one step (word address or pad) per cycle.

    Parameters
    ----------
    addr_bits : int
        Width of a word address (the deepest region's ``depth.bit_length()``).
    dim_bits : int
        Width of the sizes (height, width, groups, kernel, stride, padding,
        output sizes), 1..16.
    pixel_tile : int
        ``Tp`` (1..64, module docstring): pixels per pixel tile; 1 is the
        plain pixel-by-pixel order.
    mutation : {None, "pad_edge", "bank_off"}
        Test only: ``"pad_edge"`` builds a wrong generator whose right-edge
        padding test is off by one (``ix > width`` for ``ix >= width``), so a
        padded position past the row reads the next row's first word;
        ``"bank_off"`` (``pixel_tile > 1``) names each step's pixel ``p`` one
        too high (mod the pixel tile), so its terms go into the next pixel's
        accumulator.  The verification suite must catch both.

    Notes
    -----
    Ports: ``cmd`` (In stream, :attr:`cmd_layout`, one beat per pass: built
    by :func:`addrgen_command`), ``o`` (Out stream of ``addr``, ``pad``,
    ``s``, ``g``, ``last``, ``end`` and with pixel tiles ``p``; ``addr`` is
    meaningless when ``pad``).  The step order is :func:`window_addresses`'
    ``(pixel, i, j, g)``, with pixel tiles ``(tile, i, j, g, pixel)``; with
    ``pixel_tile > 1`` the input ``tiled``, taken with each command, says
    whether its pass runs in pixel tiles (a conv) or pixel by pixel (a pool).

    Latency: :attr:`latency` = 1 cycle from the ``cmd`` handshake to the first
    ``o`` beat.  Throughput: one step per cycle; ``o`` back-pressure holds the
    step; ``cmd.ready`` is high while no pass is in progress (and in the cycle
    of a pass's last step, so passes run back to back).  The address is three
    adders from registers (no multiplier).
    """

    @classmethod
    def check(cls, *, addr_bits: int, dim_bits: int = 12, pixel_tile: int = 1, mutation: str | None = None) -> None:
        """Refuse a bad argument (one line naming it) before the component exists."""
        check_int("addr_bits", addr_bits, 1, 32)
        check_int("dim_bits", dim_bits, 1, 16)
        check_int("pixel_tile", pixel_tile, 1, MAX_PIXEL_TILE)
        if mutation not in MUTATIONS:
            raise ValueError(f"mutation must be one of {', '.join(map(str, MUTATIONS))}, not {mutation!r}")
        if mutation == "bank_off" and pixel_tile == 1:
            raise ValueError("mutation 'bank_off' needs pixel_tile > 1")

    def __init__(self, *, addr_bits: int, dim_bits: int = 12, pixel_tile: int = 1, mutation: str | None = None):
        self.mutation = mutation
        self.addr_bits = addr_bits
        self.dim_bits = dim_bits
        self.pixel_tile = pixel_tile
        self.latency = LATENCY
        self.cmd_layout = addrgen_cmd_layout(addr_bits, dim_bits)
        self.o_layout = addrgen_step_layout(addr_bits, dim_bits, pixel_tile)
        ports = {
            "cmd": In(stream.Signature(self.cmd_layout)),
            "o": Out(stream.Signature(self.o_layout)),
        }
        if pixel_tile > 1:
            ports["tiled"] = In(1)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        c = Signal(self.cmd_layout, reset_less=True)  # the pass in progress
        dim = unsigned(self.dim_bits)
        pos = signed(self.dim_bits + 2)
        wide = self.cmd_layout["base0"].shape
        oy, ox, i, j, g = (Signal(dim, name=n) for n in ("oy", "ox", "i", "j", "g"))
        s = Signal(self.o_layout["s"].shape)
        iy0 = Signal(pos)
        ix0 = Signal(pos)
        row_base = Signal(wide)  # address of window (0, 0) at output (oy, 0)
        pix_base = Signal(wide)  # ... at output (oy, ox)
        i_off = Signal(wide)
        j_off = Signal(wide)
        busy = Signal()
        iy = Signal(pos)
        ix = Signal(pos)
        addr = Signal(wide)
        # the counters' last values, registered with the pass (no subtractor before the compares)
        top_g, top_j, top_i, top_x, top_y = (Signal(dim, name=f"{n}_top", reset_less=True)
                                             for n in ("g", "j", "i", "x", "y"))
        last_g = g == top_g
        last_j = j == top_j
        last_i = i == top_i
        last_step = last_g & last_j & last_i
        last_x = ox == top_x
        last_y = oy == top_y
        fire = self.o.valid & self.o.ready
        walker = (oy, ox, iy0, ix0, row_base, pix_base)
        tile_last = 1  # the step's pixel is its pixel tile's last
        if self.pixel_tile > 1:
            pt = self.pixel_tile
            kp = Signal(range(pt))  # the step's pixel within the pixel tile
            saved = tuple(Signal(v.shape(), name=f"{v.name}_tile") for v in walker)  # the tile's first pixel
            tiled = Signal(reset_less=True)  # the pass runs in pixel tiles (the ``tiled`` input at its command)
            tile_last = ~tiled | (kp == pt - 1) | (last_x & last_y)
            m.d.comb += self.o.payload.p.eq(kp + 1 if self.mutation == "bank_off" else kp)
        m.d.comb += [
            iy.eq(iy0 + i),
            ix.eq(ix0 + j),
            addr.eq(pix_base + i_off + j_off + g),
            self.o.valid.eq(busy),
            self.o.payload.addr.eq(addr[: self.addr_bits]),
            self.o.payload.pad.eq((iy < 0) | (iy >= c.height) | (ix < 0)
                                  | ((ix > c.width) if self.mutation == "pad_edge" else (ix >= c.width))),
            self.o.payload.s.eq(s),
            self.o.payload.g.eq(g),
            self.o.payload.last.eq(last_step & tile_last if self.pixel_tile > 1 else last_step),
            self.o.payload.end.eq(last_step & last_x & last_y),
            self.cmd.ready.eq(~busy | (fire & last_step & last_x & last_y)),
        ]

        def next_pixel(*targets):
            """The walker moved to the next output pixel (raster order), into ``targets``' walker copies;
            the pass ends after the last."""
            copies = [w for w in targets if w is not walker]  # a copy takes the row too, which the walker keeps
            with m.If(~last_x):
                for w in targets:
                    m.d.sync += [w[1].eq(ox + 1), w[3].eq(ix0 + c.stride), w[5].eq(pix_base + c.step_x)]
                for w in copies:
                    m.d.sync += [w[0].eq(oy), w[2].eq(iy0), w[4].eq(row_base)]
            with m.Else():
                for w in targets:
                    m.d.sync += [w[1].eq(0), w[3].eq(-c.padding), w[5].eq(row_base + c.step_y),
                                 w[4].eq(row_base + c.step_y)]
                for w in copies:
                    m.d.sync += [w[0].eq(oy), w[2].eq(iy0)]  # (the last row: the pass ends, nothing to save)
                with m.If(~last_y):
                    for w in targets:
                        m.d.sync += [w[0].eq(oy + 1), w[2].eq(iy0 + c.stride)]
                with m.Else():
                    m.d.sync += busy.eq(0)

        def next_window(at_end):
            """The next window position ``(i, j, g)``; ``at_end`` runs after the window's last."""
            with m.If(~last_g):
                m.d.sync += g.eq(g + 1)
            with m.Else():
                m.d.sync += g.eq(0)
                with m.If(~last_j):
                    m.d.sync += [j.eq(j + 1), j_off.eq(j_off + c.col_words)]
                with m.Else():
                    m.d.sync += [j.eq(0), j_off.eq(0)]
                    with m.If(~last_i):
                        m.d.sync += [i.eq(i + 1), i_off.eq(i_off + c.row_words)]
                    with m.Else():
                        m.d.sync += [i.eq(0), i_off.eq(0), s.eq(0)]
                        at_end()

        with m.If(fire):
            if self.pixel_tile == 1:
                m.d.sync += s.eq(s + 1)
                next_window(lambda: next_pixel(walker))
            else:
                with m.If(~tile_last):
                    m.d.sync += kp.eq(kp + 1)
                    next_pixel(walker)
                with m.Else():
                    m.d.sync += kp.eq(0)
                    with m.If(~last_step):
                        m.d.sync += [s.eq(s + 1), *(w.eq(v) for w, v in zip(walker, saved))]
                    next_window(lambda: next_pixel(walker, saved))
        with m.If(self.cmd.valid & self.cmd.ready):
            p = self.cmd.payload
            m.d.sync += [
                c.eq(p), busy.eq(1), oy.eq(0), ox.eq(0), i.eq(0), j.eq(0), g.eq(0), s.eq(0),
                iy0.eq(-p.padding), ix0.eq(-p.padding), row_base.eq(p.base0), pix_base.eq(p.base0),
                i_off.eq(0), j_off.eq(0),
                top_g.eq(p.groups - 1), top_j.eq(p.kw - 1), top_i.eq(p.kh - 1), top_x.eq(p.out_w - 1),
                top_y.eq(p.out_h - 1),
            ]
            if self.pixel_tile > 1:
                m.d.sync += [tiled.eq(self.tiled), kp.eq(0), *(w.eq(v) for w, v in zip(saved, (0, 0, -p.padding, -p.padding, p.base0,
                                                                         p.base0)))]
        return m
