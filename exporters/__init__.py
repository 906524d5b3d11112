"""Built-in export backends, registered through ``zoo_register_exporters`` like any plugin's.

Importing this package must stay cheap: the exporter modules import torch and onnx only
inside their methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import zoo


@zoo.hookimpl
def zoo_register_exporters(register: Callable[[Any], None]) -> None:
    from exporters.onnx import OnnxExporter
    from exporters.ort import OrtExporter
    from exporters.torchscript import TorchScriptExporter

    register(TorchScriptExporter())
    register(OnnxExporter())
    register(OrtExporter())
