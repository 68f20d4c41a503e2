"""Tests of quant.intmodel.native: the C kernels of the golden model equal its numpy path bit for bit.

Also: the element-type choice and its refusals, thread-count independence,
the build cache, the fallback to numpy, and importing without torch.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.intmodel import golden
from quant.base.intops import code_range
from quant.base.native import build
from quant.intmodel import native as ng

pytestmark = pytest.mark.skipif(ng.backend() != "native", reason="no C compiler: the golden kernels do not build")

SEED = 4321


def _codes(rng, shape, bits, signed):
    lo, hi = code_range(bits, signed)
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64)


def _allowed_kinds(k, span):
    out = []
    for kind in ng.KINDS:
        try:
            ng.choose_kind(k, span, kind)
        except ValueError:
            continue
        out.append(kind)
    return out


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 3), k=st.integers(1, 40), p=st.integers(1, 70), o=st.integers(1, 9), bits=st.integers(2, 16),
    signed=st.booleans(), seed=st.integers(0, 2**32 - 1),
)
def test_adder_acc_equals_numpy_every_kind(n, k, p, o, bits, signed, seed):
    """Every element type the bound allows, and the automatic choice, give the numpy path's integers."""
    rng = np.random.default_rng(seed)
    x = _codes(rng, (n, k, p), bits, signed)
    w = _codes(rng, (o, k), bits, signed)
    ref = golden._adder_acc_numpy(x, w)
    span = int(max(x.max(), w.max()) - min(x.min(), w.min()))
    assert np.array_equal(ng.adder_acc(x, w), ref), f"seed {seed}"
    for kind in _allowed_kinds(k, span):
        got = ng.adder_acc(x, w, kind=kind)
        assert got.dtype == np.int64 and np.array_equal(got, ref), f"{kind}, seed {seed}"
    assert np.array_equal(ng.adder_acc(x[0], w), ref[0])  # one image [K, P]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3), c=st.integers(1, 4), h=st.integers(1, 9), wd=st.integers(1, 9), kh=st.integers(1, 3),
    kw=st.integers(1, 3), stride=st.integers(1, 3), padding=st.integers(0, 2), o=st.integers(1, 7),
    bits=st.integers(2, 16), signed=st.booleans(), seed=st.integers(0, 2**32 - 1),
)
def test_conv_and_im2col_equal_numpy(n, c, h, wd, kh, kw, stride, padding, o, bits, signed, seed):
    """The fused convolution (columns written straight into the kernels' panels) and the int64 im2col."""
    if h + 2 * padding < kh or wd + 2 * padding < kw:
        return
    rng = np.random.default_rng(seed)
    x = _codes(rng, (n, c, h, wd), bits, signed)
    w = _codes(rng, (o, c * kh * kw), bits, signed)
    zp = int(_codes(rng, (), bits, signed))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADDERHW_GOLDEN_BACKEND", "numpy")
        cols_ref = golden.im2col_batch(x, (kh, kw), stride, padding, zp)
        ref = golden.adder_acc(cols_ref, w)
    assert np.array_equal(ng.im2col_batch(x, (kh, kw), stride, padding, zp), cols_ref), f"seed {seed}"
    got = ng.conv_adder_acc(x, w, (kh, kw), stride, padding, zp)
    assert np.array_equal(got, ref), f"seed {seed}"
    for kind in ("i32", "i64"):
        assert np.array_equal(ng.conv_adder_acc(x, w, (kh, kw), stride, padding, zp, kind=kind), ref)


@pytest.mark.parametrize("n, k, p, o", [(1, 1, 1, 1), (2, 1, 40, 5), (3, 17, 1, 1), (1, 300, 33, 1), (4, 5, 31, 3),
                                        (2, 9, 32, 4), (1, 2, 64, 12)])
def test_edges(n, k, p, o):
    """K = 1, O = 1, P = 1, O below and just above a tile of channels, columns not a whole panel."""
    rng = np.random.default_rng(SEED)
    x = _codes(rng, (n, k, p), 8, False)
    w = _codes(rng, (o, k), 8, False)
    ref = np.abs(x[:, None, :, :] - w[None, :, :, None]).sum(axis=2)
    for kind in ng.KINDS:
        assert np.array_equal(ng.adder_acc(x, w, kind=kind), ref), kind


