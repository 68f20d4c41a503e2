"""AdderPE / MultPE against their references in the Amaranth simulator."""

import inspect
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.config import acc_bits_for
from rtl.pe import ADDER_FORMS, PE_LATENCY, AdderPE, MultPE, pe_ref, simulate_pe


def _case(pe, n, rng, p_last=0.25, p_en=0.8):
    b = pe.bits
    if pe.kind == "adder":
        xs = [rng.randrange(1 << b) for _ in range(n)]
        ws = [rng.randrange(1 << b) for _ in range(n)]
    else:
        h = 1 << (b - 1)
        xs = [rng.randrange(-h, h) for _ in range(n)]
        ws = [rng.randrange(-h, h) for _ in range(n)]
    lasts = [int(rng.random() < p_last) for _ in range(n)]
    ens = [int(rng.random() < p_en) for _ in range(n)]
    return xs, ws, lasts, ens


@pytest.mark.parametrize("form", ADDER_FORMS)
@pytest.mark.parametrize("bits", [2, 5, 8])
def test_adder_pe_matches_reference(form, bits):
    seed = 100 + bits
    print("seed", seed)
    rng = random.Random(seed)
    pe = AdderPE(bits=bits, max_k=16, form=form)
    case = _case(pe, 60, rng)
    assert simulate_pe(pe, *case) == pe_ref(pe, *case)


@pytest.mark.parametrize("bits", [2, 5, 8])
def test_mult_pe_matches_reference(bits):
    seed = 200 + bits
    print("seed", seed)
    rng = random.Random(seed)
    pe = MultPE(bits=bits, max_k=16)
    case = _case(pe, 60, rng)
    assert simulate_pe(pe, *case) == pe_ref(pe, *case)


@settings(max_examples=8, deadline=None)
@given(bits=st.integers(2, 16), lg=st.integers(0, 6), kind=st.sampled_from(["adder", "mult"]),
       seed=st.integers(0, 2**32 - 1))
def test_pe_widths_property(bits, lg, kind, seed):
    cls = AdderPE if kind == "adder" else MultPE
    pe = cls(bits=bits, max_k=1 << lg)
    assert pe.acc_bits == acc_bits_for(bits, 1 << lg, kind)
    assert pe.latency == PE_LATENCY == 1
    case = _case(pe, 20, random.Random(seed))
    assert simulate_pe(pe, *case) == pe_ref(pe, *case)


@pytest.mark.parametrize("kind", ["adder", "mult"])
@pytest.mark.parametrize("bits,lg", [(8, 4), (4, 6), (16, 2)])
def test_extremes_at_largest_k_do_not_wrap(kind, bits, lg):
    """All-max terms for max_k steps: the exact sum, no wrap (and a narrower
    accumulator would wrap: the check can fail)."""
    k = 1 << lg
    if kind == "adder":
        pe = AdderPE(bits=bits, max_k=k)
        x, w, term = (1 << bits) - 1, 0, (1 << bits) - 1
    else:
        pe = MultPE(bits=bits, max_k=k)
        x = w = -(1 << (bits - 1))
        term = 1 << (2 * bits - 2)
    xs, ws = [x] * k, [w] * k
    lasts = [0] * (k - 1) + [1]
    got = simulate_pe(pe, xs, ws, lasts)
    assert got == pe_ref(pe, xs, ws, lasts)
    assert got[-1] == (k * term, 0)  # sum of the last step, accumulator cleared
    narrow = (AdderPE if kind == "adder" else MultPE)(bits=bits, acc_bits=pe.acc_bits - 1)
    assert simulate_pe(narrow, xs, ws, lasts)[-1][0] != k * term


def test_adder_pe_reversed_operands():
    pe = AdderPE(bits=4, max_k=4)
    xs, ws, lasts = [0, 15, 3, 9], [15, 0, 9, 3], [0, 0, 0, 1]
    assert [s for s, _ in simulate_pe(pe, xs, ws, lasts)] == [15, 30, 36, 42]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(bits=1, max_k=4), "bits must be an integer in 2..16, not 1"),
        (dict(bits=17, max_k=4), "bits must be an integer in 2..16, not 17"),
        (dict(bits=8, max_k=0), "max_k must be a positive integer, not 0"),
        (dict(bits=8, max_k=1024, acc_bits=17),
         "K beyond the accumulator: a reduction of max_k=1024 at 8 bits needs 18 "
         "accumulator bits, not acc_bits=17"),
        (dict(bits=8, acc_bits=7), "acc_bits must be at least 8 to hold one adder term, not 7"),
        (dict(bits=8), "give max_k or acc_bits"),
        (dict(bits=8, max_k=4, form="abs"), "form must be one of cinv, mux, not 'abs'"),
    ],
)
def test_adder_pe_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=f"^{_re(message)}$"):
        AdderPE(**kwargs)


def test_mult_pe_rejects_narrow_accumulator():
    with pytest.raises(ValueError, match="needs 20 accumulator bits, not acc_bits=19"):
        MultPE(bits=8, max_k=16, acc_bits=19)


@pytest.mark.parametrize("cls", [AdderPE, MultPE])
def test_constructors_are_keyword_only(cls):
    params = list(inspect.signature(cls).parameters.values())
    assert params and all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)


def test_reference_and_simulation_reject_ragged_inputs():
    pe = AdderPE(bits=4, max_k=4)
    with pytest.raises(ValueError, match="same length"):
        pe_ref(pe, [1, 2], [1], [0, 1])
    with pytest.raises(ValueError, match="same length"):
        simulate_pe(pe, [1, 2], [1, 2], [0])
    assert simulate_pe(pe, [1], [3], [1]) == [(2, 0)]


def _re(text):
    import re

    return re.escape(text)
