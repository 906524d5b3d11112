"""ONNX exporter: network + softmax on normalised NCHW float32, dynamic batch axis, with
class names and the preprocessing spec in ``metadata_props`` for the torch-free runtime.

Traced at batch >= 2 and validated at 1 and another size, so the batch axis cannot freeze.
The TorchScript-based exporter is the default (the mature path for CNNs); ``dynamo=True``
opts in to torch.export.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exporters import uint8_input
from exporters.common import metadata, quiet_torch
from zoo.errors import ZooError, ZooUsageError
from zoo.export_api import Exporter, ExportOptions

if TYPE_CHECKING:
    import onnx
    from torch import nn

    from zoo.runtime.onnx_predictor import RuntimePredictor

INPUT_NAME, OUTPUT_NAME = "input", "probs"


@functools.cache
def ort_max_opset() -> int:
    """The newest ai.onnx opset the installed onnxruntime accepts (probed, not tabled)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    for opset in range(onnx.defs.onnx_opset_version(), 6, -1):
        graph = helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])], "probe",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        )
        ids = [helper.make_opsetid("", opset)]
        model = helper.make_model(graph, opset_imports=ids, ir_version=helper.find_min_ir_version_for(ids))
        try:
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            return opset
        except Exception:  # onnxruntime rejects an opset it does not know
            continue
    raise ZooError("onnxruntime accepts no ONNX opset (broken installation?)")


def default_opset(dynamo: bool) -> int:
    """The newest opset both the exporter and onnxruntime support."""
    from torch.onnx import _constants

    exporter_max = _constants.ONNX_MAX_OPSET if dynamo else _constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET
    return min(exporter_max, ort_max_opset())


def set_metadata(model: onnx.ModelProto, values: Mapping[str, str]) -> None:
    del model.metadata_props[:]
    for key, value in values.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def copy_metadata(source: onnx.ModelProto, target: onnx.ModelProto, **changes: str) -> None:
    set_metadata(target, {**{p.key: p.value for p in source.metadata_props}, **changes})


def save_onnx(model: onnx.ModelProto, path: Path) -> None:
    """``onnx.save`` with ``graph_sha256`` (of the serialised graph: every weight and node) in the
    metadata, so the runtime can tell a damaged file from a good one. The model is serialised
    once (a VGG is half a gigabyte): the digest entry is appended to the bytes as one more
    ``metadata_props`` record, which protobuf reads as part of the same repeated field."""
    import onnx

    from zoo.runtime.predict import serialized_graph_digest

    kept = [(p.key, p.value) for p in model.metadata_props if p.key != "graph_sha256"]
    set_metadata(model, dict(kept))
    data = model.SerializeToString()
    digest = serialized_graph_digest(data)
    if digest is None:
        raise ZooError(f"{path}: the model has no graph to save")
    extra = onnx.ModelProto()
    extra.metadata_props.add(key="graph_sha256", value=digest)
    path.write_bytes(data + extra.SerializeToString())
    model.metadata_props.add(key="graph_sha256", value=digest)  # the in-memory model says the same


def check_onnx(path: Path) -> None:
    """Full ``onnx.checker`` check (with shape inference); one-line error naming the file."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:
        raise ZooError(f"{path}: onnx.checker failed ({' '.join(str(exc).split())[:200]})") from None


class OnnxExporter(Exporter):
    name = "onnx"
    suffix = ".onnx"
    description = "ONNX model + softmax, metadata for the torch-free runtime (zoo.runtime)"
    input_dtypes = ("float32", "uint8")
    runtime = "onnxruntime"

    def export(
        self, model: nn.Module, config: dict[str, Any], out_path: Path, options: ExportOptions
    ) -> Path:
        import onnx
        import torch

        from exporters.predictor import build_predictor, exportable_pools

        opset = options.opset or default_opset(options.dynamo)
        if opset > ort_max_opset():
            raise ZooUsageError(f"--opset {opset}: the installed onnxruntime supports opsets up to "
                                f"{ort_max_opset()}")
        spec = config["preprocessing"]
        size = options.image_size
        example = torch.randn(options.batch_size, int(spec["channels"]), size, size)
        predictor = build_predictor(exportable_pools(model.eval(), example), config, spec)
        common: dict[str, Any] = {"input_names": [INPUT_NAME], "output_names": [OUTPUT_NAME],
                                  "opset_version": opset}
        with quiet_torch(), torch.no_grad():
            if options.dynamo:
                batch = torch.export.Dim("batch", min=1)
                torch.onnx.export(predictor, (example,), str(out_path), dynamo=True, external_data=False,
                                  dynamic_shapes={"x": {0: batch}}, **common)
            else:
                axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
                torch.onnx.export(predictor, (example,), str(out_path), dynamo=False, dynamic_axes=axes,
                                  **common)
        proto = onnx.load(str(out_path))
        set_metadata(proto, metadata(config, opset=str(opset), precision="fp32"))
        if options.input_dtype == "uint8":
            uint8_input.add(proto, options.input_layout)
        save_onnx(proto, out_path)
        return out_path

    def check(self, path: Path) -> None:
        check_onnx(path)

    def load(self, path: Path, threads: int | None = None) -> RuntimePredictor:
        from zoo.runtime.onnx_predictor import OnnxPredictor

        return OnnxPredictor(path, threads=threads)
