"""IDX and CIFAR-10 readers on files written in the test, plus the Debian Fashion-MNIST."""

import gzip
import os
import pickle

import numpy as np
import pytest

from quant.training import datasets
from quant.training.datasets import (
    CLASS_NAMES, FASHION_MNIST_DIR, IDX_FILES, NORMALIZATION, load_dataset, load_raw, read_idx,
)


def idx_bytes(arr: np.ndarray) -> bytes:
    assert arr.dtype == np.uint8
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.tobytes()


def write_mnist(root, n_train=7, n_test=5, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    data = {}
    for split, n in (("train", n_train), ("test", n_test)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labs = rng.integers(0, 10, n, dtype=np.uint8)
        data[split] = (imgs, labs)
        for part, arr in (("images", imgs), ("labels", labs)):
            name = IDX_FILES[(split, part)]
            if gz:
                with gzip.open(root / name, "wb") as fh:
                    fh.write(idx_bytes(arr))
            else:
                (root / name[:-3]).write_bytes(idx_bytes(arr))
    return data


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_roundtrip(tmp_path, gz):
    data = write_mnist(tmp_path, gz=gz)
    for split in ("train", "test"):
        x, y = load_dataset("mnist", split, root=tmp_path)
        imgs, labs = data[split]
        assert x.dtype == np.float32 and x.shape == (len(imgs), 1, 28, 28)
        assert y.dtype == np.int64
        np.testing.assert_array_equal(np.round(x[:, 0] * 255).astype(np.uint8), imgs)
        np.testing.assert_array_equal(y, labs)
        assert 0.0 <= x.min() and x.max() <= 1.0
        raw, _ = load_raw("mnist", split, root=tmp_path)
        assert raw.dtype == np.uint8 and np.array_equal(raw[:, 0], imgs)


def test_idx_bad_magic(tmp_path):
    p = tmp_path / "bad-idx"
    p.write_bytes(b"\x01\x02\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(p)


def test_idx_wrong_size(tmp_path):
    p = tmp_path / "short-idx"
    arr = np.zeros((4, 3, 3), dtype=np.uint8)
    p.write_bytes(idx_bytes(arr)[:-1])
    with pytest.raises(ValueError, match=r"IDX header says shape \(4, 3, 3\) \(36 bytes\) but the file holds 35"):
        read_idx(p)


def test_idx_corrupt_gzip(tmp_path):
    p = tmp_path / "x.gz"
    p.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="cannot read IDX file"):
        read_idx(p)


def test_mnist_needs_root():
    with pytest.raises(ValueError, match="has no default location"):
        load_dataset("mnist", "train")


def test_missing_file_names_path(tmp_path):
    write_mnist(tmp_path)
    os.remove(tmp_path / IDX_FILES[("test", "labels")])
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("mnist", "test", root=tmp_path)


def test_missing_fashion_names_debian_package(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIR", missing)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as exc:
        load_dataset("fashion-mnist", "train")
    assert str(missing) in str(exc.value)


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        load_dataset("svhn", "train")
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_dataset("fashion-mnist", "val")


def write_cifar(folder, seed=0, n=4):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in datasets.CIFAR10_FILES["train"] + datasets.CIFAR10_FILES["test"]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        with open(folder / name, "wb") as fh:
            pickle.dump({b"batch_label": b"x", b"labels": labels, b"data": data, b"filenames": [b"a"] * n}, fh,
                        protocol=2)
        out[name] = (data, labels)
    return out


def test_cifar_roundtrip(tmp_path):
    written = write_cifar(tmp_path / "cifar-10-batches-py")
    x, y = load_dataset("cifar10", "train", root=tmp_path)
    assert x.shape == (20, 3, 32, 32) and x.dtype == np.float32
    first = written["data_batch_1"]
    np.testing.assert_array_equal(np.round(x[:4] * 255).astype(np.uint8).reshape(4, -1), first[0])
    np.testing.assert_array_equal(y[:4], first[1])
    xt, yt = load_raw("cifar10", "test", root=tmp_path / "cifar-10-batches-py")
    assert xt.shape == (4, 3, 32, 32) and list(yt) == written["test_batch"][1]


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar_refuses_code(tmp_path):
    write_cifar(tmp_path)
    with open(tmp_path / "test_batch", "wb") as fh:
        pickle.dump({b"data": Evil(), b"labels": [1]}, fh)
    with pytest.raises(ValueError, match="refusing to load posix.system|refusing to load os.system|refusing to load nt"):
        load_dataset("cifar10", "test", root=tmp_path)


def test_cifar_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        load_dataset("cifar10", "train", root=tmp_path)


def test_constants():
    assert NORMALIZATION["fashion-mnist"] == ((0.2860,), (0.3530,))
    assert NORMALIZATION["mnist"] == ((0.1307,), (0.3081,))
    assert NORMALIZATION["cifar10"] == ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    assert all(len(v) == 10 for v in CLASS_NAMES.values())


def test_debian_fashion_mnist_test_split():
    # dataset-fashion-mnist is a required package (scripts/setup.sh installs it): missing is a failure
    assert (FASHION_MNIST_DIR / IDX_FILES[("test", "images")]).exists(), (
        f"Debian dataset-fashion-mnist is not installed (no {FASHION_MNIST_DIR}): run scripts/setup.sh"
    )
    x, y = load_dataset("fashion-mnist", "test")
    assert x.shape == (10000, 1, 28, 28) and y.shape == (10000,)
    assert np.bincount(y).tolist() == [1000] * 10
    assert abs(float(x.mean()) - NORMALIZATION["fashion-mnist"][0][0]) < 0.01


def test_fit_images_pads_centres_and_replicates():
    """A 1x28x28 image into a 3x32x32 model (train --fit-input): 2 zero pixels each side, grey copied."""
    from quant.training.datasets import fit_images

    x = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 1, 28, 28)
    y = fit_images(x, (3, 32, 32))
    assert y.shape == (2, 3, 32, 32) and y.dtype == np.uint8
    for c in range(3):
        assert np.array_equal(y[:, c, 2:30, 2:30], x[:, 0])
    assert not y[:, :, :2].any() and not y[:, :, 30:].any() and not y[:, :, :, :2].any() and not y[:, :, :, 30:].any()
    odd = fit_images(x, (1, 29, 29))  # odd difference: the extra pixel at the bottom/right
    assert np.array_equal(odd[:, :, :28, :28], x) and not odd[:, :, 28].any() and not odd[:, :, :, 28].any()
    with pytest.raises(ValueError, match=r"cannot fit \(1, 28, 28\) images into \(3, 16, 16\) inputs"):
        fit_images(x, (3, 16, 16))
