"""Data: ImageFolder discovery and splits, built-in data sets, transforms, statistics, loaders,
augmentation batched on the training device.

Names are re-exported lazily so that ``import zoo.data`` (for example by ``zoo data list``
checking availability) does not pull in torch; only the loaders and transforms need it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoo.data.batched import BatchAugment as BatchAugment
    from zoo.data.batches import resolve_pipeline as resolve_pipeline
    from zoo.data.builtin import FASHION_CLASSES as FASHION_CLASSES
    from zoo.data.export import export_dataset as export_dataset
    from zoo.data.folders import IMG_EXTENSIONS as IMG_EXTENSIONS
    from zoo.data.folders import load_imagefolder_set as load_imagefolder_set
    from zoo.data.load import load_splits as load_splits
    from zoo.data.loaders import make_eval_loader as make_eval_loader
    from zoo.data.loaders import make_loaders as make_loaders
    from zoo.data.splits import DataSplits as DataSplits
    from zoo.data.splits import SampleSet as SampleSet
    from zoo.data.stats import compute_mean_std as compute_mean_std
    from zoo.data.stats import default_image_size as default_image_size
    from zoo.data.stats import eval_preprocessing as eval_preprocessing
    from zoo.data.stats import norm_stats as norm_stats
    from zoo.data.transforms import AUGMENT_PRESETS as AUGMENT_PRESETS
    from zoo.data.transforms import batch_mixer as batch_mixer
    from zoo.data.transforms import train_transform as train_transform

_EXPORTS = {
    "BatchAugment": "zoo.data.batched",
    "resolve_pipeline": "zoo.data.batches",
    "FASHION_CLASSES": "zoo.data.builtin",
    "export_dataset": "zoo.data.export",
    "IMG_EXTENSIONS": "zoo.data.folders",
    "load_imagefolder_set": "zoo.data.folders",
    "make_eval_loader": "zoo.data.loaders",
    "make_loaders": "zoo.data.loaders",
    "load_splits": "zoo.data.load",
    "DataSplits": "zoo.data.splits",
    "SampleSet": "zoo.data.splits",
    "compute_mean_std": "zoo.data.stats",
    "default_image_size": "zoo.data.stats",
    "eval_preprocessing": "zoo.data.stats",
    "norm_stats": "zoo.data.stats",
    "AUGMENT_PRESETS": "zoo.data.transforms",
    "batch_mixer": "zoo.data.transforms",
    "train_transform": "zoo.data.transforms",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zoo.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
