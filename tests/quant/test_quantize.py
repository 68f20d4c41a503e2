"""Tests of quant.quantize (and the quantize/predict CLI in quant.cli_quantize)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from quant import golden
from quant.artifact import load_int_model
from quant.checkpoint import save
from quant.datasets import NORMALIZATION, load_dataset
from quant.intops import exact_clamp, fixed_point_params, requant_fixed
from quant.models import lenet5_bn
from quant.calibrate import recalibrate_bn
from quant.quantize import QuantConfig, quantize_model
from scripts.cli import main

SEED = 99
FM = NORMALIZATION["fashion-mnist"]


@pytest.fixture(scope="module")
def data():
    xtr, _ = load_dataset("fashion-mnist", "train")
    xte, yte = load_dataset("fashion-mnist", "test")
    return xtr[:256], xte[:200], yte[:200]


def _lenet(xtr, seed=SEED):
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    return recalibrate_bn(lenet5_bn("adder"), xtr, *FM)


def test_quant_config_validation():
    assert QuantConfig(bits=4).act_bits == 4
    assert QuantConfig().percentile is None  # auto: best clipping percentile by MSE
    with pytest.raises(ValueError, match="bits must be an integer in 2..16, not 17"):
        QuantConfig(bits=17)
    with pytest.raises(ValueError, match=r"act_bits \(4\) must be >= bits \(6\)"):
        QuantConfig(bits=6, act_bits=4)
    with pytest.raises(ValueError, match="percentile must be in"):
        QuantConfig(percentile=20)
    with pytest.raises(ValueError, match="group-shared scales are not implemented"):
        QuantConfig(groups=4)


@settings(max_examples=60, deadline=None)
@given(bits=st.integers(2, 10), o=st.integers(1, 4), k=st.integers(1, 30), seed=st.integers(0, 2**32 - 1))
def test_exact_clamp_with_compensation_changes_no_integer_output(bits, o, k, seed):
    """Integer weights far outside [0, qmax]: clamping them and folding C_o into n is exact."""
    rng = np.random.default_rng(seed)
    qmax = (1 << bits) - 1
    w = rng.integers(-4 * qmax, 5 * qmax + 1, size=(o, k))  # integer codes, many out of range
    x = rng.integers(0, qmax + 1, size=(k, 7))
    clamped, comp = exact_clamp(w, qmax)
    assert np.array_equal(comp, np.rint(comp))  # integer codes give integer compensation
    acc_raw = np.abs(x[None, :, :] - w[:, :, None]).sum(1)
    acc = golden.adder_acc(x, clamped.astype(np.int64))
    assert np.array_equal(acc_raw, acc + comp.astype(np.int64)[:, None])
    a = rng.uniform(-2, 2, size=o) * qmax / (k * qmax + 1)
    b = rng.uniform(0, qmax, size=o)
    m, n, shift = fixed_point_params(a, b)
    q_raw = requant_fixed(acc_raw, m, n, shift, 0, qmax)
    q_clamped = requant_fixed(acc, m, n + m * comp.astype(np.int64), shift, 0, qmax)
    assert np.array_equal(q_raw, q_clamped)


def test_first_layer_weights_are_the_clamped_codes(data):
    xtr, _, _ = data
    model = _lenet(xtr)
    im, _ = quantize_model(model, xtr[:128], mean=FM[0], std=FM[1], cfg=QuantConfig(bits=6))
    conv1 = im.layer("conv1")
    s, z = conv1.in_scale, conv1.in_zero_point
    assert (s, z) == (im.input.scale, im.input.zero_point)
    w = model.conv1.adder.detach().double().numpy().reshape(6, -1)
    clamped, comp = exact_clamp(w / s + z, 63)
    assert np.array_equal(conv1.weight, np.rint(clamped).astype(np.int64))
    assert np.allclose(conv1.compensation, comp)
    assert conv1.acc_bits == 6 + 5  # K = 25
    # moving weights that are above the range further out changes only the compensation
    with torch.no_grad():
        hi_real = s * (63 - z)
        wt = model.conv1.adder
        mask = wt > hi_real
        assert mask.any()
        wt[mask] += 10.0
    im2, _ = quantize_model(model, xtr[:128], mean=FM[0], std=FM[1], cfg=QuantConfig(bits=6))
    c2 = im2.layer("conv1")
    assert np.array_equal(c2.weight, conv1.weight)
    moved = mask.reshape(6, -1).sum(1).numpy()
    assert np.allclose(c2.compensation - conv1.compensation, moved * 10.0 / s)


def test_threshold_and_fixed_modes_give_identical_outputs(data):
    xtr, xte, _ = data
    model = _lenet(xtr)
    imf, _ = quantize_model(model, xtr[:128], mean=FM[0], std=FM[1], cfg=QuantConfig(bits=4, requant="fixed"))
    imt, _ = quantize_model(model, xtr[:128], mean=FM[0], std=FM[1], cfg=QuantConfig(bits=4, requant="threshold"))
    modes = [l.requant.mode for l in imt.compute_layers]
    assert modes == ["threshold"] * 4 + ["fixed"]  # the logits stay fixed point
    assert imt.logits_requant.out_bits == 16 and imt.logits_requant.out_signed
    assert np.array_equal(golden.run(imf, xte), golden.run(imt, xte))


def test_act_bits_put_weights_on_a_coarser_grid(data):
    xtr, _, _ = data
    im, _ = quantize_model(_lenet(xtr), xtr[:128], mean=FM[0], std=FM[1], cfg=QuantConfig(bits=4, act_bits=8))
    for layer in im.compute_layers:
        assert layer.bits == 8 and layer.weight_bits == 4
        assert np.all(layer.weight % 16 == 0) and layer.weight.max() <= 240


def test_int8_tracks_float(data):
    xtr, xte, _ = data
    model = _lenet(xtr)
    im, fmap = quantize_model(model, xtr[:128], mean=FM[0], std=FM[1], cfg=QuantConfig(bits=8))
    with torch.no_grad():
        fl = model((torch.from_numpy(xte) - FM[0][0]) / FM[1][0]).numpy()
    agree = np.mean(golden.run(im, xte).argmax(1) == fl.argmax(1))
    assert agree >= 0.97, agree
    assert set(fmap) == {l.name for l in im.layers}


def test_unsupported_operation_is_named():
    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x):
            return torch.sigmoid(self.fc(x.flatten(1)))

    with pytest.raises(ValueError, match="operation .*sigmoid.* is not supported"):
        quantize_model(Odd(), np.random.default_rng(0).random((4, 1, 2, 2), dtype=np.float32), mean=(0.0,), std=(1.0,), cfg=QuantConfig())


# --- CLI ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, data):
    xtr, _, _ = data
    path = tmp_path_factory.mktemp("ck") / "lenet.pt"
    save(path, _lenet(xtr), {"model": "lenet5-bn", "kind": "adder", "dataset": "fashion-mnist"})
    return path


def test_cli_quantize_and_predict(ckpt, tmp_path, capsys):
    out = tmp_path / "int"
    rc = main(["quantize", str(ckpt), "--bits", "6", "--calib", "64", "--eval", "100", "--requant", "threshold",
               "--percentile", "99.9", "-o", str(out)])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "report.json", "report.md", "weights.npz"]
    rep = json.loads((out / "report.json").read_text())
    for key in ("float_accuracy", "int_accuracy", "bits", "layers", "ops_per_image"):
        assert key in rep
    assert rep["bits"] == 6 and rep["eval_images"] == 100 and rep["calib_images"] == 64
    assert all("sqnr_db" in row for row in rep["layers"] if row["kind"].startswith("adder"))
    assert rep["ops_per_image"]["additions"] >= 2 * 416_520
    im = load_int_model(out)
    assert im.quantization["requant"] == "threshold" and im.quantization["percentile"] == 99.9
    assert rep["percentile"] == 99.9 and rep["bias_correction"] is True

    xte, _ = load_dataset("fashion-mnist", "test")
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


def test_bias_correction_matches_the_float_channel_means(data):
    xtr, _, _ = data
    model = _lenet(xtr)
    calib = xtr[:96]
    cfg = QuantConfig(bits=4, bias_correction_images=64)
    im, _ = quantize_model(model, calib, mean=FM[0], std=FM[1], cfg=cfg)
    off, _ = quantize_model(model, calib, mean=FM[0], std=FM[1], cfg=QuantConfig(bits=4, bias_correction=False))
    conv1, conv1_off = im.layer("conv1"), off.layer("conv1")
    assert np.array_equal(conv1.weight, conv1_off.weight) and not np.array_equal(conv1.requant.n, conv1_off.requant.n)
    rq = conv1.requant
    acc = golden.layer_acc(conv1, golden.quantize_input(calib[:64], im.input))  # [N, O, P]
    y_int = (rq.m[None, :, None] * acc + rq.n[None, :, None] - 2 ** (rq.shift - 1)) / 2.0**rq.shift
    y_int = (y_int - rq.out_zero_point) * rq.out_scale  # the real BN output the codes stand for, before clamping
    with torch.no_grad():
        y_float = model.bn1(model.conv1((torch.from_numpy(calib[:64]) - FM[0][0]) / FM[1][0])).double().numpy()
    err = y_int.mean(axis=(0, 2)) - y_float.mean(axis=(0, 2, 3))
    assert np.all(np.abs(err) < 0.01 * rq.out_scale), err  # a hundredth of an output LSB


def test_cli_data_root_for_calibration_and_evaluation(data, tmp_path, capsys):
    """A model of another dataset quantizes against the folder given with --data-root.

    The folder holds IDX files under MNIST's names (Fashion-MNIST's bytes: same format).
    """
    from quant.datasets import FASHION_MNIST_DIR, IDX_FILES

    xtr, _, _ = data
    root = tmp_path / "mnist"
    root.mkdir()
    for name in IDX_FILES.values():
        (root / name).symlink_to(FASHION_MNIST_DIR / name)
    ck = tmp_path / "mnist_lenet.pt"
    save(ck, _lenet(xtr), {"model": "lenet5-bn", "kind": "adder", "dataset": "mnist"})
    out = tmp_path / "int"
    assert main(["quantize", str(ck), "--calib", "32", "--eval", "60", "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert "no calibration data for mnist" in err and "--data-root DIR" in err and "\n" not in err
    assert not out.exists()
    assert main(["quantize", str(ck), "--data-root", str(root), "--calib", "32", "--eval", "60", "-o", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["eval_images"] == 60 and rep["eval_split"] == "test" and rep["int_accuracy"] is not None
    np.save(tmp_path / "calib.npy", xtr[:32])
    capsys.readouterr()
    # a named folder without the test set is an error, not a silent fallback to agreement
    assert main(["quantize", str(ck), "--data-root", str(tmp_path / "nowhere"), "--calib-data",
                 str(tmp_path / "calib.npy"), "-o", str(tmp_path / "never")]) == 1
    err = capsys.readouterr().err
    assert "mnist folder not found" in err and "nowhere" in err and err.count("\n") == 1
    assert not (tmp_path / "never").exists()
