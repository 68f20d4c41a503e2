"""hwsim.schedule: hand-computed cycle counts and a cycle-by-cycle model of the rules.

``simulate`` below steps the four rules of the module docstring one cycle at a
time (it shares no code with the closed form), so holding it equal to
``schedule_tiles`` and ``layer_cycles`` checks the contract the RTL follows.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.config import ArrayConfig
from hwsim.schedule import layer_cycles, schedule_tiles, tile_grid, tile_layer


def simulate(ks, cols, lat):
    """Step the schedule rules one cycle at a time.

    Returns ``([(cfg_cycle, last_step_cycle, last_out_cycle) per tile], total_cycles)``.
    """
    n = len(ks)
    record, cfg_at = [], {}
    next_cfg = 0
    reducing = None  # [tile, index of its next step, first cycle that step may fire]
    shadow_last_out = None  # cycle of the last output beat of the tile in the shadow bank
    end = None
    cycle = 0
    while end is None:
        if reducing is not None and reducing[2] <= cycle:
            t, s = reducing[0], reducing[1]
            if s < ks[t] - 1:  # rule 2: steps fire in consecutive cycles
                reducing[1] += 1
            elif shadow_last_out is None or cycle >= shadow_last_out:  # rule 3
                shadow_last_out = cycle + lat + cols - 1  # rule 4: columns drain at l+L .. l+L+cols-1
                record.append((cfg_at[t], cycle, shadow_last_out))
                reducing = None
                if t == n - 1:
                    end = shadow_last_out + 1
        if next_cfg < n and reducing is None:  # rule 1 (also in the cycle of the last step)
            cfg_at[next_cfg] = cycle
            reducing = [next_cfg, 0, cycle + 1]
            next_cfg += 1
        cycle += 1
        assert cycle < 10_000_000, "simulation does not terminate"
    return record, end


def cfg(rows, cols, requant="fixed", max_k=4096):
    return ArrayConfig(rows=rows, cols=cols, requant=requant, max_k=max_k)


@pytest.mark.parametrize(
    "rows, cols, requant, o, p, k, tiles, total",
    [
        # 4 compute-bound tiles: l0 = 5, period max(5, 3+2-1) = 5: 5 + 3*5 + 3 + 2
        (2, 2, "fixed", 3, 3, 5, 4, 25),
        # drain-bound: period max(2, 3+4-1) = 6: 2 + 6 + 3 + 4
        (1, 4, "fixed", 1, 8, 2, 2, 15),
        # thresholds (L = 2), K = 1, one column: 1 + 2*2 + 2 + 1
        (1, 1, "threshold", 1, 3, 1, 3, 8),
        # partial tiles in both directions: 5x6 on 4x4 is 2x2 tiles: 9 + 3*9 + 3 + 4
        (4, 4, "fixed", 5, 6, 9, 4, 43),
        # a single partial tile: K + L + cols
        (8, 8, "fixed", 3, 5, 7, 1, 18),
        # K == drain bound exactly (no stall): 6 + 1*6 + 3 + 4
        (2, 4, "fixed", 4, 4, 6, 2, 19),
        # K one short of the drain bound: 1 stall cycle per later tile: 5 + 2*6 + 3 + 4
        (1, 4, "fixed", 3, 4, 5, 3, 24),
    ],
)
def test_hand_computed_layers(rows, cols, requant, o, p, k, tiles, total):
    c = cfg(rows, cols, requant)
    tr, tc = tile_grid(o, p, c)
    assert tr * tc == tiles
    assert layer_cycles(o, p, k, c) == total
    timing = schedule_tiles([k] * tiles, c)
    assert timing.total_cycles == total
    assert simulate([k] * tiles, cols, c.requant_latency)[1] == total


def test_hand_computed_tile_timings_drain_bound():
    # cols=4, L=3, K=2: tile 0 cfg 0, steps 1-2, outputs 5-8; tile 1 natural last step 4,
    # shadow freed by the output in cycle 8 -> last step 8 (4 stall cycles), outputs 11-14.
    t = schedule_tiles([2, 2], cfg(1, 4))
    a, b = t.tiles
    assert (a.cfg_cycle, a.first_step_cycle, a.last_step_cycle, a.first_out_cycle, a.last_out_cycle) == (0, 1, 2, 5, 8)
    assert (b.cfg_cycle, b.first_step_cycle, b.last_step_cycle, b.first_out_cycle, b.last_out_cycle) == (2, 3, 8, 11, 14)
    assert (a.shadow_stall_cycles, b.shadow_stall_cycles) == (0, 4)
    assert (t.total_cycles, t.compute_cycles, t.stall_cycles) == (15, 4, 4)


def test_mixed_k_schedule_by_hand():
    # cols=2, L=3 (drain bound 4): K = 3, 6, 1 -> last steps 3, 9, 13; total 13 + 3 + 2
    t = schedule_tiles([3, 6, 1], cfg(2, 2))
    assert [x.last_step_cycle for x in t.tiles] == [3, 9, 13]
    assert [x.cfg_cycle for x in t.tiles] == [0, 3, 9]
    assert t.total_cycles == 18
    assert simulate([3, 6, 1], 2, 3) == ([(0, 3, 7), (3, 9, 13), (9, 13, 17)], 18)


def test_tile_grid_is_ceil():
    c = cfg(4, 8)
    assert tile_grid(4, 8, c) == (1, 1)
    assert tile_grid(5, 8, c) == (2, 1)
    assert tile_grid(4, 9, c) == (1, 2)
    assert tile_grid(64, 1, c) == (16, 1)


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 5), cols=st.integers(1, 5), o=st.integers(1, 11), p=st.integers(1, 11),
       k=st.integers(1, 6), batch=st.booleans(), seed=st.integers(0, 2**16))
def test_tile_layer_covers_the_layer_once_and_pads(rows, cols, o, p, k, batch, seed):
    """Row-tile-major tiles of tile_grid's size; together they hold every operand once, padding elsewhere."""
    rng = np.random.default_rng(seed)
    w = rng.integers(1, 100, (o, k))
    x = rng.integers(1, 100, (3, k, p) if batch else (k, p))
    c = cfg(rows, cols)
    tiles = list(tile_layer(w, x, c, pad_value=-7))
    tr, tc = tile_grid(o, p, c)
    assert [(t.o0, t.p0) for t in tiles] == [(i * rows, j * cols) for i in range(tr) for j in range(tc)]
    for t in tiles:
        assert (t.o1, t.p1) == (min(t.o0 + rows, o), min(t.p0 + cols, p))
        assert t.w.shape == (rows, k) and t.x.shape == x.shape[:-1] + (cols,)
        assert np.array_equal(t.w[: t.o1 - t.o0], w[t.o0:t.o1]) and not t.w[t.o1 - t.o0:].any()
        assert np.array_equal(t.x[..., : t.p1 - t.p0], x[..., t.p0:t.p1])
        assert np.all(t.x[..., t.p1 - t.p0:] == -7)
    # one weight array per row tile, shared by its tiles (the host sends its beats once)
    assert len({id(t.w) for t in tiles}) == tr
    with pytest.raises(ValueError, match="^weights have K=2 but the activations 3$"):
        next(tile_layer(np.zeros((1, 2)), np.zeros((3, 1)), c, 0))


