"""scripts/bench_ice40.py: the HX8K fit table's rows and its refusals (the synthesis itself: the benchmark)."""

from __future__ import annotations

import pytest

from hwsim.parts import part
from scripts.bench_ice40 import ice40_row, main, sizes_arg


def _synth(*, fits: bool, lut: int, lc=None, lc_total=None, fmax=None, err=None) -> dict:
    return {"resources": {"lc": lc, "lut": lut, "ff": 10, "carry": 3, "dsp": 0, "bram": 14},
            "lc_total": lc_total, "fmax_mhz": fmax, "fits": fits, "pnr_error": err, "critical_path": None}


def test_rows_of_a_placed_and_an_unplaced_engine():
    hx = part("ice40-hx8k")
    base = _synth(fits=False, lut=5000, err="ERROR: Failed to expand region (0, 0) |_> (33, 33) of 9102 ICESTORM_LCs")
    row = ice40_row((4, 4), base, 1000, hx, 5000)
    assert (row["fits"], row["lc"], row["lc_with_wrapper"], row["fmax_mhz"], row["images_per_s"]) == (
        False, None, 9102, None, None)
    assert (row["lc_capacity"], row["bram_capacity"], row["lut_over_baseline"]) == (7680, 32, 1.0)
    ok = ice40_row((2, 4), _synth(fits=True, lut=3000, lc=5500, lc_total=6000, fmax=50.0), 200_000, hx, 5000)
    assert (ok["fits"], ok["lc"], ok["lc_with_wrapper"], ok["pes"]) == (True, 5500, 6000, 8)
    assert ok["images_per_s"] == 250.0 and ok["lut_over_baseline"] == 0.6


def test_bad_sizes_and_target_are_refused_in_one_line(capsys):
    assert sizes_arg("4x4, 2X4") == [(4, 4), (2, 4)]
    for bad in ("4x", "0x4", "4"):
        with pytest.raises(ValueError, match="^--sizes must be ROWSxCOLS"):
            sizes_arg(bad)
    assert main(["--sizes", "4x"]) == 2
    assert main(["--target", "generic"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("bench_ice40: --sizes must be") and err[1].startswith("bench_ice40: --target must be")
