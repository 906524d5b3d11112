"""The run directory: the contract between training, evaluation and export.

``runs/<arch>-<n>/`` holds ``config.json`` (everything needed to rebuild the model and its
eval preprocessing), ``classes.json``, ``best.pt`` / ``last.pt`` and reports. Every write is
atomic (temp file + rename), so an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from zoo.errors import ZooError, ZooUsageError

if TYPE_CHECKING:
    from torch import nn

CONFIG_FILE = "config.json"
CLASSES_FILE = "classes.json"
CHECKPOINTS = ("best", "last")


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write through a temp file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda fh: fh.write(text.encode()))


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    import torch

    return atomic_write(path, lambda fh: torch.save(obj, fh))


def new_run_dir(arch: str, root: str | Path = "runs") -> Path:
    """Create ``root/<arch>-<n>`` with the first free n (never reuses a directory)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        candidate = root / f"{arch}-{n}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1


def latest_run(root: str | Path = "runs") -> Path:
    """The most recently trained run under ``root`` (newest best.pt), for commands given no run."""
    root = Path(root)
    runs = [d for d in root.glob("*") if (d / CONFIG_FILE).is_file() and (d / "best.pt").is_file()]
    if not runs:
        raise ZooUsageError(
            f"no trained run under {root}/ to use; train one first, e.g. "
            f"'zoo train simple_cnn_bn --data digits', or name a run directory"
        )
    return max(runs, key=lambda d: (d / "best.pt").stat().st_mtime)


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ZooUsageError(f"{path}: missing ({what})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ZooError(f"{path}: corrupt {what} ({exc})") from None


def load_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's config.json; a clear error when ``run_dir`` is not a run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ZooUsageError(f"{run_dir}: no such run directory")
    if not (run_dir / CONFIG_FILE).is_file():
        raise ZooUsageError(f"{run_dir}: not a run directory (no {CONFIG_FILE})")
    config = read_json(run_dir / CONFIG_FILE, "run config")
    for key in ("arch", "num_classes", "in_channels", "classes", "preprocessing"):
        if key not in config:
            raise ZooError(f"{run_dir / CONFIG_FILE}: missing key '{key}'")
    return config


def resolve_checkpoint(target: str | Path, checkpoint: str = "best") -> tuple[Path, Path]:
    """(run directory, checkpoint file) from a run directory or a ``.pt`` inside one."""
    target = Path(target)
    if target.is_file():
        return target.parent, target
    if checkpoint not in CHECKPOINTS:
        raise ZooUsageError(f"--checkpoint must be one of {', '.join(CHECKPOINTS)}, got '{checkpoint}'")
    load_config(target)
    path = target / f"{checkpoint}.pt"
    if not path.is_file():
        raise ZooUsageError(f"{path}: no such checkpoint")
    return target, path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with a one-line error for a corrupt file."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ZooError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise ZooError(f"{path}: not a zoo checkpoint (no 'model' entry)")
    return state


def build_model(config: dict[str, Any]) -> nn.Module:
    """The architecture a run config describes, with random weights."""
    from zoo.catalog import get_model

    return get_model(
        config["arch"],
        num_classes=int(config["num_classes"]),
        in_channels=int(config["in_channels"]),
        **config.get("model_kwargs", {}),
    )


def load_model(target: str | Path, checkpoint: str = "best") -> tuple[nn.Module, dict[str, Any]]:
    """A trained model in eval mode and its run config, from a run dir or checkpoint file."""
    run_dir, path = resolve_checkpoint(target, checkpoint)
    config = load_config(run_dir)
    state = load_checkpoint(path)
    model = build_model(config)
    weights = state["model"]  # training stores the weights to evaluate (EMA if enabled) here
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise ZooError(f"{path}: weights do not fit {config['arch']} ({str(exc).splitlines()[0]})") from None
    return model.eval(), config
