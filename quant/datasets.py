"""Dataset readers: IDX (MNIST, Fashion-MNIST; .gz or raw) and CIFAR-10 pickles.

No downloads: Fashion-MNIST defaults to the Debian package's folder; other
datasets are read from files the user points to.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["FASHION_MNIST_DIR", "IDX_FILES"]

#: Where Debian's ``dataset-fashion-mnist`` package puts the IDX files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

#: IDX file names of the MNIST family, by split and part.
IDX_FILES = {
    ("train", "images"): "train-images-idx3-ubyte.gz",
    ("train", "labels"): "train-labels-idx1-ubyte.gz",
    ("test", "images"): "t10k-images-idx3-ubyte.gz",
    ("test", "labels"): "t10k-labels-idx1-ubyte.gz",
}
