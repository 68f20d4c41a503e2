"""Group-shared scales of adder layers: clustering of output channels and each group's range (numpy only).

AdderQuant (Nie et al., NeurIPS 2022; DESIGN section 2) clusters an adder
layer's output channels by weight range and gives each cluster its own
scale, shared by its weights and its copy of the input.  Here:

* **Feature.** Channel ``o``'s range is ``r_o = clip(max_k w_ok, lo, hi)``
  with ``[lo, hi]`` the real range of the layer's input codes (weights below
  ``lo`` are clamped exactly, DESIGN section 2, so only the upper extent
  inside the input range matters).
* **Clustering.** :func:`cluster_channels`: optimal 1-D k-means (dynamic
  programming over the sorted ranges, so every one of the ``G`` groups is
  non-empty and the result does not depend on a random start; ties keep
  channel order).
* **Group range.** :func:`choose_group_range`: group ``g`` keeps ``lo`` and
  takes ``hi_g`` from the candidates ``hi * f`` (``f`` in
  :data:`RANGE_FRACTIONS`) and the group's largest ``r_o``, the one whose
  quantised ``|x - w|`` (input clipped to ``[lo, hi_g]`` on the group's
  ``2**bits - 1`` steps, weights exactly clamped and rounded on the same
  grid) has the smallest mean squared error against the float ``|x - w|``
  on calibration samples of the input and the group's weights.  ``f = 1``
  (the ungrouped range) is always a candidate.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RANGE_FRACTIONS", "EXTRA_INPUT_BITS", "channel_ranges", "cluster_channels", "choose_group_range"]

#: Fractions of the input range tried as a group's upper end.
RANGE_FRACTIONS = (1.0, 0.85, 0.7, 0.5, 0.35, 0.25, 0.18, 0.125)
#: Extra bits of the codes that feed a grouped adder layer (capped at 16), so that re-scaling them onto a
#: group's finer grid loses little: the base grid is ``2**EXTRA_INPUT_BITS`` times finer than the ungrouped one.
EXTRA_INPUT_BITS = 4


def channel_ranges(w2: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``r_o = clip(max_k w[o, k], lo, hi)`` for real weights ``w2 [O, K]``."""
    return np.clip(np.asarray(w2, dtype=np.float64).max(axis=1), lo, hi)


def cluster_channels(values, groups: int) -> np.ndarray:
    """Optimal 1-D k-means of ``values [O]`` into ``groups`` non-empty clusters; labels ``[O]`` int64.

    Clusters are contiguous in sorted order (stable sort); label 0 holds the
    smallest values.  Raises ``ValueError`` when ``groups`` exceeds ``O``.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    o = v.size
    if not 1 <= groups <= o:
        raise ValueError(f"cannot split {o} channels into {groups} groups")
    order = np.argsort(v, kind="stable")
    s = v[order]
    c1 = np.concatenate([[0.0], np.cumsum(s)])
    c2 = np.concatenate([[0.0], np.cumsum(s * s)])

    def cost(i, j):  # squared deviation of s[i:j] from its mean
        n = j - i
        t = c1[j] - c1[i]
        return max(0.0, (c2[j] - c2[i]) - t * t / n)

    inf = float("inf")
    best = np.full((groups + 1, o + 1), inf)
    cut = np.zeros((groups + 1, o + 1), dtype=np.int64)
    best[0, 0] = 0.0
    for g in range(1, groups + 1):
        for j in range(g, o - (groups - g) + 1):
            for i in range(g - 1, j):
                c = best[g - 1, i] + cost(i, j)
                if c < best[g, j]:
                    best[g, j], cut[g, j] = c, i
    labels_sorted = np.empty(o, dtype=np.int64)
    j = o
    for g in range(groups, 0, -1):
        i = int(cut[g, j])
        labels_sorted[i:j] = g - 1
        j = i
    labels = np.empty(o, dtype=np.int64)
    labels[order] = labels_sorted
    return labels


def choose_group_range(x_samples, w_group: np.ndarray, lo: float, hi: float, bits: int, *, wbits: int | None = None,
                       seed: int = 0, max_x: int = 1024, max_w: int = 1024) -> float:
    """Upper end ``hi_g`` of one group's real range (module docstring).

    Parameters
    ----------
    x_samples : array
        Calibration samples of the layer's input (real values).
    w_group : numpy.ndarray
        The group's real weights ``[O_g, K]``.
    lo, hi : float
        Real range of the layer's input codes.
    bits, wbits : int
        Operand and weight bits (weights on every ``2**(bits-wbits)``-th code).
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(x_samples, dtype=np.float64).ravel()
    w = np.asarray(w_group, dtype=np.float64).ravel()
    if x.size > max_x:
        x = x[rng.choice(x.size, max_x, replace=False)]
    if w.size > max_w:
        w = w[rng.choice(w.size, max_w, replace=False)]
    qmax = (1 << bits) - 1
    step_w = 1 << (bits - (wbits or bits))
    top = float(np.clip(w.max(initial=lo), lo, hi))
    cands = sorted({hi * f for f in RANGE_FRACTIONS} | ({top} if top > lo else set()), reverse=True)
    exact = np.abs(x[:, None] - w[None, :])
    best, best_err = hi, None
    for h in cands:
        if h - lo <= 1e-12:
            continue
        s = (h - lo) / qmax
        xq = np.clip(np.rint((x - lo) / s), 0, qmax)
        wc = np.clip((w - lo) / s, 0, qmax)
        dist = np.abs((w - lo) / s - wc)
        wq = np.minimum(step_w * np.rint(wc / step_w), step_w * (((1 << (wbits or bits)) - 1)))
        est = s * (np.abs(xq[:, None] - wq[None, :]) + dist[None, :])
        err = float(np.mean((est - exact) ** 2))
        if best_err is None or err < best_err * (1 - 1e-9):
            best, best_err = h, err
    return float(best)
