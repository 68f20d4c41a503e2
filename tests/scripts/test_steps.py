"""Flow steps: cached by their command lines and inputs, outputs stamped, atomic on failure."""

from __future__ import annotations

import pytest

from scripts.steps import OUT, Step, run_step


def _writer(calls, text="result"):
    """``execute`` that records its command lines and writes ``out.txt`` (and one file per command)."""
    def execute(commands, tmp):
        calls.append(commands)
        (tmp / "out.txt").write_text(text)
    return execute


def _step(tmp_path, calls, argv=("--bits", "8"), text="result", inputs=()):
    return Step("demo", tmp_path / "demo", _writer(calls, text), lambda: [["quantize", *argv, "-o", OUT]],
                inputs=inputs)


def test_step_runs_once_then_reuses(tmp_path):
    src = tmp_path / "input.bin"
    src.write_bytes(b"abc")
    calls = []
    first = run_step(_step(tmp_path, calls, inputs=(src,)), "1.0")
    second = run_step(_step(tmp_path, calls, inputs=(src,)), "1.0")
    assert not first.reused and second.reused
    assert len(calls) == 1
    assert (tmp_path / "demo" / "out.txt").read_text() == "result"


def test_out_placeholder_becomes_the_staging_folder(tmp_path):
    calls = []
    run_step(_step(tmp_path, calls), "1.0")
    (cmd,) = calls[0]
    staging = cmd[-1]
    assert cmd[:-1] == ["quantize", "--bits", "8", "-o"]
    assert staging.startswith(str(tmp_path / ".demo.tmp."))


@pytest.mark.parametrize("change", ["input", "argv", "version"])
def test_step_reruns_when_anything_it_depends_on_changes(tmp_path, change):
    src = tmp_path / "input.bin"
    src.write_bytes(b"abc")
    calls = []
    run_step(_step(tmp_path, calls, inputs=(src,)), "1.0")
    version, argv = "1.0", ("--bits", "8")
    if change == "input":
        src.write_bytes(b"abd")
    elif change == "argv":
        argv = ("--bits", "6")
    else:
        version = "1.1"
    res = run_step(_step(tmp_path, calls, argv=argv, text="new", inputs=(src,)), version)
    assert not res.reused and len(calls) == 2
    assert res.rerun_reason == ""
    assert (tmp_path / "demo" / "out.txt").read_text() == "new"


@pytest.mark.parametrize("damage", ["edit", "add", "delete"])
def test_edited_or_corrupted_outputs_are_made_again(tmp_path, damage):
    calls = []
    run_step(_step(tmp_path, calls), "1.0")
    out = tmp_path / "demo" / "out.txt"
    if damage == "edit":
        out.write_text("FAIL")
    elif damage == "add":
        (tmp_path / "demo" / "extra.json").write_text("{}")
    else:
        out.unlink()
    res = run_step(_step(tmp_path, calls), "1.0")
    assert not res.reused and len(calls) == 2
    assert res.rerun_reason == "its outputs changed since they were made (edited or corrupt)"
    assert out.read_text() == "result"
    assert not (tmp_path / "demo" / "extra.json").exists()
    assert run_step(_step(tmp_path, calls), "1.0").reused


def test_failing_step_leaves_previous_outputs_and_no_partial_folder(tmp_path):
    calls = []
    run_step(Step("good", tmp_path / "good", _writer(calls), params=("x",)), "1.0")

    def bad(_commands, tmp):
        (tmp / "half.txt").write_text("half")
        raise ValueError("synthesis failed")

    with pytest.raises(ValueError, match="synthesis failed"):
        run_step(Step("bad", tmp_path / "bad", bad), "1.0")
    assert (tmp_path / "good" / "out.txt").exists()
    assert not (tmp_path / "bad").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good"]


def test_temporary_folders_of_a_killed_run_are_removed(tmp_path):
    stale = [tmp_path / ".demo.tmp.abc123", tmp_path / ".demo.old.def456"]
    for p in stale:
        (p / "x").mkdir(parents=True)
    (tmp_path / ".other.tmp.zzz").mkdir()
    run_step(_step(tmp_path, []), "1.0")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp.zzz", "demo"]
