"""Dataset readers: IDX (MNIST, Fashion-MNIST; .gz or raw) and CIFAR-10 pickles.

No downloads: Fashion-MNIST defaults to the Debian package's folder; other
datasets are read from files the user points to.  numpy only (no torch).

:func:`load_dataset` returns images as float32 ``[N, C, H, W]`` in ``0..1`` and
labels as int64 ``[N]``; :func:`load_raw` returns the uint8 images as stored.
Normalisation constants (applied by the models' users, not here) are in
:data:`NORMALIZATION`.

CIFAR-10 batches are Python pickles; they are read with a restricted
unpickler that only rebuilds numpy arrays (and builtin containers), so a
pickle that would run code is refused with a :class:`ValueError`.
"""

from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path

import numpy as np

__all__ = [
    "FASHION_MNIST_DIR",
    "IDX_FILES",
    "DATASETS",
    "NORMALIZATION",
    "CLASS_NAMES",
    "CIFAR10_FILES",
    "read_idx",
    "load_raw",
    "load_dataset",
]

#: Where Debian's ``dataset-fashion-mnist`` package puts the IDX files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

#: IDX file names of the MNIST family, by split and part.
IDX_FILES = {
    ("train", "images"): "train-images-idx3-ubyte.gz",
    ("train", "labels"): "train-labels-idx1-ubyte.gz",
    ("test", "images"): "t10k-images-idx3-ubyte.gz",
    ("test", "labels"): "t10k-labels-idx1-ubyte.gz",
}

#: CIFAR-10 python batch files by split.
CIFAR10_FILES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}

DATASETS = ("fashion-mnist", "mnist", "cifar10")
SPLITS = ("train", "test")

#: Per-channel ``(mean, std)`` of the 0..1 images, by dataset.
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
}

#: Class names in label order, by dataset.
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "fashion-mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    "mnist": tuple(str(i) for i in range(10)),
    "cifar10": (
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ),
}

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (raw, or gzip-compressed when the name ends in ``.gz``).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Bad magic number, unknown element type, or a size that does not match
        the header (truncated or trailing data).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                data = fh.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ValueError(f"{path}: cannot read IDX file ({exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    ndim = data[3]
    if ndim < 1 or len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: IDX header truncated or with {ndim} dimensions")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[data[2]]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    body = len(data) - 4 - 4 * ndim
    if body != expected:
        raise ValueError(f"{path}: IDX header says shape {dims} ({expected} bytes) but the file holds {body} bytes")
    arr = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _find_idx(root: Path, name: str, dataset: str) -> Path:
    candidates = [root / name]
    if name.endswith(".gz"):
        candidates.append(root / name[: -len(".gz")])
    for c in candidates:
        if c.is_file():
            return c
    if dataset == "fashion-mnist" and root == FASHION_MNIST_DIR:
        hint = "install it with: apt-get install dataset-fashion-mnist"
    else:
        hint = f"point root at the folder holding the {dataset} IDX files (.gz or raw)"
    raise FileNotFoundError(f"{dataset} file not found: {candidates[0]} (or without .gz); {hint}")


def _load_idx_split(dataset: str, split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    img_path = _find_idx(root, IDX_FILES[(split, "images")], dataset)
    lab_path = _find_idx(root, IDX_FILES[(split, "labels")], dataset)
    images = read_idx(img_path)
    labels = read_idx(lab_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{img_path}: expected uint8 images [N, H, W], got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{lab_path}: expected uint8 labels [N], got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{img_path} holds {len(images)} images but {lab_path} holds {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{lab_path}: label {int(labels.max())} out of range 0..9")
    return images[:, None, :, :], labels.astype(np.int64)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds numpy arrays and builtin containers only."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: CIFAR batches hold only numpy arrays")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        raw = path.read_bytes()
        obj = _ArrayOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"{path}: not a CIFAR-10 python batch ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: not a CIFAR-10 python batch (top-level {type(obj).__name__}, expected dict)")
    obj = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}
    if "data" not in obj or "labels" not in obj:
        raise ValueError(f"{path}: CIFAR-10 batch lacks 'data' or 'labels'")
    data = np.asarray(obj["data"])
    labels = np.asarray(obj["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: CIFAR-10 'data' must be uint8 [N, 3072], got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],) or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise ValueError(f"{path}: CIFAR-10 'labels' must be N values in 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def _load_cifar_split(split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    parts = []
    for name in CIFAR10_FILES[split]:
        p = folder / name
        if not p.is_file():
            raise FileNotFoundError(
                f"cifar10 file not found: {p}; point root at the extracted 'cifar-10-batches-py' folder "
                "(python version of CIFAR-10, not downloaded by adderhw)"
            )
        parts.append(_read_cifar_batch(p))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_raw(name: str, split: str, root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images as stored (uint8 ``[N, C, H, W]``) and int64 labels ``[N]``.

    Parameters
    ----------
    name : str
        ``"fashion-mnist"``, ``"mnist"`` or ``"cifar10"``.
    split : str
        ``"train"`` or ``"test"``.
    root : path, optional
        Folder with the files.  Defaults to :data:`FASHION_MNIST_DIR` for
        Fashion-MNIST; required for the others.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if root is None:
        if name != "fashion-mnist":
            raise ValueError(f"dataset {name!r} has no default location: give root (the folder with its files)")
        root = FASHION_MNIST_DIR
    root = Path(root)
    if not root.is_dir():
        hint = "; install it with: apt-get install dataset-fashion-mnist" if root == FASHION_MNIST_DIR else ""
        raise FileNotFoundError(f"{name} folder not found: {root}{hint}")
    if name == "cifar10":
        return _load_cifar_split(split, root)
    return _load_idx_split(name, split, root)


def fit_images(images: np.ndarray, shape) -> np.ndarray:
    """``[N, c, h, w]`` images to ``[N, C, H, W]`` (``shape``): zero-padded, centred, channel replicated.

    The padding is 0 (a black pixel); ``c`` must be 1 or ``C``, and ``h <= H``,
    ``w <= W`` (odd differences pad one more at the bottom/right).
    Fashion-MNIST into a ResNet: 28x28 -> 32x32, 2 pixels each side, the
    grey channel copied to 3 (``adderhw train --fit-input``).
    """
    c, h, w = images.shape[1:]
    big_c, big_h, big_w = (int(v) for v in shape)
    if c not in (1, big_c) or h > big_h or w > big_w:
        raise ValueError(f"cannot fit {(c, h, w)} images into {tuple(shape)} inputs")
    top, left = (big_h - h) // 2, (big_w - w) // 2
    x = np.pad(images, ((0, 0), (0, 0), (top, big_h - h - top), (left, big_w - w - left)))
    return np.ascontiguousarray(np.broadcast_to(x, (x.shape[0], big_c, big_h, big_w))) if c != big_c else x


def load_dataset(name: str, split: str, root: str | Path | None = None, *,
                 shape=None) -> tuple[np.ndarray, np.ndarray]:
    """Images as float32 ``[N, C, H, W]`` in ``0..1`` and int64 labels ``[N]``.

    See :func:`load_raw` for the parameters.  With ``shape`` (a model's input
    ``[C, H, W]``) images of another shape are fitted to it (:func:`fit_images`:
    a model trained with ``--fit-input``).  Normalise with ``(x - mean) / std``
    from :data:`NORMALIZATION` before feeding a model.
    """
    images, labels = load_raw(name, split, root)
    if shape is not None and tuple(images.shape[1:]) != tuple(int(v) for v in shape):
        images = fit_images(images, shape)
    return images.astype(np.float32) / np.float32(255.0), labels
