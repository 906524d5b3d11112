"""Export: every architecture to TorchScript and ONNX (validated against PyTorch on real images),
int8 with its accuracy gate (kept and refused), fp16, the CLI report, and bad input.

The trained runs are real: ``zoo.train`` on the digits data set for a few epochs at 32 px."""

from __future__ import annotations

import functools
import itertools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

import zoo
from exporters.export import export
from zoo.cli import app
from zoo.errors import ZooError, ZooUsageError
from zoo.export_api import Exporter, ExportOptions, ExportRefused
from zoo.run import atomic_torch_save, atomic_write_json, build_model, load_config

DIGITS_SIZE = 32
# Same code paths as their smaller siblings (vgg11_bn, resnet50) but 130M+ parameters or 100+ layers:
# 20-40 s each here. All pass; ZOO_EXPORT_ALL=1 includes them.
HEAVY = ("vgg11", "vgg13*", "vgg16*", "vgg19*", "resnet101", "resnet152")
ARCHS = zoo.list_models() if os.environ.get("ZOO_EXPORT_ALL") == "1" else zoo.list_models(exclude=HEAVY)
runner = CliRunner()


@functools.cache
def digits_run(root: Path, arch: str = "simple_cnn_bn") -> Path:
    """``arch`` trained by ``zoo.train`` on the digits train split (once per test session;
    test_runtime.py shares it through this cache)."""
    out = root / f"digits-{arch}"
    zoo.train(arch, "digits", out=out, epochs=4, image_size=DIGITS_SIZE, augment="none", quiet=True,
              workers=0)
    return out


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return digits_run(tmp_path_factory.getbasetemp())


