"""hwsim.config: EngineConfig validation, derived widths and latencies; acc_bits_for."""

from __future__ import annotations

import pytest

from hwsim.config import EngineConfig, acc_bits_for


@pytest.mark.parametrize(
    "bits, k, pe, want",
    [(8, 1, "adder", 8), (8, 2, "adder", 9), (8, 144, "adder", 16), (4, 400, "adder", 13),
     (8, 1, "mult", 16), (8, 27, "mult", 21), (2, 3, "mult", 6)],
)
def test_acc_bits_for_hand_values(bits, k, pe, want):
    assert acc_bits_for(bits, k, pe) == want


def test_acc_bits_for_bounds_the_worst_case():
    # adder: K * (2**b - 1) must fit unsigned; mult: K * 2**(2b-2) must fit signed
    for bits in (2, 4, 8):
        for k in (1, 2, 3, 7, 8, 9, 150, 576):
            assert k * ((1 << bits) - 1) < (1 << acc_bits_for(bits, k, "adder"))
            assert k * (1 << (2 * bits - 2)) <= (1 << (acc_bits_for(bits, k, "mult") - 1))


# --- EngineConfig ----------------------------------------------------------------------


def test_engine_defaults_and_derived():
    c = EngineConfig(rows=8, cols=8)
    assert c.acc_bits == 8 + 13 and c.mult_acc_bits == 0 and c.act_bits == 8
    assert c.weight_word_bits == 512 and c.act_word_bits == 64
    assert c.step_latency == 2 and c.vector_latency == 1 and c.requant_latency == 6
    assert c.param_beats("fixed", 8) == 1  # 8 * (16 + 40) = 448 bits in one 512-bit beat
    t = EngineConfig(rows=4, cols=4, bits=4, requant=("threshold",))
    assert t.requant_latency == 4 and t.threshold_count == 15 and t.thr_bits == t.acc_bits + 1
    assert t.param_beats("threshold", 4) == -(-4 * (15 * t.thr_bits + 1) // 64)
    m = EngineConfig(rows=8, cols=8, mult_rows=2)
    assert m.mult_acc_bits == 2 * 8 + 13 + 1
    assert EngineConfig(rows=2, cols=16).tree_stages == 2
    assert EngineConfig(rows=2, cols=1).tree_stages == 1
    assert EngineConfig(rows=1, cols=1, requant="threshold").requant == ("threshold",)
    assert EngineConfig(rows=1, cols=1, requant=("threshold", "fixed")).requant == ("fixed", "threshold")


def test_engine_round_trip_and_replace():
    c = EngineConfig(rows=4, cols=2, mult_rows=1, act_words=(100, 200, 300))
    assert EngineConfig.from_dict(c.to_dict()) == c
    d = c.replace(bits=6)
    assert d.acc_bits == 6 + 13 and d.act_bits == 6
    with pytest.raises(ValueError, match="unknown engine config keys: colz"):
        EngineConfig.from_dict({"rows": 1, "colz": 2})


@pytest.mark.parametrize("kwargs, message", [
    (dict(rows=0, cols=1), "rows must be an integer in 1..64, not 0"),
    (dict(rows=1, cols=65), "cols must be an integer in 1..64, not 65"),
    (dict(rows=1, cols=1, pe="xor"), "pe must be one of adder, mult, not 'xor'"),
    (dict(rows=2, cols=1, mult_rows=3), "mult_rows must be an integer in 0..2, not 3"),
    (dict(rows=2, cols=1, pe="mult", mult_rows=1),
     "an all-multiplier engine has no separate multiplier unit: mult_rows must be 0, not 1"),
    (dict(rows=1, cols=1, bits=1), "bits must be an integer in 2..16, not 1"),
    (dict(rows=1, cols=1, act_bits=4), "act_bits must be an integer in 8..32, not 4"),
    (dict(rows=1, cols=1, max_k=0), "max_k must be an integer in 1..1048576, not 0"),
    (dict(rows=1, cols=1, max_k=16, acc_bits=11),
     "acc_bits=11 is narrower than the 12 bits a reduction of max_k=16 at 8 bits needs"),
    (dict(rows=1, cols=1, mult_acc_bits=20), "mult_acc_bits must be 0 without a multiplier unit, not 20"),
    (dict(rows=2, cols=1, mult_rows=1, max_k=16, mult_acc_bits=20),
     "mult_acc_bits=20 is narrower than the 21 bits a reduction of max_k=16 at 8 bits needs"),
    (dict(rows=1, cols=1, requant=()), "requant must be a non-empty tuple of distinct fixed, threshold, not \\(\\)"),
    (dict(rows=1, cols=1, requant=("fixed", "fixed")),
     "requant must be a non-empty tuple of distinct fixed, threshold, not \\('fixed', 'fixed'\\)"),
    (dict(rows=1, cols=1, bits=9, requant=("threshold",)),
     "threshold requant needs 2\\*\\*bits - 1 comparators per output: bits must be at most 8 with it, not 9"),
    (dict(rows=1, cols=1, mult_bits=1), "mult_bits must be an integer in 2..32, not 1"),
    (dict(rows=1, cols=1, n_bits=65), "n_bits must be an integer in 2..64, not 65"),
    (dict(rows=1, cols=1, out_bits=7), "out_bits must be an integer in 8..32, not 7"),
    (dict(rows=1, cols=1, act_words=(10,)), "act_words must be a tuple of 2..8 region depths, not \\(10,\\)"),
    (dict(rows=1, cols=1, act_words=(10, 0)), "act_words\\[1\\] must be an integer in 1..1048576, not 0"),
    (dict(rows=1, cols=1, weight_words=70000), "weight_words must be an integer in 1..65536, not 70000"),
    (dict(rows=1, cols=1, pixel_tile=0), "pixel_tile must be an integer in 1..64, not 0"),
    (dict(rows=1, cols=1, pixel_tile=True), "pixel_tile must be an integer, not True"),
    (dict(rows=1, cols=1, clock_mhz=0), "clock_mhz must be a positive number, not 0"),
    (dict(rows=True, cols=1), "rows must be an integer, not True"),
])
def test_engine_validation_messages(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        EngineConfig(**kwargs)
