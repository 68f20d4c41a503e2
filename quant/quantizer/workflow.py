"""The work behind ``adderhw quantize`` and ``adderhw predict``, as library functions.

* :func:`quantize_checkpoint`: load a checkpoint, choose the calibration
  images (a seeded subset of the training split, or a ``.npy`` file) and the
  evaluation set (the test split; without one, the calibration images and
  only the int/float agreement), quantise once per :class:`~quant.quantizer.config.QuantConfig`
  with its report (:func:`quant.quantizer.report.quantize_with_report`) and write the
  output folder atomically (:func:`quant.base.files.staged_dir`):
  ``manifest.json``, ``weights.npz``, ``report.json``, ``report.md``, or for
  a sweep one folder ``w<bits>`` per width plus ``sweep.json``/``sweep.md``.
* :func:`predict`: logits of images from an integer model folder (golden
  model, int64) or a float checkpoint (float32), written atomically.
* :func:`load_images`: a ``.npy`` file of float ``[N, C, H, W]`` images in 0..1.

Torch is imported only inside these functions.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quant.base.files import atomic_write_bytes, check_output_dir, check_parent_folders, sha256_file, staged_dir

__all__ = ["QuantizeRun", "Prediction", "PLACEHOLDER_CALIB", "placeholder_model", "load_images", "calibration_images",
           "evaluation_set", "quantize_checkpoint",
           "quantize_shipped", "predict"]


def load_images(path, what: str) -> np.ndarray:
    """Float32 images ``[N, C, H, W]`` in 0..1 from the ``.npy`` file ``path`` (``what`` names it in errors)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} {path}: no such file")
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{what} {path}: not a readable .npy array ({exc})") from None
    if isinstance(arr, np.lib.npyio.NpzFile):
        arr.close()
        raise ValueError(f"{what} {path}: a .npz archive, not one .npy array of float32 [N, C, H, W] images")
    if not isinstance(arr, np.ndarray) or arr.ndim != 4 or arr.dtype.kind != "f":
        raise ValueError(f"{what} {path}: expected float32 [N, C, H, W] images, not {getattr(arr, 'dtype', '?')} {getattr(arr, 'shape', '?')}")
    if arr.shape[0] == 0:
        raise ValueError(f"{what} {path}: no images")
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"{what} {path}: values must be finite and in 0..1 (images before normalisation)")
    return arr.astype(np.float32)


@dataclass(frozen=True, kw_only=True)
class QuantizeRun:
    """What :func:`quantize_checkpoint` wrote: the output folder and one report per config."""

    out: Path
    reports: tuple
    sweep: bool


def calibration_images(ck, *, calib: int, calib_data=None, data_root=None, seed: int = 0) -> np.ndarray:
    """The calibration images of ``quantize``: the first ``calib`` of ``calib_data``, else a seeded subset of the training split.

    ``ck`` is a loaded checkpoint (:func:`quant.training.checkpoint.load`); images are
    fitted to its input shape (models trained with ``--fit-input``).
    """
    from quant.training.datasets import load_dataset

    shape = tuple(ck.meta.get("input_shape", ()))
    if calib_data is not None:
        images = load_images(calib_data, "--calib-data")
        if shape and images.shape[1:] != shape:
            raise ValueError(f"--calib-data images are {images.shape[1:]}, the model takes {shape}")
        return images[:calib]
    dataset = ck.meta["dataset"]
    rng = np.random.default_rng(seed)
    try:
        xtr, _ = load_dataset(dataset, "train", data_root, shape=shape or None)
    except (OSError, ValueError) as exc:
        raise ValueError(f"no calibration data for {dataset} ({exc}); pass --data-root DIR or --calib-data FILE.npy") from None
    idx = np.sort(rng.choice(xtr.shape[0], size=min(calib, xtr.shape[0]), replace=False))
    return xtr[idx]


#: Seeded random images of a checkpoint's placeholder calibration (:func:`placeholder_model`).
PLACEHOLDER_CALIB = 4