def leftovers(folder: Path) -> list[str]:
    """Temporary files an export may have left behind (there must be none)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or ".tmp" in p.name)


def random_run(tmp: Path, arch: str, size: int) -> Path:
    """A run directory with random weights: 3 classes, RGB, validated on digits images (as RGB)."""
    from zoo.data import eval_preprocessing

    config: dict[str, Any] = {
        "arch": arch, "num_classes": 3, "in_channels": 3, "model_kwargs": {}, "classes": ["a", "b", "c"],
        "preprocessing": eval_preprocessing(size, 3, [0.3] * 3, [0.3] * 3, native_size=8),
        "data": {"source": "digits"},
    }
    run_dir = tmp / arch
    atomic_write_json(run_dir / "config.json", config)
    atomic_torch_save({"model": build_model(config).state_dict()}, run_dir / "best.pt")
    return run_dir


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_exports_to_both_formats_and_validates(arch: str, tmp_path: Path) -> None:
    spec = zoo.get_spec(arch)
    size = max(32, spec.min_image_size)
    report = export(random_run(tmp_path, arch, size), formats=["onnx", "torchscript", "ort"], val_images=6)
    assert [a.format for a in report.artefacts] == ["onnx", "torchscript", "ort", "ort-operators"]
    for artefact in report.artefacts[:3]:
        v = artefact.validation
        assert v is not None and v["passed"], (arch, artefact.format, v)
        assert v["batches"] == [1, 5] and v["max_abs_diff"] <= 1e-4 and v["top1_agreement"] == 100.0
        assert Path(artefact.path).is_file()
    meta = {p.key: p.value for p in onnx.load(report.artefacts[0].path).metadata_props}
    assert json.loads(meta["classes"]) == ["a", "b", "c"] and meta["arch"] == arch
    assert json.loads(meta["preprocessing"])["crop"] == size and meta["input_size"] == str(size)
    assert leftovers(tmp_path / arch / "export") == []


def test_onnx_metadata_and_dynamic_batch(trained: Path, tmp_path: Path) -> None:
    report = export(trained, formats="onnx", out=tmp_path)
    model = onnx.load(str(tmp_path / "model.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    config = load_config(trained)
    assert json.loads(meta["classes"]) == config["classes"]
    assert json.loads(meta["preprocessing"]) == config["preprocessing"]
    assert json.loads(meta["mean"]) == config["preprocessing"]["mean"]
    assert meta["channels"] == "1" and meta["zoo_version"] == zoo.__version__ and meta["precision"] == "fp32"
    assert int(meta["opset"]) == model.opset_import[0].version
    batch_dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value  # symbolic, not frozen to the tracing batch
    v = report.artefacts[0].validation
    assert v["source"] == "digits (val split)" and v["runtime_top1"] == v["torch_top1"] > 80


def test_torchscript_carries_class_names(trained: Path, tmp_path: Path) -> None:
    import torch

    export(trained, formats="torchscript", out=tmp_path)
    module = torch.jit.load(str(tmp_path / "model.pt"))
    assert list(module.class_names) == [str(i) for i in range(10)]
    assert json.loads(module.preprocessing)["crop"] == DIGITS_SIZE
    probs = module(torch.zeros(3, 1, DIGITS_SIZE, DIGITS_SIZE))
    assert probs.shape == (3, 10) and torch.allclose(probs.sum(1), torch.ones(3))


def test_int8_kept_when_the_gate_passes(trained: Path, tmp_path: Path) -> None:
    report = export(trained, formats="onnx", out=tmp_path, quantize="int8", calib_images=64)
    int8 = report.artefacts[-1]
    assert int8.format == "onnx-int8" and int8.kept and (tmp_path / "model.int8.onnx").is_file()
    gate = int8.gate
    assert gate["images"] == 359 and gate["source"] == "digits (test split)"  # the whole test split
    assert gate["drop"] <= 1.0 and gate["int8_top1"] > 80 and gate["calibration_images"] == 64
    quantized = onnx.load(str(tmp_path / "model.int8.onnx"))
    ops = {n.op_type for n in quantized.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    meta = {p.key: p.value for p in quantized.metadata_props}
    assert meta["precision"] == "int8" and json.loads(meta["classes"]) == load_config(trained)["classes"]
    assert (tmp_path / "model.int8.onnx").stat().st_size < (tmp_path / "model.onnx").stat().st_size / 2


def test_int8_refused_by_the_gate_leaves_no_file(trained: Path, tmp_path: Path) -> None:
    # --max-drop -100 demands int8 be 100 points better than fp32: the gate must refuse it.
    result = runner.invoke(app, ["export", str(trained), "--out", str(tmp_path), "--quantize", "int8",
                                 "--max-drop", "-100", "--calib-images", "32"])
    assert result.exit_code == 1, result.output
    assert "refused" in result.stdout and "with entropy calibration (and drops of minmax " in result.stderr
    assert "with the other calibrations); use --force to keep the best" in result.stderr  # auto tried all 3
    assert "Traceback" not in result.output
    assert not (tmp_path / "model.int8.onnx").exists() and (tmp_path / "model.onnx").is_file()
    assert leftovers(tmp_path) == []
    one = runner.invoke(app, ["export", str(trained), "--out", str(tmp_path), "--quantize", "int8",
                              "--max-drop", "-100", "--calib-images", "32", "--calibration", "minmax"])
    assert one.exit_code == 1 and "try --calibration percentile or entropy, or use --force" in one.stderr
    forced = runner.invoke(app, ["export", str(trained), "--out", str(tmp_path), "--quantize", "int8",
                                 "--max-drop", "-100", "--calib-images", "32", "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    int8 = json.loads(forced.stdout)["artefacts"][-1]
    assert int8["kept"] and "--force" in int8["note"] and (tmp_path / "model.int8.onnx").is_file()
    drops = {**int8["gate"]["refused_calibrations"], int8["gate"]["calibration"]: int8["gate"]["drop"]}
    assert len(drops) == 3 and int8["gate"]["drop"] == min(drops.values())  # the least bad one is kept


def test_auto_calibration_goes_on_past_a_method_that_cannot_calibrate(tmp_path: Path) -> None:
    """percentile cannot histogram the untrained mobilenet_v3_small's nearly constant squeeze-excitation gates
    (onnxruntime: "Too many bins"): named alone it is a one-line error and no file; under auto (minmax
    refused by a gate no file passes) it is recorded and entropy is still tried."""
    run = random_run(tmp_path, "mobilenet_v3_small", 32)
    args = ["export", str(run), "--out", str(tmp_path / "out"), "--quantize", "int8", "--calib-images", "16"]
    alone = runner.invoke(app, [*args, "--calibration", "percentile"])
    assert alone.exit_code == 1 and "int8 quantisation failed (ValueError: Too many bins" in alone.stderr
    assert "Traceback" not in alone.output and not (tmp_path / "out" / "model.int8.onnx").exists()
    auto = runner.invoke(app, [*args, "--max-drop", "-100", "--force", "--json"])
    assert auto.exit_code == 0, auto.output
    gate = json.loads(auto.stdout)["artefacts"][-1]["gate"]
    failed = gate["failed_calibrations"]
    assert list(failed) == ["percentile"] and "Too many bins" in failed["percentile"]
    assert gate["calibration"] in ("minmax", "entropy") and list(gate["refused_calibrations"]) in (
        ["minmax"], ["entropy"])


def test_auto_calibration_keeps_the_first_method_the_gate_passes(trained: Path, tmp_path: Path) -> None:
    """--calibration auto (the default) tries minmax, then percentile while the gate refuses. Labelled with
    percentile's own int8 predictions (on blends of two digits, borderline inputs), a gate at fp32's top-1
    minus 100 points keeps percentile's file and refuses minmax's wherever the two files disagree."""
    from PIL import Image

    from exporters.quantize import quantize_file, quantize_int8
    from exporters.validate import LabelledImages, calibration_images, split_images
    from zoo.export_api import resolve_int8_scheme
    from zoo.runtime.onnx_predictor import OnnxPredictor

    config = load_config(trained)
    export(trained, formats="onnx", out=tmp_path)
    fp32, scheme = tmp_path / "model.onnx", resolve_int8_scheme("auto")
    calib = calibration_images(trained, config, None, 64)
    test = split_images(trained, config, ("test",), None, need_labels=True).images
    blends = [Image.blend(a, b, 0.5) for a, b in itertools.pairwise(test)]
    arrays = np.stack([OnnxPredictor(fp32).load(im) for im in blends])
    predicted = {}
    for method in ("minmax", "percentile"):
        quantize_file(fp32, tmp_path / f"{method}.onnx", calib, True, scheme, method)
        predicted[method] = OnnxPredictor(tmp_path / f"{method}.onnx").run(arrays).argmax(1)
    assert (predicted["minmax"] != predicted["percentile"]).any()
    fp32_top1 = float((OnnxPredictor(fp32).run(arrays).argmax(1) == predicted["percentile"]).mean() * 100)
    gate = LabelledImages(blends, predicted["percentile"].tolist(), "blends")
    report = quantize_int8(fp32, tmp_path / "model.int8.onnx", calib, gate, True, 2, scheme, "auto",
                           max_drop=fp32_top1 - 100 + 1e-6)
    assert report.kept and report.gate["calibration"] == "percentile" and report.gate["int8_top1"] == 100
    assert list(report.gate["refused_calibrations"]) == ["minmax"]
    assert report.note.startswith("percentile calibration kept after the gate refused drops of minmax")
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "model.int8.onnx")).metadata_props}
    assert "percentile calibration on 64 images" in meta["quantization"]


def test_int8_u8s8_per_tensor_on_own_calibration_folder(trained: Path, tmp_path: Path) -> None:
    from zoo.data import export_dataset

    calib = tmp_path / "calib"
    export_dataset("digits", calib, split="train")
    report = export(trained, formats="onnx", out=tmp_path / "out", quantize="int8", per_channel=False,
                    int8_scheme="u8s8", calib_data=calib, calib_images=40, max_drop=100)
    gate = report.artefacts[-1].gate
    assert gate["per_channel"] is False and gate["scheme"] == "u8s8" and gate["calibration_images"] == 40
    model = onnx.load(str(tmp_path / "out" / "model.int8.onnx"))
    quant = next(n for n in model.graph.node if n.op_type == "QuantizeLinear")
    zero_point = next(t for t in model.graph.initializer if t.name == quant.input[2])
    assert zero_point.data_type == onnx.TensorProto.UINT8  # u8 activations


def test_u8s8_weights_are_7_bit(trained: Path, tmp_path: Path) -> None:
    """x86-64 without VNNI sums u8 x s8 pairs in 16 bits, which saturates on full-range 8-bit
    weights (int8 top-1 falls to chance on an AVX2 EPYC); a U8S8 file's weights must stay in
    [-64, 64] so it is right on every x86-64 processor, not only on the one that exported it."""
    from onnx import numpy_helper

    export(trained, formats="onnx", out=tmp_path, quantize="int8", int8_scheme="u8s8", max_drop=100)
    model = onnx.load(str(tmp_path / "model.int8.onnx"))
    int8 = [numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert int8 and all(abs(int(w.min())) <= 64 and int(w.max()) <= 64 for w in int8)  # symmetric 7-bit
    assert "7-bit weights" in {p.key: p.value for p in model.metadata_props}["quantization"]


def test_percentile_calibration_clips_activation_ranges(trained: Path, tmp_path: Path) -> None:
    """--calibration percentile is onnxruntime's histogram method: it must reach quantize_static (narrower
    activation ranges than minmax's extremes) and be named in the gate and metadata."""
    from onnx import numpy_helper

    scales = {}
    for method in ("minmax", "percentile"):
        result = runner.invoke(app, ["export", str(trained), "--out", str(tmp_path / method), "--json",
                                     "--quantize", "int8", "--calib-images", "64", "--int8-scheme", "u8s8",
                                     "--calibration", method, "--max-drop", "100"])
        assert result.exit_code == 0, result.output
        # the histogram calibrators print progress: --json's stdout must still be the report alone
        assert json.loads(result.stdout)["artefacts"][-1]["gate"]["calibration"] == method
        model = onnx.load(str(tmp_path / method / "model.int8.onnx"))
        meta = {p.key: p.value for p in model.metadata_props}
        assert f"{method} calibration on 64 images" in meta["quantization"]
        quantised = {n.input[1] for n in model.graph.node if n.op_type == "QuantizeLinear"}
        scales[method] = {t.name: float(numpy_helper.to_array(t)) for t in model.graph.initializer
                          if t.name in quantised and t.data_type == onnx.TensorProto.FLOAT}
    assert scales["minmax"].keys() == scales["percentile"].keys() and scales["minmax"]
    narrower = [k for k in scales["minmax"] if scales["percentile"][k] < scales["minmax"][k] * 0.99]
    assert narrower, scales


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter: fast, and enough here
@pytest.mark.parametrize("per_channel", [True, False])
def test_u8s8_depthwise_weights_keep_8_bits(tmp_path: Path, per_channel: bool) -> None:
    """onnxruntime's x86 depthwise int8 kernels widen both operands to 16 bits, so they cannot saturate
    and a 7th bit only costs precision there (mobilenet_v2 on an AVX2 EPYC: 98.3% agreement with 7-bit
    depthwise weights, 99.2% with 8-bit); every other convolution keeps 7."""
    import torch
    from onnx import numpy_helper

    from exporters.onnx import INPUT_NAME
    from exporters.quantize import depthwise_weights, quantize_file

    torch.manual_seed(0)
    net = torch.nn.Sequential(  # dense, depthwise, pointwise and grouped (two channels a group)
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),
        torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, groups=4)).eval()
    fp32, int8 = tmp_path / "model.onnx", tmp_path / "model.int8.onnx"
    torch.onnx.export(net, (torch.randn(1, 3, 16, 16),), str(fp32), input_names=[INPUT_NAME],
                      dynamic_axes={INPUT_NAME: {0: "batch"}}, dynamo=False)
    rng = np.random.default_rng(0)
    quantize_file(fp32, int8, [rng.standard_normal((3, 16, 16), dtype=np.float32) for _ in range(8)],
                  per_channel=per_channel, scheme="u8s8")

    model = onnx.load(str(int8))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    dequantised_from = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    widest = [int(np.abs(weights[dequantised_from[c.input[1]]].astype(int)).max()) for c in convs]
    assert len(depthwise_weights(onnx.load(str(fp32)))) == 1
    assert widest[1] == 127 and max(widest[0], widest[2], widest[3]) <= 64, widest


