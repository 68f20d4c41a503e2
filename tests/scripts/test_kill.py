"""Killed runs: SIGINT or SIGKILL in the middle of a command leaves ``-o`` as it was or complete.

Each test starts the real ``adderhw`` command in a subprocess, waits until it
has created its staging folder beside ``-o`` (so it is in the middle of the
work), sends the signal, and checks the output folder and what the next run
does with the temporary folders the killed one left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SHIPPED_ADDER = Path(__file__).resolve().parents[2] / "checkpoints" / "lenet5_bn_adder_fmnist.pt"


def _sigint_default() -> None:
    # a shell runs background jobs with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: give the command the disposition a terminal's Ctrl-C meets
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(argv, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    return subprocess.Popen([sys.executable, "-m", "scripts.cli", *argv], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_sigint_default)


def _wait_for(proc: subprocess.Popen, folder: Path, pattern: str, timeout: float = 240.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.glob(pattern)) if folder.is_dir() else []
        if found:
            return found[0]
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the command ended (rc {proc.returncode}) before {pattern} appeared: {err[-2000:]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"{pattern} did not appear in {folder} within {timeout} s")


def _files(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def design(tmp_path_factory) -> Path:
    """A generated PE-study array (its synthesis with yosys takes a few seconds)."""
    from scripts.cli import main

    root = tmp_path_factory.mktemp("design")
    assert main(["generate", "--block", "array", "--rows", "4", "--cols", "4", "--bits", "8", "--max-k", "400",
                 "-o", str(root)]) == 0
    return next(root.glob("*.v"))


@pytest.mark.synth
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_synth_leaves_the_previous_result(tmp_path, design, sig):
    out = tmp_path / "synth"
    out.mkdir()
    (out / "synth.json").write_text("previous result")
    (out / ".adderhw-output").write_text('{"command": "synth"}\n')
    before = _files(out)
    proc = _start(["synth", str(design), "--target", "generic", "-o", str(out)], tmp_path)
    staging = _wait_for(proc, tmp_path, ".synth.tmp.*")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert _files(out) == before
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err
        assert err.strip().splitlines()[-1] == "adderhw synth: interrupted"
        assert not staging.exists()
    else:
        assert proc.returncode == -signal.SIGKILL
        assert staging.exists()  # nothing could clean up; the next run does
        proc = _start(["synth", str(design), "--target", "generic", "-o", str(out)], tmp_path)
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert not staging.exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["synth"]
        assert (out / "synth.json").read_text() != "previous result"


@pytest.mark.synth
def test_interrupted_flow_exits_130_and_the_next_run_cleans_a_killed_one(tmp_path):
    out = tmp_path / "flow"
    proc = _start(["flow", str(SHIPPED_ADDER), "--eval", "200", "-o", str(out)], tmp_path)
    staging = _wait_for(proc, out, ".quantize.tmp.*")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=120)
    assert staging.exists() and not (out / "quantize").exists()

    proc = _start(["flow", str(SHIPPED_ADDER), "--eval", "200", "-o", str(out)], tmp_path)
    second = _wait_for(proc, out, f".quantize.tmp.{proc.pid}.*")
    assert not staging.exists()  # the killed run's staging folder is gone
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "adderhw flow: interrupted"
    assert not second.exists()
    assert sorted(p.name for p in out.iterdir()) == [".adderhw-output"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_quantize_leaves_no_half_written_model(tmp_path, sig):
    out = tmp_path / "int8"
    argv = ["quantize", str(SHIPPED_ADDER), "--calib", "64", "--eval", "2000", "-o", str(out)]
    proc = _start(argv, tmp_path)
    staging = _wait_for(proc, tmp_path, ".int8.tmp.*")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert not out.exists()
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err
        assert not staging.exists()
    else:
        assert staging.exists()
        proc = _start(argv, tmp_path)
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["int8"]
        assert (out / "manifest.json").is_file()


@pytest.mark.sim
def test_interrupted_verify_leaves_the_previous_report(tmp_path, tiny_model_dir):
    """Issue 17 defect 7: Ctrl-C in verify left an old verify.json beside new runs/."""
    model = tiny_model_dir(tmp_path)
    out = tmp_path / "verify"
    (out / "runs" / "old-icarus").mkdir(parents=True)
    (out / "verify.json").write_text("[]\n")
    (out / ".adderhw-output").write_text('{"command": "verify"}\n')
    before = _files(out)
    proc = _start(["verify", str(model), "--sim", "icarus", "--build-dir",
                   str(tmp_path / "build"), "-o", str(out)], tmp_path)
    staging = _wait_for(proc, tmp_path, ".verify.tmp.*")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert _files(out) == before
    assert not staging.exists()


def test_terminated_flow_exits_143_and_the_next_run_cleans_a_killed_sweep(tmp_path):
    """SIGTERM is handled as Ctrl-C is; a SIGKILL-ed sweep's nested staging folder (its quantize's, named after
    the step's) is removed by the next run (issue 27, 11)."""
    out = tmp_path / "flow"
    argv = ["flow", str(SHIPPED_ADDER), "--eval", "200", "--sweep", "8,6,5,4", "-o", str(out)]
    proc = _start(argv, tmp_path)
    nested = _wait_for(proc, out, "..sweep.tmp.*")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "adderhw flow: terminated"
    assert not nested.exists()
    assert sorted(p.name for p in out.iterdir()) == [".adderhw-output", "quantize"]  # the finished step stays

    proc = _start(argv, tmp_path)
    nested = _wait_for(proc, out, "..sweep.tmp.*")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=120)
    left = sorted(p.name for p in out.glob("*.sweep.tmp.*"))
    assert nested.name in left

    proc = _start(argv, tmp_path)
    mine = _wait_for(proc, out, f".sweep.tmp.{proc.pid}.*")
    assert not any((out / name).exists() for name in left)  # the killed run's folders are gone
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert not mine.exists()
    assert sorted(p.name for p in out.iterdir()) == [".adderhw-output", "quantize"]


@pytest.mark.synth
@pytest.mark.slow
def test_interrupted_explore_synth_exits_130_and_keeps_its_cache(tmp_path):
    """Ctrl-C while ``explore --synth`` synthesises its second point: exit 130, no ``-o``, the first point's
    cache entry intact and nothing half-written beside it; the next run takes that point from the cache."""
    cache, out = tmp_path / "cache", tmp_path / "x"
    argv = ["explore", str(SHIPPED_ADDER), "--target", "ice40-hx8k", "--space", "rows=1,2,cols=1", "--synth", "2",
            "--cache", str(cache), "-o", str(out)]
    proc = _start(argv, tmp_path)
    first = _wait_for(proc, cache, "*.json")
    kept = first.read_bytes()
    _wait_for(proc, cache, "*.running")  # the second point is being synthesised
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert not out.exists()
    assert sorted(p.name for p in cache.iterdir()) == [first.name] and first.read_bytes() == kept

    proc = _start(argv, tmp_path)
    printed, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert f"synthesised 1 of 2 points (1 from the cache {cache})" in printed
    assert first.read_bytes() == kept and len(list(cache.glob("*.json"))) == 2
