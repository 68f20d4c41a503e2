"""Rounding of adder weight codes: to nearest, or chosen per weight to minimise the layer's output error (numpy only).

An adder layer's weights are real codes ``c_ok`` (``w/s + z``, exactly
clamped to the input's code range, :func:`quant.base.intops.exact_clamp`) that
are rounded onto the weight grid: every ``step``-th code (``step =
2**(act_bits - bits)``), at most ``wmax``.  Each weight has two candidates,
``floor_step(c)`` and ``min(floor_step(c) + step, wmax)``.

* ``"nearest"`` (:func:`round_nearest`): ``min(step*rint(c/step), wmax)``.
* ``"auto"`` (the default): ``"greedy"`` for operands of at most
  :data:`AUTO_GREEDY_MAX_BITS` bits, else ``"nearest"`` (:func:`resolve_rounding`).
* ``"greedy"`` (:func:`round_to_output`): start from nearest, then sweep the
  weights by coordinate descent, flipping a weight to its other candidate
  when that lowers the channel's output error on calibration patches,

      ``E_o = sum_p (r_po - mean_p r_po)**2``,
      ``r_po = sum_k |x_pk - w_ok| - t_po``

  with ``x_p`` the layer's integer input patches (from the layers already
  quantised) and ``t_po`` the float model's ``sum_k |x^f_pk - c_ok|`` in
  code units (its input ``x^f`` in the same codes, unrounded).  The mean is
  left out because bias correction (:class:`quant.quantizer.passes.BiasCorrection`)
  removes it.  Float weights are never changed (no retraining): only the
  up/down choice of each weight (AdaRound's search space, Nagel et al., ICML
  2020, searched greedily instead of learned).  Deterministic: fixed sweep
  order, a flip needs a strictly lower error (relative 1e-12), at most
  ``sweeps`` passes.
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = ["Rounding", "ROUNDINGS", "AUTO_GREEDY_MAX_BITS", "DEFAULT_ROUNDING", "resolve_rounding", "round_nearest", "weight_candidates", "l1_sums", "output_error", "round_to_output", "patches_at"]

class Rounding(enum.StrEnum):
    """Rounding scheme of adder weights (``QuantConfig.rounding``, ``quantize --rounding``).

    ``AUTO`` is ``GREEDY`` for operands of at most :data:`AUTO_GREEDY_MAX_BITS`
    bits, else ``NEAREST`` (:func:`resolve_rounding`).
    """

    NEAREST = "nearest"
    GREEDY = "greedy"
    AUTO = "auto"


#: The rounding schemes, in ``--rounding``'s order.
ROUNDINGS = tuple(Rounding)
#: Widest operand (activation bits) that ``"auto"`` rounds greedily: measured by ``scripts/bench_quant.py``,
#: greedy pays at 4 bits (LeNet-5-BN and ResNet-20) and not at 5, 6 or 8, where it also costs more time.
AUTO_GREEDY_MAX_BITS = 4
#: Patches whose codes are all below this use per-code sums (one small matrix product per weight column).
_HIST_CODES_MAX = 65
#: The default of ``QuantConfig.rounding`` and ``quantize --rounding``.
DEFAULT_ROUNDING = Rounding.AUTO


def resolve_rounding(rounding: str, act_bits: int) -> Rounding:
    """:attr:`Rounding.NEAREST` or :attr:`Rounding.GREEDY`: ``rounding`` itself, or what ``AUTO`` means at ``act_bits``."""
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}, not {rounding!r}")
    if rounding == Rounding.AUTO:
        return Rounding.GREEDY if act_bits <= AUTO_GREEDY_MAX_BITS else Rounding.NEAREST
    return Rounding(rounding)


def _check_grid(step: int, wmax: int) -> None:
    if not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"step must be a positive integer, not {step!r}")
    if not isinstance(wmax, (int, np.integer)) or wmax < 0 or wmax % step:
        raise ValueError(f"wmax must be a non-negative multiple of step {step}, not {wmax!r}")


def round_nearest(codes, step: int, wmax: int) -> np.ndarray:
    """``min(step * rint(c / step), wmax)`` of real codes ``c`` (int64)."""
    _check_grid(step, wmax)
    c = np.asarray(codes, dtype=np.float64)
    return np.minimum(step * np.rint(c / step), wmax).astype(np.int64)


def weight_candidates(codes, step: int, wmax: int) -> tuple[np.ndarray, np.ndarray]:
    """``(down, up)``: ``min(step*floor(c/step), wmax)`` and ``min(down + step, wmax)`` (int64)."""
    _check_grid(step, wmax)
    c = np.asarray(codes, dtype=np.float64)
    down = np.minimum(step * np.floor(c / step), wmax).astype(np.int64)
    return down, np.minimum(down + step, wmax)


def l1_sums(x, w) -> np.ndarray:
    """``out[p, o] = sum_k |x[p, k] - w[o, k]|`` (float64) of patches ``x [P, K]`` and weights ``w [O, K]``."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"patches [P, K] and weights [O, K] must share K, not {x.shape} and {w.shape}")
    out = np.zeros((x.shape[0], w.shape[0]))
    for k in range(x.shape[1]):
        out += np.abs(x[:, k, None] - w[None, :, k])
    return out


def output_error(wq, x, target) -> np.ndarray:
    """Per-channel error ``E_o`` of the module docstring: ``[O]`` float64."""
    r = l1_sums(x, wq) - np.asarray(target, dtype=np.float64)
    r -= r.mean(axis=0)
    return (r * r).sum(axis=0)


