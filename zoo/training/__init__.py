"""Training, evaluation and the learning-rate range test.

The package is ``zoo.training``; the functions are also ``zoo.train``, ``zoo.evaluate`` and
``zoo.lr_find`` on the top-level package. Importing the package imports no torch (so the CLI can
check options and names first); the functions load on first access.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Run", "TrainConfig", "evaluate", "lr_find", "train"]

_LAZY = {
    "Run": "zoo.training.api:Run",
    "train": "zoo.training.api:train",
    "evaluate": "zoo.training.api:evaluate",
    "TrainConfig": "zoo.training.config:TrainConfig",
    "lr_find": "zoo.training.lr_find:lr_find",
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'zoo.training' has no attribute {name!r}")
    from zoo.registry import resolve

    return resolve(target)
