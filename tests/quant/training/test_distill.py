"""Distillation (quant.training.distill): the loss against hand-written formulas, teacher checks, smoke and resume runs."""

import math
from pathlib import Path

import pytest
import torch

from quant.training import checkpoint
from quant.training.distill import (
    FEATURE_TAPS, FeatureTap, distillation_loss, feature_distance, kd_logit_loss, load_teacher, sha256_file,
)
from quant.net.models import LeNet5BN, build_model
from quant.training.train import TrainConfig, train
from scripts.cli import main

REPO = Path(__file__).resolve().parents[3]
TEACHER = REPO / "checkpoints" / "lenet5_bn_cnn_fmnist.pt"
STUDENT_CKPT = REPO / "checkpoints" / "lenet5_bn_adder_fmnist.pt"

SMOKE = dict(model="lenet5-bn", kind="adder", dataset="fashion-mnist", batch_size=64, lr=0.1,
             train_limit=3000, test_limit=1000, seed=0, threads=1)


def _softmax(row, t):
    e = [math.exp(v / t) for v in row]
    z = sum(e)
    return [v / z for v in e]


def test_logit_loss_equals_hand_formula():
    seed = 5
    print("seed", seed)
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(3, 4, generator=g, dtype=torch.float64) * 3
    t = torch.randn(3, 4, generator=g, dtype=torch.float64) * 3
    y = torch.tensor([0, 3, 1])
    T, A = 2.5, 0.7
    kl = 0.0
    for n in range(3):
        ps, pt = _softmax(s[n].tolist(), T), _softmax(t[n].tolist(), T)
        kl += sum(b * math.log(b / a) for a, b in zip(ps, pt))
    kl = T * T * kl / 3
    ce = sum(-math.log(_softmax(s[n].tolist(), 1.0)[int(y[n])]) for n in range(3)) / 3
    assert float(kd_logit_loss(s, t, T)) == pytest.approx(kl, rel=1e-12)
    got = distillation_loss(s, t, y, temperature=T, weight=A)
    assert float(got) == pytest.approx((1 - A) * ce + A * kl, rel=1e-12)
    # A = 0 is plain cross-entropy; A = 1 is the soft term alone
    assert float(distillation_loss(s, t, y, temperature=T, weight=0.0)) == pytest.approx(ce, rel=1e-12)
    assert float(distillation_loss(s, t, y, temperature=T, weight=1.0)) == pytest.approx(kl, rel=1e-12)


def _unit(row):
    n = math.sqrt(sum(v * v for v in row))
    return [v / n for v in row]


def test_feature_distances_equal_hand_formulas():
    seed = 11
    print("seed", seed)
    g = torch.Generator().manual_seed(seed)
    fs = torch.randn(3, 2, 2, generator=g, dtype=torch.float64)
    ft = torch.randn(3, 2, 2, generator=g, dtype=torch.float64)
    us = [_unit(r) for r in fs.flatten(1).tolist()]
    ut = [_unit(r) for r in ft.flatten(1).tolist()]
    l2 = sum(sum((a - b) ** 2 for a, b in zip(us[n], ut[n])) for n in range(3)) / 3
    assert float(feature_distance(fs, ft, "l2")) == pytest.approx(l2, rel=1e-12)

    def gram(u):
        return [[math.exp(-0.5 * sum((a - b) ** 2 for a, b in zip(u[i], u[j]))) for j in range(3)] for i in range(3)]

    ks, kt = gram(us), gram(ut)
    kern = sum((ks[i][j] - kt[i][j]) ** 2 for i in range(3) for j in range(3)) / 9
    assert float(feature_distance(fs, ft, "kernel")) == pytest.approx(kern, rel=1e-9, abs=1e-15)
    # the total adds B times the mean over blocks
    s, t, y = torch.zeros(3, 4, dtype=torch.float64), torch.zeros(3, 4, dtype=torch.float64), torch.tensor([0, 1, 2])
    base = float(distillation_loss(s, t, y, temperature=4.0, weight=0.5))
    got = distillation_loss(s, t, y, temperature=4.0, weight=0.5, student_features=[fs, fs],
                            teacher_features=[ft, fs], feature_weight=2.0, feature_kind="l2")
    assert float(got) == pytest.approx(base + 2.0 * (l2 + 0.0) / 2, rel=1e-12)
    with pytest.raises(ValueError, match="feature distance must be one of l2, kernel, not 'cos'"):
        feature_distance(fs, ft, "cos")
    with pytest.raises(ValueError, match=r"feature shapes differ: student \(3, 2, 2\), teacher \(3, 4\)"):
        feature_distance(fs, ft.flatten(1), "l2")


