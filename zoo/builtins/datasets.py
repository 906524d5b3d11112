"""Built-in plugin: the download-free data sets, registered like a third party's would be.

Loaders and availability checks are named as strings, so registering imports neither
scikit-learn nor numpy, let alone torch.
"""

from __future__ import annotations

from collections.abc import Callable

from zoo.hookspecs import hookimpl
from zoo.registry import DatasetSpec


@hookimpl
def zoo_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    register(DatasetSpec(
        name="digits",
        loader="zoo.data.builtin:load_digits",
        description="1,797 8x8 grayscale handwritten digits from scikit-learn (fixed 20% test split)",
        num_classes=10,
        image_size=8,
        channels=1,
        available="zoo.data.builtin:digits_available",
    ))
    register(DatasetSpec(
        name="fashion-mnist",
        loader="zoo.data.builtin:load_fashion_mnist",
        description="70,000 28x28 grayscale clothing images, 60,000/10,000 "
                    "(Debian dataset-fashion-mnist or $ZOO_FASHION_MNIST_DIR)",
        num_classes=10,
        image_size=28,
        channels=1,
        available="zoo.data.builtin:fashion_mnist_available",
    ))
