"""The edge runtime: OnnxPredictor and `zoo predict`, torch-free, faithful to training's eval pipeline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image
from test_export import digits_run
from typer.testing import CliRunner

from exporters.export import export
from zoo.cli import app
from zoo.errors import ZooError
from zoo.runtime.onnx_predictor import OnnxPredictor, Prediction, expand_inputs
from zoo.runtime.preprocess import ImageError

runner = CliRunner()


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run directory, export folder with model.onnx, model.pt, model.int8.onnx)."""
    run = digits_run(tmp_path_factory.getbasetemp())
    out = tmp_path_factory.mktemp("runtime-export")
    export(run, formats="all", out=out, quantize="int8", calib_images=64, val_images=16)
    return run, out


@pytest.fixture(scope="session")
def pngs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits test split as PNG files in class folders (what a user would point predict at)."""
    from zoo.data import export_dataset

    root = tmp_path_factory.mktemp("digits-png")
    export_dataset("digits", root, split="test")
    return root / "test"


def test_onnx_predictor_never_imports_torch(exported: tuple[Path, Path], pngs: Path) -> None:
    model = exported[1] / "model.onnx"
    image = sorted((pngs / "7").iterdir())[0]
    code = f"""
import sys
from zoo.runtime.onnx_predictor import OnnxPredictor
predictor = OnnxPredictor({str(model)!r})
top = predictor.top_k(predictor.predict([{str(image)!r}]), 1)[0][0]
from zoo.cli import app
app(["predict", {str(model)!r}, {str(image)!r}, "--json"], standalone_mode=False)
assert "torch" not in sys.modules, "torch was imported"
print("top", top[0])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "top 7"
    assert json.loads(out.stdout.splitlines()[0])["top"][0]["class"] == "7"


def test_runtime_top1_equals_pytorch_on_every_test_image(exported: tuple[Path, Path]) -> None:
    """Training's own eval loader + the PyTorch model vs the runtime on the decoded images."""
    import torch

    from exporters.predictor import TorchScriptPredictor
    from exporters.validate import split_images
    from zoo.data import load_splits, make_eval_loader
    from zoo.run import load_model, read_json

    run, out = exported
    model, config = load_model(run)
    splits = load_splits("digits", split_record=read_json(run / "split.json", "split record"))
    loader = make_eval_loader(splits.test, config["preprocessing"], workers=0)
    with torch.inference_mode():
        torch_top1 = torch.cat([model(x).argmax(1) for x, _ in loader]).numpy()
    test = split_images(run, config, ("test",), None)
    assert len(test.images) == len(torch_top1) == 359
    for predictor in (OnnxPredictor(out / "model.onnx"), TorchScriptPredictor(out / "model.pt")):
        runtime_top1 = predictor.predict(test.images, batch_size=16).argmax(1)
        assert np.array_equal(runtime_top1, torch_top1), type(predictor).__name__
    assert (torch_top1 == np.asarray(test.labels)).mean() > 0.8  # a trained model, not noise


def test_predict_api_is_batch_independent(exported: tuple[Path, Path], pngs: Path) -> None:
    predictor = OnnxPredictor(exported[1] / "model.onnx", threads=1)
    files = expand_inputs([pngs])[::40]
    assert predictor.classes == [str(i) for i in range(10)]
    assert predictor.preprocessing["crop"] == 32 and predictor.metadata["arch"] == "simple_cnn_bn"
    by_path = predictor.predict(files, batch_size=1)
    by_image = predictor.predict([Image.open(f) for f in files], batch_size=7)
    assert by_path.shape == (len(files), 10) and np.allclose(by_path.sum(1), 1, atol=1e-5)
    assert np.allclose(by_path, by_image, atol=1e-6)
    top = predictor.top_k(by_path, 3)
    assert all(len(t) == 3 and t[0][1] >= t[1][1] >= t[2][1] for t in top)
    labels = [f.parent.name for f in files]
    assert np.mean([t[0][0] == y for t, y in zip(top, labels, strict=True)]) > 0.8


def bad_files(folder: Path, good: Path) -> dict[str, Path]:
    folder.mkdir(exist_ok=True)
    truncated = folder / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:40])
    text = folder / "notes.png"
    text.write_text("not an image")
    rgba = folder / "rgba.png"
    Image.open(good).convert("RGBA").save(rgba)  # wrong channel count: converted, not an error
    return {"truncated": truncated, "text": text, "missing": folder / "missing.png", "rgba": rgba}


