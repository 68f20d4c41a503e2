"""Tests of quant.base.intops: the one rounding / requant code path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.base.intops import (
    InputQuant,
    code_range,
    dequantize,
    exact_clamp,
    fixed_point_params,
    quantize_affine,
    quantize_input,
    requant_add,
    requant_fixed,
    requant_threshold,
    signed_width,
    thresholds_from_fixed,
    unsigned_width,
)


def test_quantize_affine_rounds_half_to_even_and_clamps():
    q = quantize_affine([0.5, 1.5, 2.5, -100.0, 100.0], 1.0, 3, 0, 7)
    assert q.tolist() == [3, 5, 5, 0, 7]
    assert q.dtype == np.int64


def test_quantize_affine_refuses_bad_scale():
    with pytest.raises(ValueError, match="scale must be a positive finite number"):
        quantize_affine([1.0], 0.0, 0, 0, 7)


@given(st.integers(2, 16), st.data())
def test_dequantize_then_quantize_is_identity(bits, data):
    lo, hi = code_range(bits, False)
    q = np.array(data.draw(st.lists(st.integers(lo, hi), min_size=1, max_size=20)))
    zp = data.draw(st.integers(lo, hi))
    scale = data.draw(st.floats(1e-4, 1e3))
    assert np.array_equal(quantize_affine(dequantize(q, scale, zp), scale, zp, lo, hi), q)


def test_quantize_input_normalises_per_channel():
    spec = InputQuant(mean=(0.5, 0.0), std=(0.25, 1.0), scale=0.5, zero_point=4, bits=4, signed=False)
    imgs = np.array([[[[1.0]], [[1.0]]]], dtype=np.float32)  # [1, 2, 1, 1]
    # channel 0: (1-0.5)/0.25 = 2 -> 2/0.5 + 4 = 8; channel 1: 1/0.5 + 4 = 6
    assert quantize_input(imgs, spec).ravel().tolist() == [8, 6]
    with pytest.raises(ValueError, match=r"images must be \[N, 2"):
        quantize_input(np.zeros((1, 3, 1, 1)), spec)


def test_input_quant_validation_messages():
    with pytest.raises(ValueError, match="input zero_point must be an integer in 0..15, not 16"):
        InputQuant(mean=(0.0,), std=(1.0,), scale=1.0, zero_point=16, bits=4, signed=False)
    with pytest.raises(ValueError, match="input std must be positive"):
        InputQuant(mean=(0.0,), std=(0.0,), scale=1.0, zero_point=0, bits=4, signed=False)


def test_widths():
    assert signed_width([0]) == 1
    assert signed_width([-1]) == 1
    assert signed_width([1]) == 2
    assert signed_width([-128, 127]) == 8
    assert signed_width([128]) == 9
    assert unsigned_width(255) == 8
    assert unsigned_width(256) == 9


@settings(max_examples=200, deadline=None)
@given(
    a=st.floats(-50, 50).filter(lambda v: abs(v) > 1e-6),
    b=st.floats(-1000, 1000),
    mult_bits=st.integers(8, 24),
)
def test_fixed_point_params_track_the_real_affine_map(a, b, mult_bits):
    m, n, shift = fixed_point_params([a], [b], mult_bits=mult_bits)
    assert abs(int(m[0])) <= (1 << (mult_bits - 1)) - 1
    acc = np.arange(0, 4096, 7, dtype=np.int64).reshape(1, -1)
    got = requant_fixed(acc, m, n, shift, -(1 << 40), 1 << 40)
    ideal = np.floor(a * acc + b + 0.5)
    # error budget: the multiplier is exact to 1/2 LSB of 2**-shift, times acc, plus 1 for rounding
    budget = 1 + (acc * 0.5 + 1) / 2.0**shift
    assert np.all(np.abs(got - ideal) <= budget)


def test_fixed_point_params_refuse_a_huge_multiplier():
    with pytest.raises(ValueError, match="does not fit a signed 16-bit integer"):
        fixed_point_params([1e6], [0.0], mult_bits=16)


@settings(max_examples=150, deadline=None)
@given(
    bits=st.integers(2, 6),
    k=st.integers(1, 40),
    m=st.integers(-(1 << 15) + 1, (1 << 15) - 1),
    n=st.integers(-(1 << 24), 1 << 24),
    shift=st.integers(0, 20),
    data=st.data(),
)
def test_thresholds_equal_fixed_point_on_every_accumulator(bits, k, m, n, shift, data):
    qmax = (1 << bits) - 1
    lo = data.draw(st.integers(0, qmax))
    hi = data.draw(st.integers(lo, qmax))
    max_acc = k * qmax
    thr, neg = thresholds_from_fixed([m], [n], shift, lo, hi, bits, max_acc)
    assert thr.shape == (1, qmax) and thr.min() >= 0 and thr.max() <= max_acc + 1
    acc = np.arange(max_acc + 1, dtype=np.int64).reshape(1, -1)
    fixed = requant_fixed(acc, [m], [n], shift, lo, hi)
    assert np.array_equal(requant_threshold(acc, thr, neg, bits), fixed)


def test_requant_threshold_per_channel_and_batch():
    thr = np.array([[1, 2, 3], [0, 0, 5]])
    neg = np.array([0, 1])
    acc = np.array([[[0, 1, 2, 3, 9], [0, 1, 4, 5, 9]]])  # [N=1, O=2, P=5]
    q = requant_threshold(acc, thr, neg, 2)
    assert q.tolist() == [[[0, 1, 2, 3, 3], [1, 1, 1, 0, 0]]]


def test_requant_add():
    a = np.array([1, 2, 3])
    b = np.array([10, 0, -4])
    q = requant_add(a, b, [2, 1], [1], 1, 0, 7)  # (2a + b + 1) >> 1
    assert q.tolist() == [6, 2, 1]


@settings(max_examples=200, deadline=None)
@given(bits=st.integers(2, 10), data=st.data())
def test_exact_clamp_changes_no_distance(bits, data):
    qmax = (1 << bits) - 1
    k = data.draw(st.integers(1, 12))
    w = np.array(data.draw(st.lists(st.floats(-5.0 * qmax, 6.0 * qmax), min_size=k, max_size=k)))
    x = np.array(data.draw(st.lists(st.integers(0, qmax), min_size=k, max_size=k)), dtype=np.float64)
    clamped, comp = exact_clamp(w[None, :], qmax)
    assert np.all((clamped >= 0) & (clamped <= qmax))
    assert np.isclose(np.abs(x - w).sum(), np.abs(x - clamped[0]).sum() + comp[0], rtol=0, atol=1e-9 * (1 + np.abs(w).sum()))


def test_kind_enums_equal_their_strings():
    """Kinds and modes are str enums: members equal (and hash as) the strings the artifact stores."""
    import json

    from quant.base.intops import (
        ADDER_KINDS,
        COMPUTE_KINDS,
        LAYER_KINDS,
        MULT_KINDS,
        LayerKind,
        NetKind,
        PeKind,
        RequantMode,
        pe_of,
    )

    assert LayerKind.CONV == "conv" and {"adder_conv": 1}[LayerKind.ADDER_CONV] == 1
    assert json.dumps([LayerKind.ADD, RequantMode.THRESHOLD, PeKind.MULT, NetKind.CNN]) == \
        '["add", "threshold", "mult", "cnn"]'
    assert f"{LayerKind.MAXPOOL}" == "maxpool" and LayerKind("flatten") is LayerKind.FLATTEN
    assert LAYER_KINDS == tuple(LayerKind) and COMPUTE_KINDS == ADDER_KINDS + MULT_KINDS
    assert [k.pe for k in LayerKind] == [PeKind.ADDER] * 2 + [PeKind.MULT] * 2 + [None] * 4
    assert [k for k in LayerKind if k.linear] == [LayerKind.ADDER_LINEAR, LayerKind.LINEAR]
    assert pe_of("adder_linear") is PeKind.ADDER and pe_of("linear") is PeKind.MULT and pe_of("add") is None
    with pytest.raises(ValueError, match="'dense' is not a valid LayerKind"):
        LayerKind("dense")
