"""Knowledge distillation from a trained CNN twin into an adder student.

The student (usually an adder model) learns from the labels and from a CNN
of the same model family (the *teacher*, a checkpoint of kind ``"cnn"``).
With student logits ``s``, teacher logits ``t``, labels ``y``, temperature
``T``, logit weight ``A`` and feature weight ``B``, the loss of a batch of
``N`` images is::

    L = (1 - A) * CE(s, y)                                     (label smoothing as configured)
      + A * T^2 * (1/N) sum_n KL(softmax(t_n / T) || softmax(s_n / T))
      + B * (1/P) sum_p D_p(f_p^s, f_p^t)

(Hinton et al., 2015: the ``T^2`` keeps the soft term's gradient scale
independent of ``T``).  ``f_p`` are the outputs of the ``P`` matching blocks
of :data:`FEATURE_TAPS` (LeNet-5-BN: the batch norms after conv1, conv2,
fc1, fc2, before their ReLU; ResNets: the three stages), flattened per
image, and ``D`` is one of :data:`FEATURE_DISTANCES`:

``"l2"``
    squared distance of the per-image unit-normalised features,
    ``(1/N) sum_n || f_n^s/|f_n^s| - f_n^t/|f_n^t| ||^2`` (in ``[0, 4]``).
``"kernel"``
    a Gaussian kernel on those unit vectors, compared across the batch:
    ``K_ij = exp(-|u_i - u_j|^2 / 2)`` for the student and the teacher, and
    ``D = (1/N^2) sum_ij (K^s_ij - K^t_ij)^2``.  Like PKKD (Xu et al.,
    NeurIPS 2020), which maps adder (Laplacian-like) and CNN (Gaussian-like)
    features through kernels before comparing them, the student is asked to
    reproduce the teacher's *similarities*, not its activation values.  PKKD
    puts the kernel inside the layers (Gaussian on the CNN's
    ``|x - w|^2``, Laplacian on the adder's ``|x - w|_1``) and adds a 1x1
    conv per layer; that is a second forward of every layer per batch, and
    is not built here.

The teacher runs in eval mode without gradients, once per batch, on the
same augmented images as the student.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from quant.training import checkpoint as ckpt
from quant.base.intops import NetKind
from quant.net.models import INPUT_SHAPES

__all__ = [
    "FEATURE_TAPS",
    "FeatureDistance",
    "FEATURE_DISTANCES",
    "Teacher",
    "FeatureTap",
    "kd_logit_loss",
    "feature_distance",
    "distillation_loss",
    "load_teacher",
    "sha256_file",
]

#: Modules whose outputs are compared by the feature term, per model.
FEATURE_TAPS: dict[str, tuple[str, ...]] = {
    "lenet5-bn": ("bn1", "bn2", "bn3", "bn4"),
    "resnet20": ("layer1", "layer2", "layer3"),
    "resnet32": ("layer1", "layer2", "layer3"),
}

class FeatureDistance(enum.StrEnum):
    """The feature distance ``D`` (see the module docstring): normalised L2, or Gaussian-kernel similarities."""

    L2 = "l2"
    KERNEL = "kernel"


#: Names of the feature distances ``D``.
FEATURE_DISTANCES = tuple(FeatureDistance)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def kd_logit_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * (1/N) sum_n KL(softmax(t_n/T) || softmax(s_n/T))`` for ``[N, C]`` logits."""
    t = float(temperature)
    log_p_s = F.log_softmax(student / t, dim=1)
    log_p_t = F.log_softmax(teacher / t, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * (t * t)


def _unit(f: torch.Tensor) -> torch.Tensor:
    f = f.flatten(1)
    return f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)


def feature_distance(student: torch.Tensor, teacher: torch.Tensor,
                     kind: FeatureDistance = FeatureDistance.L2) -> torch.Tensor:
    """Distance ``D`` between one block's student and teacher outputs (``[N, ...]`` each).

    ``kind`` is ``"l2"`` or ``"kernel"``; the formulas are in the module docstring.
    """
    if student.shape != teacher.shape:
        raise ValueError(f"feature shapes differ: student {tuple(student.shape)}, teacher {tuple(teacher.shape)}")
    us, ut = _unit(student), _unit(teacher)
    if kind == FeatureDistance.L2:
        return (us - ut).pow(2).sum(1).mean()
    if kind == FeatureDistance.KERNEL:
        ks = torch.exp(-0.5 * torch.cdist(us, us).pow(2))
        kt = torch.exp(-0.5 * torch.cdist(ut, ut).pow(2))
        return (ks - kt).pow(2).mean()
    raise ValueError(f"feature distance must be one of {', '.join(FEATURE_DISTANCES)}, not {kind!r}")


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    temperature: float,
    weight: float,
    label_smoothing: float = 0.0,
    student_features: list[torch.Tensor] = (),
    teacher_features: list[torch.Tensor] = (),
    feature_weight: float = 0.0,
    feature_kind: FeatureDistance = FeatureDistance.L2,
) -> torch.Tensor:
    """The loss ``L`` of the module docstring (a scalar tensor)."""
    loss = student_logits.new_zeros(())
    if weight < 1:
        loss = loss + (1 - weight) * F.cross_entropy(student_logits, targets, label_smoothing=label_smoothing)
    if weight > 0:
        loss = loss + weight * kd_logit_loss(student_logits, teacher_logits, temperature)
    if feature_weight > 0:
        if len(student_features) != len(teacher_features) or not student_features:
            raise ValueError(f"need matching feature lists, got {len(student_features)} and {len(teacher_features)}")
        d = sum(feature_distance(s, t, feature_kind) for s, t in zip(student_features, teacher_features))
        loss = loss + feature_weight * d / len(student_features)
    return loss


