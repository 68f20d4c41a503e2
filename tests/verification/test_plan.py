"""verification.plan: the planned work and time that verify prints before it runs."""

from __future__ import annotations

import json

from verification.plan import SPEEDS_FILE, RunPlan, load_speeds, plan_lines, record_speed


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


def test_plan_lines_say_the_work_and_the_time():
    plan = RunPlan(design="eng", sims=("icarus", "verilator"), waves=True, images=10, bp_images=2,
                   cycles_per_image=70_000)
    work, time_ = plan_lines(plan, {"verilator eng waves": 50_000.0})
    assert work == ("plan: 10 images + 2 with back-pressure x 2 simulators (icarus, verilator), "
                    "hwsim 70,000 cycles per image, 840,000 per simulator")
    assert time_.startswith("estimated simulation time (from speeds measured on this machine; builds not counted): ")
    assert "icarus unknown (no earlier run of this engine on icarus with waves here" in time_
    assert "verilator about 17 s (50,000 cycles/s)" in time_
    quiet = RunPlan(design="eng", sims=("verilator",), waves=False, images=1, bp_images=0, cycles_per_image=10)
    lines = plan_lines(quiet, {"verilator eng": 1e6})
    assert len(lines) == 2 and "verilator about under 1 s" not in lines[1] and "verilator under 1 s" in lines[1]

