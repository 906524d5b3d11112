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
