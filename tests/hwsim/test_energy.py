"""hwsim.energy and hwsim.tables: table files, width scaling, hand-computed energy sums, FPGA areas."""

from __future__ import annotations

import json

import pytest

from hwsim.cli import resolve_table
from hwsim.config import ArrayConfig
from hwsim.energy import array_area, layer_energy, pe_area, pe_op_energy_pj
from hwsim.tables import fpga_table, load_table, load_table_file
from rtl.synth import SYNTH_KEYS, read_synth_json
from hwsim.layers import LayerShape
from hwsim.mapping import map_layer

TOY = """
name = "toy"
title = "round numbers"
source = "made up for the test"
area_unit = "um2"
[add]
ref_bits = 8
energy_pj = 1.0
area = 10.0
energy_width_exponent = 1.0
area_width_exponent = 1.0
[mult]
ref_bits = 8
energy_pj = 4.0
area = 100.0
energy_width_exponent = 2.0
area_width_exponent = 2.0
[register]
energy_pj_per_bit = 0.5
area_per_bit = 2.0
[sram]
energy_pj_per_bit = 3.0
[dram]
energy_pj_per_bit = 100.0
[adder_pe]
abs_in_adds = 1.0
"""


@pytest.fixture
def toy(tmp_path):
    p = tmp_path / "toy.toml"
    p.write_text(TOY)
    return load_table_file(p)


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


def test_pe_costs_by_hand(toy):
    # 8-bit operands, max_k 16: adder acc 12 bits, mult acc 20 bits
    a = ArrayConfig(rows=2, cols=3, bits=8, max_k=16)
    m = a.replace(pe="mult")
    # adder: 9-bit subtract + 9-bit abs + 12-bit accumulate, linear from 8 bits at 1 pJ
    assert pe_op_energy_pj(a, toy) == pytest.approx(9 / 8 + 9 / 8 + 12 / 8)
    # mult: 8x8 multiply + 20-bit accumulate
    assert pe_op_energy_pj(m, toy) == pytest.approx(4.0 + 20 / 8)
    # area: arithmetic + accumulator and shadow registers (2 * acc_bits bits)
    assert pe_area(a, toy) == pytest.approx(10 * (9 + 9 + 12) / 8 + 2 * 12 * 2.0)
    assert pe_area(m, toy) == pytest.approx(100.0 + 10 * 20 / 8 + 2 * 20 * 2.0)
    assert array_area(a, toy) == pytest.approx(6 * pe_area(a, toy) + (2 + 3) * 8 * 2.0)


def test_layer_energy_by_hand(toy):
    # O=2, P=3, K=4 on a 2x3 array: one tile, 4 steps
    cfg = ArrayConfig(rows=2, cols=3, bits=8, max_k=16)
    layer = LayerShape(name="l", kind="adder_conv", out_channels=2, out_pixels=3, k=4, in_elems=10)
    m = map_layer(layer, cfg, first=True, last=True)
    assert (m.weight_dram_bytes, m.act_dram_bytes, m.out_dram_bytes) == (8, 10, 6)
    e = layer_energy(m, toy)
    assert e.pe_pj == pytest.approx(24 * (9 / 8 + 9 / 8 + 12 / 8))
    # registers: 4 steps x (6 accumulators x 12 + 5 operands x 8) + shadow 6x12 + outputs 6x8
    assert e.reg_pj == pytest.approx(0.5 * (4 * (6 * 12 + 5 * 8) + 6 * 12 + 6 * 8))
    # SRAM: 4 beats x 5 x 8 bits read, 6 x 8 output bits written, 24 DRAM bytes written in
    assert e.buffer_pj == pytest.approx(3.0 * (4 * 5 * 8 + 6 * 8 + 24 * 8))
    assert e.dram_pj == pytest.approx(100.0 * 24 * 8)
    assert e.total_pj == pytest.approx(e.pe_pj + e.reg_pj + e.buffer_pj + e.dram_pj)


def test_padded_pes_are_charged(toy):
    # O=3 on 2 rows: 2 row tiles, the second half empty; the array still executes it
    cfg = ArrayConfig(rows=2, cols=1, bits=8, max_k=16)
    layer = LayerShape(name="l", kind="adder_linear", out_channels=3, out_pixels=1, k=5)
    m = map_layer(layer, cfg)
    assert m.pe_ops == 2 * 2 * 5
    assert layer_energy(m, toy).pe_pj == pytest.approx(20 * pe_op_energy_pj(cfg, toy))


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
    p.write_text(edit(TOY))
    with pytest.raises(ValueError, match=msg):
        load_table_file(p)


def test_unknown_table_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown energy table '7nm'"):
        load_table("7nm")
    for spec in ("fpga", "fpga:"):
        with pytest.raises(ValueError, match="table fpga needs synthesis JSON"):
            resolve_table(spec)
    with pytest.raises(OSError):
        load_table(str(tmp_path / "missing.toml"))
    with pytest.raises(OSError):
        resolve_table(f"fpga:{tmp_path / 'missing.json'}")


def _synth(pe, lc, rows=4, cols=4, bits=8):
    """A complete synth.json object (every key the writer writes)."""
    rec = dict.fromkeys(SYNTH_KEYS)
    rec.update({"target": "ice40-up5k", "design": f"acc_{pe}", "block": "array", "dsp": False,
                "config": {"rows": rows, "cols": cols, "pe": pe, "bits": bits},
                "tools": {"yosys": "0.23", "nextpnr-ice40": "0.4"}, "freq_target_mhz": 100.0,
                "resources": {"lc": lc, "lut": lc, "ff": 0, "carry": 0, "dsp": 0, "bram": 0},
                "fmax_mhz": 80.0, "fits": True, "cells": {}, "lc_method": "test", "seconds": {}})
    return rec


def test_fpga_table_from_synthesis_json(tmp_path):
    p = tmp_path / "synth.json"
    p.write_text(json.dumps([_synth("adder", 1600), _synth("mult", 4800, rows=2, cols=4)]))
    t = resolve_table(f"fpga:{p}")
    assert t.area_unit == "lc"
    assert t.pe_area_measured == {"adder": 100.0, "mult": 600.0}
    cfg = ArrayConfig(rows=8, cols=8, max_k=64)
    assert array_area(cfg, t) == 64 * 100.0
    assert array_area(cfg.replace(pe="mult"), t) == 64 * 600.0
    assert "synth.json" in t.source and "yosys" in t.source
    with pytest.raises(ValueError, match="measured at 8-bit operands, the array has bits=4"):
        array_area(cfg.replace(bits=4), t)


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
    t = resolve_table(f"fpga:{tmp_path / 'a.json'},{tmp_path / 'm.json'}")
    assert t.pe_area_measured == {"adder": 61.0, "mult": 298.0}  # a "pe" block is one PE
    t = resolve_table(f"fpga:{tmp_path / 'a.json'},{tmp_path / 'b.json'},{tmp_path / 'm.json'}")
    assert t.pe_area_measured == {"adder": 1076 / 16, "mult": 298.0}  # the array measurement wins
