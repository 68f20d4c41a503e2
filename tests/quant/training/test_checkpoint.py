"""Checkpoint save/load: our format, bare reference state dicts, refusals."""

import os
import pickle

import numpy as np
import pytest
import torch

from quant.training import checkpoint
from quant.net.models import lenet5_bn, resnet20


def reference_state_dict(keys, seed=0, prefix="module."):
    """A state dict in the reference ResNet-20 layout, built from the documented keys."""
    g = torch.Generator().manual_seed(seed)
    shapes = {"conv1.weight": (16, 3, 3, 3), "fc.weight": (10, 64, 1, 1)}
    chans = {"bn1": 16, "bn2": 10}
    sd = {}
    for key in keys:
        parts = key.split(".")
        if key in shapes:
            shape = shapes[key]
        elif key.endswith(".adder"):
            layer = int(parts[0][-1])
            block = int(parts[1])
            cout = 16 * 2 ** (layer - 1)
            cin = cout // 2 if (block == 0 and layer > 1 and (parts[2] == "conv1" or parts[2] == "downsample")) else cout
            k = 1 if parts[2] == "downsample" else 3
            shape = (cout, cin, k, k)
        else:
            if key.startswith("layer"):
                shape = (16 * 2 ** (int(parts[0][-1]) - 1),)
            else:
                shape = (chans[parts[0]],)
        t = torch.randn(shape, generator=g) * 10
        if key.endswith("running_var"):
            t = t.abs() + 0.5
        sd[prefix + key] = t
    return sd


def test_reference_layout_loads_into_resnet20(tmp_path, reference_resnet_keys):
    sd = reference_state_dict(reference_resnet_keys(3))
    path = tmp_path / "ref.pth"
    torch.save(sd, path)
    ck = checkpoint.load(path)
    assert ck.meta["model"] == "resnet20" and ck.meta["kind"] == "adder"
    assert ck.meta["dataset"] == "cifar10"
    assert ck.meta["normalization"]["mean"] == [0.4914, 0.4822, 0.4465]
    assert not ck.model.training
    loaded = ck.model.state_dict()
    for k, v in sd.items():
        assert torch.equal(loaded[k[len("module."):]], v), k
    with torch.no_grad():
        assert ck.model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_reference_without_prefix_and_explicit_model(tmp_path, reference_resnet_keys):
    path = tmp_path / "ref.pth"
    torch.save(reference_state_dict(reference_resnet_keys(3), seed=1, prefix=""), path)
    ck = checkpoint.load(path, model="resnet20", kind="adder", dataset="cifar10")
    assert ck.meta["format"] == "state-dict"


def test_wrong_shape_and_keys_listed(tmp_path, reference_resnet_keys):
    sd = reference_state_dict(reference_resnet_keys(3))
    sd["module.layer2.1.conv2.adder"] = torch.zeros(32, 32, 5, 5)
    del sd["module.layer3.0.downsample.0.adder"]
    sd["module.layer4.0.conv1.adder"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    with pytest.raises(ValueError) as exc:
        checkpoint.load(path, model="resnet20")
    msg = str(exc.value)
    assert "layer2.1.conv2.adder" in msg and "(32, 32, 5, 5)" in msg and "(32, 32, 3, 3)" in msg
    assert "missing keys: layer3.0.downsample.0.adder" in msg
    assert "unexpected keys: layer4.0.conv1.adder" in msg
    assert str(path) in msg


def test_wrong_model_refused(tmp_path):
    path = tmp_path / "lenet.pth"
    torch.save(lenet5_bn("adder").state_dict(), path)
    with pytest.raises(ValueError, match="missing keys: conv1.weight"):
        checkpoint.load(path, model="resnet20", kind="adder")


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned-by-checkpoint",))


# A hand-written protocol-4 pickle makes torch warn about the protocol before it refuses the file.
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_code_executing_pickle_refused(tmp_path, writer, capfd):
    path = tmp_path / "evil.pt"
    obj = {"conv1.weight": Evil()}
    if writer == "torch":
        torch.save(obj, path)
    else:
        with open(path, "wb") as fh:
            pickle.dump(obj, fh)
    with pytest.raises(ValueError, match="could execute code") as exc:
        checkpoint.load(path)
    assert str(path) in str(exc.value)
    assert "pwned" not in capfd.readouterr().out


def test_truncated_refused(tmp_path):
    good = tmp_path / "good.pt"
    checkpoint.save(good, lenet5_bn("adder"), {"model": "lenet5-bn", "kind": "adder", "dataset": "fashion-mnist"})
    bad = tmp_path / "trunc.pt"
    bad.write_bytes(good.read_bytes()[:3000])
    with pytest.raises(ValueError, match="truncated or corrupt PyTorch file$"):
        checkpoint.load(bad)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"hello world")
    with pytest.raises(ValueError, match=f"cannot load checkpoint {junk}: not a PyTorch checkpoint$"):
        checkpoint.load(junk)


