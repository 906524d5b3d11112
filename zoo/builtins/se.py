"""Built-in plugin: squeeze-and-excitation networks (family "se")."""

from __future__ import annotations

from collections.abc import Callable

from zoo.builtins.resnet import imagenet_spec
from zoo.hookspecs import hookimpl
from zoo.registry import ArchSpec

PAPER = "Hu et al. 2018, Squeeze-and-Excitation Networks"


@hookimpl
def zoo_register_architectures(register: Callable[[ArchSpec], None]) -> None:
    for depth in (18, 34, 50):
        notes = f"resnet{depth} with SE (reduction 16) on each residual branch, before the add; "
        register(
            imagenet_spec(f"se_resnet{depth}", "se", ("se",), PAPER, notes + "small_input=True as resnet",
                          family_default=depth == 18)
        )
    register(
        ArchSpec(
            name="se_simple_cnn",
            family="se",
            builder="zoo.models.simple_cnn:se_simple_cnn",
            tags=("small", "se"),
            image_size=32,
            min_image_size=8,
            num_classes=10,
            paper=PAPER,
            notes="simple_cnn with SE (reduction 4) at the end of each conv block",
        )
    )