def round_to_output(codes, x, target, step: int, wmax: int, *, sweeps: int = 3) -> np.ndarray:
    """Weight codes ``[O, K]`` (int64) chosen by greedy coordinate descent on the output error (module docstring).

    Parameters
    ----------
    codes : array ``[O, K]``
        Real weight codes, clamped to ``[0, wmax + step - 1]``.
    x : array ``[P, K]``
        Integer input patches.
    target : array ``[P, O]``
        Float accumulators ``t_po``.
    step, wmax : int
        Weight grid: multiples of ``step`` in ``0..wmax``.
    sweeps : int
        Largest number of passes over the weights (stops earlier when a pass
        flips nothing).

    Returns
    -------
    numpy.ndarray
        Codes, each one of :func:`weight_candidates`; the error ``E_o`` of
        every channel is at most that of :func:`round_nearest`.
    """
    c = np.asarray(codes, dtype=np.float64)
    xs = np.asarray(x)
    t = np.asarray(target, dtype=np.float64)
    if c.ndim != 2 or xs.ndim != 2 or xs.shape[1] != c.shape[1] or t.shape != (xs.shape[0], c.shape[0]):
        raise ValueError(f"codes [O, K], patches [P, K] and target [P, O] do not match: {c.shape}, {xs.shape}, {t.shape}")
    if not isinstance(sweeps, (int, np.integer)) or isinstance(sweeps, bool) or sweeps < 0:
        raise ValueError(f"sweeps must be a non-negative integer, not {sweeps!r}")
    if xs.shape[0] == 0:
        raise ValueError("round_to_output needs at least one input patch")
    if xs.dtype.kind not in "iu":
        raise ValueError(f"patches must be integer codes, not {xs.dtype}")
    down, up = weight_candidates(c, step, wmax)
    wq = round_nearest(c, step, wmax)
    alt = np.where(wq == down, up, down)
    xi = xs.astype(np.int64)
    r = (l1_sums(xi, wq) - t).T.copy()  # [O, P]: a channel's residuals are contiguous
    r -= r.mean(axis=1, keepdims=True)
    err = (r * r).sum(axis=1)
    n_codes = int(xi.max()) + 1
    hist = xi.min() >= 0 and n_codes <= _HIST_CODES_MAX
    codes_v = np.arange(n_codes, dtype=np.float64)[None, :]
    m = xi.shape[0]
    xt = xi.T.copy()  # [K, P]
    for _ in range(sweeps):
        flipped = 0
        for k in range(c.shape[1]):
            movable = alt[:, k] != wq[:, k]
            if not movable.any():
                continue
            xk = xt[k]
            if hist:  # sums of r over the patches holding each code v: delta depends on the code only
                onehot = (xk[:, None] == np.arange(n_codes)).astype(np.float64)  # [P, V]
                cnt = onehot.sum(axis=0)
                dv = np.abs(codes_v - alt[:, k, None]) - np.abs(codes_v - wq[:, k, None])  # [O, V]
                mean_d = dv @ cnt / m
                gain = 2.0 * np.einsum("ov,ov->o", r @ onehot, dv) + (dv * dv) @ cnt - m * mean_d * mean_d
            else:
                xkf = xk[None, :].astype(np.float64)
                delta = np.abs(xkf - alt[:, k, None]) - np.abs(xkf - wq[:, k, None])  # [O, P]
                delta -= delta.mean(axis=1, keepdims=True)
                gain = 2.0 * np.einsum("op,op->o", r, delta) + np.einsum("op,op->o", delta, delta)
            take = movable & (gain < -1e-12 * np.maximum(err, 1.0))
            if not take.any():
                continue
            cols = np.flatnonzero(take)
            if hist:
                r[cols] += (dv[cols] - mean_d[cols, None])[:, xk]
            else:
                r[cols] += delta[cols]
            err[cols] += gain[cols]
            w_old = wq[cols, k].copy()
            wq[cols, k] = alt[cols, k]
            alt[cols, k] = w_old
            flipped += cols.size
        if not flipped:
            break
    return wq


def patches_at(x, kernel, stride: int, padding: int, pad_value, n_idx, p_idx) -> np.ndarray:
    """Input patches ``[M, K]`` of a conv (or linear) layer at images ``n_idx`` and output positions ``p_idx``.

    ``x`` is ``[N, C, H, W]`` (a linear layer's ``[N, F]`` is ``[N, F, 1, 1]``
    with a 1x1 kernel); ``k = c*kh*kw + i*kw + j`` and ``p = oy*OW + ox`` as
    in :func:`quant.intmodel.golden.im2col`; positions outside the image read
    ``pad_value``.  Any dtype.
    """
    a = np.asarray(x)
    if a.ndim == 2:
        a = a[:, :, None, None]
    kh, kw = kernel
    n_idx = np.asarray(n_idx, dtype=np.int64)
    p_idx = np.asarray(p_idx, dtype=np.int64)
    if padding:
        a = np.pad(a, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=pad_value)
    ow = (a.shape[3] - kw) // stride + 1
    oy, ox = p_idx // ow, p_idx % ow
    c = np.repeat(np.arange(a.shape[1]), kh * kw)
    i = np.tile(np.repeat(np.arange(kh), kw), a.shape[1])
    j = np.tile(np.arange(kw), a.shape[1] * kh)
    return a[n_idx[:, None], c[None, :], (oy * stride)[:, None] + i[None, :], (ox * stride)[:, None] + j[None, :]]
