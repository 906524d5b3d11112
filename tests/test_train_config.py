"""``zoo train --config FILE``: a JSON of zoo.train's arguments (zoo tune's best.json), flags override it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import zoo
from zoo.cli import app
from zoo.errors import ZooUsageError
from zoo.models.blocks import SqueezeExcite
from zoo.run import load_model


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def write(path: Path, data: object) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_config_file_with_flags_overriding_it(tmp_path: Path) -> None:
    config = write(tmp_path / "best.json", {
        "arch": "simple_cnn", "data": "digits", "epochs": 3, "lr": 0.005, "image_size": 16, "workers": 0,
        "threads": 1, "augment": "none", "model_kwargs": {"se": True}, "mixup": None,
    })
    out = tmp_path / "run"
    result = invoke("train", "--config", config, "--epochs", "1", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    stored = json.loads((out / "config.json").read_text())
    assert stored["arch"] == "simple_cnn" and stored["data"]["source"] == "digits"
    assert stored["train"]["epochs"] == 1  # the flag wins
    assert stored["train"]["lr"] == 0.005 and stored["train"]["augment"] == "none"  # the file's
    assert stored["model_kwargs"] == {"se": True}
    model, _ = load_model(out)
    assert any(isinstance(m, SqueezeExcite) for m in model.modules())  # the builder option took effect
    with pytest.raises(ZooUsageError, match="model options cannot change on --resume"):
        zoo.train("simple_cnn", resume=out, model_kwargs={"se": False})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"arch": "simple_cnn", "data": "digits", "lrr": 0.1}, "unknown key(s) 'lrr'; allowed: arch, data"),
        ("{not json", "not a JSON file"),
        ([1, 2], "expected a JSON object"),
        ({"data": "digits"}, 'no "arch" in the file'),
        ({"arch": "simple_cnn", "data": "digits", "epochs": 0}, "--epochs must be a positive integer"),
        ({"arch": "resnet20", "data": "digits", "model_kwargs": {"width_mult": 0.5}}, "does not take"),
        ({"arch": "resnet20", "data": "digits", "model_kwargs": [1]}, "model_kwargs must be a mapping"),
    ],
)
def test_bad_config_files_are_one_line_and_write_nothing(
    tmp_path: Path, content: object, message: str
) -> None:
    config = write(tmp_path / "c.json", content if isinstance(content, str) else json.dumps(content))
    out = tmp_path / "run"
    result = invoke("train", "--config", config, "--out", out, "--image-size", "16")
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_missing_config_file_and_missing_arch(tmp_path: Path) -> None:
    result = invoke("train", "--config", tmp_path / "nope.json")
    assert result.exit_code == 2 and "no such file" in result.stderr
    result = invoke("train", "--data", "digits")
    assert result.exit_code == 2 and "missing ARCH" in result.stderr