@pytest.mark.parametrize("content, why", [
    ("random", "not a PyTorch checkpoint"),
    ("npy", "it is a numpy .npy file, not a PyTorch checkpoint"),
    ("plain_pickle", "not a PyTorch checkpoint"),
])
def test_non_checkpoints_are_named_for_what_they_are(tmp_path, content, why, capfd):
    """Only a pickle naming a global "could execute code" (issue 17, defect 9)."""
    path = tmp_path / "x.pt"
    if content == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    elif content == "npy":
        with open(path, "wb") as fh:
            np.save(fh, np.zeros(4))
    else:
        with open(path, "wb") as fh:
            pickle.dump({"conv1.weight": [1.0, 2.0]}, fh, protocol=4)
    with pytest.raises(ValueError) as exc:
        checkpoint.load(path)
    assert str(exc.value) == f"cannot load checkpoint {path}: {why}"
    assert "Warning" not in capfd.readouterr().err


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        checkpoint.load(tmp_path / "none.pt")


def test_own_format_roundtrip(tmp_path):
    torch.manual_seed(0)
    m = lenet5_bn("adder")
    m.bn5.running_mean.fill_(0.5)
    path = tmp_path / "sub" / "ck.pt"
    meta = {"model": "lenet5-bn", "kind": "adder", "dataset": "fashion-mnist", "accuracy": 91.5,
            "epochs": 3, "commit": "abc", "history": [{"epoch": 1, "test_acc": 80.0}]}
    checkpoint.save(path, m, meta, train_state={"epoch": 3})
    assert [p.name for p in path.parent.iterdir()] == ["ck.pt"]  # no temp file left behind
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["format"] == "adderhw-checkpoint" and raw["version"] == 1
    ck = checkpoint.load(path)
    assert ck.meta["accuracy"] == 91.5 and ck.meta["epochs"] == 3 and ck.meta["commit"] == "abc"
    assert ck.meta["normalization"] == {"mean": [0.2860], "std": [0.3530]}
    assert "state_dict" not in ck.meta and "train_state" not in ck.meta
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(ck.model(x), m.eval()(x))
    with pytest.raises(ValueError, match="is kind 'adder', not 'cnn'"):
        checkpoint.load(path, kind="cnn")


def test_save_validates_meta(tmp_path):
    m = lenet5_bn("cnn")
    with pytest.raises(ValueError, match="needs a string 'dataset'"):
        checkpoint.save(tmp_path / "a.pt", m, {"model": "lenet5-bn", "kind": "cnn"})
    with pytest.raises(ValueError, match="has type object"):
        checkpoint.save(tmp_path / "a.pt", m, {"model": "lenet5-bn", "kind": "cnn", "dataset": "mnist",
                                               "x": object()})
    with pytest.raises(ValueError, match="reserved key 'state_dict'"):
        checkpoint.save(tmp_path / "a.pt", m, {"model": "lenet5-bn", "kind": "cnn", "dataset": "mnist",
                                               "state_dict": {}})
    assert not any(tmp_path.iterdir())


def test_infer_model():
    assert checkpoint.infer_model(resnet20("cnn").state_dict()) == ("resnet20", "cnn")
    assert checkpoint.infer_model(lenet5_bn("cnn").state_dict()) == ("lenet5-bn", "cnn")
    with pytest.raises(ValueError, match="cannot tell which model"):
        checkpoint.infer_model(["a.weight"])


def test_strip_training_state(tmp_path):
    torch.manual_seed(5)
    m = lenet5_bn("cnn")
    src = tmp_path / "full.pt"
    checkpoint.save(src, m, {"model": "lenet5-bn", "kind": "cnn", "dataset": "fashion-mnist", "accuracy": 90.0},
                    train_state={"epoch": 1, "optimizer": {"state": {0: {"momentum_buffer": torch.ones(3)}}}})
    dst = checkpoint.strip_training_state(src, tmp_path / "out" / "small.pt")
    raw = torch.load(dst, weights_only=True)
    assert "train_state" not in raw and raw["accuracy"] == 90.0
    a, b = checkpoint.load(src), checkpoint.load(dst)
    assert a.meta == b.meta
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k])
    bare = tmp_path / "bare.pt"
    torch.save(m.state_dict(), bare)
    with pytest.raises(ValueError, match="is not an adderhw checkpoint"):
        checkpoint.strip_training_state(bare, tmp_path / "x.pt")


def test_fit_input_checkpoint_normalises_every_replicated_channel(tmp_path):
    """A ResNet trained with --fit-input on 1-channel images: its one-channel normalisation applies to
    the three replicated channels, so quantize and golden see the same inputs training did."""
    path = tmp_path / "r20.pt"
    meta = {"model": "resnet20", "kind": "adder", "dataset": "fashion-mnist",
            "normalization": {"mean": [0.286], "std": [0.353]},
            "input_fit": {"from": [1, 28, 28], "to": [3, 32, 32], "how": "test"}}
    checkpoint.save(path, resnet20("adder"), meta)
    ck = checkpoint.load(path)
    assert ck.meta["normalization"] == {"mean": [0.286] * 3, "std": [0.353] * 3}
    assert ck.meta["input_shape"] == [3, 32, 32]
