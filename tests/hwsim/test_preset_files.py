"""hwsim.preset_files: the shipped engine presets, user presets and their errors."""

from __future__ import annotations

import pytest

from hwsim.preset_files import EnginePreset, list_presets, load_preset


def test_shipped_presets():
    assert list_presets() == ["default", "large", "small"]
    assert load_preset("default") == EnginePreset(rows=8, cols=8, clock_mhz=200.0, description="8x8 engine, 200 MHz")
    assert (load_preset("small").rows, load_preset("large").cols) == (4, 16)


def test_user_preset_and_replace(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text("rows = 2\ncols = 8\nmult_rows = 1\nbits = 6\n")
    got = load_preset(str(p))
    assert (got.rows, got.cols, got.mult_rows, got.bits, got.clock_mhz) == (2, 8, 1, 6, 100.0)
    assert got.replace(rows=4, cols=None) == EnginePreset(rows=4, cols=8, mult_rows=1, bits=6)


@pytest.mark.parametrize("text, msg", [
    ("", "the preset needs rows and cols"),
    ("rows = 4\n", "the preset needs cols"),
    ("rows = 4\ncols = 4\nmax_k = 9\n", r"unknown engine preset key\(s\) max_k"),
    ("rows = 4\ncols = 65\n", "cols must be an integer in 1..64, not 65"),
    ("rows = 4\ncols = 4\nmult_rows = 5\n", "mult_rows must be an integer in 0..4, not 5"),
    ("rows = 4\ncols = 4\nclock_mhz = 0\n", "clock_mhz must be a positive number"),
    ("rows = [", "not a valid TOML preset"),
])
def test_bad_presets_are_refused(tmp_path, text, msg):
    p = tmp_path / "p.toml"
    p.write_text(text)
    with pytest.raises(ValueError, match=msg):
        load_preset(str(p))


def test_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="unknown preset 'huge': use one of default, large, small"):
        load_preset("huge")
    with pytest.raises(OSError):
        load_preset(str(tmp_path / "none.toml"))