def placeholder_model(path, *, bits: int = 8, model: str | None = None, dataset: str | None = None):
    """A checkpoint quantized for its shapes alone: the integer model ``estimate`` runs for a ``.pt``.

    The checkpoint (ours, or a bare state dict with ``model``/``dataset``, as
    :func:`quant.training.checkpoint.load` takes it) is quantized in memory at
    ``bits`` with a placeholder calibration: :data:`PLACEHOLDER_CALIB` seeded
    random images, fixed-point requant, nearest rounding, no bias correction.
    Its program is the model's own (pools, flatten, residual adds); the
    engine's cycles and counts depend on shapes, widths and the requant form,
    not on weight or parameter values, so they are exact for any model of
    these widths; its accuracy means nothing.

    Returns
    -------
    quant.intmodel.artifact.IntModel
    """
    from quant.quantizer.config import QuantConfig
    from quant.quantizer.quantize import quantize_model
    from quant.training.checkpoint import load

    ck = load(path, model=model, dataset=dataset)
    shape = tuple(ck.meta["input_shape"])
    norm = ck.meta["normalization"]
    images = np.random.default_rng(0).random((PLACEHOLDER_CALIB, *shape), dtype=np.float32)
    cfg = QuantConfig(bits=bits, requant="fixed", rounding="nearest", bias_correction=False)
    im, _ = quantize_model(ck.model, images, mean=norm["mean"], std=norm["std"], cfg=cfg,
                           name=ck.meta["model"], dataset=ck.meta.get("dataset", ""))
    return im


def quantize_shipped(checkpoint_path, out, *, name: str, cfg=None, calib: int = 256) -> Path:
    """Quantise a checkpoint (default W8 fixed point) with ``calib`` calibration images
    (:func:`calibration_images`, seed 0) into the folder ``out``, without evaluation: the integer model
    tests and benchmarks run on the engine.  Returns ``out``."""
    from quant.training import checkpoint
    from quant.intmodel.artifact import save_int_model
    from quant.quantizer.config import QuantConfig
    from quant.quantizer.quantize import quantize_model

    ck = checkpoint.load(checkpoint_path)
    norm = ck.meta["normalization"]
    model, _ = quantize_model(ck.model, calibration_images(ck, calib=calib), mean=norm["mean"], std=norm["std"],
                              cfg=cfg if cfg is not None else QuantConfig(bits=8), name=name,
                              dataset=ck.meta["dataset"])
    save_int_model(model, out)
    return Path(out)


def evaluation_set(dataset: str, calib: np.ndarray, *, data_root=None, eval_images=None):
    """``(images, labels)`` of the first ``eval_images`` test images (all when None), in ``calib``'s shape.

    Without a test set on this machine (and no ``data_root``): ``(calib, None)``.
    """
    from quant.training.datasets import load_dataset

    try:
        xte, yte = load_dataset(dataset, "test", data_root, shape=calib.shape[1:])
    except (OSError, ValueError):
        if data_root is not None:  # the user named a folder: its test set must be there
            raise
        return calib, None  # no test set on this machine: report agreement on the calibration images
    if eval_images is not None:
        xte, yte = xte[:eval_images], yte[:eval_images]
    return xte, yte


