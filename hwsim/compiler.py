"""The engine compiler: ``IntModel -> (Program, WeightStream)`` (numpy only, no torch).

What it decides (DESIGN §4b):

* **Operations.**  Every layer of the integer model becomes one engine
  operation, or none:

  ====================  ===========  ============================================
  layer kind            op / unit    notes
  ====================  ===========  ============================================
  ``adder_conv``        conv/adder   any kernel, stride, padding (pad = zero point)
  ``conv``              conv/mult    on the multiplier unit (``mult_rows``), or
                                     the main array of an all-multiplier engine
  ``adder_linear``,     conv         a 1x1 conv over one pixel, or, after a
  ``linear``                         ``flatten`` of ``[C, H, W]``, a conv with an
                                     ``H x W`` kernel over the stored tensor
  ``maxpool``,          vector       lane-parallel over words
  ``avgpool``
  ``add``               vector       ``requant_add`` of two words
  ``flatten``           (none)       address order only: an alias of its input
  ====================  ===========  ============================================

* **Memory map.**  A tensor of ``C`` channels and ``H x W`` pixels is stored
  HWC, ``G = ceil(C / cols)`` words per pixel, word ``(y*W + x)*G + g`` holding
  channels ``g*cols .. g*cols + cols - 1`` (lanes beyond ``C`` hold 0).  Each
  tensor occupies one whole activation region from address 0.  Regions are
  assigned in execution order by liveness: a tensor goes to the smallest free
  region deep enough (lowest index on ties), where a region is free when the
  tensor it holds is read by no later operation.  A residual block therefore
  uses three regions (block input, branch, output), a plain chain two
  (ping-pong).  The last operation's output (the logits) is not stored: it
  leaves on the ``o`` stream.
* **Weight stream** (the ``w`` stream, the DMA port): for every compute op, for
  every tile of ``rows_u`` output channels (``rows_u = rows``, or
  ``mult_rows`` on the multiplier unit), ``S = kh*kw*G`` weight words (one per
  reduction step, K order ``(i, j, g)``, word ``[r, n]`` = weight of output
  channel ``o0 + r`` for input channel ``g*cols + n`` at kernel position
  ``(i, j)``; absent channels 0), then :meth:`EngineConfig.param_beats`
  requant parameter beats (:func:`pack_params`).
* **Weight store** (``config.weights`` resident, :mod:`hwsim.engine` rule 7):
  the weight buffer holds the whole ``w`` stream, beat ``i`` at address
  ``i``; an operation's ``wbase`` is the address of its first beat (its
  tile ``t`` starts at ``wbase + t * (weight_words + param_beats)``).  A
  stream longer than the store is refused naming both sizes.
* **Refusals** (``ValueError`` naming the layer and the sizes; a tensor
  that fits no free activation region is the typed :class:`RegionTooSmall`,
  which :func:`hwsim.sizing.size_engine` catches while it sizes the regions): a layer kind
  the engine lacks (an adder layer on multiplier PEs, a multiply layer without
  a multiplier unit, a requant form the requant unit lacks, grouped
  convolutions), operands or codes that do not fit the widths, an accumulator
  too narrow, a tile larger than the weight buffer, a tensor larger than every
  free region.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from hwsim.config import EngineConfig
from quant.intmodel.artifact import IntLayer, IntModel
from quant.base.intops import POOL_KINDS, LayerKind, PeKind, RequantMode, code_range, conv_out_size, pe_of

__all__ = [
    "Op",
    "Unit",
    "PAD",
    "RegionTooSmall",
    "window_addresses",
    "TensorMap",
    "EngineOp",
    "Program",
    "WeightStream",
    "CompiledModel",
    "compile_model",
    "pack_params",
    "unpack_params",
    "to_words",
    "from_words",
]


class Op(enum.StrEnum):
    """An engine operation (the descriptor's ``op`` code is its index, :data:`hwsim.descriptor.OP_CODES`)."""

    CONV = "conv"
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    ADD = "add"


class Unit(enum.StrEnum):
    """The unit that runs an operation: the PE array, the multiplier unit (or the all-multiplier
    engine's array), the vector unit."""

    ADDER = "adder"
    MULT = "mult"
    VECTOR = "vector"


class RegionTooSmall(ValueError):
    """A tensor fits no free activation region (:func:`compile_model`).

    Attributes
    ----------
    tensor : str
        The tensor placed (``"input"`` or a layer name).
    words : int
        Words it needs.
    free : dict
        Free region index -> its depth in words, at that point of the program.
    """

    def __init__(self, message: str, *, tensor: str, words: int, free: dict):
        super().__init__(message)
        self.tensor = tensor
        self.words = words
        self.free = dict(free)


@dataclass(frozen=True, kw_only=True)
class TensorMap:
    """Where one tensor lives and what its codes are.

    ``region`` is None for the tensor that leaves on the ``o`` stream.
    """

    name: str
    height: int
    width: int
    channels: int
    groups: int
    region: int | None
    lo: int
    hi: int

    @property
    def signed(self) -> bool:
        return self.lo < 0

    @property
    def pixels(self) -> int:
        return self.height * self.width

    @property
    def words(self) -> int:
        """Words the tensor occupies: ``H * W * G``."""
        return self.height * self.width * self.groups


@dataclass(frozen=True, kw_only=True)
class EngineOp:
    """One operation of the program (one ``prog`` beat): a layer descriptor.

    ``op`` is an :class:`Op`; ``unit`` a :class:`Unit` (the array that runs a
    conv, or the vector unit).
    ``srcs`` / ``dst`` name tensors of :attr:`Program.tensors`.  ``steps`` is
    ``S``, the issue cycles per output pixel (conv: ``kh*kw*G_in``; pools:
    ``kh*kw``; add: 1).  Requant fields: ``mode`` (None for maxpool),
    ``shift``/``lo``/``hi`` (fixed), ``out_bits`` (threshold), ``m``/``n``
    (scalars of avgpool and add; conv parameters travel on ``w``);
    ``wbase``: the index of the operation's first ``w`` beat (its address in
    a resident weight store; 0 for vector operations).
    """

    index: int
    name: str
    op: Op
    unit: Unit
    srcs: tuple
    dst: str
    kernel: tuple
    stride: int
    padding: int
    pad_value: int
    rows: int
    tiles: int
    steps: int
    weight_words: int
    param_beats: int
    mode: RequantMode | None
    shift: int = 0
    lo: int = 0
    hi: int = 0
    out_bits: int = 0
    m: tuple = ()
    n: int = 0
    last: bool = False
    wbase: int = 0


@dataclass(frozen=True, kw_only=True, eq=False)
class Program:
    """The compiled program: operations in order, the memory map, the config."""

    config: EngineConfig
    ops: tuple
    tensors: dict
    input: str
    output: str
    aliases: dict = field(default_factory=dict)
    layer_shapes: dict = field(default_factory=dict)

    @property
    def prog_beats(self) -> int:
        """Beats of the ``prog`` stream: one descriptor per operation."""
        return len(self.ops)

    @property
    def store_words(self) -> int:
        """Beats of the whole ``w`` stream: the words a resident weight store holds."""
        return sum(o.tiles * (o.weight_words + o.param_beats) for o in self.ops if o.op == Op.CONV)

    def tensor_of(self, layer: str) -> TensorMap:
        """The stored tensor holding a model layer's output (through flatten aliases)."""
        return self.tensors[self.aliases.get(layer, layer)]

    def memory_map(self) -> dict:
        """Per region: its depth and the tensors placed in it, in order."""
        cfg = self.config
        out = {}
        for r, depth in enumerate(cfg.act_words):
            used = [t for t in self.tensors.values() if t.region == r]
            out[f"R{r}"] = {
                "words": depth,
                "word_bits": cfg.act_word_bits,
                "bytes": depth * cfg.act_word_bits // 8,
                "peak_words": max((t.words for t in used), default=0),
                "tensors": [t.name for t in used],
            }
        out["weights"] = {
            "words": cfg.weight_words,
            "word_bits": cfg.weight_word_bits,
            "bytes": cfg.weight_words * cfg.weight_word_bits // 8,
            "peak_words": max((o.weight_words for o in self.ops), default=0),
        }
        if cfg.resident:
            out["weights"].update(mode=str(cfg.weights), store_words=self.store_words,
                                  store_bytes=self.store_words * cfg.weight_word_bits // 8)
        return out


@dataclass(frozen=True, kw_only=True, eq=False)
class WeightStream:
    """The ``w`` stream: weight words ``[N, rows, cols]`` and packed parameter beats.

    Beat order: for each conv op, for each tile, its ``weight_words`` words
    (consecutive entries of :attr:`words`) then its ``param_beats`` beats
    (consecutive entries of :attr:`params`, integers of
    ``config.weight_word_bits`` bits).
    """

    words: np.ndarray
    params: tuple

    @property
    def beats(self) -> int:
        return int(self.words.shape[0]) + len(self.params)


@dataclass(frozen=True, kw_only=True, eq=False)
class CompiledModel:
    """What :func:`compile_model` returns."""

    program: Program
    weights: WeightStream


#: Address of a padded position (no memory read).
PAD = -1


def window_addresses(height: int, width: int, groups: int, kernel, stride: int, padding: int) -> np.ndarray:
    """Word addresses ``[P, kh, kw, G]`` (int64, :data:`PAD` where padded) of every window.

    ``P = OH * OW`` with ``OH = conv_out_size(height, kh, stride, padding)``.
    """
    kh, kw = kernel
    oh = conv_out_size(height, kh, stride, padding)
    ow = conv_out_size(width, kw, stride, padding)
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {kh}x{kw} does not fit the padded input {height}x{width}")
    iy = (np.arange(oh) * stride - padding)[:, None] + np.arange(kh)[None, :]  # [OH, kh]
    ix = (np.arange(ow) * stride - padding)[:, None] + np.arange(kw)[None, :]  # [OW, kw]
    vy = (iy >= 0) & (iy < height)
    vx = (ix >= 0) & (ix < width)
    pix = iy[:, None, :, None] * width + ix[None, :, None, :]  # [OH, OW, kh, kw]
    valid = vy[:, None, :, None] & vx[None, :, None, :]
    addr = pix[..., None] * groups + np.arange(groups)  # [OH, OW, kh, kw, G]
    addr = np.where(valid[..., None], addr, PAD)
    return addr.reshape(oh * ow, kh, kw, groups)


# --- words --------------------------------------------------------------------------

def to_words(codes, cols: int) -> np.ndarray:
    """``[C, H, W]`` (or ``[F]``) codes -> HWC words ``[H*W*G, cols]`` (lanes beyond C are 0)."""
    x = np.asarray(codes, dtype=np.int64)
    if x.ndim == 1:
        x = x.reshape(-1, 1, 1)
    c, h, w = x.shape
    g = -(-c // cols)
    pad = np.zeros((g * cols, h, w), dtype=np.int64)
    pad[:c] = x
    return np.ascontiguousarray(pad.transpose(1, 2, 0)).reshape(h * w * g, cols)


def from_words(words, channels: int, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`to_words`: ``[H*W*G, cols]`` -> ``[C, H, W]``."""
    wd = np.asarray(words, dtype=np.int64)
    cols = wd.shape[1]
    g = -(-channels // cols)
    hwc = wd[: height * width * g].reshape(height, width, g * cols)
    return hwc[:, :, :channels].transpose(2, 0, 1).copy()


# --- requant parameter beats --------------------------------------------------------

def _fields(config: EngineConfig, mode: RequantMode):
    if mode == RequantMode.FIXED:
        return [("m", config.mult_bits, True), ("n", config.n_bits, True)]
    return [(f"thr{t}", config.thr_bits, False) for t in range(config.threshold_count)] + [("neg", 1, False)]


def pack_params(config: EngineConfig, mode: RequantMode, rows: np.ndarray) -> tuple:
    """Pack ``rows [R, F]`` of requant parameters into ``w`` beats.

    Fixed: ``F = 2`` (``m``, ``n``, two's complement); threshold: ``F =
    2**bits - 1 + 1`` (the thresholds then ``neg``).  Row 0's first field is
    in the low bits of beat 0; the concatenation is cut into
    :attr:`EngineConfig.weight_word_bits`-bit beats
    (:meth:`EngineConfig.param_beats` of them).
    """
    fields = _fields(config, mode)
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 2 or rows.shape[1] != len(fields):
        raise ValueError(f"{mode} parameter rows must be [R, {len(fields)}], not {list(rows.shape)}")
    acc, pos = 0, 0
    for row in rows:
        for (name, width, sgn), v in zip(fields, row):
            v = int(v)
            lo, hi = code_range(width, sgn)
            if not lo <= v <= hi:
                raise ValueError(f"requant field {name}={v} does not fit {width} {'signed' if sgn else 'unsigned'} bits")
            acc |= (v & ((1 << width) - 1)) << pos
            pos += width
    bb = config.weight_word_bits
    n = config.param_beats(mode, rows.shape[0])
    return tuple((acc >> (i * bb)) & ((1 << bb) - 1) for i in range(n))


def unpack_params(config: EngineConfig, mode: RequantMode, beats, rows: int) -> np.ndarray:
    """Inverse of :func:`pack_params`: beats -> ``[rows, F]`` int64."""
    fields = _fields(config, mode)
    bb = config.weight_word_bits
    acc = 0
    for i, b in enumerate(beats):
        acc |= int(b) << (i * bb)
    out = np.zeros((rows, len(fields)), dtype=np.int64)
    pos = 0
    for r in range(rows):
        for f, (_, width, sgn) in enumerate(fields):
            v = (acc >> pos) & ((1 << width) - 1)
            if sgn and v >> (width - 1):
                v -= 1 << width
            out[r, f] = v
            pos += width
    return out


# --- the compiler -------------------------------------------------------------------

def _range_text(lo: int, hi: int) -> str:
    return f"{lo}..{hi}"


def _fits(lo: int, hi: int, bits: int) -> bool:
    if lo < 0:
        a, b = code_range(bits, True)
    else:
        a, b = code_range(bits, False)
    return a <= lo and hi <= b


def _out_range(layer: IntLayer) -> tuple[int, int]:
    rq = layer.requant
    return int(rq.qmin), int(rq.qmax)


def _check_fixed(layer: IntLayer, config: EngineConfig, m, n, shift: int) -> None:
    nm = layer.name
    mlo, mhi = code_range(config.mult_bits, True)
    m = np.asarray(m, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    if m.size and (m.min() < mlo or m.max() > mhi):
        raise ValueError(
            f"layer {nm}: requant multipliers {_range_text(int(m.min()), int(m.max()))} do not fit "
            f"the engine's mult_bits={config.mult_bits}")
    nlo, nhi = code_range(config.n_bits, True)
    if n.size and (n.min() < nlo or n.max() > nhi):
        raise ValueError(
            f"layer {nm}: requant biases {_range_text(int(n.min()), int(n.max()))} do not fit "
            f"the engine's n_bits={config.n_bits}")
    top = config.mult_bits + max(config.acc_bits, config.mult_acc_bits) + 1
    if shift > top:
        raise ValueError(f"layer {nm}: requant shift {shift} exceeds the engine's largest shift {top}")


def compile_model(model: IntModel, config: EngineConfig) -> CompiledModel:
    """Compile ``model`` for the engine ``config`` (module docstring).

    Raises
    ------
    ValueError
        When the model does not fit (the message names the layer and sizes).
    """
    cfg = config
    cols = cfg.cols
    inp = model.input
    shape = model.input_shape
    h, w, c = (shape[1], shape[2], shape[0]) if len(shape) == 3 else (1, 1, shape[0])
    geo = {"input": (h, w, c, int(inp.lo), int(inp.hi))}
    aliases: dict = {}
    flat_of: dict = {}  # alias -> the [C, H, W] geometry it flattens
    order = ["input"]
    pending = []  # (layer, op fields)
    lshapes = {"input": tuple(shape)}

    def src(name):
        return aliases.get(name, name)

    for layer in model.layers:
        nm = layer.name
        lshapes[nm] = tuple(layer.out_shape)
        groups = getattr(layer, "groups", 1)
        if groups != 1:
            raise ValueError(f"layer {nm}: grouped convolution (groups={groups}) is not supported by the engine: "
                             f"its group-shared scales (quantize --groups {groups}) need one input re-scale per "
                             f"channel group and the engine has one input scale per layer; quantize with --groups 1")
        kind = layer.kind
        if kind == LayerKind.FLATTEN:
            s = src(layer.inputs[0])
            aliases[nm] = s
            sh, sw, _sc, _, _ = geo[s]
            if sh * sw > 1:
                flat_of[nm] = s
            continue
        for i in layer.inputs:
            if i in flat_of and not kind.linear:
                sh, sw, sc, _, _ = geo[src(i)]
                raise ValueError(
                    f"layer {nm}: takes the flattened [{sc}, {sh}, {sw}] tensor {i!r}; the engine "
                    f"flattens only into a linear layer")
        pe = pe_of(kind)
        if pe is not None:
            pending.append(_compute_op(layer, cfg, geo, src))
        elif kind in POOL_KINDS:
            pending.append(_pool_op(layer, cfg, geo, src))
        elif kind == LayerKind.ADD:
            pending.append(_add_op(layer, cfg, geo, src))
        else:
            raise ValueError(f"layer {nm}: kind {kind!r} is not an engine operation")
        order.append(nm)

    # --- liveness and regions ---
    n_ops = len(pending)
    last_use = {t: -1 for t in order}
    for i, (fields, _) in enumerate(pending):
        for s in fields["srcs"]:
            last_use[s] = i
    final = pending[-1][0]["dst"] if pending else None
    if final is None:
        raise ValueError("the model has no engine operation")
    fh, fw, fc, _, _ = geo[final]
    if fh * fw != 1:
        raise ValueError(
            f"layer {final}: the logits must be one pixel to leave on the o stream, not [{fc}, {fh}, {fw}]")
    lo, hi = geo[final][3], geo[final][4]
    if not _fits(lo, hi, cfg.out_bits):
        raise ValueError(
            f"layer {final}: logits {_range_text(lo, hi)} do not fit the engine's out_bits={cfg.out_bits}")
    holder: dict = {}  # region -> tensor
    tensors: dict = {}

    def place(name: str, at: int):
        th, tw, tc, tlo, thi = geo[name]
        g = -(-tc // cols)
        words = th * tw * g
        if not _fits(tlo, thi, cfg.act_bits):
            who = "the input" if name == "input" else f"layer {name}"
            raise ValueError(
                f"{who}: codes {_range_text(tlo, thi)} do not fit the engine's "
                f"{cfg.act_bits}-bit activation lanes")
        free = [r for r in range(cfg.regions)
                if r not in holder or last_use[holder[r]] < at]
        fit = [r for r in free if cfg.act_words[r] >= words]
        if not fit:
            who = "the input" if name == "input" else f"layer {name}"
            have = ", ".join(f"R{r} {cfg.act_words[r]} words" for r in free) or "none"
            raise RegionTooSmall(
                f"{who}: activation region too small: [{tc}, {th}, {tw}] needs {words} words "
                f"of {cols} lanes; free regions: {have}",
                tensor=name, words=words, free={r: cfg.act_words[r] for r in free})
        r = min(fit, key=lambda q: (cfg.act_words[q], q))
        holder[r] = name
        tensors[name] = TensorMap(name=name, height=th, width=tw, channels=tc, groups=g,
                                  region=r, lo=tlo, hi=thi)

    place("input", 0)
    ops = []
    words = []
    params = []
    wbase = 0
    for i, (fields, wdata) in enumerate(pending):
        dst = fields["dst"]
        if i == n_ops - 1:
            th, tw, tc, tlo, thi = geo[dst]
            tensors[dst] = TensorMap(name=dst, height=th, width=tw, channels=tc,
                                     groups=-(-tc // cols), region=None, lo=tlo, hi=thi)
        else:
            place(dst, i)
        ops.append(EngineOp(index=i, last=(i == n_ops - 1), wbase=wbase if wdata is not None else 0, **fields))
        if wdata is not None:
            ws, ps = wdata
            words.extend(ws)
            params.extend(ps)
            wbase += len(ws) + len(ps)
    if cfg.resident and wbase > cfg.weight_words:
        wb = cfg.weight_word_bits
        raise ValueError(
            f"weight store too small: the model's weights and requant parameters need {wbase} words "
            f"({wbase * wb // 8} bytes of {wb}-bit words), the store holds {cfg.weight_words} "
            f"({cfg.weight_words * wb // 8} bytes)")
    wst = np.zeros((len(words), cfg.rows, cols), dtype=np.int64)
    for j, wd in enumerate(words):
        wst[j] = wd
    program = Program(config=cfg, ops=tuple(ops), tensors=tensors, input="input",
                      output=final, aliases=aliases, layer_shapes=lshapes)
    return CompiledModel(program=program, weights=WeightStream(words=wst, params=tuple(params)))


def _compute_op(layer: IntLayer, cfg: EngineConfig, geo: dict, src):
    nm = layer.name
    pe = layer.pe
    s = src(layer.inputs[0])
    h, w, c, xlo, xhi = geo[s]
    if pe == PeKind.ADDER:
        if cfg.pe != PeKind.ADDER:
            raise ValueError(f"layer {nm}: an {layer.kind} layer needs adder PEs; this engine has multiplier PEs")
        unit, rows_u, acc = Unit.ADDER, cfg.rows, cfg.acc_bits
        olo, ohi = code_range(cfg.bits, False)
    else:
        if cfg.pe == PeKind.MULT:
            unit, rows_u, acc = Unit.MULT, cfg.rows, cfg.acc_bits
        elif cfg.mult_rows:
            unit, rows_u, acc = Unit.MULT, cfg.mult_rows, cfg.mult_acc_bits
        else:
            raise ValueError(f"layer {nm}: a {layer.kind} layer needs multipliers; this adder engine has mult_rows=0")
        olo, ohi = -(1 << cfg.bits), (1 << cfg.bits) - 1
    if xlo < olo or xhi > ohi:
        raise ValueError(
            f"layer {nm}: input codes {_range_text(xlo, xhi)} do not fit the {unit} PE operands "
            f"{_range_text(olo, ohi)}")
    wt = np.asarray(layer.weight, dtype=np.int64)
    wlo, whi = code_range(cfg.bits, pe == PeKind.MULT)
    if wt.size and (wt.min() < wlo or wt.max() > whi):
        raise ValueError(
            f"layer {nm}: weight codes {_range_text(int(wt.min()), int(wt.max()))} do not fit the "
            f"engine's {cfg.bits}-bit {'signed' if pe == PeKind.MULT else 'unsigned'} weights")
    zp = int(layer.in_zero_point)
    if not olo <= zp <= ohi:
        raise ValueError(f"layer {nm}: zero point {zp} does not fit the {unit} PE operands")
    if layer.acc_bits > acc:
        raise ValueError(
            f"layer {nm}: accumulator too narrow: K={layer.K} at {layer.bits} bits needs "
            f"{layer.acc_bits} bits, the engine's {unit} array has {acc}")
    o = layer.out_channels
    if layer.kind.linear:
        kh, kw, stride, pad = h, w, 1, 0
        oh = ow = 1
        if layer.in_shape[0] != h * w * c:
            raise ValueError(f"layer {nm}: {layer.in_shape[0]} inputs but the stored tensor has {h * w * c}")
    else:
        kh, kw = layer.kernel
        stride, pad = layer.stride, layer.padding
        _, oh, ow = layer.out_shape
    g = -(-c // cfg.cols)
    steps = kh * kw * g
    if steps > cfg.half_words:
        held = (f"the buffer holds {cfg.weight_words}" if cfg.weight_buffers == 1
                else f"each of the buffer's two halves holds {cfg.half_words}")
        raise ValueError(
            f"layer {nm}: weight buffer too small: a tile needs {steps} weight words "
            f"({kh}x{kw} kernel x {g} channel groups), {held}")
    rq = layer.requant
    if rq.mode not in cfg.requant:
        raise ValueError(
            f"layer {nm}: {rq.mode} requant, which this engine's requant unit "
            f"({', '.join(cfg.requant)}) lacks")
    fields = dict(name=nm, op=Op.CONV, unit=unit, srcs=(s,), dst=nm, kernel=(kh, kw), stride=stride,
                  padding=pad, pad_value=zp, rows=rows_u, tiles=-(-o // rows_u), steps=steps,
                  weight_words=steps, param_beats=cfg.param_beats(rq.mode, rows_u), mode=rq.mode,
                  out_bits=int(rq.out_bits))
    if rq.mode == RequantMode.FIXED:
        m = np.broadcast_to(np.asarray(rq.m, dtype=np.int64), (o,))
        n = np.broadcast_to(np.asarray(rq.n, dtype=np.int64), (o,))
        _check_fixed(layer, cfg, m, n, int(rq.shift))
        fields.update(shift=int(rq.shift), lo=int(rq.lo), hi=int(rq.hi))
        prow = np.stack([m, n], axis=1)
    else:
        if pe == PeKind.MULT:
            raise ValueError(f"layer {nm}: threshold requant of a multiply layer is not supported by the engine")
        thr = np.asarray(rq.thr, dtype=np.int64)
        tmax = (1 << cfg.thr_bits) - 1
        if thr.size and thr.max() > tmax:
            raise ValueError(f"layer {nm}: thresholds up to {int(thr.max())} do not fit the engine's {cfg.thr_bits}-bit thresholds")
        full = np.full((o, cfg.threshold_count), tmax, dtype=np.int64)  # unused thresholds are never reached
        full[:, : thr.shape[1]] = thr
        prow = np.concatenate([full, np.asarray(rq.neg, dtype=np.int64).reshape(o, 1)], axis=1)
    lo, hi = _out_range(layer)
    geo[nm] = (oh, ow, o, lo, hi)
    # weights: [O, C, kh, kw] (artifact K order c, i, j) -> [O, kh, kw, G*cols] (engine order i, j, c)
    w4 = wt.reshape(o, c, kh, kw).transpose(0, 2, 3, 1)
    wp = np.zeros((o, kh, kw, g * cfg.cols), dtype=np.int64)
    wp[..., :c] = w4
    wp = wp.reshape(o, steps, cfg.cols)
    ws, ps = [], []
    for t in range(fields["tiles"]):
        o0 = t * rows_u
        rt = min(rows_u, o - o0)
        tile = np.zeros((steps, cfg.rows, cfg.cols), dtype=np.int64)
        tile[:, :rt, :] = wp[o0 : o0 + rt].transpose(1, 0, 2)
        ws.extend(tile)
        pr = np.zeros((rows_u, prow.shape[1]), dtype=np.int64)
        pr[:rt] = prow[o0 : o0 + rt]
        ps.extend(pack_params(cfg, rq.mode, pr))
    return fields, (ws, ps)


def _pool_op(layer: IntLayer, cfg: EngineConfig, geo: dict, src):
    nm = layer.name
    s = src(layer.inputs[0])
    h, w, c, xlo, xhi = geo[s]
    kh, kw = layer.kernel
    if layer.padding >= min(kh, kw):
        raise ValueError(f"layer {nm}: padding {layer.padding} leaves windows with no input (kernel {kh}x{kw})")
    _, oh, ow = layer.out_shape
    fields = dict(name=nm, op=Op(layer.kind), unit=Unit.VECTOR, srcs=(s,), dst=nm, kernel=(kh, kw),
                  stride=layer.stride, padding=layer.padding, pad_value=0, rows=cfg.cols, tiles=1,
                  steps=kh * kw, weight_words=0, param_beats=0, mode=None)
    if layer.kind == LayerKind.MAXPOOL:
        geo[nm] = (oh, ow, c, xlo, xhi)
        return fields, None
    rq = layer.requant
    if RequantMode.FIXED not in cfg.requant:
        raise ValueError(f"layer {nm}: avgpool needs the fixed-point requant, which this engine "
                         f"({', '.join(cfg.requant)}) lacks")
    m = int(np.asarray(rq.m).ravel()[0])
    n = int(np.asarray(rq.n).ravel()[0])
    _check_fixed(layer, cfg, [m], [n], int(rq.shift))
    fields.update(mode=RequantMode.FIXED, shift=int(rq.shift), lo=int(rq.lo), hi=int(rq.hi), m=(m,), n=n,
                  out_bits=int(rq.out_bits))
    geo[nm] = (oh, ow, c, *_out_range(layer))
    return fields, None


def _add_op(layer: IntLayer, cfg: EngineConfig, geo: dict, src):
    nm = layer.name
    a, b = src(layer.inputs[0]), src(layer.inputs[1])
    if a == b:
        raise ValueError(f"layer {nm}: adds the tensor {a!r} to itself; the engine reads two different regions")
    h, w, c, _, _ = geo[a]
    rq = layer.requant
    if RequantMode.FIXED not in cfg.requant:
        raise ValueError(f"layer {nm}: add needs the fixed-point requant, which this engine "
                         f"({', '.join(cfg.requant)}) lacks")
    m = tuple(int(v) for v in np.asarray(rq.m).ravel())
    n = int(np.asarray(rq.n).ravel()[0])
    _check_fixed(layer, cfg, list(m), [n], int(rq.shift))
    fields = dict(name=nm, op=Op.ADD, unit=Unit.VECTOR, srcs=(a, b), dst=nm, kernel=(1, 1), stride=1,
                  padding=0, pad_value=0, rows=cfg.cols, tiles=1, steps=1, weight_words=0,
                  param_beats=0, mode=RequantMode.FIXED, shift=int(rq.shift), lo=int(rq.lo), hi=int(rq.hi),
                  m=m, n=n, out_bits=int(rq.out_bits))
    geo[nm] = (h, w, c, *_out_range(layer))
    return fields, None
