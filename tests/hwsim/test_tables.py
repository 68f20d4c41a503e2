"""hwsim.tables: table files, width scaling, SRAM energy by size, the FPGA table from synthesis JSON."""

from __future__ import annotations

import json

import pytest

from hwsim.synthfile import SYNTH_KEYS, read_synth_json
from hwsim.tables import fpga_table, load_table, load_table_file
from tests.hwsim.models import TOY_TABLE, TOY_TABLE_SCALED


def _synth(pe, lc, rows=4, cols=4, bits=8):
    """A complete synth.json object (every key the writer writes)."""
    rec = dict.fromkeys(SYNTH_KEYS)
    rec.update({"target": "ice40-up5k", "design": f"acc_{pe}", "block": "array", "dsp": False,
                "config": {"rows": rows, "cols": cols, "pe": pe, "bits": bits},
                "tools": {"yosys": "0.23", "nextpnr-ice40": "0.4"}, "freq_target_mhz": 100.0,
                "resources": {"lc": lc, "lut": lc, "ff": 0, "carry": 0, "dsp": 0, "bram": 0},
                "fmax_mhz": 80.0, "fits": True, "cells": {}, "lc_method": "test", "seconds": {}})
    return rec



def test_width_scaling_from_the_file(toy):
    assert toy.add.energy(16) == 2.0  # linear
    assert toy.mult.energy(16) == 16.0  # quadratic
    assert toy.mult.area_of(4) == 25.0


def test_builtin_tables_reproduce_their_sources():
    t45 = load_table("45nm")
    assert t45.add.energy(32) == pytest.approx(0.1)
    assert t45.add.energy(16) == pytest.approx(0.05)
    assert t45.add.energy(8) == pytest.approx(0.03, abs=0.006)  # measured 0.03, linear model 0.025
    assert t45.mult.energy(32) == pytest.approx(3.1)
    assert t45.mult.energy(8) == pytest.approx(0.2, abs=0.01)  # measured 0.2, quadratic 0.194
    assert t45.sram_pj_per_bit * 64 == pytest.approx(10.0)
    assert 1300 <= t45.dram_pj_per_bit * 64 <= 2600
    assert "Horowitz" in t45.source
    t40 = load_table("40nm")
    assert (t40.add.energy(32), t40.add.area_of(32)) == (0.21, 278.0)
    assert (t40.mult.energy(32), t40.mult.area_of(32)) == (12.68, 6350.0)
    assert (t40.reg_pj_per_bit, t40.reg_area_per_bit) == (0.009, 5.98)
    assert "Aladdin" in t40.source


@pytest.mark.parametrize(
    "edit, msg",
    [
        (lambda t: t.replace('name = "toy"\n', ""), "missing name"),
        (lambda t: t.replace("energy_pj = 4.0", "energy_pj = -4.0"), r"\[mult\] unit: energy_pj must be positive"),
        (lambda t: t.replace("[sram]\nenergy_pj_per_bit = 3.0", "[sram]"), r"missing energy_pj_per_bit in \[sram\]"),
        (lambda t: t.replace('area_unit = "um2"', 'area_unit = "mm2"'), "area_unit must be one of um2, lc"),
        (lambda t: t + "extra = 1\n", "has unknown key"),
        (lambda t: t.replace("ref_bits = 8\nenergy_pj = 1.0", "energy_pj = 1.0"), r"\[add\] lacks ref_bits"),
        (lambda t: t + "[", "not a valid TOML energy table"),
    ],
)
def test_bad_table_files_are_refused(tmp_path, edit, msg):
    p = tmp_path / "bad.toml"
    p.write_text(edit(TOY_TABLE))
    with pytest.raises(ValueError, match=msg):
        load_table_file(p)


def test_unknown_table_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown energy table '7nm'"):
        load_table("7nm")
    for spec in ("fpga", "fpga:"):
        with pytest.raises(ValueError, match="table fpga needs synthesis JSON"):
            load_table(spec)
    with pytest.raises(OSError):
        load_table(str(tmp_path / "missing.toml"))
    with pytest.raises(OSError):
        load_table(f"fpga:{tmp_path / 'missing.json'}")