def quantize_checkpoint(
    checkpoint,
    cfgs,
    out,
    *,
    sweep: bool = False,
    calib: int = 1000,
    calib_data=None,
    data_root=None,
    model: str | None = None,
    dataset: str | None = None,
    eval_images: int | None = None,
    seed: int = 0,
    force: bool = False,
) -> QuantizeRun:
    """Quantise ``checkpoint`` once per config in ``cfgs`` and write the folder ``out`` (module docstring).

    Parameters
    ----------
    checkpoint : path
        adderhw checkpoint or bare reference state dict.
    cfgs : sequence of QuantConfig
        One for a single model; with ``sweep``, one per bit width.
    out : path
        Output folder, replaced atomically.
    sweep : bool
        Write ``w<bits>`` subfolders and ``sweep.json``/``sweep.md``.
    calib : int
        Calibration images (a seeded subset of the training split, or the
        first ones of ``calib_data``).
    calib_data : path or None
        ``.npy`` calibration images.
    data_root : path or None
        Dataset folder; when given, its test split must exist.
    model, dataset : str or None
        For bare state dicts.
    eval_images : int or None
        Evaluate on the first ``eval_images`` test images (all when None).
    seed : int
        Seed of the calibration subset (and of calibration's subsampling).
    force : bool
        Replace ``out`` even when it is not an earlier quantize output
        (:func:`quant.base.files.check_output_dir`; checked before any work).
    """
    from quant.training.checkpoint import load
    from quant.training.datasets import CLASS_NAMES
    from quant.quantizer.quantize import check_layer_bits
    from quant.quantizer.report import quantize_with_report, sweep_markdown, write_quantized

    inputs = [checkpoint, calib_data, data_root]
    check_output_dir(out, command="quantize", inputs=inputs, force=force)
    if calib < 1:
        raise ValueError(f"--calib must be a positive integer, not {calib}")
    if eval_images is not None and eval_images < 1:
        raise ValueError(f"--eval must be a positive integer, not {eval_images}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, not {seed}")
    ckpt = Path(checkpoint)
    ck = load(ckpt, model=model, dataset=dataset)
    for cfg in cfgs:  # before any data is read or anything written
        check_layer_bits(ck.model, cfg, what="--bits-file")
    name, dataset = ck.meta["model"], ck.meta["dataset"]
    calib_images = calibration_images(ck, calib=calib, calib_data=calib_data, data_root=data_root, seed=seed)
    evalset = evaluation_set(dataset, calib_images, data_root=data_root, eval_images=eval_images)
    source = {"path": str(ckpt), "sha256": sha256_file(ckpt), "meta_accuracy": ck.meta.get("accuracy")}
    mean, std = ck.meta["normalization"]["mean"], ck.meta["normalization"]["std"]
    out = Path(out)
    reports = []
    with staged_dir(out, command="quantize", inputs=inputs, force=force) as tmp:
        for cfg in cfgs:
            sub = tmp / f"w{cfg.bits}" if sweep else tmp
            sub.mkdir(parents=True, exist_ok=True)
            im, report = quantize_with_report(ck.model, calib_images, evalset, cfg, mean=mean, std=std, source=source,
                                              name=name, dataset=dataset, class_names=CLASS_NAMES.get(dataset, ()),
                                              seed=seed)
            write_quantized(sub, im, report)
            reports.append(report)
        if sweep:
            table = [r.sweep_row() for r in reports]
            doc = {"model": name, "dataset": dataset, "source": source, "rows": table}
            (tmp / "sweep.json").write_text(json.dumps(doc, indent=1) + "\n")
            (tmp / "sweep.md").write_text(sweep_markdown(table))
    return QuantizeRun(out=out, reports=tuple(reports), sweep=sweep)


@dataclass(frozen=True, kw_only=True, eq=False)
class Prediction:
    """Logits of :func:`predict` (int64 integer logits or float32 float logits) and the class names."""

    logits: np.ndarray
    class_names: tuple

    def labels(self) -> list[str]:
        """The class name of each top-1 prediction (its index where the model has no names)."""
        top = self.logits.argmax(1)
        return [self.class_names[t] if t < len(self.class_names) else str(int(t)) for t in top]


def predict(model, images, out, *, model_name: str | None = None, dataset: str | None = None) -> Prediction:
    """Logits of the ``.npy`` images ``images`` written to ``out`` (a ``.npy`` file, atomically).

    ``model`` is an integer model folder (golden model, int64 logits) or a
    checkpoint (float model, float32 logits; ``model_name``/``dataset`` for
    bare state dicts).
    """
    src = Path(model)
    out = Path(out)
    if str(out) in ("", "."):
        raise ValueError(f"-o {str(out)!r} must name a .npy file")
    if out.is_dir():
        raise IsADirectoryError(f"-o {out} is a folder: name the .npy file to write (e.g. {out / 'logits.npy'})")
    check_parent_folders(out, "-o")
    for inp in (src, Path(images)):
        ro, ri = out.resolve(), inp.resolve()
        if ro == ri or ri in ro.parents:
            raise ValueError(f"-o {out} would overwrite the input {inp}: choose another file")
    x = load_images(images, "input")
    if src.is_dir():
        from quant.intmodel import golden
        from quant.intmodel.artifact import load_int_model

        im = load_int_model(src)
        if x.shape[1:] != im.input_shape:
            raise ValueError(f"input images are {x.shape[1:]}, the model takes {im.input_shape}")
        logits = golden.run(im, x)
        names = im.class_names
    else:
        from quant.quantizer.calibrate import float_logits
        from quant.training.checkpoint import load
        from quant.training.datasets import CLASS_NAMES

        ck = load(src, model=model_name, dataset=dataset)
        shape = tuple(ck.meta.get("input_shape", ()))
        if shape and x.shape[1:] != shape:
            raise ValueError(f"input images are {x.shape[1:]}, the model takes {shape}")
        n = ck.meta["normalization"]
        logits = float_logits(ck.model, x, n["mean"], n["std"]).astype(np.float32)
        names = CLASS_NAMES.get(ck.meta["dataset"], ())
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.save(buf, logits)
    atomic_write_bytes(out, buf.getvalue())
    return Prediction(logits=logits, class_names=tuple(names))
