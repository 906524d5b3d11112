"""Optimisers and learning-rate schedules behind one small interface the loop can drive.

Weight decay skips biases and normalisation weights (decaying them only hurts). Schedules that
move every batch (onecycle, cosine) and those that move every epoch (step, plateau) hide behind
``Schedule`` so the loop does not care which one it runs.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn

from zoo.training.config import TrainConfig

ONECYCLE_WARMUP = 0.25  # fraction of the run spent warming up (the course's one-cycle shape)


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    lr = float(cfg.lr)  # type: ignore[arg-type]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=lr)
    return torch.optim.AdamW(groups, lr=lr)


class Schedule:
    """A learning-rate schedule stepped per batch (onecycle, cosine) or per epoch (step, plateau)."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
        self.kind = cfg.scheduler
        epochs = int(cfg.epochs)  # type: ignore[arg-type]
        total = max(1, epochs * steps_per_epoch)
        self.per_batch = self.kind in ("onecycle", "cosine")
        self.impl: Any
        if self.kind == "onecycle":
            self.impl = torch.optim.lr_scheduler.OneCycleLR(
                optimizer,
                max_lr=float(cfg.lr),
                total_steps=total,  # type: ignore[arg-type]
                # torch divides by (pct_start * total - 1): zero for a 4-step run at 0.25
                pct_start=ONECYCLE_WARMUP if ONECYCLE_WARMUP * total != 1 else 1.5 / total,
                cycle_momentum=not (cfg.optimizer == "sgd" and cfg.momentum == 0),
            )
        elif self.kind == "cosine":
            warm = int(cfg.warmup_epochs * steps_per_epoch)
            self.impl = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _warm_cosine(s, warm, total))
        elif self.kind == "step":
            self.impl = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
        elif self.kind == "plateau":
            self.impl = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="min", factor=cfg.gamma, patience=max(1, cfg.patience // 2)
            )
        else:
            self.impl = None

    def after_batch(self) -> None:
        if self.per_batch:
            self.impl.step()

    def after_epoch(self, val_loss: float) -> None:
        if self.kind == "step":
            self.impl.step()
        elif self.kind == "plateau":
            self.impl.step(val_loss)

    def state_dict(self) -> dict[str, Any]:
        return {} if self.impl is None else self.impl.state_dict()

    def restore(
        self, state: dict[str, Any], same_length: bool, epochs_done: int, steps_per_epoch: int
    ) -> None:
        """Load the saved state; when ``--epochs`` changed on resume, replay the new schedule instead."""
        if self.impl is None:
            return
        if same_length or self.kind == "plateau":
            self.impl.load_state_dict(state)
            return
        with warnings.catch_warnings():  # replaying without optimizer steps is the point here
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(epochs_done * steps_per_epoch if self.per_batch else epochs_done):
                self.impl.step()


def _warm_cosine(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])
