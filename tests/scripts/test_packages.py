"""Every package and module imports; the RTL side never pulls in torch."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

PACKAGES = ["quant", "hwsim", "rtl", "verification", "scripts"]


def _modules(package: str) -> list[str]:
    pkg = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        # cocotb test modules run inside a simulator, not in a plain interpreter
        if ".tb" in info.name:
            continue
        names.append(info.name)
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_imports(package):
    for name in _modules(package):
        importlib.import_module(name)


@pytest.mark.parametrize("module", ["rtl", "hwsim.config", "hwsim.schedule", "quant", "hwsim"])
def test_light_modules_do_not_import_torch(module):
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
