"""Built-in plugin: the course's small CNNs for 32 px images (family "simple")."""

from __future__ import annotations

from collections.abc import Callable

from zoo.hookspecs import hookimpl
from zoo.registry import ArchSpec

NOTES = {
    "simple_cnn": "3 x (3x3 conv, max-pool, ReLU, dropout) at 16-32-64 channels, adaptive 4x4 pool, MLP 500",
    "simple_cnn_bn": "simple_cnn with BatchNorm after each conv (before pool, ReLU and dropout)",
    "strided_cnn": "no pooling: stride-2 conv-BN-ReLU at 16-32-64 (5x5 first kernel), MLP 500",
}
TAGS = {"simple_cnn": ("small",), "simple_cnn_bn": ("small", "bn"), "strided_cnn": ("small", "bn")}


@hookimpl
def zoo_register_architectures(register: Callable[[ArchSpec], None]) -> None:
    for name, notes in NOTES.items():
        register(
            ArchSpec(
                name=name,
                family="simple",
                builder=f"zoo.models.simple_cnn:{name}",
                tags=TAGS[name],
                image_size=32,
                min_image_size=8,
                num_classes=10,
                paper="Springenberg et al. 2015, Striving for Simplicity" if name == "strided_cnn" else "",
                notes=f"{notes}; se=True adds SE blocks",
                family_default=name == "simple_cnn_bn",
            )
        )
