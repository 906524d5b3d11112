"""``zoo train --resume RUN``: the run to continue, read and checked whole before anything is
written, and its last.pt loaded into the rebuilt model, optimizer and schedule."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import ZooUsageError, error_head
from zoo.run import SPLIT_FILE, load_checkpoint, load_config, read_json, stopped_before_first_checkpoint
from zoo.training.checkpoint import check_optimizer_fits, check_resumable, set_rng_state
from zoo.training.config import RESUMABLE, TrainConfig
from zoo.training.loop import LoopState, Parts


@dataclass
class Prior:
    """The run being resumed: its config, last.pt (None: stopped before its first checkpoint), split."""

    run_dir: Path
    config: dict[str, Any]
    checkpoint: dict[str, Any] | None
    split_record: dict[str, Any] | None


def load_prior(run_dir: Path, arch: str) -> Prior:
    """The run to resume, checked whole before anything is written. A run killed before its first
    checkpoint (config but no last.pt) resumes from epoch 0 on its recorded options and split."""
    config = load_config(run_dir)
    if config["arch"] != arch:
        raise ZooUsageError(f"--resume {run_dir}: that run trained '{config['arch']}', not '{arch}'")
    last = run_dir / "last.pt"
    split_file = run_dir / config.get("split_file", SPLIT_FILE)
    if not last.is_file():
        if not stopped_before_first_checkpoint(run_dir):
            raise ZooUsageError(f"--resume {run_dir}: no last.pt to resume from")
        record = read_json(split_file, "split record") if split_file.is_file() else None
        return Prior(run_dir, config, None, record)
    checkpoint = load_checkpoint(last)
    check_resumable(checkpoint, last)
    return Prior(run_dir, config, checkpoint, read_json(split_file, "split record"))


def merge_resume(prior: Prior, options: dict[str, Any]) -> TrainConfig:
    """The run's own options, except the few that may change (``--epochs`` to train longer...)."""
    stored = TrainConfig.from_dict(prior.config["train"])
    merged = stored.to_dict()
    for key, value in options.items():
        if value is None or value == merged.get(key):
            continue
        if key not in RESUMABLE:
            flag = "--" + key.replace("_", "-")
            raise ZooUsageError(
                f"{flag} cannot change on --resume (the run used {merged.get(key)!r}); "
                f"start a new run instead"
            )
        merged[key] = value
    return TrainConfig.from_dict(merged).validate()


def restore(
    parts: Parts, ckpt: dict[str, Any], cfg: TrainConfig, steps_per_epoch: int, path: Path
) -> LoopState:
    """Load last.pt into the run's parts (before anything is written): what does not fit the
    rebuilt model and optimizer is a usage error naming the checkpoint."""
    try:
        return _load_parts(parts, ckpt, cfg, steps_per_epoch)
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ZooUsageError(f"--resume {path}: does not fit {ckpt.get('arch', 'the model')} as "
                            f"configured ({type(exc).__name__}: {error_head(exc, 200)})") from None


def _load_parts(parts: Parts, ckpt: dict[str, Any], cfg: TrainConfig, steps_per_epoch: int) -> LoopState:
    state = LoopState.from_dict(ckpt["loop"])
    parts.model.load_state_dict(ckpt.get("raw_model", ckpt["model"]))
    if parts.ema is not None and "ema" in ckpt:
        parts.ema.load_state_dict(ckpt["ema"])
    parts.optimizer.load_state_dict(ckpt["optimizer"])
    check_optimizer_fits(parts.optimizer)
    parts.schedule.restore(
        ckpt["scheduler"],
        same_length=int(ckpt["epochs"]) == cfg.epochs,
        epochs_done=state.epoch,
        steps_per_epoch=steps_per_epoch,
    )
    if parts.scaler is not None and "scaler" in ckpt:
        parts.scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])
    if state.stopped_early:  # resuming an early-stopped run means: train on
        state.stopped_early, state.bad_epochs = False, 0
    return state


def updated_config(prior: Prior, cfg: TrainConfig) -> dict[str, Any]:
    """The run's config.json with the (possibly longer) training options of this resume."""
    return {**prior.config, "train": cfg.to_dict()}