def test_fp16_keeps_fp32_inputs_and_outputs(trained: Path, tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="usually slower"):
        report = export(trained, formats="onnx", out=tmp_path, half=True)
    fp16 = report.artefacts[-1]
    assert fp16.format == "onnx-fp16" and fp16.validation["passed"] and fp16.validation["max_abs_diff"] < 1e-2
    model = onnx.load(str(tmp_path / "model.fp16.onnx"))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)


def test_cli_export_prints_the_validation_report(trained: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(trained), "--format", "all", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in ("model.onnx", "model.pt"):
        assert name in result.stdout and (tmp_path / name).is_file()
    assert "max |dp|" in result.stdout and "agreement 100.0%" in result.stdout
    as_json = runner.invoke(app, ["export", str(trained), "-f", "onnx", "--out", str(tmp_path), "--json"])
    report = json.loads(as_json.stdout)
    assert report["arch"] == "simple_cnn_bn" and report["artefacts"][0]["validation"]["passed"]


def test_dynamo_exporter_validates(trained: Path, tmp_path: Path) -> None:
    report = export(trained, formats="onnx", out=tmp_path, dynamo=True, val_images=16)
    assert report.artefacts[0].validation["passed"]


def test_failed_validation_leaves_no_file(trained: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(trained), "--out", str(tmp_path), "--tol", "-1"])
    assert result.exit_code == 1
    progress, error = result.stderr.splitlines()
    assert progress.startswith("exporting onnx -> ") and error.startswith("error: ")
    assert "validation failed" in error and "nothing written" in error
    assert not (tmp_path / "model.onnx").exists() and leftovers(tmp_path) == []


