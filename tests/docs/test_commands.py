"""Every command in the README and the docs runs as written, or is listed with the test that covers it.

:data:`COVERAGE` names each shell command of a ``sh`` block in README.md and docs/**/*.md: either a
test of this module runs it (those under a minute run as written, from a scratch folder in which
``checkpoints/`` and ``docs/`` are links to the tree and ``build/`` is new; the longer ones are
marked ``slow``/``sim``), or another test covers it, or it needs what the machine lacks (the reason
says what). The README's Python block runs too. A command that is not in the table, or an entry whose
command left the docs, fails :func:`test_every_documented_command_is_accounted_for`, and every
``adderhw`` command must parse.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from scripts.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
ADDERHW = ".venv/bin/adderhw "


@dataclass(frozen=True)
class RunHere:
    """Run by the named test of this module."""

    test: str


@dataclass(frozen=True)
class CoveredBy:
    """Run (in substance) by another test file."""

    path: str
    how: str


@dataclass(frozen=True)
class NotRun:
    """Needs something a test machine lacks."""

    reason: str


Q, T = "test_quick_start", "test_tutorial_own_checkpoint"
A, R = "test_tutorial_own_architecture", "test_tutorial_reference_checkpoint"
FLOW = CoveredBy("tests/scripts/test_flow.py", "adderhw flow on the shipped LeNet-5-BN, every step, ECP5 synthesis")
SYNTH = CoveredBy("tests/scripts/test_flow.py", "synth --compare --lut-only --target ecp5-25k of a generated engine")
COVERAGE = {
    # make targets and the suite itself
    "make demo": FLOW,
    "make demo MODEL=resnet20": NotRun("the ResNet-20 flow takes about 25 minutes; its steps are the LeNet flow's"),
    "make test": CoveredBy(".ci/run", "CI runs make test"),
    "make docs": CoveredBy("tests/docs/test_site.py", "mkdocs build --strict, the command make docs runs"),
    '.venv/bin/python -m pytest -q -m "not slow and not sim and not synth"': NotRun("runs the suite itself"),
    ".venv/bin/python -m pytest -q tests/hwsim": NotRun("runs the suite itself"),
    "git clone <this repository> adderhw && cd adderhw": NotRun("needs the repository's address"),
    ".venv/bin/python -m scripts.results collect --demo build/demo -o docs/results/demo.json":
        CoveredBy("tests/scripts/test_results.py", "collect --demo on a flow folder"),
    ".venv/bin/python -m scripts.results readme": CoveredBy("tests/scripts/test_results.py", "readme and readme --check"),
    '.venv/bin/python -m scripts.results collect --synth build/demo/synth/engine/compare.json --synth-command '
    '"adderhw synth ... --compare --lut-only" --update -o docs/results/demo.json':
        CoveredBy("tests/scripts/test_results.py", "collect --synth FILE --update"),
    ".venv/bin/python -m scripts.results collect --update --bench build/bench/*.json":
        CoveredBy("tests/scripts/test_results.py", "collect --update --bench FILE FILE, each to its own results file"),
    ".venv/bin/adderhw doctor": CoveredBy("tests/scripts/test_cli.py", "adderhw doctor"),
    # README: the scale benchmark
    ".venv/bin/python scripts/bench_synth.py --scale --sizes 4x4,8x8 --lut-only":
        CoveredBy("tests/scripts/test_bench_synth.py", "the part choice, the table row from real (generic) synthesis "
                  "and the plot; the ECP5 runs themselves take about an hour on 2 cores"),
    # README and docs/concepts/explore.md: explore
    ".venv/bin/adderhw explore checkpoints/resnet20_adder_fmnist.pt --target ecp5-85k --space rows=2,4,8,16,cols=2,4,8,16 "
    "-o build/explore": CoveredBy("tests/scripts/test_explore.py", "explore of the shipped LeNet-5-BN checkpoint: "
                                  "outputs, generate command, counts equal to estimate's"),
    ".venv/bin/adderhw explore --calibrate ice40-hx8k --jobs 2":
        CoveredBy("tests/rtl/test_sweep.py", "cached engine synthesis serial and on a local 2-CPU Ray (the "
                  "12-engine calibration itself takes about 10 minutes)"),
    # README quick start
    ".venv/bin/adderhw quantize checkpoints/lenet5_bn_adder_fmnist.pt --bits 8 -o build/q8": RunHere(Q),
    ".venv/bin/adderhw estimate build/q8 --rows 4 --cols 4 -o build/estimate": RunHere(Q),
    ".venv/bin/adderhw generate --model build/q8 --rows 4 --cols 4 -o build/engine": RunHere(Q),
    ".venv/bin/adderhw synth build/engine/eng_adder_r4c4_b8_*.v --compare --lut-only --target ecp5-25k "
    "-o build/synth": SYNTH,
    ".venv/bin/adderhw verify build/q8 --sim verilator --images 0 -o build/verify": RunHere("test_quick_start_verify"),
    # tutorial: your own checkpoint
    ".venv/bin/adderhw train --model lenet5-bn --kind adder --dataset fashion-mnist --epochs 30 --crop-pad 0 "
    "--out build/my_adder.pt": CoveredBy("tests/quant/test_train.py", "train on Fashion-MNIST, a few steps "
                                         "(30 epochs take about 9 minutes); the test below starts from the "
                                         "shipped checkpoint, trained by this command"),
    ".venv/bin/adderhw eval build/my_adder.pt": RunHere(T),
    ".venv/bin/adderhw quantize build/my_adder.pt --bits 8 -o build/my_int8": RunHere(T),
    ".venv/bin/adderhw quantize build/my_adder.pt --sweep 8,6,5,4 -o build/my_sweep": RunHere(T),
    ".venv/bin/adderhw predict build/my_int8 build/x.npy -o build/logits.npy": RunHere(T),
    ".venv/bin/adderhw estimate build/my_int8 --rows 4 --cols 4 -o build/my_estimate": RunHere(T),
    ".venv/bin/adderhw estimate build/my_int8 --sweep rows=4,8,16 cols=4,8,16 -o build/my_estimate_sweep": RunHere(T),
    ".venv/bin/adderhw generate --model build/my_int8 --rows 4 --cols 4 -o build/my_engine": RunHere(T),
    ".venv/bin/adderhw synth build/my_engine/eng_adder_r4c4_b8_*.v --compare --lut-only --target ecp5-25k "
    "-o build/my_synth": SYNTH,
    ".venv/bin/adderhw verify build/my_int8 --sim verilator --images 0,1 -o build/my_verify": RunHere(T + "_verify"),
    ".venv/bin/adderhw flow build/my_adder.pt -o build/my_flow": FLOW,
    # tutorial: your own architecture
    ".venv/bin/python docs/tutorials/vgg_adder.py build/vgg": RunHere(A),
    ".venv/bin/adderhw estimate build/vgg/int8 --rows 4 --cols 4 -o build/vgg/estimate": RunHere(A),
    ".venv/bin/adderhw generate --model build/vgg/int8 --rows 4 --cols 4 -o build/vgg/engine": RunHere(A),
    ".venv/bin/adderhw verify build/vgg/int8 --sim verilator --images 0 -o build/vgg/verify": RunHere(A),
    # tutorial: a reference checkpoint (the shipped ResNet-20's bare state dict stands in for the reference one)
    ".venv/bin/adderhw eval resnet20_ref.pth --model resnet20 --dataset cifar10 --data-root cifar-10-batches-py":
        NotRun("needs the CIFAR-10 files, which are not shipped"),
    ".venv/bin/adderhw quantize resnet20_ref.pth --model resnet20 --dataset cifar10 --data-root cifar-10-batches-py "
    "--bits 8 -o build/r20_int8": NotRun("needs the CIFAR-10 files, which are not shipped"),
    ".venv/bin/adderhw quantize resnet20_ref.pth --model resnet20 --dataset cifar10 --calib-data calib.npy --bits 8 "
    "-o build/r20_int8": RunHere(R),
    ".venv/bin/adderhw estimate build/r20_int8 --rows 8 --cols 8 -o build/r20_estimate": RunHere(R),
    ".venv/bin/adderhw generate --model build/r20_int8 --rows 8 --cols 8 -o build/r20_engine": RunHere(R),
    ".venv/bin/adderhw estimate resnet20_ref.pth --model resnet20 --dataset cifar10 -o build/r20_shapes": RunHere(R),
}


def documented_commands() -> dict[str, list[str]]:
    """Each command line of a ``sh`` block in README.md and docs/**/*.md, with the files it is in."""
    found: dict[str, list[str]] = {}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for block in re.findall(r"```sh\n(.*?)```", path.read_text(), re.S):
            for line in block.splitlines():
                cmd = re.split(r"\s{2,}#", line)[0].strip()
                if cmd and not cmd.startswith("#"):
                    found.setdefault(cmd, []).append(str(path.relative_to(ROOT)))
    return found


def test_every_documented_command_is_accounted_for():
    documented = documented_commands()
    assert sorted(set(documented) - set(COVERAGE)) == [], "documented commands missing from COVERAGE"
    assert sorted(set(COVERAGE) - set(documented)) == [], "COVERAGE entries no longer in the docs"
    for cmd, how in COVERAGE.items():
        if isinstance(how, CoveredBy):  # test files move with their modules: the name is what must stay
            found = (ROOT / how.path).is_file() or len(list((ROOT / "tests").rglob(Path(how.path).name))) == 1
            assert found, (cmd, how.path)
        elif isinstance(how, RunHere):
            assert callable(globals().get(how.test)), (cmd, how.test)


@pytest.mark.parametrize("cmd", sorted(c for c in COVERAGE if c.startswith(ADDERHW)))
def test_every_adderhw_command_parses(cmd):
    try:
        args = build_parser().parse_args(shlex.split(cmd)[1:])
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"{cmd!r} does not parse (exit {exc.code})")
    assert callable(args.func)


# ------------------------------------------------------------------------------------------ running them

@pytest.fixture
def scratch(tmp_path, monkeypatch) -> Path:
    """A folder that looks like the repository to a command: checkpoints/ and docs/ linked, build/ empty."""
    for name in ("checkpoints", "docs"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_documented(cmd: str) -> None:
    """Run one command of COVERAGE exactly as written (in the current folder)."""
    assert cmd in COVERAGE and isinstance(COVERAGE[cmd], RunHere), cmd
    argv = shlex.split(cmd)
    if cmd.startswith(ADDERHW):
        assert main(argv[1:]) == 0, cmd
        return
    assert argv[0] == ".venv/bin/python"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    proc = subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def commands_of(test: str) -> list[str]:
    return [c for c, how in COVERAGE.items() if how == RunHere(test)]


@pytest.mark.slow
def test_quick_start(scratch):
    for cmd in commands_of("test_quick_start"):
        run_documented(cmd)
    assert (scratch / "build/q8/manifest.json").is_file()
    assert json.loads((scratch / "build/estimate/summary.json").read_text())["designs"]["adder"]["total_cycles"] > 0
    assert len(list((scratch / "build/engine").glob("eng_adder_r4c4_b8_*.v"))) == 1


@pytest.mark.slow
@pytest.mark.sim
def test_quick_start_verify(scratch):
    run_documented(".venv/bin/adderhw quantize checkpoints/lenet5_bn_adder_fmnist.pt --bits 8 -o build/q8")
    for cmd in commands_of("test_quick_start_verify"):
        run_documented(cmd)
    assert all(t["passed"] for t in json.loads((scratch / "build/verify/verify.json").read_text())["tests"])


def _own_checkpoint(scratch: Path) -> None:
    """The tutorial trains build/my_adder.pt with the shipped checkpoint's recipe: start from that checkpoint."""
    (scratch / "build").mkdir()
    (scratch / "build/my_adder.pt").write_bytes((ROOT / "checkpoints/lenet5_bn_adder_fmnist.pt").read_bytes())
    from quant.training.datasets import load_dataset

    np.save(scratch / "build/x.npy", load_dataset("fashion-mnist", "test")[0][:5])


