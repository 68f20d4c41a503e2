"""Checkpoints: our own format with metadata, and bare reference state dicts.

Our format is one ``torch.save``-d dict holding only tensors, strings,
numbers, lists and dicts, so it loads with ``weights_only=True``::

    {"format": "adderhw-checkpoint", "version": 1,
     "model": "lenet5-bn", "kind": "adder", "dataset": "fashion-mnist",
     "normalization": {"mean": [0.286], "std": [0.353]},
     "accuracy": 91.2,            # test top-1 in percent (float), or absent
     "epochs": 30, "commit": "<git sha>", ...other str/number fields...,
     "state_dict": {...},
     "train_state": {...}}        # optional: optimizer/scheduler/RNG for --resume

A *bare* state dict (the reference AdderNet code saves ``model.state_dict()``,
often from ``DataParallel``) is also accepted: a ``module.`` prefix is
stripped, the model name and kind are inferred from the keys (or given), and
the dataset (default: CIFAR-10 for the ResNets, Fashion-MNIST for LeNet)
gives the normalisation.

Everything is read with ``torch.load(path, map_location="cpu",
weights_only=True)`` and nothing else: a pickle that would execute code, a
truncated or corrupt file, missing or unexpected keys and shape mismatches
all raise one :class:`ValueError` naming the file and listing the problems;
so does a NaN or infinite value in any parameter or buffer, an integer,
boolean or complex tensor where the model holds floats, a negative
``running_var`` (naming the tensor), and metadata the commands could not use
(``normalization``, ``input_fit``, ``accuracy``; naming the key).
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from quant.base.files import atomic_write_bytes
from quant.base.intops import NetKind
from quant.training.datasets import NORMALIZATION
from quant.net.models import INPUT_SHAPES, KINDS, MODELS, build_model

__all__ = ["FORMAT", "VERSION", "Checkpoint", "save", "load", "strip_training_state", "infer_model", "normalization_for"]

FORMAT = "adderhw-checkpoint"
VERSION = 1

_DEFAULT_DATASET = {"lenet5-bn": "fashion-mnist", "resnet20": "cifar10", "resnet32": "cifar10"}
_RESERVED = ("format", "version", "state_dict", "train_state")


@dataclass(frozen=True)
class Checkpoint:
    """A loaded model (in eval mode) and its metadata.

    Attributes
    ----------
    model : torch.nn.Module
        The model with the checkpoint's weights, in ``eval()`` mode.
    meta : dict
        ``format``, ``model``, ``kind``, ``dataset``, ``normalization``
        (``{"mean": [...], "std": [...]}``) and, for our own checkpoints,
        ``accuracy``, ``epochs``, ``commit`` and whatever else was saved.
        Never contains the state dict.
    """

    model: nn.Module
    meta: dict

    def __post_init__(self):
        if not isinstance(self.model, nn.Module):
            raise ValueError(f"Checkpoint.model must be an nn.Module, not {type(self.model).__name__}")
        if not isinstance(self.meta, dict):
            raise ValueError(f"Checkpoint.meta must be a dict, not {type(self.meta).__name__}")


def normalization_for(dataset: str) -> dict[str, list[float]]:
    """``{"mean": [...], "std": [...]}`` of a dataset named in :data:`quant.training.datasets.NORMALIZATION`."""
    if dataset not in NORMALIZATION:
        raise ValueError(f"unknown dataset {dataset!r}; known datasets: {', '.join(NORMALIZATION)}")
    mean, std = NORMALIZATION[dataset]
    return {"mean": list(mean), "std": list(std)}


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, (str, int, bool, torch.Tensor)) or value is None:
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"checkpoint metadata {where} must be finite, not {value!r}")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise ValueError(f"checkpoint metadata {where} has a key of type {type(k).__name__}")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise ValueError(
        f"checkpoint metadata {where} has type {type(value).__name__}; "
        "only tensors, str, int, float, bool, None, lists and dicts load with weights_only=True"
    )


def save(path: str | Path, model: nn.Module, meta: dict, train_state: dict | None = None) -> Path:
    """Write ``model`` and ``meta`` to ``path`` atomically (temp file, then rename).

    Parameters
    ----------
    path : path
        Destination; its folder is created if needed.
    model : torch.nn.Module
        Model whose ``state_dict()`` is saved (copied to CPU).
    meta : dict
        Must hold ``model`` (a name in :data:`quant.net.models.MODELS`), ``kind``
        and ``dataset``; ``normalization`` defaults to the dataset's.  Other
        fields (``accuracy``, ``epochs``, ``commit``, ...) must be plain
        values (str, int, float, lists, dicts).
    train_state : dict, optional
        Optimizer/scheduler/RNG state for resuming (same value rules).

    Returns
    -------
    pathlib.Path
    """
    if not isinstance(meta, dict):
        raise ValueError(f"meta must be a dict, not {type(meta).__name__}")
    for key in ("model", "kind", "dataset"):
        if not isinstance(meta.get(key), str):
            raise ValueError(f"checkpoint metadata needs a string {key!r}")
    if meta["model"] not in MODELS:
        raise ValueError(f"unknown model {meta['model']!r}; known models: {', '.join(MODELS)}")
    if meta["kind"] not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {meta['kind']!r}")
    for key in _RESERVED:
        if key in meta:
            raise ValueError(f"checkpoint metadata may not set the reserved key {key!r}")
    payload: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    payload.update(meta)
    payload.setdefault("normalization", normalization_for(meta["dataset"]))
    for key, value in payload.items():
        _check_plain(value, key)
    payload["state_dict"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if train_state is not None:
        _check_plain(train_state, "train_state")
        payload["train_state"] = train_state
    path = Path(path)
    _atomic_torch_save(payload, path)
    return path


def _atomic_torch_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def strip_training_state(src: str | Path, dst: str | Path) -> Path:
    """Copy our checkpoint ``src`` to ``dst`` without the optimizer/scheduler state.

    The result loads exactly like ``src`` (same weights and metadata) but can
    no longer be resumed; shipped checkpoints are written this way.
    """
    src, dst = Path(src), Path(dst)
    obj = _read(src)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ValueError(f"{src} is not an adderhw checkpoint")
    obj.pop("train_state", None)
    _atomic_torch_save(obj, dst)
    return dst


def _read(path: Path) -> Any:
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint {path} is a folder, not a checkpoint file")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():
            # "Detected pickle protocol 4": torch's note about files it may then refuse; the
            # refusal (below) is the one line the user sees
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for bad files
        raise ValueError(f"cannot load checkpoint {path}: {_why_unloadable(path, exc)}") from None


def _why_unloadable(path: Path, exc: BaseException) -> str:
    """One phrase saying why ``torch.load(weights_only=True)`` refused ``path``.

    Only a pickle that names a global (a class or function to call) "could
    execute code"; anything else is called what it is.
    """
    text = str(exc)
    if "GLOBAL" in text or "Unsupported global" in text:
        return "it contains objects that could execute code (refused; only tensors and plain values load)"
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\x93NUMPY"):
        return "it is a numpy .npy file, not a PyTorch checkpoint"
    if head.startswith(b"PK"):
        return "truncated or corrupt PyTorch file"
    if head.startswith(b"\x80") and _pickle_calls_code(path):
        return "it contains objects that could execute code (refused; only tensors and plain values load)"
    return "not a PyTorch checkpoint"


def _pickle_calls_code(path: Path) -> bool:
    """True when the raw pickle in ``path`` names a global or calls one (read, never run)."""
    import pickletools

    calls = {"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX"}
    try:
        with open(path, "rb") as fh:
            return any(op.name in calls for op, _arg, _pos in pickletools.genops(fh))
    except Exception:  # noqa: BLE001 - not a readable pickle: it calls nothing we could run
        return False


def infer_model(keys) -> tuple[str, str]:
    """``(model name, kind)`` from state-dict keys (``module.`` already stripped).

    Raises
    ------
    ValueError
        The keys match no model of the zoo unambiguously.
    """
    keys = set(keys)
    if "layer1.0.conv1.adder" in keys or "layer1.0.conv1.weight" in keys:
        kind = (NetKind.ADDER if "layer1.0.conv1.adder" in keys else NetKind.CNN).value
        has_4 = any(k.startswith("layer1.4.") for k in keys)
        has_3 = any(k.startswith("layer1.3.") for k in keys)
        if has_4:
            return "resnet32", kind
        if not has_3 and any(k.startswith("layer1.2.") for k in keys):
            return "resnet20", kind
        raise ValueError("state dict looks like a CIFAR ResNet but matches neither resnet20 nor resnet32; give the model")
    if "fc1.adder" in keys and "conv2.adder" in keys:
        return "lenet5-bn", NetKind.ADDER.value
    if "fc1.weight" in keys and "conv2.weight" in keys and "bn5.weight" in keys:
        return "lenet5-bn", NetKind.CNN.value
    raise ValueError("cannot tell which model this state dict belongs to; give the model name")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_meta(meta: dict, name: str, path: Path) -> None:
    """Refuse metadata of our format that the commands would trip over, naming the key.

    ``normalization`` must hold ``mean`` and ``std`` lists of finite numbers,
    one per input channel (or one for all), ``std`` positive; ``input_fit``
    (when present) must hold ``from`` and ``to`` shapes, ``to`` the model's
    input shape; ``accuracy`` (when present) a number.
    """
    def bad(key: str, what: str, value: Any) -> ValueError:
        return ValueError(f"checkpoint {path}: metadata {key} must be {what}, not {value!r}")

    channels = INPUT_SHAPES[name][0]
    norm = meta["normalization"]
    if not isinstance(norm, dict) or "mean" not in norm or "std" not in norm:
        raise bad("normalization", "a dict with 'mean' and 'std'", norm)
    for key in ("mean", "std"):
        v = norm[key]
        if not isinstance(v, (list, tuple)) or len(v) not in (1, channels) or not all(_is_number(x) for x in v):
            raise bad(f"normalization.{key}", f"a list of finite numbers, one per input channel ({channels}) or one for all", v)
    if len(norm["mean"]) != len(norm["std"]):
        raise bad("normalization.std", f"as long as normalization.mean ({len(norm['mean'])})", norm["std"])
    for x in norm["std"]:
        if x <= 0:
            raise bad("normalization.std", "positive", x)
    fit = meta.get("input_fit")
    if fit is not None:
        shape = list(INPUT_SHAPES[name])
        ok = isinstance(fit, dict) and "from" in fit and "to" in fit
        if not ok:
            raise bad("input_fit", "a dict with 'from' and 'to' shapes", fit)
        if fit["to"] != shape:
            raise bad("input_fit.to", f"the input shape of {name}, {shape}", fit["to"])
        src = fit["from"]
        if not (isinstance(src, list) and len(src) == 3 and all(isinstance(x, int) and not isinstance(x, bool)
                                                                 and x > 0 for x in src)):
            raise bad("input_fit.from", "a shape of three positive integers", src)
    if "accuracy" in meta and meta["accuracy"] is not None and not _is_number(meta["accuracy"]):
        raise bad("accuracy", "a number (percent)", meta["accuracy"])


def _strict_load(model: nn.Module, state: dict, path: Path) -> None:
    own = model.state_dict()
    problems = []
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    if missing:
        problems.append("missing keys: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(unexpected))
    for k, v in state.items():
        if k in own:
            if not isinstance(v, torch.Tensor):
                problems.append(f"{k} is a {type(v).__name__}, not a tensor")
            elif tuple(v.shape) != tuple(own[k].shape):
                problems.append(f"shape mismatch for {k}: checkpoint {tuple(v.shape)}, model {tuple(own[k].shape)}")
    if problems:
        name = type(model).__name__
        raise ValueError(f"checkpoint {path} does not fit {name}: " + "; ".join(problems))
    for k, v in state.items():
        if k in own and own[k].is_floating_point() and not v.is_floating_point():  # int, bool, complex
            dtype = str(v.dtype).removeprefix("torch.")
            raise ValueError(f"checkpoint {path}: {k} is {dtype}, not a floating-point tensor; refused")
        if k in own and v.is_floating_point() and not bool(torch.isfinite(v).all()):
            nan, inf = int(torch.isnan(v).sum()), int(torch.isinf(v).sum())
            raise ValueError(f"checkpoint {path} has non-finite values in {k} ({nan} NaN, {inf} Inf of {v.numel()}); refused")
        if k.endswith("running_var") and bool((v < 0).any()):  # a variance: BN folding would take its root
            raise ValueError(f"checkpoint {path}: {k} has negative values ({int((v < 0).sum())} of {v.numel()}); "
                             "refused")
    fixed = {k: v.to(own[k].dtype) for k, v in state.items()}
    model.load_state_dict(fixed, strict=False)


def load(
    path: str | Path,
    model: str | None = None,
    kind: str | None = None,
    dataset: str | None = None,
) -> Checkpoint:
    """Load a checkpoint (ours or a bare reference state dict) into a fresh model.

    Parameters
    ----------
    path : path
        The ``.pt``/``.pth`` file.
    model : str, optional
        Model name (a key of :data:`quant.net.models.MODELS`).  Needed for bare
        state dicts whose keys do not identify one model; for our format, it
        must agree with the file.
    kind : str, optional
        ``"adder"`` or ``"cnn"``; inferred when not given, checked when given.
    dataset : str, optional
        Dataset whose normalisation applies (bare state dicts); must agree
        with our format's metadata when given.

    Returns
    -------
    Checkpoint
        ``Checkpoint(model, meta)`` with the model in eval mode.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Unsafe or corrupt file, unknown format/version, or a state dict that
        does not fit the model (all problems listed in one message).
    """
    path = Path(path)
    obj = _read(path)
    if not isinstance(obj, dict):
        raise ValueError(f"checkpoint {path} holds a {type(obj).__name__}, not a state dict or an adderhw checkpoint")
    if obj.get("format") == FORMAT:
        if obj.get("version") != VERSION:
            raise ValueError(f"checkpoint {path} has format version {obj.get('version')!r}; this adderhw reads {VERSION}")
        state = obj.get("state_dict")
        if not isinstance(state, dict):
            raise ValueError(f"checkpoint {path} has no state_dict")
        meta = {k: v for k, v in obj.items() if k not in ("state_dict", "train_state")}
        for key, given in (("model", model), ("kind", kind), ("dataset", dataset)):
            if given is not None and given != meta.get(key):
                raise ValueError(f"checkpoint {path} is {key} {meta.get(key)!r}, not {given!r}")
        name, knd = meta.get("model"), meta.get("kind")
        if name not in MODELS or knd not in KINDS:
            raise ValueError(f"checkpoint {path} names an unknown model/kind {name!r}/{knd!r}")
        if not isinstance(meta.get("dataset"), str):
            raise ValueError(f"checkpoint {path}: metadata dataset must be a string, not {meta.get('dataset')!r}")
        if "normalization" not in meta:
            meta["normalization"] = normalization_for(meta["dataset"])
        _check_meta(meta, name, path)
        fit, norm = meta.get("input_fit"), meta["normalization"]
        if fit is not None and len(norm["mean"]) == 1 < int(fit["to"][0]):
            shape = fit["to"]
            # trained with --fit-input: the grey channel was replicated, so is its normalisation
            meta["normalization"] = {k: (list(v) * int(shape[0]) if k in ("mean", "std") else v)
                                     for k, v in norm.items()}
    else:
        if not obj or not all(isinstance(k, str) for k in obj):
            raise ValueError(f"checkpoint {path} is neither an adderhw checkpoint nor a state dict")
        if not all(isinstance(v, torch.Tensor) for v in obj.values()):
            bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)][:5]
            raise ValueError(
                f"checkpoint {path} is neither an adderhw checkpoint nor a bare state dict "
                f"(non-tensor entries: {', '.join(bad)})"
            )
        state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}
        if model is None or kind is None:
            try:
                inferred_name, inferred_kind = infer_model(state)
            except ValueError as exc:
                if model is None:
                    raise ValueError(f"checkpoint {path}: {exc}") from None
                inferred_name, inferred_kind = model, "adder" if any(k.endswith(".adder") for k in state) else "cnn"
            name = model or inferred_name
            knd = kind or inferred_kind
        else:
            name, knd = model, kind
        if name not in MODELS:
            raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
        ds = dataset or _DEFAULT_DATASET[name]
        meta = {
            "format": "state-dict",
            "model": name,
            "kind": knd,
            "dataset": ds,
            "normalization": normalization_for(ds),
        }
    net = build_model(name, knd)
    _strict_load(net, state, path)
    meta["input_shape"] = list(INPUT_SHAPES[name])
    return Checkpoint(net.eval(), meta)
