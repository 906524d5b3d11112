"""Every training option in one dataclass, validated before anything touches the disk.

``None`` means "choose for me": :func:`resolve_options` fills it from per-family defaults (measured
on a 2-core CPU, see benchmarks/RESULTS.md, "Training") and from the data, so ``zoo train ARCH --data
DIR`` needs no flags. The resolved options are what config.json records and what ``--resume`` replays.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from zoo.errors import ZooUsageError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("onecycle", "cosine", "step", "plateau", "none")
AUGMENTS = ("none", "light", "standard", "randaugment", "trivialaugment")
NORMS = ("dataset", "imagenet", "half")
CACHES = ("auto", "on", "off")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MIXERS = ("mixup", "cutmix", "mixup,cutmix")
PIPELINES = ("auto", "batched", "pil")

# Options that may change when a run is resumed; everything else must match the original run.
RESUMABLE = (
    "epochs", "patience", "device", "workers", "threads", "quiet", "json", "mlflow", "compile",
    "activation_stats", "activation_every", "pipeline", "sync_bn",
)


@dataclass(frozen=True)
class FamilyDefaults:
    """What works without tuning for one architecture family (measured, not guessed)."""

    optimizer: str
    lr: float
    weight_decay: float
    batch_size: int
    cpu_bf16: bool  # bf16 autocast pays off on AVX-512-BF16 CPUs for this family
    channels_last: bool


FAMILY_DEFAULTS: dict[str, FamilyDefaults] = {
    "simple": FamilyDefaults("adamw", 3e-3, 5e-4, 64, cpu_bf16=False, channels_last=True),
    "vgg": FamilyDefaults("sgd", 0.05, 5e-4, 64, cpu_bf16=True, channels_last=False),
    # VGG without BatchNorm: SGD at 0.05 left vgg11 at chance on digits (with fan_in convs it learned, then
    # diverged in the third epoch); AdamW 3e-4 learned best of those tried (RESULTS.md, "VGG without BN")
    "vgg-plain": FamilyDefaults("adamw", 3e-4, 5e-4, 64, cpu_bf16=True, channels_last=False),
    "resnet": FamilyDefaults("sgd", 0.1, 5e-4, 64, cpu_bf16=True, channels_last=False),
    "mobilenet": FamilyDefaults("adamw", 3e-3, 1e-2, 64, cpu_bf16=False, channels_last=True),
}
# VGG with BatchNorm above SMALL_INPUT_MAX px keeps torchvision's 25088-4096-4096 head, whose wide fan-in SGD
# at 0.05 blew up on the first steps (vgg16_bn on digits at 96 px stayed at chance for 6 epochs; 0.005 reached
# 97.6%); the small-image head needs the 0.05 (RESULTS.md, "VGG's ImageNet head"). Otherwise the same.
FAMILY_DEFAULTS["vgg-imagenet-head"] = replace(FAMILY_DEFAULTS["vgg"], lr=0.005)
GENERIC_DEFAULTS = FamilyDefaults("adamw", 2e-3, 1e-2, 64, cpu_bf16=False, channels_last=False)

# On CUDA the default batch is larger (the GPU needs it to be busy): 512 for small images, 128 above
# SMALL_IMAGE px; the learning rate then follows the batch by the square-root rule (below).
CUDA_BATCH, CUDA_BATCH_LARGE, SMALL_IMAGE = 512, 128, 64

SMALL_INPUT_MAX = 64  # ImageNet-style nets keep their early resolution (and a small head) up to this size

TARGET_STEPS = 6000  # default epochs aim at about this many optimiser steps ...
MIN_EPOCHS, MAX_EPOCHS = 10, 30  # ... within these bounds


@dataclass
class TrainConfig:
    """All of ``zoo train``'s options; ``None`` = automatic (see :func:`resolve_options`)."""

    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    lr: float | None = None
    weight_decay: float | None = None
    momentum: float = 0.9
    nesterov: bool = True
    scheduler: str = "onecycle"
    warmup_epochs: float = 1.0
    step_size: int = 10
    gamma: float = 0.1
    label_smoothing: float = 0.1
    ema: bool = False
    ema_decay: float = 0.999
    clip_grad: float = 0.0
    patience: int = 5
    mixup: str | None = None
    mixup_alpha: float = 1.0
    augment: str = "standard"
    image_size: int | None = None
    in_channels: int | None = None
    norm: str = "dataset"
    val_split: float = 0.2
    seed: int = 0
    workers: int | None = None
    threads: int | None = None
    cache: str = "auto"
    check_images: bool | None = None  # decode every image up front (None: folders up to 10,000 files)
    pipeline: str = "auto"
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool | None = None
    compile: bool = False
    quiet: bool = False
    json: bool = False
    mlflow: bool = False
    activation_stats: bool = False  # per-layer activation statistics (zoo.training.activations)
    activation_every: int = 10  # ... recorded every this many training steps
    sync_bn: bool = False  # under torchrun: BatchNorm statistics over the global batch (CUDA only)

    def validate(self) -> TrainConfig:
        """Raise a one-line ZooUsageError for the first bad option (nothing is written before this)."""
        _positive_int("--epochs", self.epochs)
        _positive_int("--batch-size", self.batch_size)
        _positive_int("--image-size", self.image_size)
        _positive_int("--step-size", self.step_size)
        _positive_int("--threads", self.threads)
        _positive_int("--activation-every", self.activation_every)
        if self.activation_stats and self.compile:
            raise ZooUsageError("--activation-stats cannot be combined with --compile (hooks break graphs)")
        if self.in_channels is not None and self.in_channels not in (1, 3):
            raise ZooUsageError(f"--in-channels must be 1 or 3, got {self.in_channels}")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 0):
            raise ZooUsageError(f"--workers must be 0 or more, got {self.workers!r}")
        if not isinstance(self.patience, int) or self.patience < 0:
            raise ZooUsageError(f"--patience must be 0 (off) or more, got {self.patience!r}")
        _number("--lr", self.lr, low=0.0, low_open=True, high=10.0)
        _number("--weight-decay", self.weight_decay, low=0.0, high=1.0)
        _number("--momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        _number("--warmup-epochs", self.warmup_epochs, low=0.0)
        _number("--gamma", self.gamma, low=0.0, low_open=True, high=1.0)
        _number("--label-smoothing", self.label_smoothing, low=0.0, high=1.0, high_open=True)
        _number("--ema-decay", self.ema_decay, low=0.0, low_open=True, high=1.0, high_open=True)
        _number("--clip-grad", self.clip_grad, low=0.0)
        _number("--mixup-alpha", self.mixup_alpha, low=0.0, low_open=True)
        _number("--val-split", self.val_split, low=0.0, low_open=True, high=1.0, high_open=True)
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ZooUsageError(f"--seed must be 0 or more, got {self.seed!r}")
        _choice("--optimizer", self.optimizer, OPTIMIZERS)
        _choice("--scheduler", self.scheduler, SCHEDULERS)
        _choice("--augment", self.augment, AUGMENTS)
        _choice("--norm", self.norm, NORMS)
        _choice("--cache", self.cache, CACHES)
        _choice("--pipeline", self.pipeline, PIPELINES)
        _choice("--device", self.device, DEVICES)
        _choice("--precision", self.precision, PRECISIONS)
        _choice("--mixup", self.mixup, MIXERS)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def family_defaults(family: str, tags: tuple[str, ...] = (), image_size: int | None = None) -> FamilyDefaults:
    """By family; a family we have not measured borrows from the one its tags resemble.
    ``image_size`` matters where the network's head depends on it (VGG); None: a small image."""
    if family == "vgg" and "bn" not in tags:
        return FAMILY_DEFAULTS["vgg-plain"]
    if family == "vgg" and image_size is not None and image_size > SMALL_INPUT_MAX:
        return FAMILY_DEFAULTS["vgg-imagenet-head"]
    if family in FAMILY_DEFAULTS:
        return FAMILY_DEFAULTS[family]
    if "depthwise" in tags:
        return FAMILY_DEFAULTS["mobilenet"]
    if "residual" in tags and "bn" in tags:
        return FAMILY_DEFAULTS["resnet"]
    if "small" in tags and "bn" in tags:
        return FAMILY_DEFAULTS["simple"]
    return GENERIC_DEFAULTS


def default_epochs(train_size: int, batch_size: int) -> int:
    """Small data sets get 30 epochs; big ones fewer, at about TARGET_STEPS optimiser steps."""
    steps = max(1, math.ceil(train_size / batch_size))
    return max(MIN_EPOCHS, min(MAX_EPOCHS, math.ceil(TARGET_STEPS / steps)))


def scaled_lr(lr: float, batch: int, reference_batch: int) -> float:
    """The square-root scaling rule: ``lr * sqrt(batch / reference_batch)`` (Krizhevsky 2014, Hoffer
    et al. 2017; the usual rule for Adam). Gentler than the linear rule for SGD, which from these
    already high lrs (0.1 at batch 64) would ask for 0.8 at 512."""
    return lr * math.sqrt(batch / reference_batch)


def resolve_options(
    cfg: TrainConfig, defaults: FamilyDefaults, train_size: int, *, device: str = "cpu", image_size: int = 32
) -> TrainConfig:
    """Fill the optimiser/lr/batch/epochs ``None`` fields from the family defaults and data size.

    On CUDA the default batch is CUDA_BATCH (CUDA_BATCH_LARGE above SMALL_IMAGE px) and channels_last
    is on (tensor cores want NHWC). An lr not given follows the batch by :func:`scaled_lr`, from the
    family's lr at its batch. Image size, channels, device and precision are resolved where their
    inputs live (api/precision).
    """
    d = defaults
    cuda = device.startswith("cuda")
    batch = cfg.batch_size or ((CUDA_BATCH if image_size <= SMALL_IMAGE else CUDA_BATCH_LARGE) if cuda
                               else d.batch_size)
    optimizer = cfg.optimizer or d.optimizer
    # an optimiser chosen by hand keeps a learning rate that suits it, not the family's other optimiser's
    same_opt = optimizer == d.optimizer
    base_lr = d.lr if same_opt else (0.05 if optimizer == "sgd" else 2e-3)
    lr = cfg.lr if cfg.lr is not None else scaled_lr(base_lr, batch, d.batch_size)
    wd = cfg.weight_decay if cfg.weight_decay is not None else (d.weight_decay if same_opt else 5e-4)
    channels_last = cfg.channels_last
    if channels_last is None:
        channels_last = True if cuda else d.channels_last
    return TrainConfig.from_dict(
        {
            **cfg.to_dict(),
            "batch_size": batch,
            "optimizer": optimizer,
            "lr": lr,
            "weight_decay": wd,
            "epochs": cfg.epochs or default_epochs(train_size, batch),
            "channels_last": channels_last,
        }
    )


def _positive_int(flag: str, value: Any) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ZooUsageError(f"{flag} must be a positive integer, got {value!r}")


def _number(
    flag: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ZooUsageError(f"{flag} must be a finite number, got {value!r}")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        raise ZooUsageError(f"{flag} must be {' and '.join(s for s in (lo, hi) if s)}, got {value:g}")


def _choice(flag: str, value: Any, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise ZooUsageError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")
