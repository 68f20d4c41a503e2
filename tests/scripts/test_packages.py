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


@pytest.mark.parametrize("module", ["rtl", "hwsim.config", "hwsim.compiler", "hwsim.reference", "hwsim.estimate",
                                    "quant", "hwsim"])
def test_light_modules_do_not_import_torch(module):
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# --- DESIGN §1: what each package may import ------------------------------------------

import ast  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OWN = set(PACKAGES)

#: Own packages each package may import (DESIGN §1's table); ``rtl`` imports
#: no torch (checked below, also through the hwsim modules it uses).
MAY_IMPORT = {
    "quant": {"quant"},
    "hwsim": {"hwsim", "quant"},
    "rtl": {"rtl", "hwsim", "quant"},
    "verification": {"verification", "rtl", "hwsim", "quant"},
    "scripts": OWN,
}
#: Arrows across the table that are allowed anyway: none (hwsim holds the engine's architecture,
#: the synth.json format and the prog beat's width; its command line imports no rtl).
EDGE_EXCEPTIONS: set = set()


def _imports(path: Path) -> set[str]:
    """Every module named by an import statement anywhere in ``path`` (lazy imports too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _source_modules():
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            yield ".".join(parts), path


def test_no_package_imports_upwards():
    bad = []
    for mod, path in _source_modules():
        pkg = mod.split(".")[0]
        for imp in _imports(path):
            top = imp.split(".")[0]
            if top in OWN and top not in MAY_IMPORT[pkg] and (mod, imp) not in EDGE_EXCEPTIONS:
                bad.append(f"{mod} imports {imp}")
            if pkg == "rtl" and top == "torch":
                bad.append(f"{mod} imports torch")
    assert not bad, "\n".join(bad)


def test_rtl_pulls_in_no_torch_and_only_torch_free_quant():
    """Importing every rtl module loads no torch (so the quant and hwsim modules it uses are torch-free)."""
    mods = [m for m, _ in _source_modules() if m.split(".")[0] == "rtl"]
    code = (f"import sys, importlib; [importlib.import_module(m) for m in {mods!r}]; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'verification', 'scripts')]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