def test_16_bit_codes_past_int32_use_int64():
    """Max 16-bit codes with K * 65535 >= 2**31 (int32 would overflow): chosen int64, exact."""
    k = (1 << 31) // 65535 + 1
    x = np.full((1, k, 3), 65535, dtype=np.int64)
    x[0, :, 1] = 0
    w = np.zeros((2, k), dtype=np.int64)
    w[1] = 65535
    assert ng.choose_kind(k, 65535) == "i64"
    with pytest.raises(ValueError, match=f"i32 cannot hold sums up to {k} \\* 65535"):
        ng.adder_acc(x, w, kind="i32")
    got = ng.adder_acc(x, w)
    assert np.array_equal(got[0], [[65535 * k, 0, 65535 * k], [0, 65535 * k, 0]])
    assert got[0, 0, 0] > (1 << 31)
    # just below the int32 limit: int16 is not allowed past span 32767, int32 is
    assert ng.choose_kind((1 << 31) // 65535, 65535) == "i32"


def test_kind_choice_and_refusals():
    assert ng.choose_kind(576, 255) == "i16"
    assert ng.choose_kind(576, 2047) == "i16"
    assert ng.choose_kind(576, 2048) == "i32"
    assert ng.choose_kind(576, 2048, "i16") == "i16"  # allowed when forced (span <= 32767), just slower
    with pytest.raises(ValueError, match="i16 cannot hold sums up to 1 \\* 40000"):
        ng.choose_kind(1, 40000, "i16")
    with pytest.raises(ValueError, match="kind must be one of i16, i32, i64, not 'i8'"):
        ng.choose_kind(1, 1, "i8")
    with pytest.raises(ValueError, match="do not fit in int64"):
        ng.choose_kind(4, 1 << 62)
    x = np.array([[[1 << 62]], [[-(1 << 62)]]], dtype=np.int64).reshape(1, 2, 1)
    w = np.array([[-(1 << 62), 1 << 62]], dtype=np.int64)
    with pytest.raises(ValueError, match="do not fit in int64"):
        ng.adder_acc(x, w)
    with pytest.raises(ValueError, match="do not fit in int64"):
        golden._adder_acc_numpy(x, w)
    with pytest.raises(ValueError, match="threads must be a positive integer, not 0"):
        ng.adder_acc(x[:, :1], w[:, :1], threads=0)


def test_results_independent_of_threads(monkeypatch):
    """Work for >= 3 threads (the pool's minimum per thread is 2^20 terms); 1, 2 and 3 give the same integers."""
    rng = np.random.default_rng(SEED)
    x = _codes(rng, (4, 16, 18, 18), 8, False)
    w = _codes(rng, (40, 144), 8, False)
    cols = ng.im2col_batch(x, (3, 3), 1, 1, 5, threads=1)
    runs = {}
    for t in (1, 2, 3):
        assert np.array_equal(ng.im2col_batch(x, (3, 3), 1, 1, 5, threads=t), cols)
        runs[t] = [ng.adder_acc(cols, w, threads=t, kind=kind) for kind in ng.KINDS]
        runs[t].append(ng.conv_adder_acc(x, w, (3, 3), 1, 1, 5, threads=t))
    for t in (2, 3):
        assert all(np.array_equal(a, b) for a, b in zip(runs[1], runs[t]))
    monkeypatch.setenv("ADDERHW_GOLDEN_THREADS", "3")
    assert ng.threads() == 3
    monkeypatch.setenv("ADDERHW_GOLDEN_THREADS", "two")
    with pytest.raises(ValueError, match="ADDERHW_GOLDEN_THREADS must be a positive integer, not 'two'"):
        ng.threads()


def test_golden_layers_native_equal_numpy(monkeypatch):
    """Whole compute layers (fused conv, linear, multiply) through quant.intmodel.golden with either backend."""
    rng = np.random.default_rng(SEED)
    layers = [
        golden.random_layer(rng, kind="adder_conv", in_shape=(3, 9, 9), out_channels=6, stride=2, padding=1),
        golden.random_layer(rng, kind="adder_conv", in_shape=(2, 7, 7), out_channels=5, kernel=(3, 1), padding=0,
                            bits=12),
        golden.random_layer(rng, kind="adder_linear", in_shape=(37,), out_channels=3, bits=4, mode="threshold"),
        golden.random_layer(rng, kind="conv", in_shape=(3, 8, 8), out_channels=4),
        golden.random_layer(rng, kind="linear", in_shape=(20,), out_channels=7, bits=16),
    ]
    for layer in layers:
        signed = layer.pe == "mult"
        x = _codes(rng, (5,) + layer.in_shape, layer.bits, signed)
        monkeypatch.setenv("ADDERHW_GOLDEN_BACKEND", "numpy")
        ref_acc, ref = golden.layer_acc(layer, x), golden.run_layer(layer, [x])
        monkeypatch.setenv("ADDERHW_GOLDEN_BACKEND", "native")
        assert np.array_equal(golden.layer_acc(layer, x), ref_acc), layer.kind
        assert np.array_equal(golden.run_layer(layer, [x]), ref), layer.kind


@pytest.mark.parametrize("bound_bits", [8, 23, 30, 58])
def test_mult_acc_tiers_exact(bound_bits):
    """float32 below 2**24, float64 below 2**53, int64 beyond: all equal the int64 matmul."""
    rng = np.random.default_rng(SEED + bound_bits)
    k = 7
    mag = 1 << max(1, (bound_bits - 3) // 2)
    x = rng.integers(-mag, mag, size=(2, k, 5), dtype=np.int64)
    w = rng.integers(-mag, mag, size=(3, k), dtype=np.int64)
    x[0, 0, 0], w[0, 0] = -mag, -mag
    ref = np.einsum("ok,nkp->nop", w, x)
    assert np.array_equal(golden.mult_acc(x, w), ref)
    assert np.array_equal(golden.mult_acc(x[1], w), ref[1])
    big = np.full((1, 2, 1), 1 << 31, dtype=np.int64)
    with pytest.raises(ValueError, match="mult_acc: sums up to .* do not fit in int64"):
        golden.mult_acc(big, np.full((1, 2), 1 << 31, dtype=np.int64))


def test_build_is_cached(tmp_path, monkeypatch):
    """A second build with the same compiler and sources reuses the library file; no temporary is left."""
    monkeypatch.setenv("ADDERHW_CACHE_DIR", str(tmp_path))
    first = ng._LIBRARY.build()
    stamp = first.stat().st_mtime_ns
    assert first.parent == tmp_path / "native" and first.name.startswith("golden-") and first.suffix == ".so"
    assert ng._LIBRARY.build() == first and first.stat().st_mtime_ns == stamp
    assert [f.name for f in (tmp_path / "native").iterdir()] == [first.name]


def test_build_errors_named(tmp_path, monkeypatch):
    monkeypatch.setenv("ADDERHW_CACHE_DIR", str(tmp_path))
    with pytest.raises(build.NativeUnavailable, match="compiling .*golden.c failed: .*missing.h"):
        ng._LIBRARY.build(["cc", "-include", str(tmp_path / "missing.h")])
    assert list((tmp_path / "native").iterdir()) == []
    monkeypatch.setenv("CC", "/nonexistent/cc")
    with pytest.raises(build.NativeUnavailable, match="no C compiler: /nonexistent/cc not found"):
        build.compiler()


def test_fallback_to_numpy_with_one_warning(monkeypatch):
    """Without the kernels, auto uses numpy and says why once; native refuses; numpy never builds."""
    monkeypatch.setattr(ng, "_LIBRARY", build.Library("golden.c", (), ng._declare, what="the golden kernels"))
    ng._LIBRARY.reset("no C compiler: cc not found (install gcc, or set CC)")
    monkeypatch.setattr(ng, "_warned", False)
    monkeypatch.setenv("ADDERHW_GOLDEN_BACKEND", "auto")
    rng = np.random.default_rng(SEED)
    x, w = _codes(rng, (2, 6, 5), 8, False), _codes(rng, (3, 6), 8, False)
    with pytest.warns(RuntimeWarning, match="slower numpy kernels: no C compiler"):
        assert ng.backend() == "numpy"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = golden.adder_acc(x, w)  # no second warning
        cols = golden.im2col_batch(x.reshape(2, 6, 5, 1), (1, 1), 1, 0, 0)
    assert np.array_equal(got, np.abs(x[:, None] - w[None, :, :, None]).sum(axis=2))
    assert cols.shape == (2, 6, 5)
    monkeypatch.setenv("ADDERHW_GOLDEN_BACKEND", "native")
    with pytest.raises(build.NativeUnavailable, match="no C compiler"):
        ng.backend()
    monkeypatch.setenv("ADDERHW_GOLDEN_BACKEND", "numpy")
    assert ng.backend() == "numpy"
    monkeypatch.setenv("ADDERHW_GOLDEN_BACKEND", "cuda")
    with pytest.raises(ValueError, match="ADDERHW_GOLDEN_BACKEND must be one of auto, native, numpy, not 'cuda'"):
        ng.backend()


def test_kernels_without_torch():
    """quant.intmodel.golden and its C kernels import and run without torch (rtl and hwsim use them)."""
    code = (
        "import sys, numpy as np; from quant.intmodel import golden; from quant.intmodel import native as ng; "
        "assert ng.backend() == 'native'; "
        "x = np.arange(24).reshape(1, 2, 3, 4); w = np.ones((2, 2), dtype=np.int64); "
        "golden.im2col_batch(x, 1, 1, 0, 0); ng.conv_adder_acc(x, w, (1, 1), 1, 0, 0); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("kernel, stride, padding", [((2, 2), 2, 0), ((3, 3), 1, 1), ((3, 2), 2, 1)])
def test_pool_max_equals_window_reduction(kernel, stride, padding):
    """quant.intmodel.golden's max pool (C, or element-wise maxima of strided slices) == the max over each window."""
    from quant.intmodel.artifact import MaxPoolLayer
    from quant.base.intops import conv_out_size

    rng = np.random.default_rng(SEED)
    x = rng.integers(-50, 50, size=(3, 2, 7, 6), dtype=np.int64)
    out = (2, conv_out_size(7, kernel[0], stride, padding), conv_out_size(6, kernel[1], stride, padding))
    layer = MaxPoolLayer(name="p", inputs=("input",), in_shape=(2, 7, 6), out_shape=out,
                         kernel=kernel, stride=stride, padding=padding)
    ref = golden._pool_windows(x, layer, int(np.iinfo(np.int64).min)).max(axis=(4, 5))
    assert np.array_equal(ng.max_pool(x, kernel, stride, padding), ref)
    assert np.array_equal(golden._pool_max(x, layer), ref)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADDERHW_GOLDEN_BACKEND", "numpy")
        assert np.array_equal(golden._pool_max(x, layer), ref)


# ---- re-quantisation in C == quant.base.intops (numpy) bit for bit ----------------

_I64 = (-(1 << 63), (1 << 63) - 1)


def _both(fn_c, fn_np):
    """(C result, numpy result); an AssertionError (the overflow refusal) is returned as the string 'refused'."""
    out = []
    for fn in (fn_c, fn_np):
        try:
            out.append(fn())
        except AssertionError as exc:
            assert "fixed-point requant would overflow int64" in str(exc)
            out.append("refused")
    return out


@st.composite
def _fixed_case(draw):
    """A fixed-point requant: acc [N, O, P] of `bits`-wide accumulators, per-channel or scalar m, n, any shift.

    Half the cases put m*acc + n exactly on a rounding boundary (a multiple of 2**shift, or that minus 1:
    the floor's edge, where a half-way value lands once the quantizer's 2**(shift-1) is in n), some use the
    int64 extremes (the overflow refusal must fire in both paths alike).
    """
    n, o, p = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 40))
    acc_bits = draw(st.integers(1, 62))
    shift = draw(st.integers(0, 62))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    alim = (1 << acc_bits) - 1
    acc = rng.integers(-alim if draw(st.booleans()) else 0, alim, size=(n, o, p), endpoint=True, dtype=np.int64)
    mbits = draw(st.integers(1, 40))
    per_channel = draw(st.booleans())
    shape = (o,) if per_channel else ()
    m = rng.integers(-(1 << (mbits - 1)), 1 << (mbits - 1), size=shape, dtype=np.int64)
    nlim = 1 << draw(st.integers(1, 62))
    nn = rng.integers(-nlim, nlim, size=shape, dtype=np.int64)
    if draw(st.booleans()):  # rounding edges: m*acc + n in {j*2**shift, j*2**shift - 1}
        mm, a0 = np.broadcast_to(m, (o,)), acc[0, :, 0]
        j = rng.integers(-1000, 1000, size=o)
        edge = j * (1 << min(shift, 40)) - rng.integers(0, 2, size=o) if shift <= 40 else j
        base = edge - mm * a0
        if per_channel and np.all(np.abs(base) < (1 << 62)):
            nn = base.astype(np.int64)
    if draw(st.integers(0, 9)) == 0:  # extremes
        acc.flat[0] = draw(st.sampled_from([_I64[0] + 1, _I64[1], 1 << 61, -(1 << 61)]))
    lo, hi = sorted(int(v) for v in rng.integers(-(1 << 20), 1 << 20, size=2))
    if draw(st.integers(0, 4)) == 0:
        lo, hi = _I64
    return acc, m, nn, shift, lo, hi, seed


@settings(max_examples=300, deadline=None)
@given(case=_fixed_case())
def test_requant_fixed_equals_numpy(case):
    """C fixed-point requant == intops.requant_fixed on every entry (floor shift, clamp), and refuses alike."""
    from quant.base import intops

    acc, m, n, shift, lo, hi, seed = case
    got, ref = _both(lambda: ng.requant_fixed(acc, m, n, shift, lo, hi),
                     lambda: intops.requant_fixed(acc, m, n, shift, lo, hi))
    if isinstance(ref, str):
        assert got == ref, f"seed {seed}"
    else:
        assert got.dtype == np.int64 and np.array_equal(got, ref), f"seed {seed}"
        got1 = ng.requant_fixed(acc[0], m, n, shift, lo, hi, threads=1)  # [O, P]
        assert np.array_equal(got1, ref[0])


def test_requant_fixed_half_way_and_negative_sums():
    """(m*acc + n) >> shift floors: -1 >> 1 = -1, 1 >> 1 = 0, exact halves of negative sums go down."""
    from quant.base import intops

    acc = np.arange(-20, 21, dtype=np.int64).reshape(1, 1, -1)
    for m, n, shift in [(1, 0, 1), (1, 1, 1), (3, 2, 2), (-5, 7, 3), (1, 0, 0), (7, -(1 << 40), 62)]:
        ref = intops.requant_fixed(acc, m, n, shift, -100, 100)
        assert np.array_equal(ng.requant_fixed(acc, m, n, shift, -100, 100), ref), (m, n, shift)
        assert np.array_equal(ng.requant_fixed(acc, [m], [n], shift, -100, 100), ref)
    # numpy's clip with lo > hi gives hi everywhere: the C clamp is min(max(v, lo), hi) too
    assert np.array_equal(ng.requant_fixed(acc, 1, 0, 0, 5, -5), intops.requant_fixed(acc, 1, 0, 0, 5, -5))


def test_requant_fixed_layouts_numpy_would_broadcast_fall_back():
    """Layouts the kernel does not cover return None (quant.intmodel.golden then uses numpy), never a wrong answer."""
    acc = np.arange(12, dtype=np.int64).reshape(1, 1, 12)
    assert ng.requant_fixed(acc, [1, 2, 3], 0, 0, 0, 99) is None  # [3, 1] against [1, 1, 12] broadcasts
    assert ng.requant_fixed(acc[0, 0], [1, 2], 0, 0, 0, 99) is None  # 1-d acc with per-channel m
    assert ng.requant_fixed(np.int64(5), 1, 0, 0, 0, 9) is None  # 0-d: numpy returns a scalar
    assert ng.requant_fixed(acc, 1, 0, 64, 0, 9) is None
    assert ng.requant_fixed(np.zeros((2, 3, 0), dtype=np.int64), [1, 2, 3], 0, 0, 0, 9).shape == (2, 3, 0)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 3), o=st.integers(1, 6), p=st.integers(1, 30), bits=st.integers(1, 8),
       seed=st.integers(0, 2**32 - 1))
