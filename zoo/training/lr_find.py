"""The learning-rate range test: grow the lr exponentially batch by batch and watch the loss.

The suggestion is the lr where the smoothed loss is lowest, divided by 10: the loss is still
falling fast there, and it is the usual pick for one-cycle's peak lr.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.catalog import get_spec
from zoo.errors import ZooUsageError
from zoo.output import progress_bar
from zoo.run import atomic_write, build_model
from zoo.training.config import TrainConfig, family_defaults, resolve_options
from zoo.training.optim import build_optimizer
from zoo.training.precision import autocast, resolve_device, resolve_precision

DIVERGE = 4.0  # stop once the smoothed loss exceeds this multiple of the best
SMOOTH = 0.9


def lr_find(
    arch: str,
    data: str | Path,
    *,
    start_lr: float = 1e-6,
    end_lr: float = 10.0,
    steps: int = 100,
    plot: str | Path | None = None,
    progress: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Sweep the lr from ``start_lr`` to ``end_lr`` over ``steps`` batches; returns lrs, losses and
    ``suggested``. ``options`` are training options (optimizer, batch_size, augment, ...);
    ``progress`` shows a bar on a terminal's stderr."""
    if not (0 < start_lr < end_lr) or not math.isfinite(end_lr):
        raise ZooUsageError(f"--start-lr/--end-lr must satisfy 0 < start < end, got {start_lr:g}, {end_lr:g}")
    if not isinstance(steps, int) or steps < 5:
        raise ZooUsageError(f"--steps must be an integer >= 5, got {steps!r}")
    cfg = TrainConfig(**options).validate()
    spec = get_spec(arch)
    arch = spec.name  # a family name means its default member
    from zoo.data import load_splits, make_loaders
    from zoo.training.new_run import check_new_run, new_run_config

    splits = load_splits(data, val_split=cfg.val_split, seed=cfg.seed)
    defaults = family_defaults(spec.family, spec.tags)
    cfg = resolve_options(cfg, defaults, len(splits.train))
    cfg.lr = start_lr
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device, defaults.cpu_bf16)
    check_new_run(spec, splits, cfg, device)
    config = new_run_config(spec, data, splits, cfg)
    torch.manual_seed(cfg.seed)
    model = build_model(config).to(device).train()
    train_loader, _, _ = make_loaders(
        splits,
        config["preprocessing"],
        augment=cfg.augment,
        batch_size=int(cfg.batch_size),
        workers=cfg.workers,  # type: ignore[arg-type]
        cache=cfg.cache,
        device=device,
        seed=cfg.seed,
    )
    optimizer = build_optimizer(model, cfg)
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    ctx = autocast(device, precision)
    factor = (end_lr / start_lr) ** (1 / (steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    avg, best = 0.0, math.inf
    batches = iter(train_loader)
    with progress_bar(f"lr range test: {spec.name}, {steps} batches", steps, progress) as advance:
        for i in range(steps):
            lr = start_lr * factor**i
            for group in optimizer.param_groups:
                group["lr"] = lr
            try:
                images, labels = next(batches)
            except StopIteration:
                batches = iter(train_loader)
                images, labels = next(batches)
            images, labels = images.to(device), labels.to(device)
            with ctx():
                loss = criterion(model(images).float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            avg = SMOOTH * avg + (1 - SMOOTH) * value
            smoothed = avg / (1 - SMOOTH ** (i + 1))
            if not math.isfinite(smoothed):
                break
            advance()
            lrs.append(lr)
            losses.append(smoothed)
            best = min(best, smoothed)
            if smoothed > DIVERGE * best and i > 5:
                break
    lowest = lrs[losses.index(min(losses))]
    result = {
        "arch": arch,
        "data": str(data),
        "optimizer": cfg.optimizer,
        "batch_size": cfg.batch_size,
        "lrs": lrs,
        "losses": losses,
        "lowest_loss_lr": lowest,
        "suggested": lowest / 10,
    }
    if plot is not None:
        _plot(Path(plot), result)
        result["plot"] = str(plot)
    return result


def _plot(path: Path, result: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result["lrs"], result["losses"])
    ax.axvline(
        result["suggested"], color="tab:red", linestyle="--", label=f"suggested {result['suggested']:.2g}"
    )
    ax.set(
        xscale="log",
        xlabel="learning rate",
        ylabel="smoothed training loss",
        title=f"lr range test: {result['arch']} ({result['optimizer']})",
    )
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)
