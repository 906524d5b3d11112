"""Edge deployment: the one-file runtime (zoo.runtime.predict = the bundle's predict.py), metadata
checks, uint8 input inside the graph, onnxruntime's ORT format, and the bundle run as a user would:
in a fresh venv holding only onnxruntime, numpy and Pillow.

The model is real: simple_cnn_bn trained on digits (shared with test_export/test_runtime)."""

from __future__ import annotations

import ast
import json
import logging
import os
import struct
import subprocess
import sys
import tarfile
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from PIL import Image
from test_export import digits_run, leftovers, random_run
from typer.testing import CliRunner

import zoo.runtime.predict as edge
from exporters.export import export
from zoo.cli import app
from zoo.errors import ZooError
from zoo.export_api import Exporter
from zoo.runtime.onnx_predictor import OnnxPredictor, expand_inputs

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return digits_run(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def float_export(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("edge-float")
    export(run, formats="onnx", out=out, val_images=16)
    return out


@pytest.fixture(scope="session")
def edge_export(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """uint8 NHWC input, ONNX and ORT, fp32 and int8, and the bundle (the int8 models)."""
    out = tmp_path_factory.mktemp("edge-uint8")
    export(run, formats=["onnx", "ort"], out=out, quantize="int8", calib_images=64, val_images=16,
           input_dtype="uint8", bundle=True)
    return out


@pytest.fixture(scope="session")
def pngs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from zoo.data import export_dataset

    root = tmp_path_factory.mktemp("edge-png")
    export_dataset("digits", root, split="test")
    return root / "test"


def meta(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


# ---------------------------------------------------------------- one runtime, one file

def test_the_runtime_is_one_self_contained_file() -> None:
    """predict.py imports the standard library, numpy, Pillow and onnxruntime only (zoo's error
    types optionally, inside a try), so the bundle can ship it alone."""
    tree = ast.parse(Path(edge.__file__).read_text())
    optional = {n for t in ast.walk(tree) if isinstance(t, ast.Try) for s in t.body for n in
                ([a.name for a in s.names] if isinstance(s, ast.Import) else
                 [s.module] if isinstance(s, ast.ImportFrom) else [])}
    imported = {n for t in ast.walk(tree) for n in
                ([a.name for a in t.names] if isinstance(t, ast.Import) else
                 [t.module] if isinstance(t, ast.ImportFrom) and t.level == 0 else [])} - optional
    third_party = {m.split(".")[0] for m in imported} - set(sys.stdlib_module_names)
    assert third_party == {"numpy", "PIL", "onnxruntime"}, third_party
    assert optional == {"zoo.errors"}


def test_zoo_imports_the_same_functions_it_ships() -> None:
    """Training's eval pipeline, export validation and zoo predict use the bundle's code itself."""
    import zoo.data.images
    import zoo.runtime.onnx_predictor as onnx_predictor
    import zoo.runtime.preprocess as preprocess

    for name in ("open_image", "to_mode", "resize_crop", "normalize", "preprocess", "ImageError"):
        assert getattr(preprocess, name) is getattr(edge, name), name
    # training normalises on its device with torch, bit for bit equal to edge.normalize
    # (tests/test_batched.py::test_normalize_equals_the_runtime_bit_for_bit)
    assert zoo.data.images.resize_crop is edge.resize_crop
    assert onnx_predictor.OnnxPredictor is edge.OnnxPredictor


# ---------------------------------------------------------------- metadata checked on load

def _with(props: dict[str, str], key: str, value: Any) -> dict[str, str]:
    out = dict(props)
    if value is None:
        out.pop(key)
    else:
        out[key] = value if isinstance(value, str) else json.dumps(value)
    return out


def _spec(props: dict[str, str], **changes: Any) -> str:
    spec = json.loads(props["preprocessing"])
    spec.update(changes)
    return json.dumps({k: v for k, v in spec.items() if v is not None})


BAD_METADATA = [
    ("classes", [str(i) for i in range(9)], "'classes' has 9 names but the model outputs 10 probabilities"),
    ("classes", [str(i) for i in range(11)], "'classes' has 11 names but the model outputs 10"),
    ("classes", [], "'classes' is not a non-empty list of names"),
    ("classes", {"a": 1}, "'classes' is not a non-empty list of names"),
    ("classes", "[0, 1", "not JSON"),
    ("preprocessing", {"resize": None}, "'preprocessing' has no 'resize'"),
    ("preprocessing", {"resize": 64, "crop": 64}, "the input is 32x32 but the metadata's crop is 64"),
    ("preprocessing", {"std": [0.0]}, "std [0.0] has a value <= 0"),
    ("preprocessing", {"resize": 100000}, "resize 100000 is not an integer from the crop (32) to 4x it"),
    ("preprocessing", {"interpolation": "lanczos9"}, "interpolation 'lanczos9' is not one of"),
    ("preprocessing", {"mean": [0.1, 0.2]}, "mean [0.1, 0.2] is not 1 finite number(s)"),
    ("preprocessing", {"mean": ["x"]}, "is not 1 finite number(s)"),
    ("preprocessing", {"channels": 3, "mean": [0.5] * 3, "std": [0.5] * 3},
     "input channels 1 do not fit a 3-channel model"),
    ("input", {"dtype": "uint8", "layout": "NHWC", "channels": 3},
     "the input is tensor(float) but the metadata says uint8"),
    ("input", {"dtype": "int4", "layout": "NCHW", "channels": 1},
     "input dtype 'int4' is not float32 or uint8"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD_METADATA)
def test_bad_metadata_is_one_error_line(float_export: Path, tmp_path: Path, key: str, value: Any,
                                        message: str) -> None:
    model = onnx.load(str(float_export / "model.onnx"))
    props = {p.key: p.value for p in model.metadata_props}
    if key == "preprocessing":
        value = _spec(props, **value)
    del model.metadata_props[:]
    for k, v in _with(props, key, value).items():
        model.metadata_props.add(key=k, value=v)
    bad = tmp_path / "bad.onnx"
    onnx.save(model, str(bad))  # the graph (and its sha256) unchanged: only the metadata is wrong
    with pytest.raises(ZooError, match="bad zoo metadata") as info:
        OnnxPredictor(bad)
    assert message in str(info.value) and str(bad) in str(info.value)
    image = Image.new("L", (8, 8))
    image.save(tmp_path / "x.png")
    result = runner.invoke(app, ["predict", str(bad), str(tmp_path / "x.png")])
    assert result.exit_code == 2 and result.stderr == f"error: {info.value}\n"


def test_a_damaged_weight_is_caught_by_the_graph_checksum(float_export: Path, tmp_path: Path) -> None:
    path = float_export / "model.onnx"
    assert meta(path)["graph_sha256"] == edge.graph_digest(path)
    weights = max(onnx.load(str(path)).graph.initializer, key=lambda t: len(t.raw_data)).raw_data
    data = bytearray(path.read_bytes())
    at = data.find(weights[:64]) + len(weights) // 2
    data[at] ^= 0x10  # one flipped bit in the largest weight tensor: the graph still loads
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ZooError, match="sha256 differs from the one recorded at export: the file is damaged"):
        OnnxPredictor(damaged)


# ---------------------------------------------------------------- bad images (issue 9, item 10)

def bomb_png(path: Path, side: int = 100_000) -> Path:
    """A valid 8x8 PNG whose header (CRC fixed) declares side x side pixels: a decompression bomb."""
    Image.new("L", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", side, side)
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr : ihdr + 17])))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("model", ["model.onnx", "model.int8.onnx", "model.ort"])
def test_decompression_bomb_is_skipped_and_reported(edge_export: Path, pngs: Path, tmp_path: Path,
                                                    model: str) -> None:
    bomb = bomb_png(tmp_path / "bomb.png")
    good = sorted((pngs / "4").iterdir())[0]
    result = runner.invoke(app, ["predict", str(edge_export / model), str(bomb), str(good), "--json"])
    assert result.exit_code == 1
    assert [json.loads(line)["image"] for line in result.stdout.splitlines()] == [str(good)]
    first, last = result.stderr.splitlines()
    assert first.startswith(f"error: {bomb}: not a readable image (DecompressionBombError")
    assert last == "error: 1 of 2 image(s) could not be read"


def test_decompression_bomb_with_torchscript(run: Path, tmp_path: Path, pngs: Path) -> None:
    export(run, formats="torchscript", out=tmp_path, val_images=8)
    bomb = bomb_png(tmp_path / "bomb.png")
    result = runner.invoke(app, ["predict", str(tmp_path / "model.pt"), str(bomb),
                                 str(sorted((pngs / "4").iterdir())[0])])
    assert result.exit_code == 1 and "DecompressionBombError" in result.stderr
    assert "Traceback" not in result.output and " 4 (" in result.stdout


# ---------------------------------------------------------------- quantiser log lines (issue 9, item 8)

def test_quantiser_log_lines_become_warnings(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """onnxruntime's quantiser logs 'Axis 1 is out-of-range' through the root logger for a weight
    without a channel axis (a MatMul by a vector); it must not print WARNING:root:... on stderr."""
    from onnx import TensorProto, helper, numpy_helper

    from exporters.quantize import quantize_file

    weight = numpy_helper.from_array(np.linspace(0, 1, 4, dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["probs"])], "vector-head",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 4])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 3])], [weight])
    source = tmp_path / "vector.onnx"
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(proto, str(source))
    handlers = list(logging.getLogger().handlers)
    calib = [np.random.default_rng(i).random((3, 4), dtype=np.float32) for i in range(8)]
    with pytest.warns(UserWarning, match="onnxruntime quantisation: Axis 1 is out-of-range for weight 'w'"):
        quantize_file(source, tmp_path / "vector.int8.onnx", calib, per_channel=True, scheme="u8s8")
    assert "WARNING:root" not in capfd.readouterr().err
    assert logging.getLogger().handlers == handlers  # no handler left behind
    assert (tmp_path / "vector.int8.onnx").is_file()


