"""Built-in plugin: VGG-11/13/16/19 and their batch-norm variants (family "vgg")."""

from __future__ import annotations

from collections.abc import Callable

from zoo.hookspecs import hookimpl
from zoo.registry import ArchSpec

PAPER = "Simonyan & Zisserman 2015, Very Deep Convolutional Networks for Large-Scale Image Recognition"


@hookimpl
def zoo_register_architectures(register: Callable[[ArchSpec], None]) -> None:
    for depth in (11, 13, 16, 19):
        for bn in (False, True):
            name = f"vgg{depth}_bn" if bn else f"vgg{depth}"
            register(
                ArchSpec(
                    name=name,
                    family="vgg",
                    builder=f"zoo.models.vgg:{name}",
                    tags=("imagenet", "bn") if bn else ("imagenet",),
                    image_size=224,
                    min_image_size=32,
                    paper=PAPER,
                    notes="torchvision's head (adaptive 7x7 pool, 4096-4096 MLP); "
                    "small_input=True drops the first max-pool and uses a global-pool, 512-wide head",
                    family_default=name == "vgg11_bn",  # the smallest BatchNorm VGG
                )
            )
