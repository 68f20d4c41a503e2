"""Tests of the quantize/predict CLI (quant.quantizer.cli)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from quant.intmodel import golden
from quant.intmodel.artifact import load_int_model
from quant.quantizer.calibrate import float_logits
from quant.training.checkpoint import load as checkpoint_load
from quant.training.checkpoint import save
from quant.training.datasets import NORMALIZATION, load_dataset
from scripts.cli import main

SEED = 99
FM = NORMALIZATION["fashion-mnist"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, data, calibrated_lenet):
    xtr, _, _ = data
    path = tmp_path_factory.mktemp("ck") / "lenet.pt"
    save(path, calibrated_lenet(xtr), {"model": "lenet5-bn", "kind": "adder", "dataset": "fashion-mnist"})
    return path


def test_cli_quantize_and_predict(ckpt, tmp_path, capsys):
    out = tmp_path / "int"
    rc = main(["quantize", str(ckpt), "--bits", "6", "--calib", "64", "--eval", "100", "--requant", "threshold",
               "--percentile", "99.9", "-o", str(out)])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == [".adderhw-output", "manifest.json", "report.json", "report.md",
                                                     "weights.npz"]
    rep = json.loads((out / "report.json").read_text())
    im = load_int_model(out)
    # the accuracies are those of the golden and the float model on the first 100 test images
    xte, yte = load_dataset("fashion-mnist", "test")
    int_top1 = golden.run(im, xte[:100]).argmax(1)
    ck = checkpoint_load(ckpt)
    norm = ck.meta["normalization"]
    float_top1 = float_logits(ck.model, xte[:100], norm["mean"], norm["std"]).argmax(1)
    assert rep["int_accuracy"] == round(100.0 * float(np.mean(int_top1 == yte[:100])), 2)
    assert rep["float_accuracy"] == round(100.0 * float(np.mean(float_top1 == yte[:100])), 2)
    assert rep["int_float_top1_agreement_pct"] == round(100.0 * float(np.mean(int_top1 == float_top1)), 2)
    assert rep["bits"] == 6 and rep["eval_images"] == 100 and rep["calib_images"] == 64
    assert all("sqnr_db" in row for row in rep["layers"] if row["kind"].startswith("adder"))
    assert rep["ops_per_image"]["additions"] >= 2 * 416_520
    assert im.quantization["requant"] == "threshold" and im.quantization["percentile"] == 99.9
    assert rep["percentile"] == 99.9 and rep["bias_correction"] is True

    np.save(tmp_path / "x.npy", xte[:7])
    capsys.readouterr()
    assert main(["predict", str(out), str(tmp_path / "x.npy"), "-o", str(tmp_path / "l.npy"), "--labels"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    logits = np.load(tmp_path / "l.npy")
    assert logits.dtype == np.int64 and np.array_equal(logits, golden.run(im, xte[:7]))
    assert [l.split("\t")[1] for l in lines] == [im.class_names[i] for i in logits.argmax(1)]
    assert main(["predict", str(ckpt), str(tmp_path / "x.npy"), "-o", str(tmp_path / "f.npy")]) == 0
    assert np.load(tmp_path / "f.npy").shape == (7, 10)


def test_cli_sweep_writes_a_table(ckpt, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["quantize", str(ckpt), "--sweep", "8,4", "--calib", "32", "--eval", "50", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| 8 | 8 | fixed |" in printed and "| 4 | 4 | fixed |" in printed
    rows = json.loads((out / "sweep.json").read_text())["rows"]
    assert [r["bits"] for r in rows] == [8, 4]
    assert (out / "w4" / "manifest.json").is_file() and (out / "sweep.md").is_file()


def test_cli_errors_are_one_line_and_write_nothing(ckpt, tmp_path, capsys):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((2, 1, 28, 28), 3.0, dtype=np.float32))
    out = tmp_path / "never"
    assert main(["quantize", str(ckpt), "--calib-data", str(bad), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("adderhw quantize: error: --calib-data") and "in 0..1" in err and "\n" not in err
    assert not out.exists() and not any(p.name.startswith(".never") for p in tmp_path.iterdir())
    assert main(["quantize", str(ckpt), "--bits", "4", "--sweep", "8,4", "-o", str(out)]) == 1
    assert "either --bits or --sweep" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), str(bad), "-o", str(tmp_path / "l.npy")]) == 1
    assert not (tmp_path / "l.npy").exists()


def test_cli_data_root_for_calibration_and_evaluation(data, tmp_path, capsys, calibrated_lenet):
    """A model of another dataset quantizes against the folder given with --data-root.

    The folder holds IDX files under MNIST's names (Fashion-MNIST's bytes: same format).
    """
    from quant.training.datasets import FASHION_MNIST_DIR, IDX_FILES

    xtr, _, _ = data
    root = tmp_path / "mnist"
    root.mkdir()
    for name in IDX_FILES.values():
        (root / name).symlink_to(FASHION_MNIST_DIR / name)
    ck = tmp_path / "mnist_lenet.pt"
    save(ck, calibrated_lenet(xtr), {"model": "lenet5-bn", "kind": "adder", "dataset": "mnist"})
    out = tmp_path / "int"
    assert main(["quantize", str(ck), "--calib", "32", "--eval", "60", "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert "no calibration data for mnist" in err and "--data-root DIR" in err and "\n" not in err
    assert not out.exists()
    assert main(["quantize", str(ck), "--data-root", str(root), "--calib", "32", "--eval", "60", "-o", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["eval_images"] == 60 and rep["eval_split"] == "test"
    xte, yte = load_dataset("fashion-mnist", "test")  # the same bytes under MNIST's names
    int_top1 = golden.run(load_int_model(out), xte[:60]).argmax(1)
    assert rep["int_accuracy"] == round(100.0 * float(np.mean(int_top1 == yte[:60])), 2)
    np.save(tmp_path / "calib.npy", xtr[:32])
    capsys.readouterr()
    # a named folder without the test set is an error, not a silent fallback to agreement
    assert main(["quantize", str(ck), "--data-root", str(tmp_path / "nowhere"), "--calib-data",
                 str(tmp_path / "calib.npy"), "-o", str(tmp_path / "never")]) == 1
    err = capsys.readouterr().err
    assert "mnist folder not found" in err and "nowhere" in err and err.count("\n") == 1
    assert not (tmp_path / "never").exists()


def test_cli_documented_quantize_flags(ckpt, data, tmp_path):
    """README flags at the command line: --act-bits, --no-bias-correction, --percentile auto."""
    out = tmp_path / "w4a8"
    assert main(["quantize", str(ckpt), "--bits", "4", "--act-bits", "8", "--no-bias-correction",
                 "--percentile", "auto", "--calib", "32", "--eval", "20", "-o", str(out)]) == 0
    q = load_int_model(out).quantization
    rep = json.loads((out / "report.json").read_text())
    assert (q["bits"], q["act_bits"], q["bias_correction"], q["percentile"]) == (4, 8, False, None)
    assert (rep["bits"], rep["act_bits"], rep["bias_correction"], rep["percentile"]) == (4, 8, False, "auto")
    # W4A8: the adder weights sit on every 2**(8-4)-th code of the 8-bit activation grid
    for layer in load_int_model(out).compute_layers:
        if layer.pe == "adder":
            assert layer.bits == 8 and np.all(layer.weight % 16 == 0)


def test_cli_bare_state_dict_with_calibration_images(ckpt, data, tmp_path, capsys):
    """A bare state dict needs --model/--dataset; with --calib-data it reports agreement on those images."""
    import torch

    from quant.training.checkpoint import load

    xtr, _, _ = data
    bare = tmp_path / "bare.pth"
    torch.save({f"module.{k}": v for k, v in load(ckpt).model.state_dict().items()}, bare)
    np.save(tmp_path / "calib.npy", xtr[:40])
    out = tmp_path / "bare_int"
    assert main(["quantize", str(bare), "--model", "lenet5-bn", "--dataset", "fashion-mnist", "--calib-data",
                 str(tmp_path / "calib.npy"), "--calib", "40", "--eval", "40", "-o", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["model"] == "lenet5-bn" and rep["calib_images"] == 40
    assert rep["source"]["path"] == str(bare)


def test_cli_rounding(ckpt, tmp_path, capsys):
    """--rounding: auto (default) is greedy at 4 bits and nearest at 8; named in report.json and the artifact;
    a bad value is one line on stderr, exit 2, no output folder."""
    rounds = {}
    for name, args in (("w4", ["--bits", "4"]), ("w8", ["--bits", "8"]), ("w8g", ["--bits", "8", "--rounding", "greedy"]),
                       ("w4n", ["--bits", "4", "--rounding", "nearest"])):
        out = tmp_path / name
        assert main(["quantize", str(ckpt), *args, "--calib", "48", "--eval", "20", "-o", str(out)]) == 0
        rep = json.loads((out / "report.json").read_text())
        assert rep["rounding"] == load_int_model(out).quantization["rounding"]
        rounds[name] = rep["rounding"]
    assert rounds == {"w4": "greedy", "w8": "nearest", "w8g": "greedy", "w4n": "nearest"}
    w4, w4n = load_int_model(tmp_path / "w4"), load_int_model(tmp_path / "w4n")
    assert any(not np.array_equal(a.weight, b.weight) for a, b in zip(w4.compute_layers, w4n.compute_layers))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["quantize", str(ckpt), "--rounding", "up", "-o", str(tmp_path / "never")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --rounding: invalid choice: 'up'" in err
    assert not (tmp_path / "never").exists()


SHIPPED = Path(__file__).resolve().parents[3] / "checkpoints" / "lenet5_bn_adder_fmnist.pt"


def test_cli_bits_file(tmp_path, capsys):
    """--bits-file: per-layer weight bits of the shipped LeNet, in the manifest and the quantization dict;
    golden == fake-quant; every adder layer's codes within 2**bits steps of its grid."""
    import torch

    from quant.quantizer.fakequant import FakeQuantModel

    bits = {"conv1": 6, "conv2": 4, "fc1": 3, "fc3": 5}
    f = tmp_path / "bits.json"
    f.write_text(json.dumps(bits))
    out = tmp_path / "mixed"
    assert main(["quantize", str(SHIPPED), "--bits", "8", "--bits-file", str(f), "--calib", "48", "--eval", "20",
                 "-o", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["quantization"]["layer_bits"] == bits and manifest["quantization"]["bits"] == 8
    im = load_int_model(out)
    adders = [l for l in im.compute_layers if l.pe == "adder"]
    assert [l.name for l in adders] == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    for layer in adders:
        want = bits.get(layer.name, 8)
        step = 1 << (layer.bits - want)
        assert layer.bits == 8 and layer.weight_bits == want
        assert np.all(layer.weight % step == 0)
        assert 0 <= (layer.weight // step).min() and (layer.weight // step).max() < 1 << want
    xte, _ = load_dataset("fashion-mnist", "test")
    assert np.array_equal(golden.run(im, xte[:20]), FakeQuantModel(im).forward_int(torch.from_numpy(xte[:20])).numpy())


@pytest.mark.parametrize("text,args,message", [
    ("{not json", [], r"--bits-file \S+ is not JSON: .*"),
    ("[4, 5]", [], r'--bits-file \S+ must be a JSON object \{"layer": bits, \.\.\.\}, not a list'),
    ('{"conv1": "4"}', [], r"--bits-file \S+: the bits of layer 'conv1' must be an integer, not '4'"),
    ('{"conv1": 4.0}', [], r"--bits-file \S+: the bits of layer 'conv1' must be an integer, not 4\.0"),
    ('{"fc9": 4}', [], r"--bits-file names unknown layer 'fc9' \(adder layers: conv1, conv2, fc1, fc2, fc3\)"),
    ('{"conv1": 17}', ["--act-bits", "16"], r"weight bits of layer 'conv1' must be an integer in 2\.\.16, not 17"),
    ('{"conv1": 1}', [], r"weight bits of layer 'conv1' must be an integer in 2\.\.16, not 1"),
    ('{"conv1": 8}', ["--bits", "4"], r"weight bits of layer 'conv1' \(8\) must be <= act_bits \(4\): weights share "
                                      r"the activation grid"),
])
def test_cli_bad_bits_file(tmp_path, capsys, text, args, message):
    f = tmp_path / "bits.json"
    f.write_text(text)
    out = tmp_path / "never"
    capsys.readouterr()
    assert main(["quantize", str(SHIPPED), *args, "--bits-file", str(f), "--calib", "16", "--eval", "16",
                 "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert re.fullmatch("adderhw quantize: error: " + message, err), err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bits.json"]


def test_cli_bits_file_missing(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["quantize", str(SHIPPED), "--bits-file", str(tmp_path / "nope.json"), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("adderhw quantize: error: --bits-file") and "cannot read it" in err and "\n" not in err
    assert not out.exists()
