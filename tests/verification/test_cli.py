"""``adderhw verify``: argument errors and one end-to-end run on Icarus."""

from __future__ import annotations

import json

import pytest

from scripts.cli import main


def test_verify_one_layer_with_waves(lenet_dir, build_root, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["verify", str(lenet_dir), "-o", str(out), "--sim", "icarus", "--layer", "4",
               "--skip-matrix", "--waves", "--build-dir", str(build_root)])
    text = capsys.readouterr().out
    assert rc == 0, text
    data = json.loads((out / "verify.json").read_text())
    assert [(e["name"], e["simulator"], e["passed"]) for e in data] == [("lenet5_bn/layer_fc3", "icarus", True)]
    assert data[0]["cycles_measured"] == data[0]["cycles_predicted"] > 0
    (waves,) = (out / "runs" / "lenet5_bn-icarus").glob("*.fst")
    assert waves.stat().st_size > 1000
    assert f"waves: {waves.resolve()}" in text
    assert "1 of 1 passed" in text


@pytest.mark.parametrize("argv,msg", [
    (["--layer", "0"], "--layer and --design need a MODEL_DIR"),
    (["--skip-matrix"], "--skip-matrix needs a MODEL_DIR"),
    (["--images", "a,b"], "--images must be comma-separated integers"),
])
def test_argument_errors(argv, msg, tmp_path, capsys):
    rc = main(["verify", "-o", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.strip() == f"adderhw verify: error: {msg}" or msg in err
    assert len(err.strip().splitlines()) == 1


def test_bad_layer_and_missing_model(lenet_dir, tmp_path, capsys):
    rc = main(["verify", str(lenet_dir), "-o", str(tmp_path / "o"), "--layer", "pool1"])
    err = capsys.readouterr().err
    assert rc == 1 and "--layer 'pool1' is not a compute layer of lenet5_bn (have: conv1, conv2, fc1, fc2, fc3)" in err
    rc = main(["verify", str(lenet_dir), "-o", str(tmp_path / "o"), "--layer", "9"])
    assert rc == 1 and "--layer 9 is out of range" in capsys.readouterr().err
    rc = main(["verify", str(tmp_path / "nope"), "-o", str(tmp_path / "o")])
    assert rc == 1 and "nope" in capsys.readouterr().err
    assert not (tmp_path / "o" / "verify.json").exists()
