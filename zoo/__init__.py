"""zoo: a plugin-based zoo of convolutional image classifiers, with an edge exporter.

The registry API is torch-free to import; heavy parts (training, export) load on first use.
"""

from __future__ import annotations

from typing import Any

from zoo.catalog import get_model, get_spec, list_families, list_models
from zoo.errors import ZooError, ZooUsageError
from zoo.hookspecs import hookimpl
from zoo.registry import ArchSpec, DatasetSpec

__version__ = "0.1.0"

__all__ = [
    "ArchSpec",
    "DatasetSpec",
    "ZooError",
    "ZooUsageError",
    "__version__",
    "get_model",
    "get_spec",
    "hookimpl",
    "list_families",
    "list_models",
]

# name -> "module:attribute", imported on first access so `import zoo` stays light.
_LAZY = {
    "describe": "zoo.analysis:describe",
    "train": "zoo.training.api:train",
    "evaluate": "zoo.training.api:evaluate",
    "lr_find": "zoo.training.lr_find:lr_find",
    "export": "exporters.export:export",
    "tune": "zoo.tuning.study:tune",
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'zoo' has no attribute {name!r}")
    from zoo.registry import resolve

    return resolve(target)
