"""Built-in plugin: MobileNet V1, V2 and V3 (family "mobilenet")."""

from __future__ import annotations

from collections.abc import Callable

from zoo.hookspecs import hookimpl
from zoo.registry import ArchSpec

MODELS = {
    "mobilenet_v1": (
        ("depthwise",),
        "Howard et al. 2017, MobileNets: Efficient CNNs for Mobile Vision Applications",
        "13 depthwise-separable blocks",
    ),
    "mobilenet_v2": (
        ("depthwise", "residual"),
        "Sandler et al. 2018, MobileNetV2: Inverted Residuals and Linear Bottlenecks",
        "inverted residuals, linear bottlenecks, ReLU6",
    ),
    "mobilenet_v3_small": (
        ("depthwise", "residual", "se"),
        "Howard et al. 2019, Searching for MobileNetV3",
        "inverted residuals with hard-sigmoid SE, hard-swish",
    ),
    "mobilenet_v3_large": (
        ("depthwise", "residual", "se"),
        "Howard et al. 2019, Searching for MobileNetV3",
        "inverted residuals with hard-sigmoid SE, hard-swish",
    ),
}


@hookimpl
def zoo_register_architectures(register: Callable[[ArchSpec], None]) -> None:
    for name, (tags, paper, notes) in MODELS.items():
        register(
            ArchSpec(
                name=name,
                family="mobilenet",
                builder=f"zoo.models.mobilenet:{name}",
                tags=("imagenet", "bn", *tags),
                image_size=224,
                min_image_size=32,
                paper=paper,
                notes=f"{notes}; width_mult scales channels; small_input=True: stride-1 stem",
                family_default=name == "mobilenet_v2",
            )
        )
