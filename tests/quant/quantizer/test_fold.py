"""Tests of quant.quantizer.fold: the one fixed-point Requant builder, BN folding and thresholds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.quantizer.fold import Affine, CodeKind, LayerFold, Target, fixed_requant
from quant.base.intops import code_range, fixed_point_params, requant_add, requant_fixed, requant_threshold


def _act(bits=4, scale=0.1, zp=3):
    return Target(kind=CodeKind.ACT, scale=scale, zero_point=zp, bits=bits, signed=False, lo=0, hi=(1 << bits) - 1)


def test_target_validation():
    with pytest.raises(ValueError, match="target kind must be a CodeKind, not 'act'"):
        Target(kind="act", scale=1.0, zero_point=0, bits=4, signed=False, lo=0, hi=15)
    with pytest.raises(ValueError, match="target scale must be positive and finite"):
        Target(kind=CodeKind.ACT, scale=0.0, zero_point=0, bits=4, signed=False, lo=0, hi=15)
    with pytest.raises(ValueError, match=r"target clamp 0..16 is not within the 4-bit range 0..15"):
        Target(kind=CodeKind.ACT, scale=1.0, zero_point=0, bits=4, signed=False, lo=0, hi=16)


def test_fixed_requant_is_the_formula_per_channel():
    t = _act()
    a, b = np.array([-0.02, 0.013]), np.array([1.5, -0.2])
    rq = fixed_requant(a, b, t, acc_range=(0, 200), relu=True, mult_bits=16, max_shift=40)
    m, n, shift = fixed_point_params(a / t.scale, b / t.scale + t.zero_point, mult_bits=16, max_shift=40)
    assert np.array_equal(rq.m, m) and np.array_equal(rq.n, n) and rq.shift == shift
    assert (rq.lo, rq.hi) == (3, 15)  # ReLU clamps at the zero point
    ends = [int(mm) * acc + int(nn) for mm, nn in zip(m, n) for acc in (0, 200)]
    assert rq.sum_bits == max(max(ends).bit_length(), (-min(ends) - 1).bit_length()) + 1
    assert (rq.out_scale, rq.out_zero_point, rq.out_bits, rq.out_signed) == (0.1, 3, 4, False)
    acc = np.arange(0, 201).reshape(1, -1).repeat(2, 0)
    want = np.clip(np.floor((a[:, None] * acc + b[:, None]) / t.scale + t.zero_point + 0.5), 3, 15)
    assert np.abs(requant_fixed(acc, rq.m, rq.n, rq.shift, rq.lo, rq.hi) - want).max() <= 1


def test_fixed_requant_of_a_residual_add_has_one_multiplier_per_operand():
    t = Target(kind=CodeKind.MID, scale=0.05, zero_point=0, bits=16, signed=True, lo=-32768, hi=32767)
    sa, za, sb, zb = 0.1, 3, 0.02, 0
    ra, rb = code_range(4, False), code_range(16, True)
    rq = fixed_requant([sa, sb], [-(sa * za + sb * zb)], t, operand_ranges=(ra, rb), mult_bits=16, max_shift=40)
    assert rq.m.shape == (2,) and rq.n.shape == (1,)
    x = np.array([0, 3, 15]), np.array([-100, 0, 1000])
    got = requant_add(x[0], x[1], rq.m, rq.n, rq.shift, rq.lo, rq.hi)
    want = np.rint((sa * (x[0] - za) + sb * (x[1] - zb)) / t.scale)
    assert np.abs(got - want).max() <= 1
    ends = [int(rq.m[0]) * p + int(rq.m[1]) * q + int(rq.n[0]) for p in ra for q in rb]
    assert rq.sum_bits == max(max(ends).bit_length(), (-min(ends) - 1).bit_length()) + 1
    with pytest.raises(ValueError, match="exactly one of acc_range and operand_ranges"):
        fixed_requant([1.0], [0.0], t, mult_bits=16, max_shift=40)


def test_affine_folds_bn_and_relu():
    af = Affine(a=np.array([2.0, -1.0]), b=np.array([0.5, 1.0]), acc_min=0, acc_max=10)
    mean, var, gamma, beta, eps = np.array([1.0, 2.0]), np.array([4.0, 1.0]), np.array([1.0, 3.0]), np.array([0.0, 1.0]), 0.0
    bn = af.then_bn(mean, var, gamma, beta, eps)
    g = gamma / np.sqrt(var)
    assert np.array_equal(bn.a, af.a * g) and np.array_equal(bn.b, (af.b - mean) * g + beta)
    assert bn.then_relu().relu and not bn.relu
    with pytest.raises(ValueError, match="batch norm after ReLU"):
        bn.then_relu().then_bn(mean, var, gamma, beta, eps)
    with pytest.raises(ValueError, match="accumulator range 5..1 is empty"):
        Affine(a=np.ones(1), b=np.ones(1), acc_min=5, acc_max=1)


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(2, 6), o=st.integers(1, 4), relu=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_threshold_fold_equals_its_fixed_point_form(bits, o, relu, seed):
    """Every accumulator value of 0..max_acc gives the same code in both forms."""
    rng = np.random.default_rng(seed)
    max_acc = int(rng.integers(1, 300))
    t = _act(bits, scale=float(rng.uniform(0.01, 1)), zp=int(rng.integers(0, 1 << bits)))
    af = Affine(a=rng.uniform(-0.5, 0.5, o), b=rng.uniform(-5, 5, o), relu=relu, acc_min=0, acc_max=max_acc)
    kw = dict(affine=af, target=t, pre_node="x", mult_bits=16, max_shift=40)
    fx, th = LayerFold(threshold=False, **kw).requant(), LayerFold(threshold=True, **kw).requant()
    assert fx.mode == "fixed" and th.mode == "threshold"
    acc = np.arange(max_acc + 1).reshape(1, -1).repeat(o, 0)
    assert np.array_equal(requant_fixed(acc, fx.m, fx.n, fx.shift, fx.lo, fx.hi), requant_threshold(acc, th.thr, th.neg, bits))
    moved = LayerFold(threshold=False, **kw).with_bias(af.b + 1.0).requant()
    assert np.array_equal(moved.m, fx.m) and not np.array_equal(moved.n, fx.n)


def test_threshold_fold_needs_an_unsigned_activation_or_logits_target():
    af = Affine(a=np.ones(1), b=np.zeros(1), acc_min=0, acc_max=1)
    for t in (Target(kind=CodeKind.LOGITS, scale=1.0, zero_point=0, bits=8, signed=True, lo=-128, hi=127),
              Target(kind=CodeKind.MID, scale=1.0, zero_point=0, bits=8, signed=True, lo=-128, hi=127)):
        with pytest.raises(ValueError, match="threshold requant needs an unsigned activation or logits target"):
            LayerFold(affine=af, target=t, threshold=True, pre_node="x", mult_bits=16, max_shift=40)
    ok = Target(kind=CodeKind.LOGITS, scale=1.0, zero_point=3, bits=4, signed=False, lo=0, hi=15)  # --logits threshold
    assert LayerFold(affine=af, target=ok, threshold=True, pre_node="x", mult_bits=16, max_shift=40).requant().mode \
        == "threshold"
