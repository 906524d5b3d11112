"""uint8 camera-frame input inside the graph (``zoo export --input uint8 [--layout NHWC|NCHW]``).

An exported graph takes normalised float32 NCHW. This puts in front of it what a device would
otherwise write by hand: uint8 -> float32, /255, (x - mean) / std, NHWC -> NCHW and, for a
grayscale model, Pillow's own RGB -> L conversion (ITU-R 601-2 luma in 16-bit fixed point; every
intermediate is an integer below 2^24, so float32 computes it exactly). The ops and their order
are those of ``zoo.runtime.predict.normalize``, so on the same pixels the network sees the same
float32 values as with float input.

The input is always RGB (3 channels) at the crop size; resizing and cropping stay with the
caller (a camera pipeline does them in hardware; ``zoo.runtime.predict`` with Pillow, as in
training). Quantisation and fp16 conversion work on the float graph: ``strip`` takes the front
off, ``add`` puts it back on the converted graph.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnx

PREFIX = "uint8_input/"  # names of the nodes and constants added here (strip finds them by it)
INPUT_NAME = "image"
LUMA = (19595, 38470, 7471)  # Pillow: L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16


def uint8_contract(layout: str) -> dict[str, Any]:
    return {"dtype": "uint8", "layout": layout, "channels": 3}


def float_contract(channels: int) -> dict[str, Any]:
    return {"dtype": "float32", "layout": "NCHW", "channels": channels}


def _metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def _set(model: onnx.ModelProto, key: str, value: str) -> None:
    for prop in model.metadata_props:
        if prop.key == key:
            prop.value = value
            return
    entry = model.metadata_props.add()
    entry.key, entry.value = key, value


def add(model: onnx.ModelProto, layout: str) -> None:
    """Give ``model`` (float32 NCHW input, zoo metadata) a uint8 ``layout`` input, in place."""
    from onnx import TensorProto, helper, numpy_helper

    spec = json.loads(_metadata(model)["preprocessing"])
    crop, channels = int(spec["crop"]), int(spec["channels"])
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    (old,) = [i for i in graph.input if i.name not in initializers]
    batch = old.type.tensor_type.shape.dim[0]
    batch_dim = batch.dim_param or batch.dim_value
    shape = [batch_dim, crop, crop, 3] if layout == "NHWC" else [batch_dim, 3, crop, crop]
    nodes: list[onnx.NodeProto] = []
    constants: list[onnx.TensorProto] = []

    def const(name: str, value: Any) -> str:
        constants.append(numpy_helper.from_array(np.asarray(value, np.float32), PREFIX + name))
        return PREFIX + name

    def node(op: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        name = f"{PREFIX}{len(nodes)}_{op}"
        nodes.append(helper.make_node(op, inputs, [output or name], name=name, **attrs))
        return output or name

    x = INPUT_NAME
    if layout == "NCHW":
        x = node("Transpose", [x], perm=[0, 2, 3, 1])
    x = node("Cast", [x], to=TensorProto.FLOAT)
    if channels == 1:
        x = node("MatMul", [x, const("luma", np.reshape(LUMA, (3, 1)))])
        x = node("Floor", [node("Mul", [node("Add", [x, const("half", 32768)]), const("shift", 1 / 65536)])])
    x = node("Div", [x, const("255", 255)])
    x = node("Sub", [x, const("mean", spec["mean"])])
    x = node("Div", [x, const("std", spec["std"])])
    node("Transpose", [x], output=old.name, perm=[0, 3, 1, 2])

    rest = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + rest)  # in front of every consumer of the old input: still sorted
    graph.initializer.extend(constants)
    graph.input.remove(old)
    graph.input.insert(0, helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, shape))
    _set(model, "input", json.dumps(uint8_contract(layout)))


def strip(model: onnx.ModelProto) -> dict[str, Any] | None:
    """Undo ``add`` in place (back to float32 NCHW input); return the uint8 contract it had, or
    None when the model takes float32 already."""
    from onnx import TensorProto, helper

    meta = _metadata(model)
    contract = json.loads(meta.get("input", "null"))
    if not contract or contract.get("dtype") != "uint8":
        return None
    spec = json.loads(meta["preprocessing"])
    graph = model.graph
    ours = [n for n in graph.node if n.name.startswith(PREFIX)]
    float_name = ours[-1].output[0]
    batch = graph.input[0].type.tensor_type.shape.dim[0]
    for n in ours:
        graph.node.remove(n)
    for init in [i for i in graph.initializer if i.name.startswith(PREFIX)]:
        graph.initializer.remove(init)
    crop, channels = int(spec["crop"]), int(spec["channels"])
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info(
        float_name, TensorProto.FLOAT, [batch.dim_param or batch.dim_value, channels, crop, crop]))
    _set(model, "input", json.dumps(float_contract(channels)))
    return contract


def describe(contract: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
    """The input contract in words (for the bundle README)."""
    crop, channels = spec["crop"], spec["channels"]
    if contract["dtype"] == "uint8":
        shape = "[N, {c}, {c}, 3]" if contract["layout"] == "NHWC" else "[N, 3, {c}, {c}]"
        gray = (" The graph converts RGB to grayscale (Pillow's ITU-R 601-2 luma) for this 1-channel model."
                if channels == 1 else "")
        return (f"uint8 {contract['layout']} {shape.format(c=crop)}, RGB, 0..255: the resized and "
                f"center-cropped frame as a camera or image decoder gives it. Scaling to 0..1, "
                f"mean/std normalisation and the layout change happen inside the graph.{gray}")
    return (f"float32 NCHW [N, {channels}, {crop}, {crop}]: pixels scaled to 0..1, then (x - mean) / std "
            f"per channel (mean {spec['mean']}, std {spec['std']}).")
