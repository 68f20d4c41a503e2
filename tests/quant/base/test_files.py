"""quant.base.files: atomic writes, staged output folders and the rules for replacing them, digests, versions."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from quant.base import files
from quant.base.files import (
    MARKER,
    atomic_write_bytes,
    check_output_dir,
    clean_stale,
    dist_version,
    sha256_file,
    sha256_tree,
    staged_dir,
)


def test_atomic_write_replaces_and_leaves_no_temp_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "a.bin"
    atomic_write_bytes(p, b"one")
    atomic_write_bytes(p, b"two")
    assert p.read_bytes() == b"two"

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(p, b"three")
    assert p.read_bytes() == b"two"
    assert [q.name for q in tmp_path.iterdir()] == ["a.bin"]


def test_staged_dir_commits_with_marker_and_replaces_its_own_output(tmp_path):
    out = tmp_path / "out"
    with staged_dir(out, command="estimate") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(f".out.tmp.{os.getpid()}.")
        (tmp / "r.txt").write_text("1")
    assert json.loads((out / MARKER).read_text()) == {"command": "estimate"}
    with staged_dir(out, command="estimate") as tmp:
        (tmp / "s.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "s.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_staged_dir_failure_keeps_the_old_folder(tmp_path):
    out = tmp_path / "out"
    with staged_dir(out, command="synth") as tmp:
        (tmp / "synth.json").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with staged_dir(out, command="synth") as tmp:
            (tmp / "synth.json").write_text("half")
            raise KeyboardInterrupt
    assert (out / "synth.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("setup, msg", [
    ("foreign", "is not empty and is not the output of an earlier adderhw estimate: choose another folder "
                r"\(or --force to replace it\)"),
    ("other_command", "is not empty and is the output of adderhw quantize"),
    ("file", "exists and is not a folder"),
    ("input_inside", "contains the input"),
    ("input_is_out", "contains the input"),
])
def test_check_output_dir_refusals(tmp_path, setup, msg):
    out = tmp_path / "out"
    inputs = ()
    if setup == "file":
        out.write_text("x")
    else:
        out.mkdir()
        (out / "precious.txt").write_text("keep")
    if setup == "other_command":
        (out / MARKER).write_text(json.dumps({"command": "quantize"}))
    if setup == "input_inside":
        inputs = (out / "precious.txt",)
    if setup == "input_is_out":
        inputs = (out,)
    with pytest.raises(ValueError, match=msg):
        check_output_dir(out, command="estimate", inputs=inputs)
    if setup != "file":
        assert (out / "precious.txt").read_text() == "keep"


def test_force_replaces_a_foreign_folder_but_never_an_input(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("x")
    check_output_dir(out, command="estimate", force=True)
    with pytest.raises(ValueError, match="contains the input"):
        check_output_dir(out, command="estimate", inputs=[out / "x"], force=True)


@pytest.mark.parametrize("name", ["", ".", ".."])
def test_output_must_name_a_folder(name):
    with pytest.raises(ValueError, match="must name a folder"):
        check_output_dir(name, command="estimate")


def test_empty_folder_is_accepted(tmp_path):
    (tmp_path / "empty").mkdir()
    assert check_output_dir(tmp_path / "empty", command="estimate") == tmp_path / "empty"


def test_clean_stale_removes_only_dead_processes_temp_folders(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    me = os.getpid()
    # a killed flow step leaves its subcommand's staging folder, named after the step's (issue 27, 11)
    stale = [tmp_path / f".out.tmp.{dead}.abc", tmp_path / f".out.old.{dead}.def", tmp_path / ".out.tmp.xyz",
             tmp_path / f"..out.tmp.{dead}.abc.tmp.{dead}.x"]
    live = [tmp_path / f".out.tmp.{me}.ghi", tmp_path / f"..out.tmp.{me}.abc.tmp.{dead}.y"]
    for p in stale + live:
        p.mkdir()
    (tmp_path / ".other.tmp.1.x").mkdir()
    clean_stale(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in live] + [".other.tmp.1.x"])


def test_temporary_siblings_of_a_long_name_fit_a_file_name(tmp_path):
    """A legal 250-character folder name: its staging and old folders are still legal names (issue 27, 15)."""
    out = tmp_path / ("a" * 250)
    for _ in range(2):
        with staged_dir(out, command="x") as tmp:
            (tmp / "f").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_digests(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"abc" * 1000)
    assert sha256_file(f) == hashlib.sha256(b"abc" * 1000).hexdigest()
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "a").write_text("1")
    (d / "sub" / "b").write_text("2")
    (d / "stamp").write_text("ignored")
    base = sha256_tree(d, skip=("stamp",))
    (d / "stamp").write_text("changed")
    assert sha256_tree(d, skip=("stamp",)) == base
    (d / "sub" / "b").write_text("3")
    assert sha256_tree(d, skip=("stamp",)) != base
    assert sha256_tree(f) == sha256_file(f)


def test_dist_version():
    import numpy

    assert dist_version("numpy") == numpy.__version__
    assert dist_version("no-such-dist-adderhw") == "unknown"
    assert dist_version("no-such-dist-adderhw", "0+unknown") == "0+unknown"


def test_files_is_standard_library_only():
    code = ("import sys, quant.base.files; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('numpy', 'torch', 'amaranth')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
