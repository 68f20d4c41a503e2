"""Tests of quant.intmodel.golden: layer functions against naive loops, extremes, no torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hwsim.config import acc_bits_for
from quant.intmodel import golden

from quant.base.intops import requant_fixed

SEED = 1234


def naive_im2col(x, kh, kw, stride, padding, pad_value):
    c, h, w = x.shape
    xp = np.full((c, h + 2 * padding, w + 2 * padding), pad_value, dtype=np.int64)
    xp[:, padding : padding + h, padding : padding + w] = x
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    cols = np.zeros((c * kh * kw, oh * ow), dtype=np.int64)
    for ci in range(c):
        for i in range(kh):
            for j in range(kw):
                for oy in range(oh):
                    for ox in range(ow):
                        cols[ci * kh * kw + i * kw + j, oy * ow + ox] = xp[ci, oy * stride + i, ox * stride + j]
    return cols


@settings(max_examples=60, deadline=None)
@given(
    c=st.integers(1, 3), h=st.integers(1, 7), w=st.integers(1, 7), kh=st.integers(1, 3), kw=st.integers(1, 3),
    stride=st.integers(1, 3), padding=st.integers(0, 2), seed=st.integers(0, 2**32 - 1),
)
def test_im2col_matches_naive_loops(c, h, w, kh, kw, stride, padding, seed):
    assume(h + 2 * padding >= kh and w + 2 * padding >= kw)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(c, h, w))
    pad = int(rng.integers(0, 256))
    assert np.array_equal(golden.im2col(x, (kh, kw), stride, padding, pad), naive_im2col(x, kh, kw, stride, padding, pad))
    batch = np.stack([x, x[::-1] if c > 1 else x + 1])
    got = golden.im2col_batch(batch, (kh, kw), stride, padding, pad)
    assert np.array_equal(got[1], naive_im2col(batch[1], kh, kw, stride, padding, pad))


@settings(max_examples=80, deadline=None)
@given(bits=st.integers(4, 16), k=st.integers(1, 300), o=st.integers(1, 6), p=st.integers(1, 9), seed=st.integers(0, 2**32 - 1))
def test_adder_acc_matches_naive_sum(bits, k, o, p, seed):
    rng = np.random.default_rng(seed)
    qmax = (1 << bits) - 1
    x = rng.integers(0, qmax + 1, size=(k, p))
    w = rng.integers(0, qmax + 1, size=(o, k))
    want = np.array([[sum(abs(int(x[kk, pp]) - int(w[oo, kk])) for kk in range(k)) for pp in range(p)] for oo in range(o)])
    acc = golden.adder_acc(x, w)
    assert np.array_equal(acc, want)
    assert acc.max(initial=0) < (1 << acc_bits_for(bits, k, "adder"))


@pytest.mark.parametrize("bits", [4, 8, 12, 16])
def test_adder_acc_extremes_at_the_largest_k(bits):
    """All-max differences at K = 4096 (ArrayConfig.max_k): no overflow, and the width is the needed one."""
    k = 4096
    qmax = (1 << bits) - 1
    x = np.full((k, 3), qmax, dtype=np.int64)
    x[:, 1] = 0
    w = np.zeros((2, k), dtype=np.int64)
    w[1] = qmax
    acc = golden.adder_acc(x, w)
    assert acc.tolist() == [[k * qmax, 0, k * qmax], [0, k * qmax, 0]]
    need = acc_bits_for(bits, k, "adder")
    assert k * qmax < (1 << need)  # fits ...
    assert k * qmax >= (1 << (need - 1))  # ... and one bit fewer would not


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(2, 16), k=st.integers(1, 200), seed=st.integers(0, 2**32 - 1))
def test_mult_acc_exact_including_extremes(bits, k, seed):
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    x = rng.integers(lo, hi + 1, size=(k, 5))
    x[:, 0] = lo
    w = rng.integers(lo, hi + 1, size=(3, k))
    w[0] = lo
    want = (w.astype(object) @ x.astype(object)).astype(np.int64)
    got = golden.mult_acc(x, w)
    assert np.array_equal(got, want)
    assert got[0, 0] == k * lo * lo
    assert np.abs(got).max() < (1 << (acc_bits_for(bits, k, "mult") - 1))


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(["adder_conv", "adder_linear", "conv"]), bits=st.integers(4, 16),
    mode=st.sampled_from(["fixed", "threshold"]), seed=st.integers(0, 2**32 - 1),
)
def test_compute_layer_int_is_im2col_acc_requant(kind, bits, mode, seed):
    if kind == "conv":
        mode = "fixed"
    if mode == "threshold":
        bits = min(bits, 8)
    rng = np.random.default_rng(seed)
    in_shape = (2, 5, 6) if kind.endswith("conv") else (17,)
    layer = golden.random_layer(rng, kind=kind, in_shape=in_shape, out_channels=3, bits=bits, mode=mode, stride=2, padding=1)
    lo = 0 if kind.startswith("adder") else -(1 << (bits - 1))
    x = rng.integers(lo, lo + (1 << bits), size=in_shape)
    q = golden.compute_layer_int(x, layer)
    assert q.shape == layer.out_shape
    x3 = x.reshape(-1, 1, 1) if kind.endswith("linear") else x
    cols = naive_im2col(x3, *layer.kernel, layer.stride, layer.padding, layer.in_zero_point)
    w = layer.weight
    if kind.startswith("adder"):
        acc = np.abs(cols[None, :, :] - w[:, :, None]).sum(1)
    else:
        acc = w @ cols
    assert np.array_equal(golden.layer_acc(layer, x[None])[0], acc)
    assert np.array_equal(q.reshape(q.shape[0], -1), golden.requant(acc, layer.requant))


def test_run_is_deterministic_and_matches_layer_by_layer(tiny_int_model):
    rng = np.random.default_rng(SEED)
    model = tiny_int_model(rng)
    imgs = rng.random((9, 1, 6, 6)).astype(np.float32)
    q1 = golden.run(model, imgs, batch=4)
    q2 = golden.run(model, imgs)
    assert q1.dtype == np.int64 and np.array_equal(q1, q2)
    codes = golden.quantize_input(imgs, model.input)
    for i in range(imgs.shape[0]):
        a = golden.compute_layer_int(codes[i], model.layers[0])
        pooled = a.reshape(3, 3, 2, 3, 2).max(axis=(2, 4))
        logits = golden.compute_layer_int(pooled.reshape(-1), model.layers[3])
        assert np.array_equal(logits, q1[i])
    real = golden.logits_real(model, q1)
    assert np.allclose(real, 0.5 * q1)


def test_run_refuses_wrong_image_shape(tiny_int_model):
    model = tiny_int_model(np.random.default_rng(SEED))
    with pytest.raises(ValueError, match=r"images must be \[N, 1, 6, 6\]"):
        golden.run(model, np.zeros((2, 1, 5, 5), dtype=np.float32))


def test_golden_and_artifact_import_without_torch():
    code = (
        "import sys\n"
        "import quant.intmodel.artifact, quant.intmodel.golden, quant.base.intops, quant.base.opcount\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_requant_fixed_asserts_int64_headroom():
    with pytest.raises(AssertionError, match="overflow int64"):
        requant_fixed(np.array([[1 << 50]]), [1 << 14], [0], 0, 0, 1)
