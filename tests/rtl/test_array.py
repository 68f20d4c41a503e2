"""PEArray against its reference in the Amaranth simulator."""

import inspect
import random

import pytest

from rtl.array import ARRAY_LATENCY, PEArray, pe_array_ref, simulate_pe_array


def _case(arr, n, rng):
    b = arr.bits
    lo, hi = (0, 1 << b) if arr.pe == "adder" else (-(1 << (b - 1)), 1 << (b - 1))
    ws = [[rng.randrange(lo, hi) for _ in range(arr.rows)] for _ in range(n)]
    xs = [[rng.randrange(lo, hi) for _ in range(arr.cols)] for _ in range(n)]
    ens = [int(rng.random() < 0.8) for _ in range(n)]
    lasts = [int(rng.random() < 0.2) for _ in range(n)]
    shifts = [int(rng.random() < 0.5) for _ in range(n)]
    return ws, xs, ens, lasts, shifts


@pytest.mark.parametrize("pe", ["adder", "mult"])
@pytest.mark.parametrize("rows,cols", [(1, 1), (2, 3), (3, 2)])
def test_array_matches_reference(pe, rows, cols):
    seed = rows * 10 + cols + (0 if pe == "adder" else 100)
    print("seed", seed)
    arr = PEArray(rows=rows, cols=cols, pe=pe, bits=5, max_k=32)
    assert arr.latency == ARRAY_LATENCY == 1
    case = _case(arr, 50, random.Random(seed))
    assert simulate_pe_array(arr, *case) == pe_array_ref(arr, *case)


def test_tile_drains_column_by_column():
    """A K=3 tile lands in the shadow bank; shifting shows columns 0, 1, 2 in turn
    while the next tile already accumulates."""
    arr = PEArray(rows=2, cols=3, pe="adder", bits=4, max_k=4)
    ws = [[1, 15], [2, 0], [3, 7], [0, 0], [0, 0], [0, 0]]
    xs = [[0, 5, 15], [4, 4, 4], [3, 0, 9], [9, 9, 9], [9, 9, 9], [9, 9, 9]]
    ens, lasts, shifts = [1] * 6, [0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0]
    got = simulate_pe_array(arr, ws, xs, ens, lasts, shifts)
    col = lambda c: [sum(abs(xs[k][c] - ws[k][r]) for k in range(3)) for r in range(2)]
    assert got[2] == col(0) and got[3] == col(1) and got[4] == col(2) and got[5] == col(2)
    assert got == pe_array_ref(arr, ws, xs, ens, lasts, shifts)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(rows=0, cols=2), "rows must be a positive integer, not 0"),
        (dict(rows=2, cols=-1), "cols must be a positive integer, not -1"),
        (dict(rows=2, cols=2, pe="mac"), "pe must be one of adder, mult, not 'mac'"),
        (dict(rows=2, cols=2, bits=17), "bits must be an integer in 2..16, not 17"),
        (dict(rows=2, cols=2, max_k=70000, acc_bits=20),
         "K beyond the accumulator: a reduction of max_k=70000 at 8 bits needs 25 "
         "accumulator bits, not acc_bits=20"),
    ],
)
def test_array_rejects_bad_arguments(kwargs, message):
    args = dict(rows=2, cols=2, pe="adder", bits=8, max_k=16)
    args.update(kwargs)
    with pytest.raises(ValueError) as info:
        PEArray(**args)
    assert str(info.value) == message


def test_array_constructor_is_keyword_only():
    params = inspect.signature(PEArray).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