class HalfWrittenExporter(Exporter):
    """A plugin exporter that dies mid-write, as a crashing converter would."""

    name, suffix, description = "broken", ".bin", "writes half a file, then fails"

    def export(self, model: Any, config: dict[str, Any], out_path: Path, options: ExportOptions) -> Path:
        out_path.write_bytes(b"half a model")
        raise RuntimeError("converter crashed")


def test_crashing_plugin_exporter_leaves_no_file(trained: Path, tmp_path: Path) -> None:
    from zoo.plugins import get_host, reset_host

    get_host().exporters.register(HalfWrittenExporter(), owner="test")
    try:
        result = runner.invoke(app, ["export", str(trained), "-f", "broken", "--out", str(tmp_path)])
    finally:
        reset_host()  # the next registry access loads the real plugins again
    assert result.exit_code == 1
    assert "broken export of simple_cnn_bn failed (RuntimeError: converter crashed)" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["-f", "onx"], 2, "unknown exporter 'onx'; did you mean onnx?"),
        (["--batch-size", "1"], 2, "--batch-size must be >= 2"),
        (["--quantize", "int4"], 2, "--quantize must be one of int8"),
        (["--quantize", "int8", "--int8-scheme", "u8u8"], 2, "--int8-scheme must be one of auto, s8s8, u8s8"),
        (["--quantize", "int8", "--calibration", "kl"], 2,
         "--calibration must be one of auto, minmax, percentile, entropy"),
        (["--opset", "99"], 2, "--opset 99: the installed onnxruntime supports opsets up to"),
        (["--image-size", "0"], 2, "--image-size must be a positive integer"),
    ],
)
def test_bad_options_are_one_line_errors(trained: Path, tmp_path: Path, args: list[str], code: int,
                                         message: str) -> None:
    result = runner.invoke(app, ["export", str(trained), "--out", str(tmp_path), *args])
    assert result.exit_code == code, result.output
    assert message in result.stderr and result.stderr.strip().count("\n") <= 1
    assert not (tmp_path / "model.onnx").exists()


