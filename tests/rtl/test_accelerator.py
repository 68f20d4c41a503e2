"""The accelerator top: outputs against the reference, cycles against hwsim's schedule."""

import inspect
import random

import pytest

from hwsim.config import ArrayConfig
from hwsim.schedule import schedule_tiles
from rtl.accelerator import MUTATIONS, Accelerator, accelerator_ref, simulate_accelerator
from rtl.layout import fixed_widths


def _operands(cfg, rng, n, extreme=None):
    b = cfg.bits
    if cfg.pe == "adder":
        lo, hi = 0, (1 << b) - 1
    else:
        lo, hi = -(1 << (b - 1)), (1 << (b - 1)) - 1
    if extreme == "w":
        return [lo if cfg.pe == "mult" else 0] * n
    if extreme == "x":
        return [lo if cfg.pe == "mult" else hi] * n
    return [rng.randint(lo, hi) for _ in range(n)]


def make_tiles(cfg, ks, rng, extreme=False):
    tiles = []
    for k in ks:
        t = {
            "k": k,
            "w": [_operands(cfg, rng, cfg.rows, "w" if extreme else None) for _ in range(k)],
            "x": [_operands(cfg, rng, cfg.cols, "x" if extreme else None) for _ in range(k)],
        }
        if cfg.requant == "fixed":
            fw = fixed_widths(cfg)
            t.update(
                shift=rng.randrange(0, 10) if not extreme else 0,
                lo=-(1 << cfg.out_bits) if extreme else rng.randrange(-4, 1),
                hi=(1 << cfg.out_bits) - 1,
                m=[1 if extreme else rng.randrange(-(1 << 9), 1 << 9) for _ in range(cfg.rows)],
                n=[0 if extreme else rng.randrange(-(1 << 12), 1 << 12) for _ in range(cfg.rows)],
            )
            assert fw["mult_bits"] >= 10
        else:
            top = cfg.threshold_count
            lim = 1 << cfg.acc_bits
            lo = -lim if cfg.pe == "mult" else 0
            t.update(
                neg=[rng.randrange(2) for _ in range(cfg.rows)],
                thr=[sorted(rng.randrange(lo, lim) for _ in range(top)) for _ in range(cfg.rows)],
            )
        tiles.append(t)
    return tiles


SCHEDULE_CASES = [
    # (rows, cols, pe, requant, ks)  -- compute-bound, drain-bound (K < cols + L - 1), mixed
    (2, 3, "adder", "fixed", [8, 8, 8]),
    (2, 3, "adder", "fixed", [1, 1, 1, 1]),
    (3, 4, "adder", "threshold", [2, 9, 1, 5, 3]),
    (1, 1, "mult", "fixed", [1, 3, 1]),
    (4, 2, "mult", "threshold", [3, 3, 7]),
    (2, 5, "mult", "fixed", [6, 2, 11, 1]),
]


@pytest.mark.parametrize("rows,cols,pe,requant,ks", SCHEDULE_CASES)
def test_cycles_match_schedule_exactly(rows, cols, pe, requant, ks):
    seed = sum(ks) + rows * 7 + cols
    print("seed", seed)
    cfg = ArrayConfig(rows=rows, cols=cols, pe=pe, bits=4, max_k=16, requant=requant)
    acc = Accelerator(config=cfg)
    assert acc.latency == cfg.requant_latency
    tiles = make_tiles(cfg, ks, random.Random(seed))
    trace = {}
    got = simulate_accelerator(acc, tiles, trace=trace)
    assert got == accelerator_ref(acc, tiles)
    sched = schedule_tiles(ks, cfg)
    assert trace["total_cycles"] == sched.total_cycles
    assert trace["cfg"] == [t.cfg_cycle for t in sched.tiles]
    steps = []
    for t in sched.tiles:
        k = t.last_step_cycle - t.first_step_cycle + 1 - t.shadow_stall_cycles
        # steps before the last are consecutive from the first; the last may wait
        steps += list(range(t.first_step_cycle, t.first_step_cycle + k - 1)) + [t.last_step_cycle]
    assert trace["step"] == steps
    outs = [t.first_out_cycle + c for t in sched.tiles for c in range(cols)]
    assert trace["o"] == outs