class FeatureTap:
    """Forward hooks that keep the outputs of the named submodules of a model.

    ``tap.outputs`` is the list of the last forward's outputs, in the order
    of ``names``; :meth:`close` removes the hooks.
    """

    def __init__(self, model: nn.Module, names: tuple[str, ...]):
        modules = dict(model.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            raise ValueError(f"{type(model).__name__} has no module(s) {', '.join(missing)} to take features from")
        self.names = tuple(names)
        self._out: dict[str, torch.Tensor] = {}
        self._handles = [modules[n].register_forward_hook(self._hook(n)) for n in self.names]

    def _hook(self, name):
        def keep(module, inputs, output):
            self._out[name] = output
        return keep

    @property
    def outputs(self) -> list[torch.Tensor]:
        return [self._out[n] for n in self.names]

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


@dataclass(frozen=True)
class Teacher:
    """A loaded teacher: model (eval mode, no gradients), its file's path and sha256, its metadata."""

    model: nn.Module
    path: str
    sha256: str
    meta: dict

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def record(self) -> dict:
        """What the student's checkpoint metadata stores about its teacher."""
        rec = {"path": self.path, "sha256": self.sha256, "model": self.meta["model"], "kind": self.meta["kind"]}
        if isinstance(self.meta.get("accuracy"), float):
            rec["accuracy"] = self.meta["accuracy"]
        return rec


def load_teacher(path: str | Path, student: nn.Module, model: str, dataset: str, fit_input: bool = False) -> Teacher:
    """Load a CNN checkpoint as the teacher of ``student`` (a ``model`` trained on ``dataset``).

    Refused with a one-line :class:`ValueError`: a teacher that is not of
    kind ``"cnn"`` (e.g. an adder student's checkpoint), of another model
    or dataset, trained with other inputs (``fit_input``, see
    :func:`quant.training.train.fit_images`), or whose matching blocks (:data:`FEATURE_TAPS`) or logits
    have other shapes than the student's.
    """
    path = Path(path)
    ck = ckpt.load(path)
    meta = ck.meta
    if meta["kind"] != NetKind.CNN:
        raise ValueError(f"teacher {path} is a checkpoint of kind {meta['kind']!r}; the teacher must be a trained CNN (kind 'cnn')")
    if meta["model"] != model:
        raise ValueError(f"teacher {path} is model {meta['model']!r}, the student is {model!r}; use a CNN of the same model")
    if meta["dataset"] != dataset:
        raise ValueError(f"teacher {path} was trained on {meta['dataset']}, the student trains on {dataset}")
    if bool(meta.get("input_fit")) != fit_input:
        how = "with" if meta.get("input_fit") else "without"
        raise ValueError(f"teacher {path} was trained {how} fit_input, the student {'with' if fit_input else 'without'}")
    teacher = ck.model.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    _check_shapes(teacher, student, model, path)
    return Teacher(model=teacher, path=str(path), sha256=sha256_file(path), meta=meta)


@torch.no_grad()
def _check_shapes(teacher: nn.Module, student: nn.Module, model: str, path: Path) -> None:
    names = FEATURE_TAPS[model]
    x = torch.zeros((2, *INPUT_SHAPES[model]))
    shapes = []
    was_training = student.training
    for net in (teacher, student):
        tap = FeatureTap(net, names)
        try:
            net.eval()
            logits = net(x)
            shapes.append([tuple(o.shape) for o in tap.outputs] + [tuple(logits.shape)])
        finally:
            tap.close()
    student.train(was_training)
    for name, ts, ss in zip(names + ("logits",), *shapes):
        if ts != ss:
            raise ValueError(f"teacher {path} does not match the student at {name}: teacher {ts}, student {ss}")
