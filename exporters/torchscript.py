"""TorchScript exporter: ``torch.jit.script`` of the Predictor, class names as an attribute.

The file loads with ``torch.jit.load`` (Python or libtorch, no zoo needed); ``class_names``
and ``preprocessing`` (JSON) are attributes of the module, and ``zoo.json`` in its extra
files holds the same metadata as an ONNX export.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exporters.common import metadata, quiet_torch
from zoo.errors import ZooError
from zoo.export_api import Exporter, ExportOptions

if TYPE_CHECKING:
    from torch import nn

    from zoo.runtime.onnx_predictor import RuntimePredictor


class TorchScriptExporter(Exporter):
    name = "torchscript"
    suffix = ".pt"
    description = "torch.jit.script Predictor (softmax, class names); runs with torch.jit.load"
    runtime = "torch"

    def export(
        self, model: nn.Module, config: dict[str, Any], out_path: Path, options: ExportOptions
    ) -> Path:
        import torch

        from exporters.predictor import build_predictor

        predictor = build_predictor(model, config, config["preprocessing"])
        extra = {"zoo.json": json.dumps(metadata(config, precision="fp32"))}
        buffer = io.BytesIO()  # torch.jit.save to a path aborts the process (C++ terminate) on a full disk
        with quiet_torch():
            torch.jit.save(torch.jit.script(predictor), buffer, _extra_files=extra)
        out_path.write_bytes(buffer.getbuffer())  # a full disk is an OSError here, reported by export()
        return out_path

    def check(self, path: Path) -> None:
        self.load(path)

    def load(self, path: Path, threads: int | None = None) -> RuntimePredictor:
        from exporters.predictor import TorchScriptPredictor

        predictor = TorchScriptPredictor(path, threads=threads)
        if not predictor.classes:
            raise ZooError(f"{path}: TorchScript predictor has no class names")
        return predictor