@pytest.mark.parametrize(
    "call, msg",
    [
        (lambda c: layer_cycles(4, 4, 0, c), r"K=0 is outside 1..max_k=16"),
        (lambda c: layer_cycles(4, 4, 17, c), r"K=17 is outside 1..max_k=16"),
        (lambda c: layer_cycles(0, 4, 3, c), "at least one output channel and pixel, not 0x4"),
        (lambda c: schedule_tiles([], c), "at least one tile"),
        (lambda c: schedule_tiles([3, 20], c), r"K=20 is outside 1..max_k=16"),
    ],
)
def test_bad_layers_are_refused(call, msg):
    with pytest.raises(ValueError, match=msg):
        call(cfg(2, 2, max_k=16))


@settings(max_examples=150, deadline=None)
@given(
    rows=st.integers(1, 9), cols=st.integers(1, 9), requant=st.sampled_from(["fixed", "threshold"]),
    o=st.integers(1, 20), p=st.integers(1, 20), k=st.integers(1, 24),
)
def test_closed_form_equals_schedule_and_simulation(rows, cols, requant, o, p, k):
    c = cfg(rows, cols, requant)
    tr, tc = tile_grid(o, p, c)
    ks = [k] * (tr * tc)
    total = layer_cycles(o, p, k, c)
    assert schedule_tiles(ks, c).total_cycles == total
    record, sim_total = simulate(ks, cols, c.requant_latency)
    assert sim_total == total
    assert [r[1] for r in record] == [t.last_step_cycle for t in schedule_tiles(ks, c).tiles]


@settings(max_examples=100, deadline=None)
@given(cols=st.integers(1, 8), requant=st.sampled_from(["fixed", "threshold"]),
       ks=st.lists(st.integers(1, 12), min_size=1, max_size=8))
def test_mixed_k_schedule_equals_simulation(cols, requant, ks):
    c = cfg(2, cols, requant)
    t = schedule_tiles(ks, c)
    record, total = simulate(ks, cols, c.requant_latency)
    assert total == t.total_cycles
    assert record == [(x.cfg_cycle, x.last_step_cycle, x.last_out_cycle) for x in t.tiles]
