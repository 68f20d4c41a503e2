"""Training smoke test on a Fashion-MNIST subset, resume, augmentation, CLI."""

import pytest
import torch

from quant.training import checkpoint
from quant.training.datasets import FASHION_MNIST_DIR, IDX_FILES
from quant.training.train import TrainConfig, augment_batch, fit_images, train
from scripts.cli import main

def test_fashion_mnist_is_installed():
    """dataset-fashion-mnist is a required package (setup.sh installs it): missing is a failure, not a skip."""
    assert (FASHION_MNIST_DIR / IDX_FILES[("train", "images")]).exists()

SMOKE = dict(model="lenet5-bn", kind="adder", dataset="fashion-mnist", batch_size=64, lr=0.1,
             train_limit=3000, test_limit=1000, seed=0, threads=1)


def test_smoke_adder_beats_chance(tmp_path):
    lines = []
    res = train(TrainConfig(epochs=2, **SMOKE), tmp_path / "a.pt", progress=False, log=lines.append)
    # chance is 10%; a 3000-image, 2-epoch run reaches ~70%
    assert res.accuracy > 55.0, res.history
    assert len(lines) == 2 and "test" in lines[-1]
    ck = checkpoint.load(tmp_path / "a.pt")
    assert ck.meta["epochs"] == 2 and ck.meta["accuracy"] == res.accuracy
    assert ck.meta["kind"] == "adder" and len(ck.meta["history"]) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]


def test_resume_equals_uninterrupted(tmp_path):
    cfg = TrainConfig(epochs=2, **{**SMOKE, "train_limit": 640, "test_limit": 200})
    full = train(cfg, tmp_path / "full.pt", progress=False, log=lambda s: None)
    part = tmp_path / "part.pt"
    _train_one_epoch_of(cfg, part)
    lines = []
    resumed = train(cfg, part, resume=True, progress=False, log=lines.append)
    assert lines[0] == f"resuming {part} after epoch 1/2"
    assert resumed.accuracy == full.accuracy
    sd_full = checkpoint.load(tmp_path / "full.pt").model.state_dict()
    sd_res = checkpoint.load(part).model.state_dict()
    for k in sd_full:
        assert torch.equal(sd_full[k], sd_res[k]), k
    assert torch.load(part, weights_only=True)["train_state"]["epoch"] == 2


def _train_one_epoch_of(cfg, path):
    """Run ``cfg`` but stop after its first epoch, as an interrupted run would."""
    class Stop(Exception):
        pass

    def log(line):
        raise Stop

    with pytest.raises(Stop):
        train(cfg, path, progress=False, log=log)
    assert torch.load(path, weights_only=True)["train_state"]["epoch"] == 1


def test_resume_refuses_other_recipe(tmp_path):
    cfg = TrainConfig(epochs=2, **{**SMOKE, "train_limit": 256, "test_limit": 100})
    _train_one_epoch_of(cfg, tmp_path / "r.pt")
    other = TrainConfig(epochs=2, **{**SMOKE, "train_limit": 256, "test_limit": 100, "lr": 0.05})
    with pytest.raises(ValueError, match="different recipe .*lr: checkpoint 0.1, now 0.05"):
        train(other, tmp_path / "r.pt", resume=True, progress=False)


def test_resume_needs_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume"):
        train(TrainConfig(epochs=1, **SMOKE), tmp_path / "none.pt", resume=True, progress=False)


def test_augment_batch_crop_and_flip():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    gen = torch.Generator().manual_seed(0)
    out = augment_batch(x, 0, True, gen)
    for i in range(2):
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(2))
    gen = torch.Generator().manual_seed(1)
    out = augment_batch(x, 1, False, gen)
    assert out.shape == x.shape
    for i in range(2):
        padded = torch.nn.functional.pad(x[i], (1, 1, 1, 1))
        windows = [padded[:, a:a + 4, b:b + 4] for a in range(3) for b in range(3)]
        assert any(torch.equal(out[i], w) for w in windows)