def test_bad_runs_are_one_line_errors(trained: Path, tmp_path: Path) -> None:
    no_config = tmp_path / "no-config"
    no_config.mkdir()
    (no_config / "best.pt").write_bytes((trained / "best.pt").read_bytes())
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text((trained / "config.json").read_text())
    (corrupt / "best.pt").write_bytes(b"\x80\x02 not a checkpoint")
    no_ckpt = tmp_path / "no-ckpt"
    no_ckpt.mkdir()
    (no_ckpt / "config.json").write_text((trained / "config.json").read_text())
    cases = [
        (tmp_path / "missing", 2, "no such run directory"),
        (no_config, 2, "not a run directory (no config.json)"),
        (no_config / "best.pt", 2, "not a run directory (no config.json)"),
        (corrupt, 2, "not a readable checkpoint"),  # bad input, like a missing file
        (no_ckpt, 2, "best.pt: no such checkpoint"),
    ]
    for target, code, message in cases:
        result = runner.invoke(app, ["export", str(target)])
        assert result.exit_code == code, (target, result.output)
        assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert not (corrupt / "export" / "model.onnx").exists()


def test_python_api_raises_refusal_with_report(trained: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportRefused) as info:
        zoo.export(trained, out=tmp_path, quantize="int8", calib_images=16, max_drop=-100)
    assert info.value.report.artefacts[-1].gate["int8_top1"] > 0
    assert isinstance(info.value, ZooError)
    with pytest.raises(ZooUsageError):
        zoo.export(trained, formats=[], out=tmp_path)


def test_exporters_import_without_torch() -> None:
    import subprocess
    import sys

    code = ("import sys; import exporters; from zoo.export_api import exporters as e; names = sorted(e()); "
            "assert 'torch' not in sys.modules, 'torch imported'; print(names)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['onnx', 'ort', 'torchscript']"


def test_calibration_images_are_preprocessed_like_eval(trained: Path) -> None:
    from exporters.validate import calibration_images, split_images
    from zoo.runtime.preprocess import preprocess

    config = load_config(trained)
    arrays = calibration_images(trained, config, None, 10)
    train = split_images(trained, config, ("train",), 10)
    assert len(arrays) == 10 and train.source == "digits (train split)"
    assert np.array_equal(arrays[3], preprocess(train.images[3], config["preprocessing"]))


def test_the_exporter_contract_imports_nothing_above_it() -> None:
    """zoo.export_api is the contract exporters import; the orchestration lives in exporters.export.
    An import of exporters (or torch) from the contract would bring the import circle back."""
    import subprocess
    import sys

    code = ("import sys; import zoo.export_api; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('exporters', 'torch')); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert zoo.export is export  # the public entry point is the orchestration's