def test_fpga_table_from_synthesis_json(tmp_path):
    p = tmp_path / "synth.json"
    p.write_text(json.dumps([_synth("adder", 1600), _synth("mult", 4800, rows=2, cols=4)]))
    t = load_table(f"fpga:{p}")
    assert t.area_unit == "lc"
    assert t.pe_area_measured == {"adder": 100.0, "mult": 600.0}
    assert t.measured_bits == 8
    assert "synth.json" in t.source and "yosys" in t.source


@pytest.mark.parametrize(
    "content, msg",
    [
        ([_synth("adder", 1600)], "no mult variant; run the synthesis with --compare"),
        ([dict(_synth("adder", 1600), config=None)], "lacks config.pe/rows/cols or resources.lc"),
        ([_synth("adder", 1600), _synth("mult", 10, bits=4)], "different bit widths"),
        ({"resources": {}}, r"not an adderhw synth JSON \(missing target, design"),
        ([dict(_synth("adder", 1), extra=1)], "entry 0: not an adderhw synth JSON \\(unknown extra\\)"),
        ([dict(_synth("adder", 1), resources={"lc": 1})], "resources must have exactly lc, lut, ff"),
        ([3], "entry 0: not a synthesis result object"),
    ],
)
def test_bad_synthesis_json_is_refused(tmp_path, content, msg):
    p = tmp_path / "synth.json"
    p.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=msg):
        fpga_table(read_synth_json(p))
    p.write_text("{not json")
    with pytest.raises(ValueError, match="not a synthesis JSON file"):
        read_synth_json(p)


def test_fpga_table_from_separate_files_prefers_array_blocks(tmp_path):
    pe_only = dict(_synth("adder", 61, rows=4, cols=4), block="pe")
    arr = dict(_synth("adder", 1076, rows=4, cols=4), block="array")
    mult_pe = dict(_synth("mult", 298, rows=4, cols=4), block="pe")
    (tmp_path / "a.json").write_text(json.dumps(pe_only))
    (tmp_path / "b.json").write_text(json.dumps([arr]))
    (tmp_path / "m.json").write_text(json.dumps(mult_pe))
    t = load_table(f"fpga:{tmp_path / 'a.json'},{tmp_path / 'm.json'}")
    assert t.pe_area_measured == {"adder": 61.0, "mult": 298.0}  # a "pe" block is one PE
    t = load_table(f"fpga:{tmp_path / 'a.json'},{tmp_path / 'b.json'},{tmp_path / 'm.json'}")
    assert t.pe_area_measured == {"adder": 1076 / 16, "mult": 298.0}  # the array measurement wins


def test_sram_energy_by_size_from_the_file(toy_scaled):
    t45 = load_table("45nm")
    assert t45.sram_pj_per_bit_of(8192) * 64 == pytest.approx(10.0)  # the Horowitz anchor
    assert t45.sram_pj_per_bit_of(32768) * 64 == pytest.approx(20.0)  # sqrt(4) = 2
    assert "sqrt" in t45.sram_size_source and "assumption" in t45.sram_size_source
    assert load_table("40nm").sram_pj_per_bit_of(8192) == t45.sram_pj_per_bit_of(8192)
    sizes = [64, 512, 4096, 8192, 65536]
    per_bit = [t45.sram_pj_per_bit_of(s) for s in sizes]
    assert per_bit == sorted(per_bit) and len(set(per_bit)) == len(per_bit)
    assert toy_scaled.sram_pj_per_bit_of(32) == pytest.approx(6.0)


def test_sram_scaling_keys_go_together(tmp_path, toy):
    p = tmp_path / "half.toml"
    p.write_text(TOY_TABLE_SCALED.replace("size_exponent = 0.5\n", ""))
    with pytest.raises(ValueError, match=r"SRAM size scaling needs ref_bytes, size_exponent and size_source"):
        load_table_file(p)
    with pytest.raises(ValueError, match="energy table 'toy' has no SRAM size scaling"):
        toy.sram_pj_per_bit_of(8192)
