"""``adderhw train`` and ``adderhw eval``.

torch is imported only when a command runs, so ``adderhw --help`` stays fast.
Before that import, ``OMP_WAIT_POLICY`` defaults to ``PASSIVE``: on a shared
2-core machine, spinning OpenMP workers made a training step ~9x slower.
"""

from __future__ import annotations

import argparse
import os

from quant.base.intops import NetKind
from quant.base.progress import progress

__all__ = ["register"]

_MODELS = ("lenet5-bn", "resnet20", "resnet32")
_DATASETS = ("fashion-mnist", "mnist", "cifar10")


def _eta(text: str) -> float | None:
    """``--eta``: a number, or ``none`` (off)."""
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or 'none', not {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``eval`` to the ``adderhw`` parser."""
    p = subparsers.add_parser(
        "train",
        help="train a model of the zoo (adder or CNN) and write a checkpoint",
        description="Train with SGD + momentum and a cosine learning-rate schedule; the test accuracy is "
        "measured after every epoch and the checkpoint (with optimizer state, for --resume) is rewritten "
        "atomically.",
    )
    p.add_argument("--model", default="lenet5-bn", choices=_MODELS, help="model of the zoo (default %(default)s)")
    p.add_argument("--kind", default=NetKind.ADDER.value, choices=[k.value for k in NetKind],
                   help="adder layers or their CNN twin (default %(default)s)")
    p.add_argument("--dataset", default="fashion-mnist", choices=_DATASETS, help="default %(default)s")
    p.add_argument("--data-root", default=None, help="dataset folder (default: Debian's Fashion-MNIST folder)")
    p.add_argument("--epochs", type=int, default=30, help="default %(default)s")
    p.add_argument("--out", "-o", required=True, help="checkpoint file to write")
    p.add_argument("--seed", type=int, default=0, help="default %(default)s")
    p.add_argument("--resume", action="store_true", help="continue the run stored in --out")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out (default: refuse)")
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="STEPS",
                   help="also rewrite --out every STEPS steps inside an epoch (resumable from there; default 0: "
                   "only after each epoch)")
    p.add_argument("--batch-size", type=int, default=128, help="default %(default)s")
    p.add_argument("--lr", type=float, default=0.1, help="peak learning rate (default %(default)s)")
    p.add_argument("--momentum", type=float, default=0.9, help="default %(default)s")
    p.add_argument("--weight-decay", type=float, default=5e-4, help="default %(default)s")
    p.add_argument("--eta", type=_eta, default=0.2,
                   help="adaptive learning-rate factor of adder layers ('none': off; default %(default)s)")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="default %(default)s")
    p.add_argument("--warmup-epochs", type=int, default=0, help="default %(default)s")
    p.add_argument("--crop-pad", type=int, default=0, help="random-crop padding in pixels (default 0: no crop; 2 made the adder LeNet underfit)")
    p.add_argument("--no-flip", dest="flip", action="store_false", help="no random horizontal flips")
    p.add_argument("--cutout", type=int, default=0, metavar="PIXELS",
                   help="side of a random square set to black in every training image (default 0: off)")
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N training images (default: all)")
    p.add_argument("--test-limit", type=int, default=None, help="use only the first N test images (default: all)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default %(default)s)")
    p.add_argument("--fit-input", action="store_true",
                   help="zero-pad and channel-replicate the images to the model's input (e.g. resnet20 on "
                   "fashion-mnist: 1x28x28 -> 3x32x32)")
    kd = p.add_argument_group("distillation from a trained CNN twin (quant.training.distill)")
    kd.add_argument("--teacher", default=None, metavar="CKPT",
                    help="CNN checkpoint of the same model and dataset to distil from")
    kd.add_argument("--kd-temperature", type=float, default=None, metavar="T",
                    help="softmax temperature of the logit term (default 2)")
    kd.add_argument("--kd-weight", type=float, default=None, metavar="A",
                    help="weight of the logit term; the labels' cross-entropy gets 1-A (default 0.5)")
    kd.add_argument("--kd-feature-weight", type=float, default=None, metavar="B",
                    help="weight of the feature term on matching blocks (default 0: off)")
    kd.add_argument("--kd-feature", default=None, choices=("l2", "kernel"),
                    help="feature distance: normalised L2 or Gaussian-kernel similarities (default kernel)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="tqdm progress bars (default: on a terminal only)")
    p.set_defaults(func=_run_train)

    e = subparsers.add_parser(
        "eval",
        help="print the test accuracy of a checkpoint",
        description="Load a checkpoint (adderhw format or a bare reference state dict) and print its "
        "top-1 accuracy on the test split.",
    )
    e.add_argument("checkpoint")
    e.add_argument("--model", default=None, choices=_MODELS, help="model (for bare state dicts)")
    e.add_argument("--kind", default=None, choices=[k.value for k in NetKind])
    e.add_argument("--dataset", default=None, choices=_DATASETS, help="default: the checkpoint's")
    e.add_argument("--data-root", default=None)
    e.add_argument("--limit", type=int, default=None, help="use only the first N test images")
    e.add_argument("--batch-size", type=int, default=1000)
    e.add_argument("--threads", type=int, default=2)
    e.set_defaults(func=_run_eval)


def _passive_omp() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _run_train(args: argparse.Namespace) -> int:
    _passive_omp()
    from quant.training.train import TrainConfig, train

    kd = {k: getattr(args, k) for k in ("kd_temperature", "kd_weight", "kd_feature_weight", "kd_feature")
          if getattr(args, k) is not None}
    if kd and args.teacher is None:
        raise ValueError(", ".join("--" + k.replace("_", "-") for k in kd) + " need(s) --teacher")
    if args.resume and args.force:
        raise ValueError("--resume and --force exclude each other")
    config = TrainConfig(
        model=args.model, kind=args.kind, dataset=args.dataset, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
        eta=args.eta, label_smoothing=args.label_smoothing, warmup_epochs=args.warmup_epochs,
        crop_pad=args.crop_pad, flip=args.flip, cutout=args.cutout, seed=args.seed, train_limit=args.train_limit,
        test_limit=args.test_limit, data_root=args.data_root, threads=args.threads, teacher=args.teacher, fit_input=args.fit_input, **kd,
    )
    result = train(config, args.out, resume=args.resume, force=args.force, progress=args.progress,
                   checkpoint_every=args.checkpoint_every,
                   log=lambda line: print(line, flush=True))
    print(
        f"{args.out}: {config.model} ({config.kind}) on {config.dataset}: test accuracy {result.accuracy:.2f}% "
        f"after {len(result.history)} epochs, {result.wall_time_s / 60:.1f} min"
    )
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    _passive_omp()
    import torch

    from quant.training import checkpoint
    from quant.training.datasets import load_raw
    from quant.training.train import evaluate, fit_images

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be a positive integer, not {args.limit}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be a positive integer, not {args.batch_size}")
    torch.set_num_threads(max(1, args.threads))
    ck = checkpoint.load(args.checkpoint, model=args.model, kind=args.kind,
                         dataset=args.dataset if args.dataset else None)
    meta = ck.meta
    dataset = meta["dataset"]
    images, labels = load_raw(dataset, "test", args.data_root)
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    if isinstance(meta.get("input_fit"), dict):  # trained with --fit-input
        images = fit_images(torch.from_numpy(images.copy()), meta["input_shape"])
    norm = meta["normalization"]
    with progress(f"eval: {len(labels)} {dataset} test images"):
        acc = evaluate(ck.model, images, labels, norm["mean"], norm["std"], batch_size=args.batch_size)
    stored = meta.get("accuracy")
    extra = f" (stored: {stored:.2f}%)" if isinstance(stored, float) else ""
    print(f"{args.checkpoint}: {meta['model']} ({meta['kind']}) on {dataset} test: {acc:.2f}% "
          f"of {len(labels)} images{extra}")
    return 0
