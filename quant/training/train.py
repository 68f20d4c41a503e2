"""Training and evaluation of the model zoo on the bundled datasets.

Recipe (:class:`TrainConfig`): SGD with momentum and weight decay, learning
rate following a cosine schedule per step from ``lr`` to 0 over all epochs
(after ``warmup_epochs`` of linear warm-up), cross-entropy loss with optional
label smoothing (or, with a ``teacher``, the distillation loss of
:mod:`quant.training.distill`), augmentation by random crop (zero padding of ``crop_pad``
pixels, i.e. the value of a black pixel), random horizontal flip and cutout
(a ``cutout`` x ``cutout`` square, centred anywhere in the image and clipped
at its border, set to black).  The
batch order and the augmentation of epoch ``e`` depend only on ``(seed, e)``,
so a resumed run sees the same data as an uninterrupted one.

After every epoch the test accuracy is measured and the checkpoint (with the
optimizer and scheduler state, for ``resume``) is rewritten atomically;
``checkpoint_every=N`` also rewrites it every N steps inside an epoch (with
the augmentation generator's state and the epoch's running sums), so a
resumed run is bit-identical to an uninterrupted one from any saved step.
With ``fit_input``, 1-channel images train a 3-channel model (ResNets on
Fashion-MNIST): they are zero-padded (black) to the model's size, centred,
and the channel is replicated (:func:`fit_images`).  An
existing ``out`` is never overwritten unless ``resume`` (continue it) or
``force`` (start afresh) says so.
"""

from __future__ import annotations

import math
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from quant.base.files import check_parent_folders
from quant.training import checkpoint as ckpt
from quant.training.datasets import DATASETS, NORMALIZATION, load_raw
from quant.training.distill import FEATURE_DISTANCES, FEATURE_TAPS, FeatureTap, distillation_loss, load_teacher
from quant.net.models import INPUT_SHAPES, KINDS, MODELS, build_model

__all__ = ["TrainConfig", "TrainResult", "train", "evaluate", "normalize", "augment_batch", "fit_images", "git_commit"]

