"""The edge predictor (an exported ONNX or ORT file run with onnxruntime, numpy and Pillow only),
under the name the rest of zoo imports it by.

The code lives in ``zoo.runtime.predict``, the one file ``zoo export --bundle`` ships as
predict.py, so ``zoo predict`` and a bundle on a device run the same lines. It never imports
torch: a test imports it with torch blocked.
"""

from __future__ import annotations

from zoo.runtime.predict import (
    IMAGE_SUFFIXES,
    ImageLike,
    OnnxPredictor,
    Prediction,
    RuntimePredictor,
    expand_inputs,
    read_metadata,
)

__all__ = ["IMAGE_SUFFIXES", "ImageLike", "OnnxPredictor", "Prediction", "RuntimePredictor", "expand_inputs",
           "read_metadata"]
