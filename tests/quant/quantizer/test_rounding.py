"""quant.quantizer.rounding: nearest and greedy (output-error) rounding of adder weight codes, and the patches they use."""

from __future__ import annotations

import numpy as np
import pytest

from quant.intmodel import golden
from quant.quantizer.rounding import (
    DEFAULT_ROUNDING,
    ROUNDINGS,
    l1_sums,
    output_error,
    patches_at,
    round_nearest,
    round_to_output,
    weight_candidates,
)

SEED = 314


def _layer(rng, o=6, k=24, p=400, bits=4, noise=0.5):
    """Real codes ``[O, K]``, integer patches and float inputs near them (the integer ones are their rounding)."""
    qmax = (1 << bits) - 1
    codes = rng.uniform(0, qmax, (o, k))
    xf = np.clip(rng.normal(qmax / 3, qmax / 4, (p, k)), 0, qmax)
    xq = np.clip(np.rint(xf + rng.uniform(-noise, noise, xf.shape)), 0, qmax).astype(np.int64)
    return codes, xq, l1_sums(xf, codes)


def test_nearest_and_candidates_on_the_grid():
    c = np.array([[0.0, 0.4, 0.6, 3.5, 14.2, 15.0]])
    assert round_nearest(c, 1, 15).tolist() == [[0, 0, 1, 4, 14, 15]]
    assert round_nearest(c, 4, 12).tolist() == [[0, 0, 0, 4, 12, 12]]  # at most wmax
    down, up = weight_candidates(c, 4, 12)
    assert down.tolist() == [[0, 0, 0, 0, 12, 12]] and up.tolist() == [[4, 4, 4, 4, 12, 12]]


def test_l1_sums_and_error():
    rng = np.random.default_rng(SEED)
    print("seed", SEED)
    x, w = rng.integers(0, 16, (7, 5)), rng.integers(0, 16, (3, 5))
    assert np.array_equal(l1_sums(x, w), np.abs(x[:, None, :] - w[None]).sum(-1))
    t = l1_sums(x, w) + 2.5  # a constant offset per channel is not an error (bias correction removes it)
    assert np.allclose(output_error(w, x, t), 0.0)


def test_greedy_lowers_the_output_error_of_a_random_layer():
    rng = np.random.default_rng(SEED)
    print("seed", SEED)
    codes, xq, t = _layer(rng)
    near = round_nearest(codes, 1, 15)
    greedy = round_to_output(codes, xq, t, 1, 15)
    down, up = weight_candidates(codes, 1, 15)
    assert np.all((greedy == down) | (greedy == up))
    e_near, e_greedy = output_error(near, xq, t), output_error(greedy, xq, t)
    assert np.all(e_greedy <= e_near * (1 + 1e-12))
    assert e_greedy.sum() < 0.98 * e_near.sum()  # 4.8 % lower with this seed
    assert not np.array_equal(greedy, near)
    assert np.array_equal(round_to_output(codes, xq, t, 1, 15, sweeps=0), near)  # no sweep: nearest


def test_greedy_is_deterministic_and_keeps_a_coarse_grid():
    rng = np.random.default_rng(SEED + 1)
    print("seed", SEED + 1)
    codes, xq, t = _layer(rng, bits=6)
    a = round_to_output(codes, xq, t, 4, 60)
    b = round_to_output(codes.copy(), xq.copy(), t.copy(), 4, 60)
    assert np.array_equal(a, b) and a.dtype == np.int64
    assert np.all(a % 4 == 0) and a.min() >= 0 and a.max() <= 60
    assert output_error(a, xq, t).sum() <= output_error(round_nearest(codes, 4, 60), xq, t).sum()


@pytest.mark.parametrize("kw,msg", [
    (dict(step=0), "step must be a positive integer, not 0"),
    (dict(wmax=14, step=4), "wmax must be a non-negative multiple of step 4, not 14"),
    (dict(sweeps=-1), "sweeps must be a non-negative integer, not -1"),
    (dict(target=np.zeros((3, 3))), r"codes \[O, K\], patches \[P, K\] and target \[P, O\] do not match"),
    (dict(x=np.zeros((0, 4)), target=np.zeros((0, 2))), "needs at least one input patch"),
])
def test_bad_values_are_refused(kw, msg):
    args = dict(codes=np.ones((2, 4)), x=np.ones((5, 4), dtype=np.int64), target=np.zeros((5, 2)), step=1, wmax=15)
    args.update(kw)
    with pytest.raises(ValueError, match=msg):
        round_to_output(args.pop("codes"), args.pop("x"), args.pop("target"), args.pop("step"), args.pop("wmax"),
                        **args)


def test_patches_at_are_im2col_columns():
    rng = np.random.default_rng(SEED)
    print("seed", SEED)
    x = rng.integers(0, 9, (3, 2, 6, 7))
    cols = golden.im2col_batch(x, (3, 3), 2, 1, 5)
    n, p = np.array([0, 1, 2, 2]), np.array([0, 3, 5, cols.shape[2] - 1])
    assert np.array_equal(patches_at(x, (3, 3), 2, 1, 5, n, p), cols[n, :, p])
    flat = rng.integers(0, 9, (4, 10))  # a linear layer: one patch per image
    assert np.array_equal(patches_at(flat, (1, 1), 1, 0, 0, [3, 1], [0, 0]), flat[[3, 1]])


def test_roundings():
    assert ROUNDINGS == ("nearest", "greedy", "auto") and DEFAULT_ROUNDING in ROUNDINGS


def test_per_code_sums_equal_the_direct_search(monkeypatch):
    """Small codes take the per-code-sum path; forcing the direct path gives the same weights."""
    import quant.quantizer.rounding as rounding

    rng = np.random.default_rng(SEED + 2)
    print("seed", SEED + 2)
    codes, xq, t = _layer(rng, o=5, k=30, p=300)
    fast = round_to_output(codes, xq, t, 1, 15)
    monkeypatch.setattr(rounding, "_HIST_CODES_MAX", 0)
    assert np.array_equal(round_to_output(codes, xq, t, 1, 15), fast)
    with pytest.raises(ValueError, match="patches must be integer codes, not float64"):
        round_to_output(codes, xq.astype(np.float64), t, 1, 15)


def test_rounding_enum_and_its_resolution():
    from quant.quantizer.rounding import AUTO_GREEDY_MAX_BITS, DEFAULT_ROUNDING, ROUNDINGS, Rounding, resolve_rounding

    assert ROUNDINGS == ("nearest", "greedy", "auto") and DEFAULT_ROUNDING is Rounding.AUTO
    assert resolve_rounding("auto", AUTO_GREEDY_MAX_BITS) is Rounding.GREEDY
    assert resolve_rounding(Rounding.AUTO, AUTO_GREEDY_MAX_BITS + 1) is Rounding.NEAREST
    assert resolve_rounding("greedy", 8) is Rounding.GREEDY
    with pytest.raises(ValueError, match="^rounding must be one of nearest, greedy, auto, not 'up'$"):
        resolve_rounding("up", 8)