# Fields that define the recipe: a resumed run must use the same values.
_RECIPE = (
    "model", "kind", "dataset", "epochs", "batch_size", "lr", "momentum", "weight_decay",
    "eta", "label_smoothing", "warmup_epochs", "crop_pad", "flip", "cutout", "seed", "train_limit",
    "fit_input", "kd_temperature", "kd_weight", "kd_feature_weight", "kd_feature",
)
# Defaults of the distillation fields (also their required values without a teacher).
# T = 2, A = 0.5: measured best of (4, 0.9) and (2, 0.5) on the adder LeNet (README); feature term off:
# it cost ~50 % more time per epoch and did not pay.
_KD_DEFAULTS = {"kd_temperature": 2.0, "kd_weight": 0.5, "kd_feature_weight": 0.0, "kd_feature": "kernel"}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run.

    Parameters
    ----------
    model, kind, dataset : str
        Model name (:data:`quant.net.models.MODELS`), ``"adder"``/``"cnn"``,
        dataset name (:data:`quant.training.datasets.DATASETS`).
    epochs : int
        Total epochs (also the length of the cosine schedule).
    batch_size : int
    lr, momentum, weight_decay : float
        SGD hyper-parameters (``lr`` is the peak learning rate).
    eta : float or None
        Adaptive learning-rate factor of the adder layers.
    label_smoothing : float
        Cross-entropy label smoothing in ``[0, 1)``.
    warmup_epochs : int
        Epochs of linear learning-rate warm-up before the cosine decay.
    crop_pad : int
        Random-crop padding in pixels (0 disables cropping).
    flip : bool
        Random horizontal flips.
    cutout : int
        Side in pixels of the square cutout (0 disables it).
    seed : int
        Seeds the initial weights, the batch order and the augmentation.
    train_limit, test_limit : int or None
        Use only the first N training / test images (smoke tests).
    data_root : str or None
        Dataset folder (default: the dataset's default location).
    threads : int
        ``torch.set_num_threads`` value.
    fit_input : bool
        Fit the dataset's images to the model's input shape with
        :func:`fit_images` (needed for 1-channel datasets on 3-channel models).
    teacher : str or None
        Checkpoint of a trained CNN of the same model (:func:`quant.training.distill.load_teacher`);
        ``None``: plain cross-entropy training.
    kd_temperature, kd_weight : float
        Temperature ``T > 0`` and weight ``A`` in ``[0, 1]`` of the logit
        distillation term (see :mod:`quant.training.distill` for the loss).
    kd_feature_weight : float
        Weight ``B >= 0`` of the feature term (0: off).
    kd_feature : str
        Feature distance, one of :data:`quant.training.distill.FEATURE_DISTANCES`.
        Without a teacher the ``kd_*`` fields must keep their defaults.
    """

    model: str = "lenet5-bn"
    kind: str = "adder"
    dataset: str = "fashion-mnist"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    eta: float | None = 0.2
    label_smoothing: float = 0.0
    warmup_epochs: int = 0
    crop_pad: int = 0
    flip: bool = True
    cutout: int = 0
    seed: int = 0
    train_limit: int | None = None
    test_limit: int | None = None
    data_root: str | None = None
    threads: int = 2
    fit_input: bool = False
    teacher: str | None = None
    kd_temperature: float = _KD_DEFAULTS["kd_temperature"]
    kd_weight: float = _KD_DEFAULTS["kd_weight"]
    kd_feature_weight: float = _KD_DEFAULTS["kd_feature_weight"]
    kd_feature: str = _KD_DEFAULTS["kd_feature"]

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; known models: {', '.join(MODELS)}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; known datasets: {', '.join(DATASETS)}")
        channels = len(NORMALIZATION[self.dataset][0])
        if not self.fit_input and INPUT_SHAPES[self.model][0] != channels:
            raise ValueError(f"model {self.model!r} takes {INPUT_SHAPES[self.model]} inputs, not {self.dataset} images"
                             " (fit_input pads and replicates them)")
        if self.fit_input and channels not in (1, INPUT_SHAPES[self.model][0]):
            raise ValueError(f"fit_input cannot turn {channels}-channel {self.dataset} images into "
                             f"{INPUT_SHAPES[self.model]} inputs")
        for name in ("epochs", "batch_size", "threads"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        for name in ("warmup_epochs", "crop_pad", "cutout", "seed"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer, not {v!r}")
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be smaller than epochs ({self.epochs})")
        for name in ("train_limit", "test_limit"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ValueError(f"{name} must be a positive integer or None, not {v!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, not {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), not {self.momentum!r}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ValueError(f"weight_decay must be a non-negative number, not {self.weight_decay!r}")
        if self.eta is not None and not (self.eta > 0 and math.isfinite(self.eta)):
            raise ValueError(f"eta must be a positive number or None, not {self.eta!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), not {self.label_smoothing!r}")
        if self.teacher is not None and (not isinstance(self.teacher, str) or not self.teacher):
            raise ValueError(f"teacher must be a checkpoint path or None, not {self.teacher!r}")
        if not (self.kd_temperature > 0 and math.isfinite(self.kd_temperature)):
            raise ValueError(f"kd_temperature must be a positive number, not {self.kd_temperature!r}")
        if not 0 <= self.kd_weight <= 1:
            raise ValueError(f"kd_weight must be in [0, 1], not {self.kd_weight!r}")
        if not (self.kd_feature_weight >= 0 and math.isfinite(self.kd_feature_weight)):
            raise ValueError(f"kd_feature_weight must be a non-negative number, not {self.kd_feature_weight!r}")
        if self.kd_feature not in FEATURE_DISTANCES:
            raise ValueError(f"kd_feature must be one of {', '.join(FEATURE_DISTANCES)}, not {self.kd_feature!r}")
        if self.teacher is None:
            changed = [k for k, v in _KD_DEFAULTS.items() if getattr(self, k) != v]
            if changed:
                raise ValueError(f"{', '.join(changed)} need(s) a teacher")

    def recipe(self) -> dict:
        """The fields a resumed run must share with the original one."""
        return {k: getattr(self, k) for k in _RECIPE}


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`: final test accuracy (percent), per-epoch history, wall time."""

    accuracy: float
    history: list
    wall_time_s: float
    path: Path


def git_commit() -> str:
    """``git describe --always --dirty`` of the source tree, or ``"unknown"``."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=10, check=True,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def normalize(images_u8: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (or 0..1 float) ``[N, C, H, W]`` images to ``(x/255 - mean) / std`` float32."""
    x = images_u8.to(torch.float32)
    if images_u8.dtype == torch.uint8:
        x = x / 255.0
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - m) / s


