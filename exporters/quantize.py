"""int8 ONNX: onnxruntime static quantisation (QDQ; U8S8 on x86-64, else S8S8) behind an accuracy gate.

``quant_pre_process`` (shape inference, fusions) first, then ranges calibrated on the run's
own images, then fp32 and int8 are evaluated on the labelled val/test split: when top-1
drops by more than ``max_drop`` points the int8 file is not kept (unless ``force``).
Depthwise networks (mobilenets) lose more here; the report says so rather than hiding it.
The final Softmax is left in fp32.

Schemes (activations/weights): ``s8s8``, onnxruntime's recommended default, and ``u8s8``. On
this x86 CPU (AVX-512 VNNI, onnxruntime 1.32) only U8S8 fuses every Conv and residual Add into
QLinearConv/QLinearAdd: resnet18 at 224 px ran 3.4x faster than fp32 with U8S8, 1.3x with S8S8,
so ``auto`` (the default, ``zoo.export_api.resolve_int8_scheme``) picks U8S8 on x86-64.
"""

from __future__ import annotations

import contextlib
import io
import logging
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from exporters import uint8_input
from exporters.onnx import INPUT_NAME, check_onnx, copy_metadata, save_onnx
from exporters.validate import LabelledImages, first_line, validation_batch
from zoo.errors import ZooError
from zoo.export_api import CALIBRATION_METHODS, ArtefactReport, keep_if, temp_path
from zoo.runtime.onnx_predictor import OnnxPredictor

CALIB_BATCH = 8


def _reader(arrays: list[np.ndarray]) -> Any:
    """A CalibrationDataReader over preprocessed CHW arrays, CALIB_BATCH at a time. ``__len__`` and
    ``set_range`` let onnxruntime collect a batch at a time (``CalibStridedMinMax``), which keeps the
    histogram methods' memory to one batch of activations rather than every image's."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = [np.stack(arrays[i : i + CALIB_BATCH]) for i in range(0, len(arrays), CALIB_BATCH)]
            self.pending: Iterator[np.ndarray] = iter(self.batches)

        def __len__(self) -> int:
            return len(self.batches)

        def set_range(self, start_index: int, end_index: int) -> None:
            self.pending = iter(self.batches[start_index:end_index])

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.pending, None)
            return None if batch is None else {INPUT_NAME: batch}

    return Reader()


@contextlib.contextmanager
def quiet_quantiser() -> Iterator[None]:
    """onnxruntime's quantisation tools log through the root logger (``logging.warning``), which
    with no handler set up prints ``WARNING:root:...`` on stderr and installs a handler for good.
    While quantising, collect those records instead and re-issue each distinct message as a
    Python warning, which the zoo CLI prints as one ``warning:`` line. Its histogram calibrators
    also ``print`` progress, once per batch: that goes nowhere, since stdout may be ``--json``."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = logging.getLogger()
    handler = Collect(logging.WARNING)
    root.addHandler(handler)  # the root logger has a handler now, so logging.warning adds none
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.removeHandler(handler)
        for message in dict.fromkeys(r.getMessage() for r in records):
            warnings.warn(f"onnxruntime quantisation: {message}", stacklevel=3)


def depthwise_weights(model: Any) -> list[str]:
    """Names of the weight initialisers of depthwise convolutions (one input channel per group)."""
    shapes = {t.name: list(t.dims) for t in model.graph.initializer}
    found = []
    for node in model.graph.node:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        shape = shapes.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        if shape and group > 1 and shape[1] == 1:
            found.append(node.input[1])
    return found


def full_range_overrides(model_path: Path, per_channel: bool) -> dict[str, list[dict[str, Any]]]:
    """onnxruntime TensorQuantOverrides giving depthwise weights all 8 bits under ``reduce_range``
    (MLAS's x86 depthwise kernels multiply in 16 bits: nothing to saturate)."""
    import onnx

    override = {"axis": 0, "reduce_range": False} if per_channel else {"reduce_range": False}
    return {name: [dict(override)] for name in depthwise_weights(onnx.load(str(model_path)))}


