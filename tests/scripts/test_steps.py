"""Flow steps: cached by their inputs, atomic on failure."""

from __future__ import annotations

import pytest

from scripts.steps import Step, run_step


def _writer(calls, text="result"):
    def run(tmp):
        calls.append(tmp)
        (tmp / "out.txt").write_text(text)
    return run


def test_step_runs_once_then_reuses(tmp_path):
    src = tmp_path / "input.bin"
    src.write_bytes(b"abc")
    calls = []
    step = Step("demo", tmp_path / "demo", _writer(calls), params=("--bits", "8"), inputs=(src,))
    first = run_step(step, "1.0")
    second = run_step(step, "1.0")
    assert not first.reused and second.reused
    assert len(calls) == 1
    assert (tmp_path / "demo" / "out.txt").read_text() == "result"


@pytest.mark.parametrize("change", ["input", "params", "version"])
def test_step_reruns_when_anything_it_depends_on_changes(tmp_path, change):
    src = tmp_path / "input.bin"
    src.write_bytes(b"abc")
    calls = []
    params = ("--bits", "8")
    run_step(Step("demo", tmp_path / "demo", _writer(calls), params, (src,)), "1.0")
    version = "1.0"
    if change == "input":
        src.write_bytes(b"abd")
    elif change == "params":
        params = ("--bits", "6")
    else:
        version = "1.1"
    res = run_step(Step("demo", tmp_path / "demo", _writer(calls, "new"), params, (src,)), version)
    assert not res.reused and len(calls) == 2
    assert (tmp_path / "demo" / "out.txt").read_text() == "new"


def test_failing_step_leaves_previous_outputs_and_no_partial_folder(tmp_path):
    calls = []
    run_step(Step("good", tmp_path / "good", _writer(calls)), "1.0")

    def bad(tmp):
        (tmp / "half.txt").write_text("half")
        raise ValueError("synthesis failed")

    with pytest.raises(ValueError, match="synthesis failed"):
        run_step(Step("bad", tmp_path / "bad", bad), "1.0")
    assert (tmp_path / "good" / "out.txt").exists()
    assert not (tmp_path / "bad").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good"]
