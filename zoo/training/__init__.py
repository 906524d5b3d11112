"""Training, evaluation and the learning-rate range test (imports torch; load it lazily).

The package is ``zoo.training``; the functions are also ``zoo.train``, ``zoo.evaluate`` and
``zoo.lr_find`` on the top-level package, resolved on first access.
"""

from __future__ import annotations

from zoo.training.api import Run, evaluate, train
from zoo.training.config import TrainConfig
from zoo.training.lr_find import lr_find

__all__ = ["Run", "TrainConfig", "evaluate", "lr_find", "train"]
