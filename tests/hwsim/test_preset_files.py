"""hwsim.preset_files: TOML presets into ArrayConfig."""

from __future__ import annotations

import pytest

from hwsim.config import ArrayConfig
from hwsim.preset_files import config_for_layers, list_presets, load_preset


def test_shipped_presets_are_valid_configs():
    assert {"default", "small", "large"} <= set(list_presets())
    for name in list_presets():
        cfg = config_for_layers(load_preset(name), [576])
        assert isinstance(cfg, ArrayConfig)
        assert cfg.max_k == 576 and cfg.stream_beats_per_cycle == 1.0
    d = config_for_layers(load_preset("default"), [27, 576])
    assert (d.rows, d.cols, d.bits, d.acc_bits) == (8, 8, 8, 18)


def test_user_preset_and_errors(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('description = "x"\nrows = 2\ncols = 3\nmax_k = 64\n')
    assert config_for_layers(load_preset(str(p)), [9]).max_k == 64
    p.write_text("rows = 2\ncols = 3\ndepth = 4\n")
    with pytest.raises(ValueError, match="unknown array config key"):
        load_preset(str(p))
    p.write_text("rows = 0\ncols = 3\n")
    with pytest.raises(ValueError, match="rows must be a positive integer, not 0"):
        config_for_layers(load_preset(str(p)), [9])
    p.write_text("rows = 2\ncols = 3\nacc_bits = 12\n")
    with pytest.raises(ValueError, match="acc_bits=12 is narrower than the 18 bits a reduction of max_k=576"):
        config_for_layers(load_preset(str(p)), [576])
    p.write_text("rows = [")
    with pytest.raises(ValueError, match="not a valid TOML preset"):
        load_preset(str(p))
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        load_preset("huge")


def test_empty_and_partial_presets_name_the_missing_keys(tmp_path):
    """Issue 17 defect 6: ``--preset empty.toml`` was a TypeError in ArrayConfig."""
    p = tmp_path / "empty.toml"
    p.write_text("")
    with pytest.raises(ValueError, match=f"^{p}: the preset needs rows and cols \\(ArrayConfig has no default for them\\)$"):
        load_preset(str(p))
    p.write_text("rows = 4\n")
    with pytest.raises(ValueError, match="the preset needs cols "):
        load_preset(str(p))
    p.write_bytes(b"rows = 4\ncols = \xff\n")
    with pytest.raises(ValueError, match=f"^{p}: not a UTF-8 TOML file$"):
        load_preset(str(p))
    p.write_text("rows = 1000\ncols = 4\n")
    with pytest.raises(ValueError, match="rows must be at most 256, not 1000"):
        config_for_layers(load_preset(str(p)), [9])