def test_requant_threshold_equals_numpy(n, o, p, bits, seed):
    """Binary search == searchsorted(side='right') on non-decreasing rows, ties and duplicates included."""
    from quant.base import intops

    rng = np.random.default_rng(seed)
    t = (1 << bits) - 1
    thr = np.sort(rng.integers(-5, 60, size=(o, t), dtype=np.int64), axis=1)
    neg = rng.integers(0, 2, size=o, dtype=np.int64)
    acc = rng.integers(-8, 64, size=(n, o, p), dtype=np.int64)
    acc.flat[: min(acc.size, t)] = thr[0, : min(acc.size, t)]  # values on the thresholds
    ref = intops.requant_threshold(acc, thr, neg, bits)
    assert np.array_equal(ng.requant_threshold(acc, thr, neg, bits), ref), f"seed {seed}"
    assert np.array_equal(ng.requant_threshold(acc[0], thr, neg, bits), ref[0])
    if t > 1:  # unsorted rows or neg outside 0/1: numpy answers
        bad = thr.copy()
        bad[0] = bad[0][::-1] + np.arange(t)
        if not np.all(np.diff(bad[0]) >= 0):
            assert ng.requant_threshold(acc, bad, neg, bits) is None
    assert ng.requant_threshold(acc, thr, np.full(o, 2), bits) is None