def test_predict_files_goes_on_after_bad_images(
    exported: tuple[Path, Path], pngs: Path, tmp_path: Path
) -> None:
    good = sorted((pngs / "3").iterdir())[:2]
    bad = bad_files(tmp_path, good[0])
    order = [good[0], bad["truncated"], bad["missing"], bad["rgba"], bad["text"], good[1]]
    results = list(OnnxPredictor(exported[1] / "model.onnx").predict_files(order, top_k=2, batch_size=2))
    kinds = [type(r) for r in results]
    assert kinds == [Prediction, ImageError, ImageError, Prediction, ImageError, Prediction]
    assert results[0].top[0][0] == results[3].top[0][0] == "3"
    assert str(bad["truncated"]) in str(results[1]) and "no such file" in str(results[2])


def test_cli_predict_table_json_and_bad_files(
    exported: tuple[Path, Path], pngs: Path, tmp_path: Path
) -> None:
    model = str(exported[1] / "model.int8.onnx")
    folder = str(pngs / "5")
    table = runner.invoke(app, ["predict", model, folder, "--top-k", "2", "--threads", "1"])
    assert table.exit_code == 0, table.output
    assert "top-2" in table.stdout and "5 (" in table.stdout
    good = sorted((pngs / "5").iterdir())[0]
    bad = bad_files(tmp_path, good)
    result = runner.invoke(app, ["predict", model, str(good), str(bad["truncated"]), str(bad["missing"]),
                                 str(bad["text"]), "--json"])
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["image"] for line in lines] == [str(good)] and len(lines[0]["top"]) == 3
    errors = result.stderr.splitlines()
    assert len(errors) == 4 and all(e.startswith("error: ") for e in errors)
    assert str(bad["truncated"]) in errors[0] and "no such file" in errors[1]
    assert str(bad["text"]) in errors[2]
    assert errors[3] == "error: 3 of 4 image(s) could not be read"


def test_cli_predict_torchscript_agrees_with_onnx(exported: tuple[Path, Path], pngs: Path) -> None:
    files = [str(p) for p in expand_inputs([pngs])[::60]]
    onnx_out = runner.invoke(app, ["predict", str(exported[1] / "model.onnx"), *files, "--json", "-k", "1"])
    ts_out = runner.invoke(app, ["predict", str(exported[1] / "model.pt"), *files, "--json", "-k", "1"])
    assert onnx_out.exit_code == ts_out.exit_code == 0
    tops = [[json.loads(ln)["top"][0]["class"] for ln in r.stdout.splitlines()] for r in (onnx_out, ts_out)]
    assert tops[0] == tops[1] and len(tops[0]) == len(files)


def test_cli_predict_bad_models(exported: tuple[Path, Path], pngs: Path, tmp_path: Path) -> None:
    image = str(sorted((pngs / "1").iterdir())[0])
    fake = tmp_path / "fake.onnx"
    fake.write_text("this is not a protobuf")
    bare = tmp_path / "bare.onnx"
    plain = onnx.load(str(exported[1] / "model.onnx"))
    del plain.metadata_props[:]
    onnx.save(plain, str(bare))
    broken_pt = tmp_path / "broken.pt"
    broken_pt.write_bytes(b"PK\x03\x04 nope")
    cases = [
        (fake, 2, "not a loadable ONNX model"),  # bad input files exit 2, like missing ones
        (bare, 2, "not a zoo predictor (no 'classes' in its metadata"),
        (exported[0] / "config.json", 2, "unknown model format"),
        (tmp_path / "missing.onnx", 2, "no such model file"),
        (broken_pt, 2, "not a zoo TorchScript predictor"),
    ]
    for model, code, message in cases:
        result = runner.invoke(app, ["predict", str(model), image])
        assert result.exit_code == code, (model, result.output)
        assert result.stderr.startswith(f"error: {model}: ") and message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["predict", str(exported[1] / "model.onnx"), str(empty)])
    assert result.exit_code == 2 and "no images found" in result.stderr


def test_predictor_rejects_bad_batch_size(exported: tuple[Path, Path], pngs: Path) -> None:
    predictor = OnnxPredictor(exported[1] / "model.onnx")
    with pytest.raises(ZooError, match="batch size"):
        predictor.predict(expand_inputs([pngs / "0"]), batch_size=0)
