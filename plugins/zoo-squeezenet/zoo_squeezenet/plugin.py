"""The zoo plugin: registers SqueezeNet 1.0 and 1.1 as data.

zoo calls this hook once, the first time its registry is used. It must stay cheap: no torch
import, no model building. The builder is a ``"module:function"`` string that zoo imports only
when someone actually builds the network.
"""

from __future__ import annotations

from collections.abc import Callable

import zoo
from zoo import ArchSpec

PAPER = ("Iandola et al., SqueezeNet: AlexNet-level accuracy with 50x fewer parameters "
         "and <0.5MB model size, arXiv:1602.07360 (2016)")


@zoo.hookimpl
def zoo_register_architectures(register: Callable[[ArchSpec], None]) -> None:
    register(ArchSpec(
        name="squeezenet1_0",
        family="squeezenet",
        builder="zoo_squeezenet.models:squeezenet1_0",
        tags=("imagenet", "fire"),  # imagenet: a 224 px network; zoo passes small_input=True <= 64 px
        image_size=224,
        min_image_size=21,  # 7x7/2 conv and three 3x3/2 ceil-mode pools leave one pixel
        paper=PAPER,
        notes="Fire modules (1x1 squeeze, 1x1 + 3x3 expand); 1,248,424 parameters at 1000 classes.",
    ))
    register(ArchSpec(
        name="squeezenet1_1",
        family="squeezenet",
        builder="zoo_squeezenet.models:squeezenet1_1",
        tags=("imagenet", "fire"),  # imagenet: a 224 px network; zoo passes small_input=True <= 64 px
        image_size=224,
        min_image_size=17,  # 3x3/2 conv and three 3x3/2 ceil-mode pools leave one pixel
        paper=PAPER,
        notes="SqueezeNet 1.0 with a 3x3 stem and earlier pooling: 2.4x fewer MACs, "
              "1,235,496 parameters at 1000 classes.",
        family_default=True,  # `zoo train squeezenet` trains this one
    ))
