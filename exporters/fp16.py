"""fp16 ONNX: weights and activations in half precision, inputs and outputs kept fp32.

Meant for CUDA (and other GPU) execution providers. On CPU, onnxruntime has few fp16
kernels and inserts casts around the rest, so it is usually slower than fp32: we warn.
Softmax stays fp32 so the probabilities are not quantised to fp16 steps.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from exporters import uint8_input
from exporters.onnx import check_onnx, copy_metadata, save_onnx
from exporters.validate import LabelledImages, compare, first_line, summary, torch_probs
from zoo.errors import ZooError
from zoo.export_api import ArtefactReport, keep_if, temp_path
from zoo.runtime.preprocess import preprocess

if TYPE_CHECKING:
    from torch import nn

FP16_TOL = 1e-2  # half precision keeps ~3 significant digits; probabilities differ at 1e-3


def convert_fp16(fp32: Path, out: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    source = onnx.load(str(fp32))
    contract = uint8_input.strip(source)  # a uint8 front is converted as float32 NCHW, then put back
    try:
        half = convert_float_to_float16(source, keep_io_types=True, op_block_list=["Softmax"])
        OnnxModel(half).topological_sort()  # the converter appends its input casts at the end
    except Exception as exc:
        raise ZooError(f"{fp32}: fp16 conversion failed ({first_line(exc)})") from None
    copy_metadata(source, half, precision="fp16")
    if contract is not None:
        uint8_input.add(half, contract["layout"])
    save_onnx(half, out)


def export_fp16(
    fp32: Path, final: Path, model: nn.Module, images: LabelledImages | None, tracing_batch: int
) -> ArtefactReport:
    """Convert the validated fp32 file, validate against PyTorch at FP16_TOL, keep it."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        warnings.warn("fp16 ONNX is for GPU execution providers; on CPU it is usually slower than fp32",
                      stacklevel=2)
    entry = ArtefactReport("onnx-fp16", str(final), runtime="onnxruntime", precision="fp16")
    tmp = temp_path(final)
    start = time.perf_counter()

    def step() -> None:
        from zoo.runtime.onnx_predictor import OnnxPredictor

        convert_fp16(fp32, tmp)
        check_onnx(tmp)
        if images is not None:
            predictor = OnnxPredictor(tmp)
            arrays = np.stack([preprocess(im, predictor.preprocessing) for im in images.images])
            entry.validation = compare(predictor, images, torch_probs(model, arrays), tracing_batch, FP16_TOL)
            if not entry.validation["passed"]:
                raise ZooError(f"{final}: validation failed: {summary(entry.validation)}; nothing written")

    keep_if(tmp, final, step)
    entry.seconds = round(time.perf_counter() - start, 3)
    entry.bytes = final.stat().st_size
    return entry