@settings(max_examples=150, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), mag=st.integers(1, 63),
       shift=st.integers(0, 63), seed=st.integers(0, 2**32 - 1))
def test_requant_add_equals_numpy(shape, mag, shift, seed):
    """The residual add in C == intops.requant_add, also where int64 wraps (both wrap alike)."""
    from quant.base import intops

    rng = np.random.default_rng(seed)
    lim = (1 << mag) - 1
    a, b = (rng.integers(-lim, lim, size=shape, endpoint=True, dtype=np.int64) for _ in range(2))
    m = rng.integers(-lim, lim, size=2, endpoint=True, dtype=np.int64)
    n = rng.integers(-lim, lim, size=1, endpoint=True, dtype=np.int64)
    lo, hi = sorted(int(v) for v in rng.integers(-(1 << 40), 1 << 40, size=2))
    with np.errstate(over="ignore"):
        ref = intops.requant_add(a, b, m, n, shift, lo, hi)
    assert np.array_equal(ng.requant_add(a, b, m, n, shift, lo, hi), ref), f"seed {seed}"


def test_requant_threads_and_golden_dispatch(monkeypatch):
    """1, 2 and 3 threads give the same codes; quant.intmodel.golden.requant uses C or numpy by ADDERHW_GOLDEN_BACKEND."""
    rng = np.random.default_rng(SEED)
    acc = rng.integers(0, 1 << 20, size=(40, 16, 3000), dtype=np.int64)  # enough work for 3 threads
    m = rng.integers(-(1 << 15), 1 << 15, size=16)
    n = rng.integers(-(1 << 30), 1 << 30, size=16)
    runs = [ng.requant_fixed(acc, m, n, 20, -128, 127, threads=t) for t in (1, 2, 3)]
    assert all(np.array_equal(runs[0], r) for r in runs[1:])
    layer = golden.random_layer(rng, kind="adder_conv", in_shape=(3, 6, 6), out_channels=5, bits=4,
                                mode="threshold")
    small = rng.integers(0, 200, size=(4, 5, 36), dtype=np.int64)
    monkeypatch.setenv("ADDERHW_GOLDEN_BACKEND", "numpy")
    ref = golden.requant(small, layer.requant)
    monkeypatch.setenv("ADDERHW_GOLDEN_BACKEND", "native")
    assert np.array_equal(golden.requant(small, layer.requant), ref)


