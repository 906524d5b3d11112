"""best.pt / last.pt: everything a resume needs, in a form ``torch.load(weights_only=True)`` accepts.

Only tensors and plain Python values go in (RNG states included), so loading a checkpoint never
runs pickled code. Writes go through ``zoo.run.atomic_torch_save``: a Ctrl-C mid-write leaves the
previous file intact.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.errors import ZooUsageError
from zoo.run import atomic_torch_save

RESUME_KEYS = ("model", "optimizer", "scheduler", "loop", "epochs", "rng")
LOOP_TYPES: dict[str, type | tuple[type, ...]] = {
    "epoch": int, "best_loss": (int, float), "best_epoch": int, "bad_epochs": int, "stopped_early": bool,
    "history": list,
}


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {"version": int(version), "internal": list(internal), "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, **parts: Any) -> Path:
    """Atomically write a checkpoint dict; ``model`` must be the weights to evaluate/export."""
    assert "model" in parts
    return atomic_torch_save(parts, path)


def check_compatible(run_config: dict[str, Any], arch: str, classes: list[str], run_dir: Path) -> None:
    """Refuse to resume a run with a different architecture or class list, saying what differs."""
    if run_config["arch"] != arch:
        raise ZooUsageError(f"--resume {run_dir}: that run trained '{run_config['arch']}', not '{arch}'")
    if list(run_config["classes"]) != list(classes):
        old, new = set(run_config["classes"]), set(classes)
        diff = sorted(old ^ new)
        detail = f"differing: {', '.join(diff[:5])}" if diff else "same names in another order"
        raise ZooUsageError(
            f"--resume {run_dir}: the data's {len(classes)} classes do not match the run's "
            f"{len(run_config['classes'])} ({detail})"
        )


def _kind_ok(value: Any, kind: type | tuple[type, ...]) -> bool:
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def check_resumable(ckpt: dict[str, Any], path: Path) -> None:
    """Everything a resume reads from last.pt, checked for type and range before anything is
    touched: a malformed checkpoint is one usage error, not a traceback half-way through."""

    def bad(what: str) -> ZooUsageError:
        return ZooUsageError(f"--resume {path}: not a resumable checkpoint ({what})")

    missing = [key for key in RESUME_KEYS if key not in ckpt]
    if missing:
        raise bad(f"no '{missing[0]}' entry")
    loop = ckpt["loop"]
    if not isinstance(loop, dict):
        raise bad("'loop' is not a mapping")
    for key, kind in LOOP_TYPES.items():
        if key not in loop:
            raise bad(f"the loop state has no '{key}'")
        if not _kind_ok(loop[key], kind):
            raise bad(f"loop '{key}' is {loop[key]!r}")
    epoch, history = loop["epoch"], loop["history"]
    if epoch < 0 or not 0 <= loop["best_epoch"] <= epoch or loop["bad_epochs"] < 0:
        raise bad(f"loop epoch {epoch}, best epoch {loop['best_epoch']}, bad epochs {loop['bad_epochs']}")
    if loop["best_loss"] != loop["best_loss"]:
        raise bad("best loss is NaN")
    rows_ok = all(isinstance(r, dict) and _kind_ok(r.get("epoch"), int) for r in history)
    if len(history) != epoch or not rows_ok:
        raise bad(f"the history does not hold one row per epoch ({len(history)} rows for {epoch} epochs)")
    if not _kind_ok(ckpt["epochs"], int) or ckpt["epochs"] < 1:
        raise bad(f"'epochs' is {ckpt['epochs']!r}")
    optimizer = ckpt["optimizer"]
    groups = optimizer.get("param_groups") if isinstance(optimizer, dict) else None
    if not (isinstance(optimizer.get("state") if isinstance(optimizer, dict) else None, dict)
            and isinstance(groups, list)
            and all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups)):
        raise bad("'optimizer' is not an optimizer state_dict")
    for key in ("model", "raw_model", "ema", "scheduler", "scaler", "rng"):
        if key in ckpt and not isinstance(ckpt[key], dict):
            raise bad(f"'{key}' is not a mapping")
    rng = ckpt["rng"]
    numpy_state, python_state = rng.get("numpy"), rng.get("python")
    if not (isinstance(rng.get("torch"), torch.Tensor) and isinstance(numpy_state, dict)
            and isinstance(numpy_state.get("keys"), torch.Tensor) and isinstance(python_state, dict)
            and isinstance(python_state.get("internal"), list)):
        raise bad("'rng' does not hold the torch, numpy and python generator states")


def check_optimizer_fits(optimizer: torch.optim.Optimizer) -> None:
    """Per-parameter optimizer state (momentum, Adam's moments) must have its parameter's shape:
    ``load_state_dict`` does not check, and the first step would fail deep inside torch."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            for name, value in optimizer.state.get(param, {}).items():
                if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape != param.shape:
                    raise ValueError(f"optimizer state '{name}' has shape {tuple(value.shape)} for a "
                                     f"parameter of shape {tuple(param.shape)}")