def augment_batch(x: torch.Tensor, pad: int, flip: bool, gen: torch.Generator, cutout: int = 0) -> torch.Tensor:
    """Random crop (after ``pad`` pixels of zero padding), random horizontal flip, cutout.

    ``x`` is ``[B, C, H, W]`` (any dtype); the result has the same shape.
    The cutout square (side ``cutout``) has its centre anywhere in the image
    and is clipped at the border (DeVries & Taylor, 2017); it is set to 0.
    """
    b, _, h, w = x.shape
    if pad:
        xp = F.pad(x, (pad, pad, pad, pad))
        oy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
        ox = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
        rows = (oy[:, None] + torch.arange(h)[None, :])[:, None, :, None]  # [B,1,H,1]
        cols = (ox[:, None] + torch.arange(w)[None, :])[:, None, None, :]  # [B,1,1,W]
        bi = torch.arange(b)[:, None, None, None]
        ci = torch.arange(x.shape[1])[None, :, None, None]
        x = xp[bi, ci, rows, cols]
    if flip:
        mask = torch.rand(b, generator=gen) < 0.5
        x = torch.where(mask.view(b, 1, 1, 1), x.flip(3), x)
    if cutout:
        cy = torch.randint(0, h, (b,), generator=gen)
        cx = torch.randint(0, w, (b,), generator=gen)
        ys = torch.arange(h).view(1, h, 1)
        xs = torch.arange(w).view(1, 1, w)
        lo_y, lo_x = (cy - cutout // 2).view(b, 1, 1), (cx - cutout // 2).view(b, 1, 1)
        hole = (ys >= lo_y) & (ys < lo_y + cutout) & (xs >= lo_x) & (xs < lo_x + cutout)  # [B, H, W]
        x = x.masked_fill(hole.unsqueeze(1), 0)
    return x


def fit_images(images_u8: torch.Tensor, shape) -> torch.Tensor:
    """:func:`quant.training.datasets.fit_images` of a uint8 tensor (the one copy of the fitting rule)."""
    from quant.training.datasets import fit_images as fit

    return torch.from_numpy(fit(images_u8.numpy(), shape))


@torch.no_grad()
def evaluate(model: nn.Module, images_u8, labels, mean, std, batch_size: int = 1000) -> float:
    """Top-1 accuracy in percent of ``model`` (put in eval mode) on uint8 images."""
    images = torch.as_tensor(images_u8)
    labels = torch.as_tensor(labels)
    if len(images) == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    model.eval()
    correct = 0
    for s in range(0, len(images), batch_size):
        out = model(normalize(images[s:s + batch_size], mean, std))
        correct += int((out.argmax(1) == labels[s:s + batch_size]).sum())
    return 100.0 * correct / len(images)


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train(
    config: TrainConfig,
    out: str | Path,
    resume: bool = False,
    progress: bool | None = None,
    force: bool = False,
    log: Callable[[str], None] = print,
    checkpoint_every: int = 0,
) -> TrainResult:
    """Train ``config.model`` and write the checkpoint to ``out`` after every epoch.

    Parameters
    ----------
    config : TrainConfig
    out : path
        Checkpoint file (our format; see :mod:`quant.training.checkpoint`).
    resume : bool
        Continue from ``out`` (which must exist and have the same recipe,
        the teacher's sha256 included).
    progress : bool or None
        tqdm progress bars (``None``: only on a terminal).
    log : callable
        Receives one line per epoch.
    force : bool
        Start afresh even if ``out`` exists (without it, and without
        ``resume``, an existing ``out`` is refused).
    checkpoint_every : int
        Also rewrite ``out`` every this many steps inside an epoch (0: only
        at the end of each epoch); each such save logs one line.

    Returns
    -------
    TrainResult
    """
    from tqdm import tqdm

    out = Path(out)
    if not isinstance(checkpoint_every, int) or isinstance(checkpoint_every, bool) or checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be a non-negative integer, not {checkpoint_every!r}")
    if out.is_dir():
        raise IsADirectoryError(f"--out {out} is a folder: name the checkpoint file to write (e.g. {out / 'model.pt'})")
    check_parent_folders(out, "--out")
    if not resume and not force and out.exists():
        raise FileExistsError(f"{out} already exists; pass --resume to continue it or --force to overwrite it")
    torch.set_num_threads(config.threads)
    mean, std = NORMALIZATION[config.dataset]
    x_train, y_train = load_raw(config.dataset, "train", config.data_root)
    x_test, y_test = load_raw(config.dataset, "test", config.data_root)
    if config.train_limit:
        x_train, y_train = x_train[: config.train_limit], y_train[: config.train_limit]
    if config.test_limit:
        x_test, y_test = x_test[: config.test_limit], y_test[: config.test_limit]
    raw_shape = x_train.shape[1:]
    x_train, y_train = torch.from_numpy(np.ascontiguousarray(x_train)), torch.from_numpy(y_train)
    x_test, y_test = torch.from_numpy(np.ascontiguousarray(x_test)), torch.from_numpy(y_test)
    if config.fit_input:
        x_train, x_test = fit_images(x_train, INPUT_SHAPES[config.model]), fit_images(x_test, INPUT_SHAPES[config.model])

    torch.manual_seed(config.seed)
    model = build_model(config.model, config.kind, eta=config.eta)
    teacher = student_tap = teacher_tap = None
    if config.teacher is not None:
        teacher = load_teacher(config.teacher, model, config.model, config.dataset, config.fit_input)
        if config.kd_feature_weight > 0:
            student_tap = FeatureTap(model, FEATURE_TAPS[config.model])
            teacher_tap = FeatureTap(teacher.model, FEATURE_TAPS[config.model])
    recipe = config.recipe()
    recipe["teacher_sha256"] = teacher.sha256 if teacher else None
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.dim() == 1 else decay).append(p)  # no weight decay on BN and biases
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr, momentum=config.momentum,
    )
    steps_per_epoch = math.ceil(len(x_train) / config.batch_size)
    total = steps_per_epoch * config.epochs
    warm = steps_per_epoch * config.warmup_epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, total, warm))

    start_epoch, start_step, partial, history, elapsed = 0, 0, None, [], 0.0
    if resume:
        if not out.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint to resume at {out}")
        state = ckpt._read(out)
        ts = state.get("train_state") if isinstance(state, dict) else None
        if not isinstance(ts, dict):
            raise ValueError(f"--resume: {out} holds no training state (not written by adderhw train)")
        old = ts.get("recipe", {})
        defaults = {**TrainConfig().recipe(), "teacher_sha256": None}  # fields newer than the checkpoint
        no_kd = recipe["teacher_sha256"] is None and old.get("teacher_sha256") is None  # kd_* then unused
        diff = [f"{k}: checkpoint {old.get(k, defaults[k])!r}, now {v!r}"
                for k, v in recipe.items() if old.get(k, defaults[k]) != v and not (no_kd and k in _KD_DEFAULTS)]
        if diff:
            raise ValueError(f"--resume: {out} was trained with a different recipe ({'; '.join(diff)})")
        model.load_state_dict(state["state_dict"])
        opt.load_state_dict(ts["optimizer"])
        sched.load_state_dict(ts["scheduler"])
        start_epoch = int(ts["epoch"])
        history = list(state.get("history", []))
        elapsed = float(state.get("wall_time_s", 0.0))
        start_step = int(ts.get("step", 0))
        if start_step:
            partial = ts["partial"]
            log(f"resuming {out} at epoch {start_epoch + 1}/{config.epochs}, step {start_step}/{steps_per_epoch}")
        else:
            log(f"resuming {out} after epoch {start_epoch}/{config.epochs}")

    def save(epoch_done: int, step: int = 0, extra: dict | None = None) -> None:
        meta = {
            "model": config.model, "kind": config.kind, "dataset": config.dataset,
            "epochs": epoch_done, "commit": commit, "wall_time_s": elapsed,
            "recipe": {k: v for k, v in asdict(config).items() if k not in ("data_root",)},
            "history": history, "test_images": len(x_test),
        }
        if history:
            meta["accuracy"] = history[-1]["test_acc"]
        if step:
            meta["partial_epoch"] = {"epoch": epoch_done + 1, "step": step, "steps": steps_per_epoch}
        if config.fit_input:
            meta["input_fit"] = {"from": [int(v) for v in raw_shape], "to": list(INPUT_SHAPES[config.model]),
                                 "how": "zero-padded, centred, channel replicated (quant.training.train.fit_images)"}
        if teacher is not None:
            meta["teacher"] = teacher.record()
        train_state = {
            "epoch": epoch_done, "recipe": recipe,
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
        }
        if step:
            train_state.update(step=step, **extra)
        ckpt.save(out, model, meta, train_state=train_state)

    commit = git_commit()
    acc = history[-1]["test_acc"] if history else float("nan")
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        model.train()
        gen = torch.Generator().manual_seed(config.seed * 100003 + epoch)
        order = torch.randperm(len(x_train), generator=gen)
        loss_sum, seen, correct, first = 0.0, 0, 0, 0
        if epoch == start_epoch and start_step:
            gen.set_state(partial["generator"])
            loss_sum, seen, correct = float(partial["loss_sum"]), int(partial["seen"]), int(partial["correct"])
            t0 -= float(partial["time_s"])
            first = start_step
        bar = tqdm(
            range(first, steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
            disable=(not progress) if progress is not None else None,
        )
        for i in bar:
            idx = order[i * config.batch_size:(i + 1) * config.batch_size]
            xb = x_train[idx]
            if config.crop_pad or config.flip or config.cutout:
                xb = augment_batch(xb, config.crop_pad, config.flip, gen, config.cutout)
            xb = normalize(xb, mean, std)
            yb = y_train[idx]
            out_logits = model(xb)
            if teacher is None:
                loss = F.cross_entropy(out_logits, yb, label_smoothing=config.label_smoothing)
            else:
                t_logits = teacher(xb)
                loss = distillation_loss(
                    out_logits, t_logits, yb, temperature=config.kd_temperature, weight=config.kd_weight,
                    label_smoothing=config.label_smoothing,
                    student_features=student_tap.outputs if student_tap else (),
                    teacher_features=teacher_tap.outputs if teacher_tap else (),
                    feature_weight=config.kd_feature_weight, feature_kind=config.kd_feature,
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if not math.isfinite(loss.item()):
                raise ValueError(f"training diverged at epoch {epoch + 1} (loss {loss.item()}); lower the lr")
            loss_sum += loss.item() * len(idx)
            seen += len(idx)
            correct += int((out_logits.argmax(1) == yb).sum())
            if i % 20 == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * correct / seen:.1f}")
            if checkpoint_every and (i + 1) % checkpoint_every == 0 and i + 1 < steps_per_epoch:
                run_s = time.perf_counter() - t0
                save(epoch, i + 1, {"partial": {"generator": gen.get_state(), "loss_sum": loss_sum, "seen": seen,
                                                "correct": correct, "time_s": run_s}})
                log(f"saved {out} at epoch {epoch + 1}/{config.epochs}, step {i + 1}/{steps_per_epoch}")
        bar.close()
        acc = evaluate(model, x_test, y_test, mean, std)
        dt = time.perf_counter() - t0
        elapsed += dt
        history.append({
            "epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": 100.0 * correct / seen,
            "test_acc": acc, "lr_end": opt.param_groups[0]["lr"], "time_s": dt,
        })
        save(epoch + 1)
        log(
            f"epoch {epoch + 1}/{config.epochs}  loss {loss_sum / seen:.4f}  train {100 * correct / seen:.2f}%  "
            f"test {acc:.2f}%  {dt:.1f}s  (total {elapsed / 60:.1f} min)"
        )
    return TrainResult(accuracy=acc, history=history, wall_time_s=elapsed, path=out)
