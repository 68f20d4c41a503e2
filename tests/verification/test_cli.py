"""``adderhw verify``: argument errors and one end-to-end run on Icarus."""

from __future__ import annotations

import json

import pytest
from pathlib import Path

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


def test_verify_on_a_given_design_with_chosen_images(lenet_dir, build_root, tmp_path, capsys):
    """README flags ``--design`` (run the model on this generated design) and ``--images``."""
    gen = tmp_path / "gen"
    assert main(["generate", "--rows", "4", "--cols", "4", "--bits", "8", "--pe", "adder", "--max-k", "400",
                 "--out-bits", "16", "-o", str(gen)]) == 0
    (design,) = gen.glob("*.json")
    out = tmp_path / "out"
    capsys.readouterr()
    rc = main(["verify", str(lenet_dir), "-o", str(out), "--sim", "icarus", "--layer", "fc3", "--skip-matrix",
               "--design", str(design), "--images", "7,3", "--build-dir", str(build_root)])
    text = capsys.readouterr().out
    assert rc == 0, text
    data = json.loads((out / "verify.json").read_text())
    assert [(e["name"], e["passed"]) for e in data] == [("lenet5_bn/layer_fc3", True)]
    job = json.loads((out / "runs" / "lenet5_bn-icarus" / "job.json").read_text())
    assert job["meta"] == str(design.resolve()) and job["images"] == [7, 3]
    assert not (out / "designs").exists()  # nothing generated: the given design ran


@pytest.mark.parametrize("argv,msg", [
    (["--layer", "0"], "--layer and --design need a MODEL_DIR"),
    (["--skip-matrix"], "--skip-matrix needs a MODEL_DIR (otherwise nothing would run)"),
    (["--images", "a,b"], "--images must be comma-separated integers, not 'a,b'"),
    (["--images", "1,-2"], "--images must list non-negative indices, not '1,-2'"),
])
def test_argument_errors(argv, msg, tmp_path, capsys):
    rc = main(["verify", "-o", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.strip() == f"adderhw verify: error: {msg}"


def test_bad_layer_and_missing_model(lenet_dir, tmp_path, capsys):
    rc = main(["verify", str(lenet_dir), "-o", str(tmp_path / "o"), "--layer", "pool1"])
    err = capsys.readouterr().err
    assert rc == 1 and "--layer 'pool1' is not a compute layer of lenet5_bn (have: conv1, conv2, fc1, fc2, fc3)" in err
    rc = main(["verify", str(lenet_dir), "-o", str(tmp_path / "o"), "--layer", "9"])
    assert rc == 1 and "--layer 9 is out of range" in capsys.readouterr().err
    rc = main(["verify", str(tmp_path / "nope"), "-o", str(tmp_path / "o")])
    assert rc == 1 and "nope" in capsys.readouterr().err
    assert not (tmp_path / "o" / "verify.json").exists()


def test_path_component_never_leaves_the_folder():
    from verification.runner import path_component

    assert path_component("lenet5_bn-icarus") == "lenet5_bn-icarus"  # plain names are kept
    for bad in ("../../../../x", "/etc/passwd", "..", ".", "", "a/b", "a\\b", ".hidden", "x\0y", "é"):
        safe = path_component(bad)
        assert safe and "/" not in safe and "\\" not in safe and "\0" not in safe, bad
        assert not safe.startswith("."), bad
    assert path_component("a/b") != path_component("a_b")  # sanitised names stay distinct


def _one_layer_model(name):
    import numpy as np

    from quant import golden
    from quant.artifact import IntModel, Requant
    from quant.intops import InputQuant

    fc = golden.random_layer(np.random.default_rng(3), kind="adder_linear", in_shape=(6,), out_channels=3, bits=4)
    rq = fc.requant
    rq = Requant(mode="fixed", m=rq.m, n=rq.n, shift=rq.shift, lo=-8, hi=7, out_scale=1.0, out_zero_point=0,
                 out_bits=4, out_signed=True)
    fc = type(fc)(**{**{f: getattr(fc, f) for f in fc.__dataclass_fields__}, "requant": rq})
    spec = InputQuant(mean=(0.5,) * 6, std=(0.25,) * 6, scale=0.25, zero_point=7, bits=4, signed=False)
    return IntModel(name=name, dataset="none", input=spec, input_shape=(6,), layers=[fc])


def test_model_name_cannot_escape_the_output_folder(tmp_path, monkeypatch, capsys):
    """Issue 17 defect 1: a manifest ``name`` of ``../../../../x`` made verify write outside ``-o``."""
    from quant.artifact import save_int_model
    from verification import suite
    from verification.runner import CaseResult, RunResult

    model = _one_layer_model("../../../../escaped")
    work = tmp_path / "a" / "b" / "c" / "d"
    save_int_model(model, work / "model")
    seen = []

    def fake_run_design(meta, sim, *, out_dir, **kw):
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True)
        for f in ("sim.log", "job.json", "results.xml", "records.jsonl"):
            (out_dir / f).write_text("")
        seen.append(out_dir)
        return RunResult(simulator=sim, cases=(CaseResult(name="network", simulator=sim, passed=True),),
                         log=out_dir / "sim.log", results_xml=out_dir / "results.xml", waves=None)

    monkeypatch.setattr(suite, "generate_design", lambda spec, out_dir: object())
    monkeypatch.setattr(suite, "run_design", fake_run_design)
    out = work / "out"
    rc = main(["verify", str(work / "model"), "-o", str(out), "--sim", "icarus", "--skip-matrix"])
    assert rc == 0, capsys.readouterr().err
    (run_dir,) = seen
    # built in the staging folder beside -o, then renamed to -o
    assert run_dir.parent.name == "runs" and run_dir.parent.parent.parent == work
    assert run_dir.name.endswith(tuple("0123456789abcdef"))
    assert (out / "runs" / run_dir.name / "sim.log").is_file()
    written = [p for p in tmp_path.rglob("*") if p.is_file() and (work / "model") not in p.parents]
    assert written and all(out in p.parents for p in written)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    names = [e["name"] for e in json.loads((out / "verify.json").read_text())]
    assert names == ["../../../../escaped/network"]  # the report keeps the name, only paths are sanitised