# ---------------------------------------------------------------- uint8 input inside the graph

def test_uint8_input_matches_the_float_pipeline(edge_export: Path, float_export: Path, run: Path) -> None:
    from exporters.validate import split_images
    from zoo.run import load_config

    model = onnx.load(str(edge_export / "model.onnx"))
    (inp,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "image" and inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert dims == ["batch", 32, 32, 3]
    assert json.loads(meta(edge_export / "model.onnx")["input"]) == {"dtype": "uint8", "layout": "NHWC",
                                                                      "channels": 3}
    test = split_images(run, load_config(run), ("test",), None)
    uint8, floats = OnnxPredictor(edge_export / "model.onnx"), OnnxPredictor(float_export / "model.onnx")
    p8, pf = uint8.predict(test.images, batch_size=32), floats.predict(test.images, batch_size=32)
    assert len(test.images) == 359 and np.array_equal(p8.argmax(1), pf.argmax(1))
    assert np.abs(p8 - pf).max() < 1e-6
    int8 = OnnxPredictor(edge_export / "model.int8.onnx")
    assert int8.input == uint8.input and json.loads(int8.metadata["input"])["dtype"] == "uint8"
    assert (int8.predict(test.images).argmax(1) == pf.argmax(1)).mean() > 0.95


def test_uint8_graph_converts_rgb_frames_as_pillow_does(edge_export: Path, float_export: Path) -> None:
    """What a camera gives (RGB uint8 frames, straight into the session) equals Pillow's grayscale
    conversion followed by the float model: the in-graph luma is Pillow's, exactly."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    uint8 = OnnxPredictor(edge_export / "model.onnx")
    floats = OnnxPredictor(float_export / "model.onnx")
    direct = uint8.session.run(None, {"image": frames})[0]
    gray = np.stack([floats.load(Image.fromarray(f).convert("L")) for f in frames])
    assert np.abs(direct - floats.run(gray)).max() < 1e-6


def test_uint8_nchw_on_an_rgb_model(tmp_path: Path) -> None:
    run_dir = random_run(tmp_path, "resnet20", 32)
    with pytest.warns(UserWarning, match="fp16 ONNX is for GPU execution providers"):
        report = export(run_dir, formats="onnx", input_dtype="uint8", input_layout="nchw", quantize="int8",
                        force=True, half=True, calib_images=16, val_images=8)
    fp32, fp16, int8 = report.artefacts
    assert fp32.validation["passed"] and fp32.validation["max_abs_diff"] < 1e-5
    assert fp16.precision == "fp16" and fp16.validation["passed"] and int8.precision == "int8" and int8.kept
    predictor = OnnxPredictor(fp32.path)
    assert predictor.input == {"dtype": "uint8", "layout": "NCHW", "channels": 3}
    assert predictor.session.get_inputs()[0].shape == ["batch", 3, 32, 32]
    for other in (fp16, int8):
        assert OnnxPredictor(other.path).session.get_inputs()[0].shape == ["batch", 3, 32, 32]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "uint8", "-f", "torchscript"],
         "--input uint8: the torchscript exporter writes float32 input only; formats that take it: "
         "onnx, ort"),
        (["--layout", "nchw"], "--layout applies to --input uint8"),
        (["--input", "uint8", "--layout", "nwhc"], "--layout must be one of NHWC, NCHW, got 'nwhc'"),
        (["--input", "int4"], "--input must be one of float32, uint8, got 'int4'"),
        (["--bundle", "-f", "torchscript"],
         "--bundle: the torchscript format runs on torch, and the bundle's predict.py has onnxruntime, "
         "numpy and Pillow only"),
    ],
)
def test_bad_edge_options_are_one_line_errors(run: Path, tmp_path: Path, args: list[str],
                                              message: str) -> None:
    result = runner.invoke(app, ["export", str(run), "--out", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and list(tmp_path.iterdir()) == []


class NoRuntimeExporter(Exporter):
    name, suffix, description = "blob", ".blob", "a format with no runtime (cannot be bundled)"


def test_bundle_refuses_a_format_without_runtime(run: Path, tmp_path: Path) -> None:
    from zoo.plugins import get_host, reset_host

    get_host().exporters.register(NoRuntimeExporter(), owner="test")
    try:
        result = runner.invoke(app, ["export", str(run), "-f", "onnx,blob", "--bundle",
                                     "--out", str(tmp_path)])
    finally:
        reset_host()
    assert result.exit_code == 2 and "--bundle: the blob format has no runtime" in result.stderr
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- onnxruntime's ORT format

def test_ort_artefacts_are_validated_and_carry_the_operator_config(edge_export: Path, pngs: Path) -> None:
    for name in ("model.ort", "model.int8.ort"):
        assert edge.is_ort_format(edge_export / name)
    ort_fp32, onnx_fp32, ort_int8, onnx_int8 = (
        OnnxPredictor(edge_export / name)
        for name in ("model.ort", "model.onnx", "model.int8.ort", "model.int8.onnx"))
    files = expand_inputs([pngs])[::25]
    assert np.abs(ort_fp32.predict(files) - onnx_fp32.predict(files)).max() < 1e-6
    assert np.abs(ort_int8.predict(files) - onnx_int8.predict(files)).max() < 1e-6
    assert ort_int8.classes == onnx_int8.classes and ort_int8.input == onnx_int8.input
    config = (edge_export / "model.required_operators.config").read_text()
    assert "# - model.ort\n" in config and "# - model.int8.ort\n" in config
    assert "QLinearConv" in config and "ai.onnx;" in config and str(edge_export) not in config
    result = runner.invoke(app, ["predict", str(edge_export / "model.int8.ort"), str(files[0]),
                                 "--json", "-k", "1"])
    assert result.exit_code == 0 and json.loads(result.stdout)["top"][0]["class"] == files[0].parent.name


def newer_ort(source: Path, out: Path) -> Path:
    """``source`` with its ORT format version field set to 9 (what a newer onnxruntime would write),
    found with onnxruntime's own flatbuffer reader."""
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs.InferenceSession import InferenceSession

    data = bytearray(source.read_bytes())
    session = InferenceSession.GetRootAsInferenceSession(data, 0)
    at = session._tab.Indirect(session._tab.Offset(4) + session._tab.Pos)  # field 0: ort_version
    assert data[at : at + 5] == b"\x01\x00\x00\x006" and session.OrtVersion() == b"6"
    data[at + 4] = ord("9")
    out.write_bytes(bytes(data))
    return out


def test_an_ort_file_from_a_newer_onnxruntime_is_one_error_line(edge_export: Path, tmp_path: Path,
                                                                pngs: Path) -> None:
    import onnxruntime

    newer = newer_ort(edge_export / "model.int8.ort", tmp_path / "newer.ort")
    image = str(expand_inputs([pngs])[0])
    result = runner.invoke(app, ["predict", str(newer), image])
    assert result.exit_code == 2
    assert result.stderr == (f"error: {newer}: ORT format version 9 is newer than onnxruntime "
                             f"{onnxruntime.__version__} reads (a newer onnxruntime converted it); "
                             "convert the .onnx file with this onnxruntime, or install the newer one\n")


# ---------------------------------------------------------------- the bundle

def test_bundle_contents(edge_export: Path) -> None:
    bundle = edge_export / "bundle"
    assert sorted(p.name for p in bundle.iterdir()) == ["README.md", "model.int8.onnx", "model.int8.ort",
                                                         "predict.py", "requirements.txt"]
    assert (bundle / "predict.py").read_bytes() == Path(edge.__file__).read_bytes()  # cannot drift
    assert (bundle / "model.int8.onnx").read_bytes() == (edge_export / "model.int8.onnx").read_bytes()
    names = [line.split("==")[0] for line in (bundle / "requirements.txt").read_text().splitlines()]
    assert names == ["onnxruntime", "numpy", "pillow"]
    readme = (bundle / "README.md").read_text()
    for needle in ("Input `image`: uint8 NHWC [N, 32, 32, 3]", "Output `probs`: float32 [N, 10]",
                   "| 9 | 9 |", "Ort::Value::CreateTensor<uint8_t>", 'const char* input_names[] = {"image"};',
                   "pip install -r requirements.txt", "grayscale"):
        assert needle in readme, needle
    with tarfile.open(edge_export / "bundle.tar.gz") as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        assert sorted(members) == sorted(f"bundle/{p.name}" for p in bundle.iterdir())
        assert tar.extractfile(members["bundle/predict.py"]).read() == (bundle / "predict.py").read_bytes()
    assert leftovers(edge_export) == []


def test_bundle_of_all_formats_holds_the_onnxruntime_ones(run: Path, tmp_path: Path) -> None:
    report = export(run, formats="all", out=tmp_path, bundle=True, val_images=8)
    kinds = [a.format for a in report.artefacts]
    assert kinds == ["onnx", "ort", "torchscript", "ort-operators", "bundle", "bundle-archive"]
    assert report.artefacts[4].validation["passed"]
    assert sorted(p.name for p in (tmp_path / "bundle").iterdir()) == [
        "README.md", "model.onnx", "model.ort", "predict.py", "requirements.txt"]
    readme = (tmp_path / "bundle" / "README.md").read_text()
    assert "float32 NCHW [N, 1, 32, 32]" in readme and "Ort::Value::CreateTensor<float>" in readme


@pytest.fixture(scope="session")
def bundle_python(edge_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the bundle's requirements.txt installed (``pip install -r``, as a user
    would; pip runs from zoo's venv with ``--python`` and skips byte-compiling, which takes the
    set-up from ~30 s to ~15 s on 2 busy cores)."""
    venv = tmp_path_factory.mktemp("bundle-venv") / "venv"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   capture_output=True, timeout=120)
    python = venv / "bin" / "python"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--disable-pip-version-check",
         "--no-input", "--no-compile", "-q", "-r", str(edge_export / "bundle" / "requirements.txt")],
        capture_output=True, text=True, timeout=300)
    if pip.returncode != 0:
        pytest.skip("pip could not install onnxruntime, numpy and Pillow into a fresh venv "
                    f"(no PyPI or pip cache here?): {pip.stderr.strip().splitlines()[-1:]}")
    print(f"bundle venv ready in {time.perf_counter() - start:.1f} s")
    return python


def _predict_py(python: Path, bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(python), "predict.py", *args], cwd=bundle, capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.mark.slow
def test_bundle_runs_without_zoo_and_agrees_with_zoo_predict(
    bundle_python: Path, edge_export: Path, pngs: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "unpacked"
    with tarfile.open(edge_export / "bundle.tar.gz") as tar:
        tar.extractall(bundle, filter="data")  # what a user receives
    bundle = bundle / "bundle"
    probe = subprocess.run([str(bundle_python), "-c", "import importlib.util as u; print([m for m in "
                            "('torch', 'zoo', 'pluggy', 'onnx', 'typer', 'pip') if u.find_spec(m)])"],
                           capture_output=True, text=True, cwd=tmp_path, check=True)
    assert probe.stdout.strip() == "[]"  # nothing of zoo's stack in the bundle's venv
    one = sorted((pngs / "2").iterdir())[0]
    folder = pngs / "7"
    for args in ([str(one)], [str(folder)]):
        ours = _predict_py(bundle_python, bundle, *args, "--json", "-k", "10")
        theirs = runner.invoke(app, ["predict", str(edge_export / "model.int8.onnx"), *args,
                                     "--json", "-k", "10"])
        assert ours.returncode == 0 and theirs.exit_code == 0, ours.stderr
        a = [json.loads(line) for line in ours.stdout.splitlines()]
        b = [json.loads(line) for line in theirs.stdout.splitlines()]
        assert [x["image"] for x in a] == [x["image"] for x in b] and len(a) == len(expand_inputs(args))
        for x, y in zip(a, b, strict=True):
            assert x["top"][0]["class"] == y["top"][0]["class"]
            px, py = ({t["class"]: t["prob"] for t in r["top"]} for r in (x, y))
            assert px.keys() == py.keys() and max(abs(px[c] - py[c]) for c in px) <= 1e-6
    table = _predict_py(bundle_python, bundle, str(one))
    assert table.returncode == 0 and table.stdout.startswith(f"{one}  2 ")


@pytest.mark.slow
def test_bundle_reports_bad_files_and_goes_on(bundle_python: Path, edge_export: Path, pngs: Path,
                                              tmp_path: Path) -> None:
    good = sorted((pngs / "6").iterdir())[0]
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(good.read_bytes()[:40])
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    missing = tmp_path / "missing.png"
    result = _predict_py(bundle_python, edge_export / "bundle", str(missing), str(corrupt), str(good),
                         str(text), "--json")
    assert result.returncode == 1
    assert [json.loads(line)["image"] for line in result.stdout.splitlines()] == [str(good)]
    errors = result.stderr.splitlines()
    assert errors[0] == f"error: {missing}: no such file"
    assert errors[1].startswith(f"error: {corrupt}: not a readable image")
    assert errors[2].startswith(f"error: {text}: not a readable image")
    assert errors[3] == "error: 3 of 4 image(s) could not be read" and len(errors) == 4
    newer = newer_ort(edge_export / "model.int8.ort", tmp_path / "newer.ort")
    refused = _predict_py(bundle_python, edge_export / "bundle", str(good), "--model", str(newer))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith(f"error: {newer}: ORT format version 9 is newer than onnxruntime")
    usage = _predict_py(bundle_python, edge_export / "bundle", str(good), "--top-k", "0")
    assert usage.returncode == 2 and usage.stderr == "error: --top-k must be a positive integer, got 0\n"
