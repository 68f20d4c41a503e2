"""The golden integer model: exact, deterministic integer inference (numpy only).

Needs only the artifact (:class:`quant.intmodel.artifact.IntModel`): no torch, no
float weights.  Every accumulator is exact int64 (the multiply path uses a
float32 or float64 matmul whose partial sums are asserted below 2**24 or
2**53, which those types hold exactly, else int64).  Rounding and
re-quantisation come from :mod:`quant.base.intops`, the code path the fake-quant
model shares.

Speed: :func:`adder_acc`, :func:`im2col_batch`, max pooling and every
re-quantisation (fixed point, thresholds, the residual add) run in C
(:mod:`quant.intmodel.native`: int16/int32/int64 chosen from a proven bound,
threaded, the same integers for any thread count), and :func:`layer_acc`
writes an adder layer's columns straight into the kernels' layout (no int64
columns), where a C compiler exists; else numpy, with one warning; ``ADDERHW_GOLDEN_BACKEND=numpy``
forces the numpy path (the reference the C kernels are tested against).

Layer-level functions (the testbenches and hwsim's functional mode call these
with the accelerator's data layout):

* :func:`im2col` ``(x_q [C, H, W], kernel, stride, padding, pad_value) -> [K, P]``
  with ``k = c*kh*kw + i*kw + j`` and ``p = oy*OW + ox``; :func:`im2col_batch`
  does ``[N, C, H, W] -> [N, K, P]``;
* :func:`adder_acc` ``(x_cols [K, P], w [O, K]) -> [O, P]``, ``sum_k |x - w|``
  (also batched ``[N, K, P] -> [N, O, P]``); :func:`mult_acc` the same with
  ``sum_k x * w``;
* :func:`requant` ``(acc [..., O, P], rq) -> q``;
* :func:`compute_layer_int` ``(x_q, layer) -> q``: one whole compute layer on one
  image (``im2col`` + accumulate + requant), output ``[O, OH, OW]`` or ``[O]``.

Whole models: :func:`run` (float images in 0..1 -> integer logits) and
:func:`run_codes` (input codes -> every layer's output codes).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from quant.intmodel.artifact import (
    LAYER_CLASSES,
    AddLayer,
    AdderLayer,
    AvgPoolLayer,
    ComputeLayer,
    FlattenLayer,
    GroupScales,
    IntLayer,
    IntModel,
    MaxPoolLayer,
    Requant,
)
from quant.base.intops import (
    LayerKind,
    PeKind,
    RequantMode,
    acc_bits_for,
    code_range,
    conv_out_size,
    dequantize,
    fixed_point_params,
    pe_of,
    quantize_input,
    requant_add,
    requant_fixed,
    requant_threshold,
    thresholds_from_fixed,
)
from quant.intmodel import native as _native

__all__ = [
    "im2col",
    "im2col_batch",
    "adder_acc",
    "mult_acc",
    "requant",
    "layer_acc",
    "group_codes",
    "compute_layer_int",
    "run_layer",
    "run_codes",
    "run",
    "logits_real",
    "quantize_input",
    "random_layer",
]

#: Largest number of accumulator entries computed at once (memory bound).
_CHUNK_ELEMS = 1 << 22


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def im2col_batch(x_q, kernel, stride: int, padding: int, pad_value: int) -> np.ndarray:
    """``[N, C, H, W]`` integer codes -> ``[N, K, P]`` columns (``pad_value`` around).

    ``k = c*kh*kw + i*kw + j``; ``p = oy*OW + ox``;
    ``OH = (H + 2*padding - kh) // stride + 1``.
    """
    x = np.asarray(x_q)
    if x.ndim != 4:
        raise ValueError(f"im2col_batch needs [N, C, H, W], not shape {x.shape}")
    kh, kw = _pair(kernel)
    if stride < 1 or padding < 0:
        raise ValueError(f"stride must be >= 1 and padding >= 0, not {stride}, {padding}")
    if x.dtype == np.int64 and _native.backend() == _native.GoldenBackend.NATIVE:
        ph, pw = x.shape[2] + 2 * padding, x.shape[3] + 2 * padding
        if ph < kh or pw < kw:
            raise ValueError(f"kernel {kh}x{kw} is larger than the padded input {ph}x{pw}")
        return _native.im2col_batch(x, (kh, kw), stride, padding, pad_value)
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=pad_value)
    n, c, h, w = x.shape
    if h < kh or w < kw:
        raise ValueError(f"kernel {kh}x{kw} is larger than the padded input {h}x{w}")
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    oh, ow = win.shape[2], win.shape[3]
    return np.ascontiguousarray(win.transpose(0, 1, 4, 5, 2, 3)).reshape(n, c * kh * kw, oh * ow)


def im2col(x_q, kernel, stride: int, padding: int, pad_value: int) -> np.ndarray:
    """``[C, H, W]`` integer codes of one image -> ``[K, P]`` (see :func:`im2col_batch`)."""
    x = np.asarray(x_q)
    if x.ndim != 3:
        raise ValueError(f"im2col needs [C, H, W], not shape {x.shape}")
    return im2col_batch(x[None], kernel, stride, padding, pad_value)[0]


def _check_cols(cols, w):
    c = np.asarray(cols, dtype=np.int64)
    wt = np.asarray(w, dtype=np.int64)
    if wt.ndim != 2 or c.ndim not in (2, 3) or c.shape[-2] != wt.shape[1]:
        raise ValueError(f"cols [..., K, P] and w [O, K] do not match: {c.shape} and {wt.shape}")
    return c, wt


def adder_acc(x_cols, w) -> np.ndarray:
    """``acc[o, p] = sum_k |x[k, p] - w[o, k]|`` in exact int64.

    ``x_cols`` is ``[K, P]`` (one image) or ``[N, K, P]``; ``w`` is ``[O, K]``.
    Returns ``[O, P]`` or ``[N, O, P]``.  Every partial sum lies in
    ``[0, K * span]`` with ``span = max(x, w) - min(x, w)``; the C kernels
    (:func:`quant.intmodel.native.adder_acc`) pick int16/int32/int64 from that
    bound, and a sum int64 cannot hold (``K * span >= 2**63``) is refused.
    """
    c, wt = _check_cols(x_cols, w)
    if _native.backend() == _native.GoldenBackend.NATIVE:
        return _native.adder_acc(c, wt)
    return _adder_acc_numpy(c, wt)


def _adder_acc_numpy(c: np.ndarray, wt: np.ndarray) -> np.ndarray:
    """The numpy path of :func:`adder_acc` (the reference of the C kernels)."""
    single = c.ndim == 2
    if single:
        c = c[None]
    n, k, p = c.shape
    o = wt.shape[0]
    bound = int(np.abs(c).max(initial=0)) + int(np.abs(wt).max(initial=0))
    if bound * k >= 1 << 63:
        raise ValueError(f"adder_acc: sums up to {k} * {bound} = {k * bound} do not fit in int64")
    dt = np.int32 if bound * k < (1 << 31) else np.int64
    cc = c.astype(dt)
    ww = wt.astype(dt)
    out = np.empty((n, o, p), dtype=np.int64)
    step = max(1, _CHUNK_ELEMS // max(1, o * p))
    for s in range(0, n, step):
        blk = cc[s : s + step]
        acc = np.zeros((blk.shape[0], o, p), dtype=dt)
        for j in range(k):
            acc += np.abs(blk[:, None, j, :] - ww[None, :, j, None])
        out[s : s + step] = acc
    return out[0] if single else out


def mult_acc(x_cols, w) -> np.ndarray:
    """``acc[o, p] = sum_k x[k, p] * w[o, k]`` exactly (int64 result).

    Every partial sum, in any order, is bounded by
    ``bound = K * max|x| * max|w|``: a float32 matmul when ``bound < 2**24``,
    a float64 one when ``bound < 2**53`` (where those types hold every integer
    exactly, so BLAS's summation order does not matter), else an int64 one
    (refused when ``bound >= 2**63``).
    """
    c, wt = _check_cols(x_cols, w)
    k = wt.shape[1]
    bound = k * _absmax(c) * _absmax(wt)
    if bound < 1 << 24:
        dt = np.float32
    elif bound < 1 << 53:
        dt = np.float64
    elif bound < 1 << 63:
        return np.matmul(wt, c)
    else:
        raise ValueError(f"mult_acc: sums up to {bound} do not fit in int64")
    res = np.matmul(wt.astype(dt), c.astype(dt))
    return res.astype(np.int64)


def _absmax(a: np.ndarray) -> int:
    """``max |a|`` (0 for an empty array) without an ``|a|`` temporary."""
    if a.size == 0:
        return 0
    return max(abs(int(a.min())), abs(int(a.max())))


def requant(acc, rq: Requant) -> np.ndarray:
    """Re-quantise ``acc [..., O, P]`` with ``rq`` (fixed point or thresholds).

    :func:`quant.base.intops.requant_fixed` / :func:`~quant.base.intops.requant_threshold`,
    in C (:mod:`quant.intmodel.native`, the same integers) with the native backend.
    """
    if rq.mode == RequantMode.FIXED:
        return _requant_fixed(acc, rq.m, rq.n, rq.shift, rq.lo, rq.hi)
    if _native.backend() == _native.GoldenBackend.NATIVE:
        q = _native.requant_threshold(acc, rq.thr, rq.neg, rq.out_bits)
        if q is not None:
            return q
    return requant_threshold(acc, rq.thr, rq.neg, rq.out_bits)


def _requant_fixed(acc, m, n, shift: int, lo: int, hi: int) -> np.ndarray:
    """:func:`quant.base.intops.requant_fixed`, in C with the native backend."""
    if _native.backend() == _native.GoldenBackend.NATIVE:
        q = _native.requant_fixed(acc, m, n, shift, lo, hi)
        if q is not None:
            return q
    return requant_fixed(acc, m, n, shift, lo, hi)


def _requant_add(a, b, m, n, shift: int, lo: int, hi: int) -> np.ndarray:
    """:func:`quant.base.intops.requant_add`, in C with the native backend."""
    if _native.backend() == _native.GoldenBackend.NATIVE:
        q = _native.requant_add(a, b, m, n, shift, lo, hi)
        if q is not None:
            return q
    return requant_add(a, b, m, n, shift, lo, hi)


def _as_images(layer: IntLayer, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    if x.shape[1:] != layer.in_shape:
        raise ValueError(f"layer {layer.name} expects inputs {layer.in_shape}, not {x.shape[1:]}")
    if len(layer.in_shape) == 1:
        return x.reshape(x.shape[0], -1, 1, 1)
    return x


def _conv_acc(pe: str, x4, w, kernel, stride: int, padding: int, pad_value: int) -> np.ndarray:
    if pe == PeKind.ADDER and _native.backend() == _native.GoldenBackend.NATIVE:  # the same integers, no int64 columns
        return _native.conv_adder_acc(x4, w, _pair(kernel), stride, padding, pad_value)
    cols = im2col_batch(x4, kernel, stride, padding, pad_value)
    if pe == PeKind.ADDER:
        return adder_acc(cols, w)
    return mult_acc(cols, w)


def group_codes(layer: AdderLayer, x, group: int) -> np.ndarray:
    """Group ``group``'s operand codes of a grouped adder layer's input codes ``x`` (any shape).

    ``clamp((m[g]*x + n[g]) >> shift, 0, 2**bits - 1)`` element-wise
    (:class:`quant.intmodel.artifact.GroupScales`); padded positions take the value
    of ``in_zero_point`` re-scaled the same way.
    """
    sg = layer.scale_groups
    return _requant_fixed(x, sg.m[group], sg.n[group], sg.shift, 0, (1 << layer.bits) - 1)


def layer_acc(layer: ComputeLayer, x) -> np.ndarray:
    """Accumulators ``[N, O, P]`` of a compute layer for a batch ``[N, *in_shape]``.

    With group-shared scales (``layer.scale_groups``), the channels of group
    ``g`` accumulate over :func:`group_codes` of the input (the padding
    value re-scaled alike).
    """
    x4 = _as_images(layer, x)
    sg = layer.scale_groups if isinstance(layer, AdderLayer) else None
    if sg is None:
        return _conv_acc(layer.pe, x4, layer.weight, layer.kernel, layer.stride, layer.padding, layer.in_zero_point)
    p = conv_out_size(x4.shape[2], layer.kernel[0], layer.stride, layer.padding) * \
        conv_out_size(x4.shape[3], layer.kernel[1], layer.stride, layer.padding)
    acc = np.empty((x4.shape[0], layer.out_channels, p), dtype=np.int64)
    for g in range(sg.count):
        rows = sg.channels(g)
        xg = group_codes(layer, x4, g)
        pad = int(group_codes(layer, np.array([layer.in_zero_point], dtype=np.int64), g)[0])
        acc[:, rows] = _conv_acc(PeKind.ADDER, xg, layer.weight[rows], layer.kernel, layer.stride, layer.padding, pad)
    return acc


def compute_layer_int(x_q, layer: IntLayer) -> np.ndarray:
    """One compute layer on one image: ``x_q [*in_shape] -> q [*out_shape]``.

    ``im2col`` with the layer's zero point as padding, :func:`adder_acc` (or
    :func:`mult_acc` for a multiply layer), then :func:`requant`.
    """
    if not isinstance(layer, ComputeLayer):
        raise ValueError(f"layer {layer.name} is a {layer.kind}, not a compute layer")
    x = np.asarray(x_q, dtype=np.int64)[None]
    return run_layer(layer, [x])[0]


def _pool_windows(x, layer: IntLayer, pad_value: int) -> np.ndarray:
    kh, kw = layer.kernel
    p = layer.padding
    if p:
        x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=pad_value)
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, :: layer.stride, :: layer.stride]


def _pool_max(x, layer: IntLayer) -> np.ndarray:
    """``out[n, c, oy, ox] = max_{i,j} x[n, c, oy*s + i, ox*s + j]`` (padding never wins).

    In C (:func:`quant.intmodel.native.max_pool`), else the max over the window
    of :func:`_pool_windows` as ``kh*kw`` element-wise maxima of strided
    slices (much faster than a reduction over the window axes).
    """
    if _native.backend() == _native.GoldenBackend.NATIVE and x.dtype == np.int64:
        return _native.max_pool(x, _pair(layer.kernel), layer.stride, layer.padding)
    win = _pool_windows(x, layer, int(np.iinfo(np.int64).min))
    kh, kw = layer.kernel
    out = np.array(win[:, :, :, :, 0, 0])
    for i in range(kh):
        for j in range(kw):
            if i or j:
                np.maximum(out, win[:, :, :, :, i, j], out=out)
    return out


def run_layer(layer: IntLayer, inputs: list) -> np.ndarray:
    """Output codes ``[N, *out_shape]`` of one layer given its input code batches."""
    x = np.asarray(inputs[0], dtype=np.int64)
    n = x.shape[0]
    if isinstance(layer, ComputeLayer):
        rq = layer.requant
        fixed_c = rq.mode == RequantMode.FIXED and _native.backend() == _native.GoldenBackend.NATIVE
        q = None
        if fixed_c and isinstance(layer, AdderLayer) and layer.scale_groups is None:  # requant fused into the adder kernel (None: not provably safe)
            q = _native.conv_adder_requant(_as_images(layer, x), layer.weight, _pair(layer.kernel), layer.stride,
                                           layer.padding, layer.in_zero_point, rq.m, rq.n, rq.shift, rq.lo, rq.hi)
        if q is None:
            acc = layer_acc(layer, x)
            if fixed_c:  # acc is ours: the codes overwrite it
                q = _native.requant_fixed(acc, rq.m, rq.n, rq.shift, rq.lo, rq.hi, inplace=True)
            if q is None:
                q = requant(acc, rq)
        return q.reshape((n,) + layer.out_shape)
    if isinstance(layer, MaxPoolLayer):
        return _pool_max(x, layer)
    if isinstance(layer, AvgPoolLayer):
        win = _pool_windows(x, layer, 0)
        s = win.sum(axis=(4, 5), dtype=np.int64)
        rq = layer.requant
        return _requant_fixed(s, rq.m, rq.n, rq.shift, rq.lo, rq.hi)
    if isinstance(layer, AddLayer):
        b = np.asarray(inputs[1], dtype=np.int64)
        rq = layer.requant
        return _requant_add(x, b, rq.m, rq.n, rq.shift, rq.lo, rq.hi)
    if isinstance(layer, FlattenLayer):
        return x.reshape(n, -1)
    raise ValueError(f"layer {layer.name}: unknown layer class {type(layer).__name__}")  # pragma: no cover


def run_codes(model: IntModel, x_q, *, keep: bool = True) -> dict:
    """Run the layers on input codes ``[N, *input_shape]``.

    Returns ``{layer name: codes [N, *out_shape]}`` (with ``"input"``); with
    ``keep=False`` only the last layer's output and what later layers still
    need are kept.
    """
    x = np.asarray(x_q, dtype=np.int64)
    if x.shape[1:] != model.input_shape:
        raise ValueError(f"input codes must be [N, {', '.join(map(str, model.input_shape))}], not {x.shape}")
    values = {"input": x}
    last_use = {}
    for i, layer in enumerate(model.layers):
        for src in layer.inputs:
            last_use[src] = i
    for i, layer in enumerate(model.layers):
        values[layer.name] = run_layer(layer, [values[s] for s in layer.inputs])
        if not keep:
            for src in layer.inputs:
                if last_use[src] == i:
                    values.pop(src, None)
    return values


def run(model: IntModel, images, *, batch: int = 500) -> np.ndarray:
    """Integer logits ``[N, classes]`` (int64) of float images in 0..1.

    ``images`` are ``[N, *input_shape]`` before normalisation; they pass
    through :func:`quant.base.intops.quantize_input`, then every layer.
    """
    imgs = np.asarray(images)
    if imgs.ndim != 1 + len(model.input_shape) or imgs.shape[1:] != model.input_shape:
        raise ValueError(
            f"images must be [N, {', '.join(map(str, model.input_shape))}], not shape {imgs.shape}"
        )
    outs = []
    last = model.output.name
    for s in range(0, imgs.shape[0], batch):
        q = quantize_input(imgs[s : s + batch], model.input)
        outs.append(run_codes(model, q, keep=False)[last])
    if not outs:
        return np.zeros((0,) + model.output.out_shape, dtype=np.int64)
    return np.concatenate(outs)


def logits_real(model: IntModel, q) -> np.ndarray:
    """Real logits ``out_scale * (q - out_zero_point)`` (float64) of integer logits."""
    rq = model.logits_requant
    return dequantize(q, rq.out_scale, rq.out_zero_point)


def random_layer(
    rng: np.random.Generator,
    *,
    kind: LayerKind = LayerKind.ADDER_CONV,
    in_shape=(3, 8, 8),
    out_channels: int = 4,
    kernel=(3, 3),
    stride: int = 1,
    padding: int = 1,
    bits: int = 8,
    mode: RequantMode = RequantMode.FIXED,
    name: str = "layer",
    inputs=("input",),
    groups: int = 1,
    in_bits: int | None = None,
) -> ComputeLayer:
    """A random but well-scaled compute layer (for tests and testbenches).

    Weights are uniform codes; the requant maps the typical accumulator
    range onto the output codes (``out_bits = bits``, unsigned for adder
    layers, signed for multiply layers), with random per-channel sign and
    gain; threshold mode derives its thresholds from that fixed-point form.
    ``groups > 1`` (adder layers) adds random group-shared scales: input
    codes of ``in_bits`` (default ``min(16, bits + 2)``) re-scaled per group
    with random gains (some groups clip), channels dealt to the groups at random.
    """
    kind = LayerKind(kind)
    pe = pe_of(kind)
    if pe is None:
        raise ValueError(f"random_layer makes compute layers, not {kind}")
    signed = pe == PeKind.MULT
    lo, hi = code_range(bits, signed)
    if kind.linear:
        kernel, stride, padding = (1, 1), 1, 0
        k = int(in_shape[0])
        out_shape = (out_channels,)
    else:
        kh, kw = _pair(kernel)
        c, h, w = in_shape
        k = c * kh * kw
        out_shape = (out_channels, conv_out_size(h, kh, stride, padding), conv_out_size(w, kw, stride, padding))
        kernel = (kh, kw)
    weight = rng.integers(lo, hi + 1, size=(out_channels, k), dtype=np.int64)
    zp = 0 if signed else int(rng.integers(lo, hi + 1))
    span = hi - lo
    if pe == PeKind.ADDER:
        centre, spread = k * span / 3.0, max(1.0, np.sqrt(k) * span / 4.0)
    else:
        centre, spread = 0.0, max(1.0, np.sqrt(k) * span * span / 12.0)
    sign = rng.choice([-1.0, 1.0], size=out_channels)
    gain = rng.uniform(0.5, 2.0, size=out_channels) * span / (4.0 * spread)
    a = sign * gain
    b = (lo + hi) / 2.0 - a * centre
    m, n, shift = fixed_point_params(a, b, mult_bits=16)
    max_acc = k * span if pe == PeKind.ADDER else k * (1 << (2 * bits - 2))
    if mode == RequantMode.THRESHOLD:
        thr, neg = thresholds_from_fixed(m, n, shift, lo, hi, bits, max_acc)
        rq = Requant(mode=RequantMode.THRESHOLD, thr=thr, neg=neg, out_scale=1.0, out_zero_point=0, out_bits=bits)
    else:
        rq = Requant(mode=RequantMode.FIXED, m=m, n=n, shift=shift, lo=lo, hi=hi, out_scale=1.0, out_zero_point=0,
                     out_bits=bits, out_signed=signed)
    sg = None
    if groups > 1:
        if pe != PeKind.ADDER:
            raise ValueError("group-shared scales belong to adder layers")
        ib = min(16, bits + 2) if in_bits is None else in_bits
        top = (1 << ib) - 1
        zp = int(rng.integers(0, top + 1))
        ga = (hi / top) * rng.uniform(0.5, 3.0, size=groups)
        gz = rng.integers(0, hi + 1, size=groups)
        gm, gn, gshift = fixed_point_params(ga, gz - ga * zp, mult_bits=16)
        cg = np.arange(out_channels) % groups
        rng.shuffle(cg)
        sg = GroupScales(count=groups, channel_group=cg, in_bits=ib, m=gm, n=gn, shift=gshift,
                         scale=1.0 / ga, zero_point=gz.astype(np.int64))
    common = dict(name=name, kind=kind, inputs=tuple(inputs), in_shape=tuple(in_shape), out_shape=out_shape,
                  kernel=kernel, stride=stride, padding=padding, K=k, weight=weight, in_scale=1.0, in_zero_point=zp,
                  bits=bits, weight_bits=bits, acc_bits=acc_bits_for(bits, k, pe), compensation=np.zeros(out_channels),
                  requant=rq)
    if pe == PeKind.MULT:
        return LAYER_CLASSES[kind](weight_scale=np.ones(out_channels), **common)
    return LAYER_CLASSES[kind](scale_groups=sg, **common)
