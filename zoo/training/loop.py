"""The epoch loop: train, validate, checkpoint, stop early; Ctrl-C leaves a resumable last.pt.

last.pt is rewritten atomically at the end of every epoch (and once before the first), so it always
holds a consistent end-of-epoch state: an interrupt mid-epoch abandons only that epoch, and an
interrupt while the epoch is being recorded (best.pt, last.pt, metrics.csv) is held back until all
three are written (``zoo.run.defer_interrupt``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import ZooError
from zoo.run import defer_interrupt
from zoo.training.checkpoint import rng_state, save_checkpoint
from zoo.training.config import TrainConfig
from zoo.training.ema import ModelEMA
from zoo.training.metrics import Meter
from zoo.training.optim import Schedule, current_lr
from zoo.training.report import Reporter, plot_curves, write_metrics_csv
from zoo.training.speed import loader_speeds


class TrainingInterrupted(ZooError):
    """Ctrl-C: last.pt is safe on disk; the message says how to resume."""

    exit_code = 130


@dataclass
class Parts:
    """The objects one training run steps together."""

    model: nn.Module  # the raw module (state_dict keys without a compile prefix)
    forward: nn.Module  # what is called: the model, or torch.compile of it
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    criterion: nn.Module
    autocast: Callable[[], AbstractContextManager[object]]
    device: str
    channels_last: bool
    scaler: torch.amp.GradScaler | None = None
    ema: ModelEMA | None = None
    mixer: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None
    dist: Any = None  # zoo.training.distributed.Dist when several processes train together

    @property
    def writer(self) -> bool:
        """Whether this process writes the run directory (rank 0, or the only process)."""
        return self.dist is None or self.dist.writer

    def eval_model(self) -> nn.Module:
        """The weights that are validated, saved as "model" and exported (EMA when on)."""
        return self.ema.module if self.ema is not None else self.model

    def to_device(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, labels.to(self.device, non_blocking=True)


@dataclass
class LoopState:
    """Progress that survives a resume (saved in last.pt)."""

    epoch: int = 0  # epochs completed
    best_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "stopped_early": self.stopped_early,
            "history": self.history,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoopState:
        return cls(
            int(d["epoch"]),
            float(d["best_loss"]),
            int(d["best_epoch"]),
            int(d["bad_epochs"]),
            bool(d["stopped_early"]),
            list(d["history"]),
        )


def train_epoch(
    parts: Parts, loader: Any, num_classes: int, reporter: Reporter, epoch: int, epochs: int, clip_grad: float
) -> tuple[Meter, float]:
    """One pass over the training data; returns the meter and images per second."""
    parts.forward.train()
    meter = Meter(num_classes)
    reporter.start_epoch(epoch, epochs, len(loader))
    start = time.perf_counter()
    for images, labels in loader:
        images, labels = parts.to_device(images, labels)
        targets = labels
        if parts.mixer is not None:
            images, targets = parts.mixer(images, labels)
        with parts.autocast():
            logits = parts.forward(images)
            loss = parts.criterion(logits.float(), targets)
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise ZooError(
                f"training loss became {loss_value} in epoch {epoch}; try a lower --lr "
                f"(now {current_lr(parts.optimizer):.3g}) or --clip-grad 1.0"
            )
        parts.optimizer.zero_grad(set_to_none=True)
        _step(parts, loss, clip_grad)
        parts.schedule.after_batch()
        if parts.ema is not None:
            parts.ema.update(parts.model)
        meter.update(logits, targets, loss_value)
        reporter.batch(meter.loss, meter.top1, **loader_speeds(loader, meter.n, time.perf_counter() - start))
    if parts.dist is not None:  # every rank reports the global figures (and img/s of all ranks)
        parts.dist.reduce_meter(meter)
    return meter, meter.n / max(1e-9, time.perf_counter() - start)



def _step(parts: Parts, loss: torch.Tensor, clip_grad: float) -> None:
    if parts.scaler is not None:
        parts.scaler.scale(loss).backward()
        if clip_grad > 0:
            parts.scaler.unscale_(parts.optimizer)
            nn.utils.clip_grad_norm_(parts.model.parameters(), clip_grad)
        parts.scaler.step(parts.optimizer)
        parts.scaler.update()
        return
    loss.backward()
    if clip_grad > 0:
        nn.utils.clip_grad_norm_(parts.model.parameters(), clip_grad)
    parts.optimizer.step()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Any,
    num_classes: int,
    *,
    device: str,
    channels_last: bool = False,
    autocast: Callable[[], AbstractContextManager[object]] | None = None,
    confusion: bool = True,
) -> Meter:
    """Loss (plain cross-entropy, no smoothing), top-1/top-5 and the confusion matrix of a split."""
    model.eval()
    meter = Meter(num_classes, confusion=confusion)
    for images, labels in loader:
        images = images.to(device)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = labels.to(device)
        if autocast is None:
            logits = model(images)
        else:
            with autocast():
                logits = model(images)
        logits = logits.float()
        meter.update(logits, labels, float(F.cross_entropy(logits, labels)))
    return meter


def checkpoint_parts(
    parts: Parts, state: LoopState, cfg: TrainConfig, meta: dict[str, Any]
) -> dict[str, Any]:
    """Everything a resume needs, tensors and plain values only."""
    ckpt: dict[str, Any] = {
        "model": parts.eval_model().state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.schedule.state_dict(),
        "loop": state.to_dict(),
        "epochs": cfg.epochs,
        "rng": rng_state(),
        **meta,
    }
    if parts.ema is not None:
        ckpt["raw_model"] = parts.model.state_dict()
        ckpt["ema"] = parts.ema.state_dict()
    if parts.scaler is not None:
        ckpt["scaler"] = parts.scaler.state_dict()
    return ckpt


def fit(
    parts: Parts,
    state: LoopState,
    cfg: TrainConfig,
    train_loader: Any,
    val_loader: Any,
    run_dir: Path,
    num_classes: int,
    meta: dict[str, Any],
    reporter: Reporter,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> LoopState:
    """Train from ``state.epoch + 1`` to ``cfg.epochs`` (or an early stop), checkpointing each epoch."""
    epochs = int(cfg.epochs)  # type: ignore[arg-type]
    last = run_dir / "last.pt"

    def save_last() -> None:
        if parts.writer:
            save_checkpoint(last, **checkpoint_parts(parts, state, cfg, meta))

    if state.epoch == 0:
        save_last()
    epoch = state.epoch + 1
    try:
        while epoch <= epochs and not state.stopped_early:
            _reseed_loader(train_loader, cfg.seed, epoch, parts.dist.seed_offset if parts.dist else 0)
            t0 = time.perf_counter()
            train_meter, ips = train_epoch(
                parts, train_loader, num_classes, reporter, epoch, epochs, cfg.clip_grad
            )
            speeds = loader_speeds(train_loader, train_meter.n, train_meter.n / max(1e-9, ips))
            if parts.dist is not None:
                parts.dist.sync_state(parts.eval_model(), buffers_only=True)
            val = evaluate(
                parts.eval_model(),
                val_loader,
                num_classes,
                device=parts.device,
                channels_last=parts.channels_last,
                autocast=parts.autocast,
                confusion=False,
            )
            if parts.dist is not None:
                parts.dist.reduce_meter(val)
            lr = current_lr(parts.optimizer)
            parts.schedule.after_epoch(val.loss)
            row = {
                "epoch": epoch,
                "lr": lr,
                "train_loss": train_meter.loss,
                "train_top1": train_meter.top1,
                "val_loss": val.loss,
                "val_top1": val.top1,
                "val_top5": val.top5,
                **speeds,
                "epoch_s": time.perf_counter() - t0,
            }
            improved = val.loss < state.best_loss
            _advance(state, row, improved, cfg.patience)
            with defer_interrupt():  # the epoch is complete: a Ctrl-C lands after it is recorded whole
                if improved and parts.writer:
                    save_checkpoint(
                        run_dir / "best.pt",
                        model=parts.eval_model().state_dict(),
                        epoch=epoch,
                        val_loss=val.loss,
                        val_top1=val.top1,
                        **meta,
                    )
                save_last()
                if parts.writer:
                    write_metrics_csv(run_dir / "metrics.csv", state.history)
            reporter.end_epoch(row, epochs, improved)
            if on_epoch is not None:
                on_epoch(row)
            epoch += 1
    except KeyboardInterrupt:
        raise TrainingInterrupted(
            f"interrupted in epoch {state.epoch + 1}; {last} holds epoch {state.epoch}; "
            f"continue with: zoo train {meta['arch']} --resume {run_dir}"
        ) from None
    finally:
        if state.history and parts.writer:
            plot_curves(run_dir / "curves.png", state.history)
    if state.stopped_early:
        reporter.info(f"stopped early: validation loss did not improve for {cfg.patience} epochs")
    return state


def _advance(state: LoopState, row: dict[str, Any], improved: bool, patience: int) -> None:
    state.history.append(row)
    state.epoch = row["epoch"]
    if improved:
        state.best_loss, state.best_epoch, state.bad_epochs = row["val_loss"], row["epoch"], 0
    else:
        state.bad_epochs += 1
        state.stopped_early = patience > 0 and state.bad_epochs >= patience


def _reseed_loader(loader: Any, seed: int, epoch: int, offset: int = 0) -> None:
    """Epoch-seeded shuffling and augmentation, so a resumed run sees the batches it would have
    (``offset``: each rank of a distributed run draws its own)."""
    generator = getattr(loader, "generator", None)
    if isinstance(generator, torch.Generator):
        generator.manual_seed(seed * 100_003 + epoch + offset)