@pytest.mark.parametrize("stall_seed", [1, 2, 3])
@pytest.mark.parametrize("pe,requant", [("adder", "fixed"), ("mult", "threshold")])
def test_stalls_lose_and_duplicate_nothing(pe, requant, stall_seed):
    seed = 77
    print("seed", seed, "stall seed", stall_seed)
    cfg = ArrayConfig(rows=2, cols=3, pe=pe, bits=4, max_k=16, requant=requant)
    acc = Accelerator(config=cfg)
    tiles = make_tiles(cfg, [4, 1, 7, 2, 3], random.Random(seed))
    trace = {}
    got = simulate_accelerator(acc, tiles, seed=stall_seed, trace=trace)
    assert got == accelerator_ref(acc, tiles)
    assert len(trace["step"]) == sum(t["k"] for t in tiles)
    assert trace["total_cycles"] > schedule_tiles([t["k"] for t in tiles], cfg).total_cycles


@pytest.mark.parametrize("pe", ["adder", "mult"])
def test_extremes_at_largest_k_do_not_wrap(pe):
    """All-max terms for max_k = 2**n steps; the acc_minus_one mutation wraps."""
    cfg = ArrayConfig(rows=2, cols=2, pe=pe, bits=4, max_k=32, out_bits=12, requant="fixed")
    tiles = make_tiles(cfg, [32, 32], random.Random(5), extreme=True)
    acc = Accelerator(config=cfg)
    got = simulate_accelerator(acc, tiles)
    term = 15 if pe == "adder" else 64
    assert got[0][0] == [min(32 * term, (1 << 12) - 1)] * 2
    assert got == accelerator_ref(acc, tiles)
    mutant = Accelerator(config=cfg, mutation="acc_minus_one")
    bad = simulate_accelerator(mutant, tiles)
    assert bad == accelerator_ref(mutant, tiles) and bad != got


def test_drop_carry_in_mutation_is_detected():
    cfg = ArrayConfig(rows=2, cols=2, pe="adder", bits=4, max_k=8, out_bits=8)
    tiles = make_tiles(cfg, [5], random.Random(9))
    tiles[0].update(shift=0, lo=-256, hi=255, m=[1, 1], n=[0, 0])  # q = acc
    acc = Accelerator(config=cfg)
    good = simulate_accelerator(acc, tiles)
    assert good == accelerator_ref(acc, tiles)
    mutant = Accelerator(config=cfg, mutation="drop_carry_in")
    bad = simulate_accelerator(mutant, tiles)
    assert bad != good


def test_bad_arguments():
    cfg = ArrayConfig(rows=1, cols=1, bits=4, max_k=4)
    with pytest.raises(ValueError, match="^mutation must be one of acc_minus_one, drop_carry_in, "
                       "not 'x'$"):
        Accelerator(config=cfg, mutation="x")
    with pytest.raises(ValueError, match="^mutation drop_carry_in needs the adder PE$"):
        Accelerator(config=cfg.replace(pe="mult"), mutation="drop_carry_in")
    with pytest.raises(ValueError, match="^form must be one of cinv, mux, not 'abs'$"):
        Accelerator(config=cfg, form="abs")
    # (ArrayConfig(rows=0) raises before Accelerator is called: test what Accelerator itself refuses)
    with pytest.raises(ValueError, match="^config must be an hwsim.config.ArrayConfig, not {'rows': 1}$"):
        Accelerator(config={"rows": 1})
    with pytest.raises(ValueError, match="bits must be at most 8 in threshold mode, not 9$"):
        Accelerator(config=cfg.replace(bits=9, requant="threshold"))
    acc = Accelerator(config=cfg)
    with pytest.raises(ValueError, match=r"^tile 0: k=5 is outside 1..max_k=4$"):
        accelerator_ref(acc, [{"k": 5, "w": [], "x": []}])
    assert MUTATIONS == ("acc_minus_one", "drop_carry_in")
    params = inspect.signature(Accelerator).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    simulate_accelerator(acc, make_tiles(cfg, [1], random.Random(0)))
