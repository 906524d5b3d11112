"""``zoo train --config FILE``: a JSON object of ``zoo.train``'s arguments.

The keys are ``arch``, ``data``, ``model_kwargs`` and any :class:`TrainConfig` field; ``zoo tune``
writes the best trial in this form as best.json. Flags given on the command line override the file;
an unknown key is an error (a typo would otherwise be silently ignored).
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from zoo.errors import ZooUsageError
from zoo.training.config import TrainConfig

OPTION_KEYS = tuple(f.name for f in fields(TrainConfig))
TOP_KEYS = ("arch", "data", "model_kwargs")


def read_train_config(path: str | Path) -> dict[str, Any]:
    """The file's keys, checked: a JSON object of known keys."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ZooUsageError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ZooUsageError(f"--config {path}: not a JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise ZooUsageError(f"--config {path}: expected a JSON object of zoo train options")
    unknown = sorted(set(data) - set(TOP_KEYS) - set(OPTION_KEYS))
    if unknown:
        raise ZooUsageError(
            f"--config {path}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(TOP_KEYS)} and zoo train's options ({', '.join(OPTION_KEYS)})"
        )
    return data


def merge_train_config(
    path: str | Path, arch: str | None, data: str | None, given: dict[str, Any]
) -> tuple[str, str | None, dict[str, Any] | None, dict[str, Any]]:
    """(arch, data, model_kwargs, options): the file's values, each overridden by a given one."""
    stored = read_train_config(path)
    arch = arch or stored.get("arch")
    if not arch:
        raise ZooUsageError(f"--config {path}: no \"arch\" in the file; name the architecture")
    options = {k: v for k, v in stored.items() if k in OPTION_KEYS and v is not None}
    return arch, data or stored.get("data"), stored.get("model_kwargs"), {**options, **given}