def quantize_file(
    fp32: Path, out: Path, calib: list[np.ndarray], per_channel: bool, scheme: str = "s8s8",
    calibration: str = "minmax",
) -> None:
    """fp32 ONNX -> int8 QDQ ONNX at ``out``, metadata copied (precision=int8).

    U8S8 weights are quantised to 7 bits (onnxruntime's ``reduce_range``): x86-64 processors without
    VNNI (AVX2, AVX-512 before VNNI) multiply u8 x s8 pairs with an instruction whose 16-bit sum
    saturates on 8-bit weights, and the file may run on one of them whatever machine exported it
    (vgg11_bn after 2 epochs on an AVX2 EPYC: 93.3% agreement with 8-bit weights, 99.7% with 7).
    Depthwise convolutions keep 8 bits: their kernels widen both operands to 16 bits first and cannot
    saturate, so a 7th bit there only costs precision (mobilenet_v2 on that EPYC: 98.3% -> 99.2%).
    ``calib`` holds normalised float32 CHW arrays: a uint8-input model is quantised as its float
    graph, and gets its uint8 front back afterwards. ``calibration`` is onnxruntime's range method
    (``CALIBRATION_METHODS``): minmax takes each activation's extremes; percentile clips the top 0.001%
    of magnitudes (mobilenet_v3_large at 224 px: 96.4% -> 99.4% agreement), in about twice the time."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
              "entropy": CalibrationMethod.Entropy}[calibration]

    if not calib:
        raise ZooError(f"{fp32}: no calibration images")
    source = onnx.load(str(fp32))
    with tempfile.TemporaryDirectory(prefix="zoo-quant-") as work:
        plain, pre, quant = Path(work) / "float.onnx", Path(work) / "pre.onnx", Path(work) / "quant.onnx"
        contract = uint8_input.strip(source)
        onnx.save(source, str(plain))
        try:
            with quiet_quantiser():
                quant_pre_process(str(plain), str(pre))
                softmax = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "Softmax"]
                quantize_static(
                    str(pre), str(quant), _reader(calib), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8 if scheme == "s8s8" else QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=per_channel,
                    nodes_to_exclude=softmax, reduce_range=scheme == "u8s8", calibrate_method=method,
                    extra_options={"TensorQuantOverrides": full_range_overrides(pre, per_channel),
                                   "CalibStridedMinMax": 1},  # a batch at a time (see _reader)
                )
        except ZooError:
            raise
        except Exception as exc:
            raise ZooError(f"{fp32}: int8 quantisation failed "
                           f"({type(exc).__name__}: {first_line(exc)})") from None
        model = onnx.load(str(quant))
    granularity = "per-channel" if per_channel else "per-tensor"
    weights = ", 7-bit weights (8-bit depthwise)" if scheme == "u8s8" else ""
    copy_metadata(source, model, precision="int8",
                  quantization=f"static QDQ {scheme.upper()} {granularity}{weights}, "
                               f"{calibration} calibration on {len(calib)} images")
    if contract is not None:
        uint8_input.add(model, contract["layout"])
    save_onnx(model, out)


def top1(probs: np.ndarray, labels: list[int]) -> float:
    return float((probs.argmax(1) == np.asarray(labels)).mean() * 100)


def images_per_second(predictor: OnnxPredictor, batch: np.ndarray, repeats: int = 5) -> float:
    from zoo.timing import time_calls

    return len(batch) / statistics.median(time_calls(predictor.run, batch, repeats))


def quantize_int8(
    fp32: Path,
    final: Path,
    calib: list[np.ndarray],
    gate: LabelledImages,
    per_channel: bool,
    tracing_batch: int,
    scheme: str = "s8s8",
    calibration: str = "auto",
    max_drop: float = 1.0,
    force: bool = False,
) -> ArtefactReport:
    """Quantise, check, gate on top-1; the file lands at ``final`` only when kept. ``calibration`` "auto"
    tries minmax, then, while the gate refuses, percentile and entropy: no method won everywhere on the
    digits networks (mobilenet_v3_large at 224 px: minmax refused at 96.4% agreement, percentile kept at
    99.4%; mobilenet_v2 at 32 px: minmax 98.6%, percentile 97.5%), so the first kept file is the answer.
    With ``force`` and every method refused, the one with the smallest drop is kept. A method onnxruntime
    cannot calibrate (percentile's 2048-bin histogram of a nearly constant tensor, such as an untrained
    squeeze-excitation gate) is recorded under ``failed_calibrations`` and "auto" goes on."""
    methods = CALIBRATION_METHODS if calibration == "auto" else (calibration,)
    start = time.perf_counter()
    baseline = Baseline.of(fp32, gate)
    tried: list[ArtefactReport] = []
    failed: dict[str, str] = {}  # "auto" goes on past a method onnxruntime cannot calibrate
    for method in methods:
        try:
            tried.append(_quantize_gated(baseline, final, calib, per_channel, tracing_batch, scheme, method,
                                         max_drop, force=force and len(methods) == 1))
        except ZooError as exc:
            if len(methods) == 1:
                raise
            failed[method] = str(exc)
            continue
        if tried[-1].kept:
            break
    if not tried:
        raise ZooError(failed[methods[0]])
    entry = tried[-1]
    if not entry.kept and force:  # "auto" with every method refused: keep the least bad
        best = min(tried, key=lambda e: e.gate["drop"]).gate["calibration"]
        entry = _quantize_gated(baseline, final, calib, per_channel, tracing_batch, scheme, best,
                                max_drop, force=True)
    refused = [e.gate for e in tried if not e.kept and e.gate["calibration"] != entry.gate["calibration"]]
    drops = ", ".join(f"{g['calibration']} {g['drop']:.2f}" for g in refused)
    entry.gate["refused_calibrations"] = {g["calibration"]: g["drop"] for g in refused}
    entry.gate["failed_calibrations"] = failed
    if not entry.kept and len(methods) == 1:
        entry.note += f"; try --calibration {_others(calibration)}, or use --force to keep it"
    elif not entry.kept:
        entry.note += (f" (and drops of {drops} with the other calibrations)" if drops else "") + \
            "; use --force to keep the best"
    elif refused and entry.gate["drop"] <= max_drop:
        entry.note = f"{entry.gate['calibration']} calibration kept after the gate refused drops of {drops}"
    entry.seconds = round(time.perf_counter() - start, 3)
    return entry


def _others(method: str) -> str:
    return " or ".join(m for m in CALIBRATION_METHODS if m != method)


@dataclass
class Baseline:
    """The fp32 side of the gate: computed once, however many calibration methods are tried."""

    path: Path
    gate: LabelledImages
    arrays: np.ndarray  # the gate images, preprocessed (int8 files keep the fp32 file's input contract)
    probs: np.ndarray
    speed_batch: np.ndarray
    images_per_second: float

    @classmethod
    def of(cls, fp32: Path, gate: LabelledImages) -> Baseline:
        reference = OnnxPredictor(fp32)
        arrays = np.stack([reference.load(im) for im in gate.images])
        speed_batch = np.resize(arrays, (8, *arrays.shape[1:]))  # repeats images when there are fewer
        return cls(fp32, gate, arrays, reference.run(arrays), speed_batch,
                   images_per_second(reference, speed_batch))


def _quantize_gated(
    baseline: Baseline, final: Path, calib: list[np.ndarray], per_channel: bool, tracing_batch: int,
    scheme: str, calibration: str, max_drop: float, force: bool,
) -> ArtefactReport:
    """One calibration method: quantise, check, gate on top-1; the file lands at ``final`` only when kept."""
    entry = ArtefactReport("onnx-int8", str(final), runtime="onnxruntime", precision="int8")
    tmp = temp_path(final)
    start = time.perf_counter()
    try:
        quantize_file(baseline.path, tmp, calib, per_channel, scheme, calibration)
        check_onnx(tmp)
        quantized, arrays, fp32_probs = OnnxPredictor(tmp), baseline.arrays, baseline.probs
        n = validation_batch(tracing_batch)
        int8_probs = np.concatenate([quantized.run(arrays[i : i + n]) for i in range(0, len(arrays), n)])
        single = quantized.run(arrays[:1])  # the batch axis must stay dynamic after quantisation
        if single.shape != (1, fp32_probs.shape[1]):
            raise ZooError(f"{final}: int8 model returned shape {single.shape} at batch 1")
        labels = baseline.gate.labels or []
        entry.gate = {
            "images": len(labels),
            "source": baseline.gate.source,
            "fp32_top1": top1(fp32_probs, labels),
            "int8_top1": top1(int8_probs, labels),
            "top1_agreement": float((fp32_probs.argmax(1) == int8_probs.argmax(1)).mean() * 100),
            "max_drop": max_drop,
            "speedup_batch8": images_per_second(quantized, baseline.speed_batch) / baseline.images_per_second,
            "per_channel": per_channel,
            "scheme": scheme,
            "calibration_images": len(calib),
            "calibration": calibration,
        }
        entry.gate["drop"] = entry.gate["fp32_top1"] - entry.gate["int8_top1"]
        entry.kept = entry.gate["drop"] <= max_drop or force
        if not entry.kept:
            g = entry.gate
            entry.note = (f"int8 top-1 {g['int8_top1']:.2f}% vs fp32 {g['fp32_top1']:.2f}%: drop "
                          f"{g['drop']:.2f} points > --max-drop {max_drop} with {calibration} calibration")
            tmp.unlink()
        else:
            if entry.gate["drop"] > max_drop:
                entry.note = f"kept with --force despite a {entry.gate['drop']:.2f} point drop"
            keep_if(tmp, final, lambda: None)
            entry.bytes = final.stat().st_size
    finally:
        tmp.unlink(missing_ok=True)
    entry.seconds = round(time.perf_counter() - start, 3)
    return entry
