"""hwsim.cli: ``adderhw estimate`` end to end (CSV, integer model, checkpoint) and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scripts.cli import main


def run(capsys, *args):
    rc = main(["estimate", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_estimate_topology_csv(tmp_path, capsys, topologies):
    out = tmp_path / "est"
    rc, stdout, err = run(capsys, topologies / "resnet20.csv", "--preset", "small", "--table", "40nm",
                          "--sweep", "rows=4,8", "cols=8", "-o", out)
    assert rc == 0, err
    assert "40,813,184 MACs" in stdout and "paper: 41,170,000 multiplications" in stdout
    assert "AdderNet 443,008 mult + 81,183,360 add" in stdout
    s = json.loads((out / "summary.json").read_text())
    assert s["config"]["rows"] == 4 and s["config"]["max_k"] == 576 and s["table"]["name"] == "40nm"
    assert len(s["sweep"]) == 4
    assert (out / "sweep.png").is_file() and (out / "energy_breakdown.png").is_file()


def test_estimate_integer_model_folder(tmp_path, capsys, int_models):
    from quant.artifact import save_int_model

    model = int_models.lenet(np.random.default_rng(21), "fixed")
    save_int_model(model, tmp_path / "lenet")
    rc, stdout, err = run(capsys, tmp_path / "lenet", "-o", tmp_path / "est")
    assert rc == 0, err
    assert "model lenet5-bn: 416,520 MACs" in stdout and "paper: 435,000" in stdout
    s = json.loads((tmp_path / "est" / "summary.json").read_text())
    assert s["designs"]["adder"]["layers_on_adder_pes"] == 5


def test_estimate_checkpoint(tmp_path, capsys):
    from quant.checkpoint import save
    from quant.models import build_model

    save(tmp_path / "r20.pt", build_model("resnet20"), {"model": "resnet20", "kind": "adder", "dataset": "cifar10"})
    rc, stdout, err = run(capsys, tmp_path / "r20.pt", "--sweep", "rows=8", "cols=8", "-o", tmp_path / "est")
    assert rc == 0, err
    assert "model resnet20: 40,813,184 MACs" in stdout
    s = json.loads((tmp_path / "est" / "summary.json").read_text())
    assert s["designs"]["adder"]["layers_on_mult_pes"] == 2


@pytest.mark.parametrize(
    "preset, extra, msg",
    [
        ("rows = 0\ncols = 4\n", [], "rows must be a positive integer, not 0"),
        ("rows = 4\ncols = 4\nacc_bits = 10\n", [], "acc_bits=10 is narrower than the 17 bits"),
        ("rows = 4\ncols = 4\nbits = 4\n", [], "layer conv1 has 8-bit operands but the array has bits=4"),
        ("rows = 4\ncols = 4\nmax_k = 100\n", [], "layer conv2 has K=150, more than the array's max_k=100"),
        ("rows = 4\ncols = 4\n", ["--table", "3nm"], "unknown energy table '3nm'"),
        ("rows = 4\ncols = 4\n", ["--sweep", "cols=0"], "cols must be a positive integer, not 0"),
        # issue 17 defect 6: an empty preset was a TypeError traceback
        ("", [], "p.toml: the preset needs rows and cols (ArrayConfig has no default for them)"),
        ("rows = 1000\ncols = 4\n", [], "rows must be at most 256, not 1000"),
        ("rows = 4\ncols = 4\n", ["--sweep", "rows=4,512"], "rows must be at most 256, not 512"),
    ],
)
def test_bad_configs_give_one_line_and_exit_1(tmp_path, capsys, topologies, preset, extra, msg):
    p = tmp_path / "p.toml"
    p.write_text(preset)
    out = tmp_path / "est"
    rc, stdout, err = run(capsys, topologies / "lenet5_bn.csv", "--preset", p, *extra, "-o", out)
    assert rc == 1
    assert err.startswith("adderhw estimate: error: ") and msg in err
    assert err.count("\n") == 1
    assert not out.exists()


def test_bad_inputs(tmp_path, capsys):
    rc, _, err = run(capsys, tmp_path / "missing.csv", "-o", tmp_path / "o")
    assert rc == 1 and "input not found" in err
    (tmp_path / "d").mkdir()
    rc, _, err = run(capsys, tmp_path / "d", "-o", tmp_path / "o")
    assert rc == 1 and "without manifest.json" in err
    (tmp_path / "x.txt").write_text("x")
    rc, _, err = run(capsys, tmp_path / "x.txt", "-o", tmp_path / "o")
    assert rc == 1 and "expected an integer model folder" in err


def test_estimate_bare_reference_state_dict(tmp_path, capsys):
    """A bare reference state dict (``module.`` keys, as saved from DataParallel) with --model/--dataset."""
    import torch

    from quant.models import build_model

    sd = {f"module.{k}": v for k, v in build_model("resnet20").state_dict().items()}
    torch.save(sd, tmp_path / "ref.pth")
    rc, stdout, err = run(capsys, tmp_path / "ref.pth", "--model", "resnet20", "--dataset", "cifar10",
                          "--sweep", "rows=8", "cols=8", "-o", tmp_path / "est")
    assert rc == 0, err
    assert "model resnet20: 40,813,184 MACs" in stdout
    s = json.loads((tmp_path / "est" / "summary.json").read_text())
    assert s["designs"]["adder"]["layers_on_mult_pes"] == 2
    # the wrong model for the keys: one line naming what does not fit, no output folder
    rc, _, err = run(capsys, tmp_path / "ref.pth", "--model", "resnet32", "-o", tmp_path / "est32")
    assert rc == 1 and err.startswith("adderhw estimate: error: ") and err.count("\n") == 1
    assert "missing keys" in err and not (tmp_path / "est32").exists()
    rc, _, err = run(capsys, tmp_path / "ref.pth", "--dataset", "imagenet", "-o", tmp_path / "estx")
    assert rc == 1 and "imagenet" in err and not (tmp_path / "estx").exists()


def test_estimate_model_option_only_for_checkpoints(tmp_path, capsys, topologies):
    out = tmp_path / "est"
    rc, _, err = run(capsys, topologies / "lenet5_bn.csv", "--model", "resnet20", "-o", out)
    assert rc == 1 and err.count("\n") == 1
    assert "--model is for checkpoints (.pt/.pth) only" in err and not out.exists()
