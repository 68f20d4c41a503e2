"""scripts.estimate: ``adderhw estimate`` end to end (model folder, topology CSV, checkpoints) and its errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from scripts.cli import main
from tests.hwsim.models import TOPOLOGIES, random_lenet, random_resnet20


@pytest.fixture
def topologies():
    return TOPOLOGIES


@pytest.fixture
def int_models():
    return SimpleNamespace(lenet=random_lenet, resnet20=random_resnet20)


def run(capsys, *args):
    rc = main(["estimate", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_estimate_integer_model_folder(tmp_path, capsys, int_models):
    from quant.intmodel.artifact import save_int_model

    model = int_models.lenet(np.random.default_rng(21), "fixed")
    save_int_model(model, tmp_path / "lenet")
    rc, stdout, err = run(capsys, tmp_path / "lenet", "--preset", "small", "-o", tmp_path / "est")
    assert rc == 0 and err == ""
    assert stdout.startswith("model lenet5-bn: network engine 4x4, 8-bit, multiplier unit 0 rows, 50 MHz, table 45nm:")
    assert "adder/mult: cycles 1.000" in stdout
    s = json.loads((tmp_path / "est" / "summary.json").read_text())
    assert s["dataflow"] == "cp" and "assumptions" not in s and "sweep" not in s
    assert sorted(p.name for p in (tmp_path / "est").iterdir() if not p.name.startswith(".")) == [
        "energy_breakdown.png", "layers.csv", "report.md", "summary.json"]


def test_dataflow_cp_is_deprecated_and_os_refused(tmp_path, capsys, int_models):
    from quant.intmodel.artifact import save_int_model

    save_int_model(int_models.lenet(np.random.default_rng(2), "fixed"), tmp_path / "m")
    rc, _, err = run(capsys, tmp_path / "m", "--dataflow", "cp", "-o", tmp_path / "a")
    assert rc == 0 and err == "estimate: --dataflow cp is deprecated: the network engine is the only design\n"
    rc, _, err = run(capsys, tmp_path / "m", "-o", tmp_path / "b")
    assert rc == 0 and err == ""
    assert (tmp_path / "a" / "summary.json").read_text().replace(str(tmp_path / "a"), "") == \
        (tmp_path / "b" / "summary.json").read_text().replace(str(tmp_path / "b"), "")
    rc, _, err = run(capsys, tmp_path / "m", "--dataflow", "os", "-o", tmp_path / "c")
    assert rc == 1 and err.count("\n") == 1 and "the v1 output-stationary core is retired" in err
    assert not (tmp_path / "c").exists()


def test_estimate_topology_csv_with_a_sweep(tmp_path, capsys, topologies):
    out = tmp_path / "est"
    rc, stdout, err = run(capsys, topologies / "resnet20.csv", "--table", "40nm", "--sweep", "rows=4,8", "cols=4,8,16",
                          "-o", out)
    assert rc == 0, err
    assert "model resnet20: network engine 8x8, 8-bit, multiplier unit 4 rows" in stdout
    assert "sweep: 6 engine sizes" in stdout
    s = json.loads((out / "summary.json").read_text())
    assert s["table"]["name"] == "40nm" and s["config"]["max_k"] == 576 and s["config"]["act_words"][0] > 0
    assert len(s["sweep"]) == 12 and {(p["rows"], p["cols"]) for p in s["sweep"]} == {
        (r, c) for r in (4, 8) for c in (4, 8, 16)}
    assert any("IFMAP sizes include the padding" in a for a in s["assumptions"])
    lines = (out / "sweep.csv").read_text().splitlines()
    assert lines[0].startswith("rows,cols,design,total_cycles,latency_us,energy_pj") and len(lines) == 13
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Assumptions (an estimate from shapes alone)" in (out / "report.md").read_text()


SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints"


def test_estimate_checkpoint(tmp_path, capsys):
    """Our checkpoint format: quantized with a placeholder calibration; the program is the model's own,
    so the cycles equal those of the model folder ``quantize`` writes (they depend on no value)."""
    from quant.quantizer.workflow import quantize_shipped

    ckpt = SHIPPED / "lenet5_bn_adder_fmnist.pt"
    rc, stdout, err = run(capsys, ckpt, "--preset", "small", "-o", tmp_path / "est")
    assert rc == 0, err
    s = json.loads((tmp_path / "est" / "summary.json").read_text())
    ops = [e["layer"] for e in s["designs"]["adder"]["energy_per_op_pj"]]
    assert len(ops) == 7 and s["designs"]["adder"]["ops_on_vector"] == 2  # two max pools
    assert any("placeholder calibration" in a for a in s["assumptions"])
    quantize_shipped(ckpt, tmp_path / "q", name="lenet5-bn", calib=16)
    rc, _, err = run(capsys, tmp_path / "q", "--preset", "small", "-o", tmp_path / "estq")
    q = json.loads((tmp_path / "estq" / "summary.json").read_text())
    for d in ("adder", "mult"):
        assert s["designs"][d]["total_cycles"] == q["designs"][d]["total_cycles"]
        assert s["designs"][d]["act_reads"] == q["designs"][d]["act_reads"]


def test_estimate_bare_reference_state_dict(tmp_path, capsys):
    """A bare state dict of the reference CIFAR ResNet-20 layout (``module.`` keys, as saved from
    DataParallel) with --model/--dataset: the program has its residual adds and its multiply layers."""
    import torch

    from quant.training.checkpoint import load

    ck = load(SHIPPED / "resnet20_adder_fmnist.pt")  # the reference layout; its weights stand in for CIFAR ones
    sd = {f"module.{k}": v for k, v in ck.model.state_dict().items()}
    torch.save(sd, tmp_path / "ref.pth")
    rc, stdout, err = run(capsys, tmp_path / "ref.pth", "--model", "resnet20", "--dataset", "cifar10",
                          "--preset", "small", "-o", tmp_path / "est")
    assert rc == 0, err
    assert "model resnet20: network engine 4x4" in stdout
    s = json.loads((tmp_path / "est" / "summary.json").read_text())
    assert s["designs"]["adder"]["ops_on_mult"] == 2  # the stem and the classifier
    assert len(s["config"]["act_words"]) == 3  # residual blocks: three regions
    assert [e["layer"] for e in s["designs"]["adder"]["energy_per_op_pj"]].count("layer1.0.add") == 1
    # the wrong model for the keys: one line naming what does not fit, no output folder
    rc, _, err = run(capsys, tmp_path / "ref.pth", "--model", "resnet32", "-o", tmp_path / "est32")
    assert rc == 1 and err.startswith("adderhw estimate: error: ") and err.count("\n") == 1
    assert "missing keys" in err and not (tmp_path / "est32").exists()


@pytest.mark.parametrize(
    "preset, extra, msg",
    [
        ("rows = 0\ncols = 4\n", [], "rows must be an integer in 1..64, not 0"),
        ("rows = 4\ncols = 4\nmax_k = 100\n", [], "unknown engine preset key(s) max_k"),
        ("", [], "p.toml: the preset needs rows and cols"),
        ("rows = 4\ncols = 4\n", ["--table", "3nm"], "unknown energy table '3nm'"),
        ("rows = 4\ncols = 4\n", ["--sweep", "cols=0"], "cols must be an integer in 1..64, not 0"),
        ("rows = 4\ncols = 4\n", ["--sweep", "depth=4"], "sweep key must be one of rows, cols"),
        ("rows = 4\ncols = 4\n", ["--sweep", "rows=4,x"], "sweep values of rows must be numbers"),
        ("rows = 4\ncols = 4\n", ["--rows", "100"], "rows must be an integer in 1..64, not 100"),
    ],
)
def test_bad_configs_give_one_line_and_exit_1(tmp_path, capsys, topologies, preset, extra, msg):
    p = tmp_path / "p.toml"
    p.write_text(preset)
    out = tmp_path / "est"
    rc, stdout, err = run(capsys, topologies / "lenet5_bn.csv", "--preset", p, *extra, "-o", out)
    assert rc == 1
    assert err.startswith("adderhw estimate: error: ") and msg in err, err
    assert err.count("\n") == 1
    assert not out.exists()


def test_bad_inputs(tmp_path, capsys, topologies):
    rc, _, err = run(capsys, tmp_path / "missing.csv", "-o", tmp_path / "o")
    assert rc == 1 and "input not found" in err
    (tmp_path / "d").mkdir()
    rc, _, err = run(capsys, tmp_path / "d", "-o", tmp_path / "o")
    assert rc == 1 and "without manifest.json" in err
    (tmp_path / "x.txt").write_text("x")
    rc, _, err = run(capsys, tmp_path / "x.txt", "-o", tmp_path / "o")
    assert rc == 1 and "expected an integer model folder" in err
    rc, _, err = run(capsys, topologies / "lenet5_bn.csv", "--model", "resnet20", "-o", tmp_path / "o")
    assert rc == 1 and "--model is for checkpoints (.pt/.pth) only" in err and not (tmp_path / "o").exists()


def test_pixel_tile_reaches_the_config(tmp_path, capsys, tiny_model_dir):
    """--pixel-tile Tp is a config field (summary.json's config has it); bad values and Tp > 1 with two weight
    buffers: one line naming the flags, exit 1, no output folder."""
    model = tiny_model_dir(tmp_path)
    for tp in (1, 4):
        rc, _, err = run(capsys, model, "--rows", 2, "--cols", 2, "--pixel-tile", tp, "-o", tmp_path / f"e{tp}")
        assert rc == 0 and err == ""
        assert json.loads((tmp_path / f"e{tp}" / "summary.json").read_text())["config"]["pixel_tile"] == tp
    for flags, msg in ((["--pixel-tile", 0], "--pixel-tile must be an integer in 1..64, not 0"),
                       (["--pixel-tile", 4, "--weight-buffers", 2],
                        "--weight-buffers 2 is built for --pixel-tile 1 only (the two have not been joined in "
                        "the cycle contract), not --pixel-tile 4")):
        rc, _, err = run(capsys, model, *flags, "-o", tmp_path / "bad")
        assert rc == 1 and err == f"adderhw estimate: error: {msg}\n"
        assert not (tmp_path / "bad").exists()