def test_feature_tap_keeps_block_outputs():
    net = build_model("lenet5-bn", "cnn").eval()
    tap = FeatureTap(net, FEATURE_TAPS["lenet5-bn"])
    net(torch.zeros(2, 1, 28, 28))
    assert [tuple(o.shape) for o in tap.outputs] == [(2, 6, 28, 28), (2, 16, 10, 10), (2, 120), (2, 84)]
    tap.close()
    with pytest.raises(ValueError, match="LeNet5BN has no module\\(s\\) layer1 to take features from"):
        FeatureTap(net, ("layer1",))


def test_teacher_loads_and_records_sha():
    student = build_model("lenet5-bn", "adder")
    t = load_teacher(TEACHER, student, "lenet5-bn", "fashion-mnist")
    assert not t.model.training and not any(p.requires_grad for p in t.model.parameters())
    rec = t.record()
    assert rec["sha256"] == sha256_file(TEACHER) and rec["path"] == str(TEACHER)
    assert rec["kind"] == "cnn" and rec["accuracy"] == 91.59
    assert student.training  # the shape check leaves the student as it was


def test_student_checkpoint_refused_as_teacher():
    with pytest.raises(ValueError, match=r"teacher .*lenet5_bn_adder_fmnist.pt is a checkpoint of kind 'adder'; "
                                         r"the teacher must be a trained CNN \(kind 'cnn'\)"):
        load_teacher(STUDENT_CKPT, build_model("lenet5-bn", "adder"), "lenet5-bn", "fashion-mnist")


def test_teacher_of_other_architecture_refused(tmp_path):
    path = checkpoint.save(tmp_path / "r20.pt", build_model("resnet20", "cnn"),
                           {"model": "resnet20", "kind": "cnn", "dataset": "cifar10"})
    with pytest.raises(ValueError, match="is model 'resnet20', the student is 'lenet5-bn'"):
        load_teacher(path, build_model("lenet5-bn", "adder"), "lenet5-bn", "fashion-mnist")
    mnist = checkpoint.save(tmp_path / "m.pt", build_model("lenet5-bn", "cnn"),
                            {"model": "lenet5-bn", "kind": "cnn", "dataset": "mnist"})
    with pytest.raises(ValueError, match="was trained on mnist, the student trains on fashion-mnist"):
        load_teacher(mnist, build_model("lenet5-bn", "adder"), "lenet5-bn", "fashion-mnist")
    # same model name, other shape (a 5-class student): named where it differs
    with pytest.raises(ValueError, match=r"does not match the student at logits: teacher \(2, 10\), student \(2, 5\)"):
        load_teacher(TEACHER, LeNet5BN("adder", num_classes=5), "lenet5-bn", "fashion-mnist")


