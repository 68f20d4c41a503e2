"""quant's import graph: one direction (no circles), and the torch-free modules stay torch-free.

The graph counts every import statement of a module, lazy ones inside
functions and ``if TYPE_CHECKING:`` ones too: a circle through either is
still two modules that each need the other.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Modules that import no torch (DESIGN §1: the ground floor and the integer model, plus the
#: quantizer's settings and the numpy-only helpers hwsim and rtl use).
TORCH_FREE = ["quant", "quant.base.intops", "quant.base.files", "quant.intmodel.artifact", "quant.intmodel.golden", "quant.net.native",
              "quant.intmodel.native", "quant.quantizer.groups", "quant.quantizer.rounding", "quant.training.datasets", "quant.quantizer.config",
              "quant.base.opcount", "quant.quantizer.cli"]


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def import_graph(package: str = "quant") -> dict[str, set[str]]:
    """``{module: modules of package it imports}`` from the source (``from quant import golden`` names quant.intmodel.golden)."""
    paths = {_module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}
    graph = {}
    for mod, path in paths.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        graph[mod] = {m for m in found if m in paths and m != mod}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle ``[a, b, ..., a]`` of ``graph``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(mod):
        state[mod] = 1
        path.append(mod)
        for dep in sorted(graph[mod]):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[mod] = 2
        return None

    for mod in sorted(graph):
        if mod not in state and (found := visit(mod)):
            return found
    return None


def test_quant_imports_in_one_direction():
    graph = {m: deps - {"quant"} for m, deps in import_graph().items()}  # the package docstring imports nothing
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)
    assert "quant.quantizer.quantize" not in graph["quant.quantizer.convert"]  # the config sits below both (issue 22)
    assert graph["quant.quantizer.config"] <= {"quant.base.intops", "quant.quantizer.rounding"}


def test_find_cycle_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("module", TORCH_FREE)
def test_torch_free_modules(module):
    code = f"import sys, {module}; bad = [m for m in sys.modules if m.split('.')[0] == 'torch']; assert not bad, bad[:3]"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
