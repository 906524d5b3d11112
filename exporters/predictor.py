"""The Predictor every exporter ships: network + softmax, with class names and preprocessing.

Both formats take the same input, a normalised float32 NCHW batch made by
``zoo.runtime.preprocess`` (the training eval pipeline), and return softmax probabilities.
Resize and center crop stay outside the graph on purpose: torchvision's Resize/CenterCrop do
not export to ONNX, and PIL's resampling (what training used) is not what a tensor resize
computes, so doing it in numpy + Pillow is the only way the exported model sees exactly the
pixels the trained model saw. TorchScript keeps the same contract so one runtime drives both.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.utils import _pair

from zoo.errors import ZooUsageError, error_head
from zoo.runtime.onnx_predictor import RuntimePredictor


class Predictor(nn.Module):
    """``probs = Predictor(model, classes, spec)(normalised_nchw)``; class names as attributes."""

    def __init__(self, model: nn.Module, classes: list[str], preprocessing: dict[str, Any]):
        super().__init__()
        self.model = model
        # TorchScript infers List[str] and str from the values (annotations would be strings here)
        self.class_names = [str(c) for c in classes]
        self.preprocessing = json.dumps(preprocessing, sort_keys=True)  # the eval spec, for the runtime

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


class LinearPool(nn.Module):
    """Adaptive average pooling at one fixed input size, as two matrix products (exportable)."""

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor):
        super().__init__()
        self.register_buffer("rows", rows)
        self.register_buffer("cols", cols.t().contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rows @ x @ self.cols


def _pool_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """Row o averages the input cells adaptive pooling assigns to output cell o."""
    matrix = torch.zeros(size_out, size_in)
    for o in range(size_out):
        start, end = (o * size_in) // size_out, -((-(o + 1) * size_in) // size_out)
        matrix[o, start:end] = 1.0 / (end - start)
    return matrix


def exportable_pools(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """A copy of ``model`` where each AdaptiveAvgPool2d whose output size does not divide its
    input size (VGG's 7x7 head on small images, say) becomes the equivalent LinearPool.

    The TorchScript-based ONNX exporter refuses those pools; an artefact serves one image size
    (the crop in its metadata), and at that size the linear map is the same function."""
    shapes: dict[str, tuple[int, int]] = {}

    def record(name: str) -> Any:
        return lambda _module, args: shapes.__setitem__(name, tuple(args[0].shape[-2:]))

    pools = [(name, m) for name, m in model.named_modules()
             if isinstance(m, nn.AdaptiveAvgPool2d) and _pair(m.output_size) != (1, 1)]  # 1 divides all
    if not pools:
        return model
    hooks = [m.register_forward_pre_hook(record(name)) for name, m in pools]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    model = copy.deepcopy(model)
    for name, (height, width) in shapes.items():
        out_h, out_w = _pair(model.get_submodule(name).output_size)
        out_h, out_w = out_h or height, out_w or width
        if height % out_h or width % out_w:
            parent, _, attr = name.rpartition(".")
            pool = LinearPool(_pool_matrix(height, out_h), _pool_matrix(width, out_w))
            setattr(model.get_submodule(parent), attr, pool)
    return model


def input_spec(config: dict[str, Any], image_size: int | None = None) -> dict[str, Any]:
    """The run's eval preprocessing, optionally at another crop size (resize scaled alike)."""
    spec = dict(config["preprocessing"])
    if image_size is not None:
        ratio = int(spec["resize"]) / int(spec["crop"])
        spec["crop"] = int(image_size)
        spec["resize"] = max(int(image_size), round(image_size * ratio))
    return spec


def build_predictor(model: nn.Module, config: dict[str, Any], spec: dict[str, Any]) -> Predictor:
    return Predictor(model.eval(), list(config["classes"]), spec).eval()


class TorchScriptPredictor(RuntimePredictor):
    """``TorchScriptPredictor("model.pt").predict(images)``: the same API as OnnxPredictor."""

    def __init__(self, path: str | Path, threads: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise ZooUsageError(f"{self.path}: no such model file")
        if threads is not None:
            torch.set_num_threads(threads)
        from exporters.common import quiet_torch

        try:
            with quiet_torch():
                self.module = torch.jit.load(str(self.path), map_location="cpu").eval()
            self.classes = [str(c) for c in self.module.class_names]
            self.preprocessing = json.loads(self.module.preprocessing)
        except (RuntimeError, AttributeError, ValueError) as exc:
            raise ZooUsageError(f"{self.path}: not a zoo TorchScript predictor "
                                f"({error_head(exc, 200)})") from None

    @torch.inference_mode()
    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.module(torch.from_numpy(np.ascontiguousarray(batch, np.float32))).numpy()
