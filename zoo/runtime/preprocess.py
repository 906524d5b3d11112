"""The eval preprocessing (numpy + Pillow), under the name training and export import it by.

The code lives in ``zoo.runtime.predict``, the one file ``zoo export --bundle`` ships as
predict.py; these are the same function objects, so training's eval split, export validation
and every device run one implementation. Spec keys (``preprocessing`` in a run's config.json
and in a model's metadata): ``resize`` (shorter side, px), ``crop`` (square, px), ``channels``
(1 or 3), ``mean`` and ``std`` (per channel, on the 0..1 scale), ``interpolation``.
"""

from __future__ import annotations

from zoo.runtime.predict import (
    INTERPOLATION,
    ImageError,
    model_input,
    normalize,
    open_image,
    preprocess,
    resize_crop,
    silence_libtiff,
    to_mode,
)

_INTERPOLATION = INTERPOLATION  # the name zoo.data imports

__all__ = ["INTERPOLATION", "ImageError", "model_input", "normalize", "open_image", "preprocess",
           "resize_crop", "silence_libtiff", "to_mode"]
