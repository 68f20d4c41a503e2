"""verification.plan: the planned work, time and wave size that verify prints before it runs."""

from __future__ import annotations

import json

import pytest

from verification.plan import (SPEEDS_FILE, RunPlan, declared_bits, load_speeds, plan_lines, record_speed,
                               size_text, wave_bytes)

VERILOG = """module top(clk, a, y);
  reg \\$auto$verilog_backend.cc:2355:dump_module$1  = 0;
  input clk;
  wire clk;
  input [7:0] a;
  output signed [15:0] y;
  reg [3:0] \\top.state  = 4'h0;
  wire [0:2] \\$5 ;
  assign y = a;
endmodule
"""


def test_declared_bits_counts_every_declaration_once():
    assert declared_bits(VERILOG) == 1 + 1 + 1 + 8 + 16 + 4 + 3
    assert declared_bits("module m; assign x = wire_count; endmodule\n") == 0


def test_wave_bytes_is_bits_times_cycles_at_the_measured_rate():
    # 34 bits x 1000 cycles at 0.2 bytes per bit and cycle
    assert wave_bytes(VERILOG, 1000) == 6800


def test_speeds_are_kept_per_simulator_design_and_waves(tmp_path):
    assert load_speeds(tmp_path) == {}
    record_speed(tmp_path, "verilator", "eng", waves=False, cycles=5000, wall_s=2.0)
    record_speed(tmp_path, "verilator", "eng", waves=True, cycles=5000, wall_s=10.0)
    record_speed(tmp_path, "icarus", "eng", waves=False, cycles=None, wall_s=1.0)  # nothing measured: not kept
    assert load_speeds(tmp_path) == {"verilator eng": 2500.0, "verilator eng waves": 500.0}
    (tmp_path / SPEEDS_FILE).write_text("{not json")
    assert load_speeds(tmp_path) == {}  # a cache: unreadable is empty, never an error
    (tmp_path / SPEEDS_FILE).write_text(json.dumps({"icarus eng": "fast", "verilator eng": 10}))
    assert load_speeds(tmp_path) == {"verilator eng": 10.0}


def test_plan_lines_say_the_work_the_time_and_the_waves():
    plan = RunPlan(design="eng", sims=("icarus", "verilator"), waves=True, images=10, bp_images=2,
                   cycles_per_image=70_000)
    work, time_, waves = plan_lines(plan, {"verilator eng waves": 50_000.0}, verilog=VERILOG)
    assert work == ("plan: 10 images + 2 with back-pressure x 2 simulators (icarus, verilator), "
                    "hwsim 70,000 cycles per image, 840,000 per simulator")
    assert time_.startswith("estimated simulation time (from speeds measured on this machine; builds not counted): ")
    assert "icarus unknown (no earlier run of this engine on icarus with waves here" in time_
    assert "verilator about 17 s (50,000 cycles/s)" in time_
    assert waves == ("--waves: estimated size per simulator: icarus FST (compressed) at most 5.7 MB; "
                     "verilator VCD about 5.7 MB (840,000 cycles)")
    quiet = RunPlan(design="eng", sims=("verilator",), waves=False, images=1, bp_images=0, cycles_per_image=10)
    lines = plan_lines(quiet, {"verilator eng": 1e6})
    assert len(lines) == 2 and "verilator about under 1 s" not in lines[1] and "verilator under 1 s" in lines[1]
    with pytest.raises(ValueError, match="needs the design's Verilog"):
        plan_lines(plan, {})


@pytest.mark.parametrize("n,text", [(0, "0 B"), (999, "999 B"), (1500, "1.5 kB"), (644_000_000, "644.0 MB"),
                                    (3_200_000_000, "3.2 GB")])
def test_size_text(n, text):
    assert size_text(n) == text