@settings(max_examples=120, deadline=None)
@given(
    n=st.integers(1, 3), c=st.integers(1, 4), h=st.integers(1, 9), kh=st.integers(1, 3), stride=st.integers(1, 2),
    padding=st.integers(0, 1), o=st.integers(1, 9), bits=st.integers(2, 16), mbits=st.integers(1, 48),
    per_channel=st.booleans(), shift=st.integers(0, 62), seed=st.integers(0, 2**32 - 1),
)
def test_fused_conv_requant_equals_two_steps(n, c, h, kh, stride, padding, o, bits, mbits, per_channel, shift, seed):
    """The adder kernel with the requant fused into its stores == numpy's im2col, sums and requant_fixed.

    Large multipliers make the a-priori bound fail: then the fused call returns None (never a wrong answer).
    """
    from quant.base import intops

    if h + 2 * padding < kh:
        return
    rng = np.random.default_rng(seed)
    x = _codes(rng, (n, c, h, h), bits, False)
    w = _codes(rng, (o, c * kh * kh), bits, False)
    zp = int(_codes(rng, (), bits, False))
    shape = (o,) if per_channel else ()
    m = rng.integers(-(1 << (mbits - 1)), 1 << (mbits - 1), size=shape, dtype=np.int64)
    nn = rng.integers(-(1 << 40), 1 << 40, size=shape, dtype=np.int64)
    lo, hi = sorted(int(v) for v in rng.integers(-(1 << 30), 1 << 30, size=2))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADDERHW_GOLDEN_BACKEND", "numpy")
        acc = golden.adder_acc(golden.im2col_batch(x, (kh, kh), stride, padding, zp), w)
    got = ng.conv_adder_requant(x, w, (kh, kh), stride, padding, zp, m, nn, shift, lo, hi)
    k, span = w.shape[1], (1 << bits) - 1
    if got is None:
        assert k * span * int(np.abs(m).max()) + int(np.abs(nn).max()) >= 1 << 60  # refused only near the bound
        return
    assert np.array_equal(got, intops.requant_fixed(acc, m, nn, shift, lo, hi)), f"seed {seed}"