def test_augment_batch_cutout():
    """Cutout blacks out one clipped square per image, of side at most ``cutout``, and nothing else."""
    x = torch.full((64, 2, 9, 9), 7, dtype=torch.uint8)
    out = augment_batch(x, 0, False, torch.Generator().manual_seed(3), cutout=4)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert torch.equal(out[:, 0], out[:, 1])  # the same hole in every channel
    sizes = set()
    for img in out[:, 0]:
        assert set(img.unique().tolist()) <= {0, 7}
        ys, xs = torch.nonzero(img == 0, as_tuple=True)
        assert len(ys) > 0
        h, w = int(ys.max() - ys.min()) + 1, int(xs.max() - xs.min()) + 1
        assert h <= 4 and w <= 4 and len(ys) == h * w  # one rectangle
        sizes.add((h, w))
    assert (4, 4) in sizes and len(sizes) > 1  # full squares inside, clipped ones at the border


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs must be a positive integer, not 0"),
    ({"model": "vgg"}, "unknown model 'vgg'"),
    ({"model": "resnet20"}, "takes \\(3, 32, 32\\) inputs, not fashion-mnist images"),
    ({"lr": -1.0}, "lr must be a positive number"),
    ({"cutout": -2}, "cutout must be a non-negative integer, not -2"),
    ({"warmup_epochs": 5, "epochs": 5}, "warmup_epochs \\(5\\) must be smaller than epochs \\(5\\)"),
])
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_cli_train_and_eval(tmp_path, capsys):
    out = tmp_path / "cnn.pt"
    rc = main(["train", "--kind", "cnn", "--epochs", "1", "--train-limit", "1000", "--test-limit", "500",
               "--out", str(out), "--no-progress", "--threads", "1"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "epoch 1/1" in text and f"{out}: lenet5-bn (cnn) on fashion-mnist: test accuracy" in text
    rc = main(["eval", str(out), "--limit", "500", "--threads", "1"])
    assert rc == 0
    stored = checkpoint.load(out).meta["accuracy"]
    assert f"test: {stored:.2f}% of 500 images (stored: {stored:.2f}%)" in capsys.readouterr().out


def test_cli_eval_errors_are_one_line(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing.pt")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"adderhw eval: error: checkpoint not found: {tmp_path / 'missing.pt'}"]


def test_existing_out_refused_without_resume_or_force(tmp_path, capsys):
    out = tmp_path / "done.pt"
    out.write_bytes(b"finished run")
    with pytest.raises(FileExistsError, match="done.pt already exists; pass --resume to continue it or --force"):
        train(TrainConfig(epochs=1, **SMOKE), out, progress=False)
    args = ["train", "--epochs", "1", "--train-limit", "128", "--test-limit", "50", "--out", str(out),
            "--no-progress", "--threads", "1"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"adderhw train: error: {out} already exists; pass --resume to continue it or --force to overwrite it"]
    assert out.read_bytes() == b"finished run"
    assert main(args + ["--resume", "--force"]) == 1
    assert "--resume and --force exclude each other" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0
    assert checkpoint.load(out).meta["epochs"] == 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_checkpoint_refused_naming_the_tensor(tmp_path, capsys, bad):
    from quant.net.models import build_model

    net = build_model("lenet5-bn", "adder")
    with torch.no_grad():
        net.fc2.adder[3, 4] = bad
    path = checkpoint.save(tmp_path / "bad.pt", net, {"model": "lenet5-bn", "kind": "adder", "dataset": "fashion-mnist"})
    what = "1 NaN, 0 Inf" if bad != bad else "0 NaN, 1 Inf"
    with pytest.raises(ValueError, match=f"bad.pt has non-finite values in fc2.adder \\({what} of 10080\\); refused"):
        checkpoint.load(path)
    sd = net.state_dict()
    sd["bn3.running_var"][0] = bad  # buffers too, and bare state dicts
    torch.save(sd, tmp_path / "bare.pt")
    assert main(["eval", str(tmp_path / "bare.pt"), "--limit", "10"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "non-finite values in" in err[0]


def test_mid_epoch_resume_equals_uninterrupted(tmp_path):
    """Checkpoints every 3 steps (10 steps per epoch); stopped after the save at epoch 2 step 6, resumed."""
    cfg = TrainConfig(epochs=2, **{**SMOKE, "train_limit": 640, "test_limit": 200, "crop_pad": 1, "cutout": 4})
    full = train(cfg, tmp_path / "full.pt", progress=False, log=lambda s: None)
    part = tmp_path / "part.pt"

    class Stop(Exception):
        pass

    def log(line):
        if line.startswith(f"saved {part} at epoch 2/2, step 6/10"):
            raise Stop

    with pytest.raises(Stop):
        train(cfg, part, progress=False, log=log, checkpoint_every=3)
    saved = torch.load(part, weights_only=True)
    assert saved["train_state"]["epoch"] == 1 and saved["train_state"]["step"] == 6
    assert saved["partial_epoch"] == {"epoch": 2, "step": 6, "steps": 10}
    lines = []
    resumed = train(cfg, part, resume=True, progress=False, log=lines.append, checkpoint_every=3)
    assert lines[0] == f"resuming {part} at epoch 2/2, step 6/10"
    assert resumed.accuracy == full.accuracy
    a, b = torch.load(tmp_path / "full.pt", weights_only=True), torch.load(part, weights_only=True)
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    assert "step" not in b["train_state"] and "partial_epoch" not in b
    with pytest.raises(ValueError, match="checkpoint_every must be a non-negative integer, not -1"):
        train(cfg, tmp_path / "x.pt", progress=False, checkpoint_every=-1)


def test_fit_images_pads_and_replicates():
    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.uint8).reshape(2, 1, 2, 3) + 1
    y = fit_images(x, (3, 5, 6))
    assert y.shape == (2, 3, 5, 6)
    for c in range(3):
        assert torch.equal(y[:, c, 1:3, 1:4], x[:, 0])
    assert int(y.sum()) == 3 * int(x.sum())  # the rest is black
    with pytest.raises(ValueError, match=r"cannot fit \(1, 2, 3\) images into \(3, 1, 6\) inputs"):
        fit_images(x, (3, 1, 6))
    assert TrainConfig(model="resnet20", fit_input=True).recipe()["fit_input"] is True


def test_cli_fit_input_resnet_and_eval(tmp_path, capsys):
    out = tmp_path / "r20.pt"
    rc = main(["train", "--model", "resnet20", "--kind", "cnn", "--fit-input", "--epochs", "1", "--batch-size", "16",
               "--train-limit", "32", "--test-limit", "16", "--out", str(out), "--no-progress", "--threads", "1",
               "--checkpoint-every", "1"])
    assert rc == 0
    text = capsys.readouterr().out
    assert f"saved {out} at epoch 1/1, step 1/2" in text
    meta = checkpoint.load(out).meta
    assert meta["input_fit"]["from"] == [1, 28, 28] and meta["input_fit"]["to"] == [3, 32, 32]
    assert main(["eval", str(out), "--threads", "1", "--limit", "16"]) == 0  # eval fits the images too
    acc = meta["accuracy"]
    assert f"test: {acc:.2f}% of 16 images (stored: {acc:.2f}%)" in capsys.readouterr().out


def test_resume_without_teacher_ignores_kd_fields(tmp_path):
    """A run without a teacher stores kd_* fields it never used (older defaults: T 4, A 0.9); resume ignores them."""
    cfg = TrainConfig(epochs=2, **{**SMOKE, "train_limit": 256, "test_limit": 100})
    path = tmp_path / "r.pt"
    _train_one_epoch_of(cfg, path)
    obj = torch.load(path, weights_only=True)
    obj["train_state"]["recipe"].update(kd_temperature=4.0, kd_weight=0.9)
    torch.save(obj, path)
    res = train(cfg, path, resume=True, progress=False, log=lambda s: None)
    assert len(res.history) == 2