@pytest.mark.parametrize("kwargs, message", [
    ({"kd_weight": 0.9}, "kd_weight need\\(s\\) a teacher"),
    ({"teacher": "t.pt", "kd_weight": 1.5}, "kd_weight must be in \\[0, 1\\], not 1.5"),
    ({"teacher": "t.pt", "kd_temperature": 0.0}, "kd_temperature must be a positive number, not 0.0"),
    ({"teacher": "t.pt", "kd_feature_weight": -1.0}, "kd_feature_weight must be a non-negative number"),
    ({"teacher": "t.pt", "kd_feature": "cos"}, "kd_feature must be one of l2, kernel, not 'cos'"),
])
def test_kd_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_distillation_smoke_beats_chance_widely(tmp_path):
    """2 epochs on 3000 images with the shipped CNN teacher and the feature term: asserts the run works
    and beats chance (10 %) widely (> 55 %; it reaches ~75 %), and that the metadata names the teacher."""
    cfg = TrainConfig(epochs=2, teacher=str(TEACHER), kd_feature_weight=1.0, **SMOKE)
    res = train(cfg, tmp_path / "kd.pt", progress=False, log=lambda s: None)
    assert res.accuracy > 55.0, res.history
    meta = checkpoint.load(tmp_path / "kd.pt").meta
    assert meta["teacher"]["sha256"] == sha256_file(TEACHER)
    assert meta["recipe"]["teacher"] == str(TEACHER) and meta["recipe"]["kd_feature_weight"] == 1.0
    ts = torch.load(tmp_path / "kd.pt", weights_only=True)["train_state"]
    assert ts["recipe"]["teacher_sha256"] == sha256_file(TEACHER) and ts["recipe"]["kd_weight"] == 0.5


def _stop_after_one_epoch(cfg, path):
    class Stop(Exception):
        pass

    def log(line):
        raise Stop

    with pytest.raises(Stop):
        train(cfg, path, progress=False, log=log)


def test_distillation_resume_is_bit_identical(tmp_path):
    cfg = TrainConfig(epochs=2, teacher=str(TEACHER), kd_feature_weight=0.5,
                      **{**SMOKE, "train_limit": 640, "test_limit": 200})
    full = train(cfg, tmp_path / "full.pt", progress=False, log=lambda s: None)
    part = tmp_path / "part.pt"
    _stop_after_one_epoch(cfg, part)
    resumed = train(cfg, part, resume=True, progress=False, log=lambda s: None)
    assert resumed.accuracy == full.accuracy
    a = torch.load(tmp_path / "full.pt", weights_only=True)
    b = torch.load(part, weights_only=True)
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    # another teacher file (same path name, other bytes) or another kd setting is a different recipe
    other = TrainConfig(epochs=2, teacher=str(TEACHER), kd_feature_weight=0.25,
                        **{**SMOKE, "train_limit": 640, "test_limit": 200})
    with pytest.raises(ValueError, match="different recipe .*kd_feature_weight: checkpoint 0.5, now 0.25"):
        train(other, part, resume=True, progress=False)
    moved = tmp_path / "teacher.pt"
    sd = checkpoint.load(TEACHER).model
    checkpoint.save(moved, sd, {"model": "lenet5-bn", "kind": "cnn", "dataset": "fashion-mnist", "accuracy": 1.0})
    with pytest.raises(ValueError, match="different recipe .*teacher_sha256: checkpoint '[0-9a-f]{64}', now '[0-9a-f]{64}'"):
        train(TrainConfig(epochs=2, teacher=str(moved), kd_feature_weight=0.5,
                          **{**SMOKE, "train_limit": 640, "test_limit": 200}), part, resume=True, progress=False)


def test_cli_distillation_flags(tmp_path, capsys):
    out = tmp_path / "kd.pt"
    rc = main(["train", "--epochs", "1", "--train-limit", "256", "--test-limit", "100", "--out", str(out),
               "--no-progress", "--threads", "1", "--teacher", str(TEACHER), "--kd-temperature", "3",
               "--kd-weight", "0.8", "--kd-feature-weight", "0.5", "--kd-feature", "l2"])
    assert rc == 0
    recipe = checkpoint.load(out).meta["recipe"]
    assert (recipe["kd_temperature"], recipe["kd_weight"], recipe["kd_feature_weight"], recipe["kd_feature"]) == \
        (3.0, 0.8, 0.5, "l2")
    capsys.readouterr()
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "x.pt"), "--kd-weight", "0.5"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == ["adderhw train: error: --kd-weight need(s) --teacher"]
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "y.pt"), "--teacher", str(STUDENT_CKPT),
                 "--train-limit", "64", "--test-limit", "10", "--threads", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a checkpoint of kind 'adder'" in err[0]
    assert not (tmp_path / "y.pt").exists()