@pytest.mark.slow
def test_tutorial_own_checkpoint(scratch):
    _own_checkpoint(scratch)
    for cmd in commands_of(T):
        run_documented(cmd)
    assert np.load(scratch / "build/logits.npy").shape == (5, 10)
    assert (scratch / "build/my_sweep/sweep.json").is_file()
    assert (scratch / "build/my_estimate_sweep/sweep.csv").is_file()


@pytest.mark.slow
@pytest.mark.sim
def test_tutorial_own_checkpoint_verify(scratch):
    _own_checkpoint(scratch)
    run_documented(".venv/bin/adderhw quantize build/my_adder.pt --bits 8 -o build/my_int8")
    for cmd in commands_of(T + "_verify"):
        run_documented(cmd)
    tests = json.loads((scratch / "build/my_verify/verify.json").read_text())["tests"]
    assert all(t["passed"] for t in tests) and [im["image"] for im in tests[0]["images"]] == [0, 1]


@pytest.mark.slow
@pytest.mark.sim
def test_tutorial_own_architecture(scratch):
    for cmd in commands_of(A):
        run_documented(cmd)
    v = json.loads((scratch / "build/vgg/verify/verify.json").read_text())
    assert v["model"]["name"] == "vgg-adder" and all(t["passed"] for t in v["tests"])


