"""DESIGN §1 as tests: every module imports, nothing imports upwards, and the torch boundary is a folder.

The rules, checked on every import statement of every module (lazy imports too):

* the packages form a stack — ``quant`` < ``hwsim`` < ``rtl`` < ``verification`` < ``scripts`` —
  and a package imports only itself and the packages below it, with no exceptions;
* quant is split into rooms, in the order :data:`QUANT_ROOMS`: a room imports only itself and the
  rooms before it; the first two (the ground floor and the integer model) import no torch;
* ``hwsim`` and ``rtl`` import from quant only those torch-free rooms, so importing them never
  loads torch;
* Ray (the optional ``cluster`` extra) has one home, :mod:`rtl.cluster`, which imports it only inside
  functions: every other module reaches Ray through it, and importing any module loads no Ray.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The packages, lowest first: each may import itself and those before it (DESIGN §1's table).
PACKAGES = ["quant", "hwsim", "rtl", "verification", "scripts"]
#: quant's rooms, lowest first: each may import itself and the rooms before it.
QUANT_ROOMS = ["base", "intmodel", "net", "training", "quantizer"]
#: The rooms without torch: all that hwsim and rtl may import of quant.
TORCH_FREE_ROOMS = ("quant.base", "quant.intmodel")


def _modules(package: str) -> list[str]:
    pkg = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        if ".tb" in info.name:  # cocotb test modules run inside a simulator
            continue
        names.append(info.name)
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_imports(package):
    for name in _modules(package):
        importlib.import_module(name)


def _imports(path: Path) -> set[str]:
    """Every module named by an import statement anywhere in ``path`` (lazy imports too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update([node.module] if node.module != "quant" else [f"quant.{a.name}" for a in node.names])
    return found


def _source_modules():
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            yield ".".join(parts), path


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "quant" and len(parts) > 1 and parts[1] in QUANT_ROOMS else None


def _in(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_no_package_imports_upwards():
    bad = []
    for mod, path in _source_modules():
        level = PACKAGES.index(mod.split(".")[0])
        for imp in _imports(path):
            top = imp.split(".")[0]
            if top in PACKAGES and PACKAGES.index(top) > level:
                bad.append(f"{mod} imports {imp}")
    assert not bad, "\n".join(bad)


def test_quant_rooms_import_downwards_only():
    bad = []
    for mod, path in _source_modules():
        room = _room(mod)
        if mod.split(".")[0] != "quant" or mod in ("quant", "quant.cli"):
            continue
        assert room is not None, f"{mod} is in no room of quant ({', '.join(QUANT_ROOMS)})"
        for imp in _imports(path):
            other = _room(imp)
            if imp.split(".")[0] == "quant" and other is None and imp != "quant":
                bad.append(f"{mod} imports {imp}, which is in no room")
            elif other is not None and QUANT_ROOMS.index(other) > QUANT_ROOMS.index(room):
                bad.append(f"{mod} ({room}) imports {imp} ({other}): upwards")
    assert not bad, "\n".join(bad)


def test_torch_free_rooms_and_what_hwsim_and_rtl_import():
    bad = []
    for mod, path in _source_modules():
        pkg = mod.split(".")[0]
        torch_free = _in(mod, TORCH_FREE_ROOMS) or pkg in ("hwsim", "rtl")
        if not torch_free:
            continue
        for imp in _imports(path):
            if imp.split(".")[0] == "torch":
                bad.append(f"{mod} imports torch")
            if imp.split(".")[0] == "quant" and imp != "quant" and not _in(imp, TORCH_FREE_ROOMS):
                bad.append(f"{mod} imports {imp}, outside quant's torch-free rooms {TORCH_FREE_ROOMS}")
    assert not bad, "\n".join(bad)


#: The one module that may import ray (lazily, inside its functions).
RAY_HOME = "rtl.cluster"


def test_ray_only_in_its_home_and_only_lazily():
    bad = []
    for mod, path in _source_modules():
        if mod != RAY_HOME:
            bad += [f"{mod} imports {imp}" for imp in _imports(path) if imp.split(".")[0] == "ray"]
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level: no ray
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                bad += [f"{mod} imports {n} at module level" for n in names if n.split(".")[0] == "ray"]
    assert not bad, "\n".join(bad)


def test_importing_hwsim_and_rtl_loads_no_torch():
    """The folder rule, observed: importing every hwsim and rtl module leaves torch unloaded."""
    mods = [m for m, _ in _source_modules() if m.split(".")[0] in ("hwsim", "rtl") or _in(m, TORCH_FREE_ROOMS)]
    code = (f"import sys, importlib; [importlib.import_module(m) for m in {mods!r}]; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ray', 'verification', 'scripts')); "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
