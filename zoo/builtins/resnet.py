"""Built-in plugin: ImageNet ResNet-18..152 and the CIFAR ResNet-20..56 (family "resnet")."""

from __future__ import annotations

from collections.abc import Callable

from zoo.hookspecs import hookimpl
from zoo.registry import ArchSpec

PAPER = "He et al. 2016, Deep Residual Learning for Image Recognition"
IMAGENET = {18: "basic", 34: "basic", 50: "bottleneck", 101: "bottleneck", 152: "bottleneck"}
CIFAR = (20, 32, 44, 56)


def imagenet_spec(
    name: str, family: str, tags: tuple[str, ...], paper: str, notes: str, family_default: bool = False
) -> ArchSpec:
    """The spec of a 224 px, 32x-downsampling ResNet built by ``zoo.models.resnet:<name>``."""
    return ArchSpec(
        name=name,
        family=family,
        builder=f"zoo.models.resnet:{name}",
        tags=("imagenet", "bn", "residual", *tags),
        image_size=224,
        min_image_size=32,
        paper=paper,
        notes=notes,
        family_default=family_default,
    )


@hookimpl
def zoo_register_architectures(register: Callable[[ArchSpec], None]) -> None:
    for depth, block in IMAGENET.items():
        notes = f"{block} blocks, projection shortcuts; small_input=True: 3x3 stride-1 stem, no max-pool; "
        register(imagenet_spec(f"resnet{depth}", "resnet", (), PAPER, notes + "se=True adds SE",
                               family_default=depth == 18))
    for depth in CIFAR:
        register(
            ArchSpec(
                name=f"resnet{depth}",
                family="resnet",
                builder=f"zoo.models.resnet:resnet{depth}",
                tags=("cifar", "small", "bn", "residual"),
                image_size=32,
                min_image_size=4,
                num_classes=10,
                paper=PAPER + " (CIFAR-10 networks, section 4.2)",
                notes=f"3x3 stem, 3 x {(depth - 2) // 6} basic blocks at 16-32-64, option A shortcuts; "
                "se=True adds SE",
            )
        )