@pytest.mark.slow
def test_tutorial_reference_checkpoint(scratch):
    """The shipped ResNet-20 saved as the reference code saves it: a bare, DataParallel-prefixed state dict."""
    import torch

    state = torch.load(ROOT / "checkpoints/resnet20_adder_fmnist.pt", map_location="cpu", weights_only=True)
    torch.save({f"module.{k}": v for k, v in state["state_dict"].items()}, scratch / "resnet20_ref.pth")
    np.save(scratch / "calib.npy", np.random.default_rng(0).random((32, 3, 32, 32), dtype=np.float32))
    for cmd in commands_of(R):
        run_documented(cmd)
    assert len(list((scratch / "build/r20_engine").glob("eng_adder_r8c8_b8_*.v"))) == 1
    for folder in ("r20_shapes", "r20_estimate"):
        summary = json.loads((scratch / "build" / folder / "summary.json").read_text())
        assert summary["designs"]["adder"]["total_cycles"] > 0, folder


@pytest.mark.slow
def test_short_python_example_runs_and_its_model_estimates(scratch):
    """The own-architecture tutorial's short version: its Python block as written, then the command its last line
    names (the README's "bring your own model" points there)."""
    text = (ROOT / "docs" / "tutorials" / "own-architecture.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "save_int_model(int_model" in b]
    (scratch / "snippet.py").write_text(block)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    proc = subprocess.run([sys.executable, "snippet.py"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (scratch / "build/my_net/manifest.json").is_file()
    assert main(["estimate", "build/my_net", "-o", "build/my_net_estimate"]) == 0
