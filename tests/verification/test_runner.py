"""verification.runner: build cache keyed by the Verilog, results read from the xUnit file."""

from __future__ import annotations

import json
import shutil

import pytest

from rtl.array import BlockConfig
from rtl.study import generate_block
from verification.runner import (JOB_ENV, SimulatorError, VerilogSource, append_record, build, build_dir_for,
                                 load_job, run_tests)

PE = BlockConfig(pe="adder", bits=4, max_k=8)


@pytest.fixture
def pe_design(tmp_path):
    d = generate_block(PE, tmp_path / "src", block="pe")
    return VerilogSource(d.verilog, d.name)


def test_cache_key_follows_the_verilog(pe_design, tmp_path):
    root = tmp_path / "b"
    a = build_dir_for(pe_design, "verilator", build_root=root)
    assert a == build_dir_for(pe_design, "verilator", build_root=root)
    assert a != build_dir_for(pe_design, "icarus", build_root=root)
    assert a != build_dir_for(pe_design, "verilator", waves=True, build_root=root)
    changed = tmp_path / "changed.v"
    shutil.copyfile(pe_design.verilog, changed)
    with open(changed, "a") as f:
        f.write("// edited\n")
    assert a != build_dir_for(VerilogSource(changed, pe_design.toplevel), "verilator", build_root=root)


@pytest.mark.sim
def test_icarus_build_is_cached(pe_design, tmp_path):
    root = tmp_path / "b"
    bdir = build(pe_design, "icarus", build_root=root)
    assert bdir == build_dir_for(pe_design, "icarus", build_root=root)
    marker = bdir / ".built"
    stamp = marker.stat().st_mtime_ns
    vvp = (bdir / "sim.vvp").stat().st_mtime_ns
    assert build(pe_design, "icarus", build_root=root) == bdir
    assert marker.stat().st_mtime_ns == stamp and (bdir / "sim.vvp").stat().st_mtime_ns == vvp


def test_errors(pe_design, tmp_path):
    with pytest.raises(ValueError, match="simulator must be one of icarus, verilator, not 'vcs'"):
        build(pe_design, "vcs", build_root=tmp_path)
    with pytest.raises(ValueError, match="toplevel must be a Verilog identifier"):
        VerilogSource(pe_design.verilog, "not a name")
    with pytest.raises(FileNotFoundError, match="Verilog file not found"):
        build(VerilogSource(tmp_path / "none.v", "none"), "icarus", build_root=tmp_path)
    broken = tmp_path / "broken.v"
    broken.write_text("module broken(input a); assign b = ; endmodule\n")
    with pytest.raises(SimulatorError, match="icarus build of .*broken.v failed"):
        build(VerilogSource(broken, "broken"), "icarus", build_root=tmp_path)
    assert not (build_dir_for(VerilogSource(broken, "broken"), "icarus", build_root=tmp_path) / ".built").exists()


@pytest.mark.sim
def test_missing_cocotb_module_is_an_error(pe_design, tmp_path):
    """A simulation that ends without a results file raises instead of passing silently."""
    with pytest.raises(SimulatorError, match="ended without results"):
        run_tests(pe_design, "icarus", module="verification.tb.no_such_module", job={},
                  test_dir=tmp_path / "run", build_root=tmp_path / "b")


def test_path_component_never_leaves_the_folder():
    from verification.runner import path_component

    assert path_component("lenet5_bn-icarus") == "lenet5_bn-icarus"  # plain names are kept
    for bad in ("../../../../x", "/etc/passwd", "..", ".", "", "a/b", "a\\b", ".hidden", "x\0y", "é"):
        safe = path_component(bad)
        assert safe and "/" not in safe and "\\" not in safe and "\0" not in safe, bad
        assert not safe.startswith("."), bad
    assert path_component("a/b") != path_component("a_b")  # sanitised names stay distinct


def test_job_and_records_seen_from_the_simulator_side(tmp_path, monkeypatch):
    """What a cocotb module sees: the job :data:`JOB_ENV` names; its records appended one JSON line per call."""
    monkeypatch.delenv(JOB_ENV, raising=False)
    with pytest.raises(RuntimeError, match=f"{JOB_ENV} is not set"):
        load_job()
    records = tmp_path / "records.jsonl"
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"records": str(records), "seed": 3}))
    monkeypatch.setenv(JOB_ENV, str(job))
    assert load_job() == {"records": str(records), "seed": 3}
    append_record("a", cycles=1)
    append_record("b", cycles=[2, 3])
    assert [json.loads(line) for line in records.read_text().splitlines()] == [
        {"name": "a", "cycles": 1}, {"name": "b", "cycles": [2, 3]}]


def test_progress_reaches_the_host_while_the_simulator_runs(tmp_path):
    """report_progress (cocotb side) appends a line; the host's tail hands each whole line over while the
    block runs (a half-written one waits), the rest when it ends, and removes the file."""
    import threading

    from verification.runner import _tailing, report_progress

    path = tmp_path / "progress.jsonl"
    seen, first = [], threading.Event()

    def got(event):
        seen.append(event)
        first.set()

    report_progress({}, test="images", image=0)  # the host asked for none: nothing written
    assert not path.exists()
    with _tailing(path, got, interval=0.01):
        report_progress({"progress": str(path)}, test="images", image=0)
        assert first.wait(5)  # seen before the block ends
        with open(path, "a") as f:
            f.write('{"test": "images", "ima')  # half a line: not yet
        assert seen == [{"test": "images", "image": 0}]
        with open(path, "a") as f:
            f.write('ge": 1}\n')
    assert seen == [{"test": "images", "image": 0}, {"test": "images", "image": 1}]
    assert not path.exists()
