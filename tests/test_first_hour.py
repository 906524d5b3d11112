"""The product's own commands, exactly as a new user types them (issue 13).

In an empty directory holding only a class-folder tree called ``imagefolder``: ``zoo list``,
``zoo train vgg --data imagefolder``, ``zoo export --format onnx`` and ``zoo predict`` on what it wrote,
in that order, through the installed ``zoo`` command, with nothing else typed but a short schedule
(``--epochs 1``) for CI time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ZOO = str(Path(sys.executable).with_name("zoo"))
CLASSES = ("0", "1", "7")


def make_imagefolder(root: Path, per_class: int = 24) -> Path:
    """A small real class-folder tree: scikit-learn's digit scans as 8x8 PNGs."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for name in CLASSES:
        folder = root / "imagefolder" / name
        folder.mkdir(parents=True)
        picks = np.flatnonzero(digits.target == int(name))[:per_class]
        for i in picks:
            Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8)).save(folder / f"{i}.png")
    return root / "imagefolder"


def zoo_cmd(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80"}
    result = subprocess.run([ZOO, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.mark.slow
def test_the_four_commands_as_typed(tmp_path: Path) -> None:
    make_imagefolder(tmp_path)

    listed = zoo_cmd(tmp_path, "list")
    assert listed.returncode == 0, listed.stderr
    assert "vgg11_bn" in listed.stdout and "* the family's default member" in listed.stdout

    trained = zoo_cmd(tmp_path, "train", "vgg", "--data", "imagefolder", "--epochs", "1")
    assert trained.returncode == 0, trained.stderr
    assert "the vgg family's default member, vgg11_bn" in trained.stderr
    run = tmp_path / "runs" / "vgg11_bn-1"
    config = json.loads((run / "config.json").read_text())
    assert config["arch"] == "vgg11_bn" and config["model_kwargs"] == {"small_input": True}

    exported = zoo_cmd(tmp_path, "export", "--format", "onnx")
    assert exported.returncode == 0, exported.stderr
    assert f"exporting the most recent run, {Path('runs') / 'vgg11_bn-1'}" in exported.stderr
    assert (run / "export" / "model.onnx").is_file()

    predicted = zoo_cmd(tmp_path, "predict", "imagefolder/7", "--json")
    assert predicted.returncode == 0, predicted.stderr
    rows = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert len(rows) == 24 and all(r["top"][0]["class"] in CLASSES for r in rows)

    benched = zoo_cmd(tmp_path, "bench", "--backend", "torch", "--batch-size", "1", "--repeats", "2",
                      "--json")
    assert benched.returncode == 0, benched.stderr
    assert f"benchmarking the most recent run, {Path('runs') / 'vgg11_bn-1'}" in benched.stderr
    assert json.loads(benched.stdout.splitlines()[0])["model"] == "vgg11_bn (vgg11_bn-1)"


def test_commands_given_no_run_say_how_to_get_one(tmp_path: Path) -> None:
    for args in (("export", "--format", "onnx"), ("eval",), ("predict", "photo.png"), ("bench",)):
        result = zoo_cmd(tmp_path, *args)
        assert result.returncode == 2
        assert result.stderr.startswith("error: no trained run under runs/")
        assert "zoo train" in result.stderr and len(result.stderr.splitlines()) == 1


def test_quiet_training_prints_only_the_run_directory(tmp_path: Path) -> None:
    result = zoo_cmd(tmp_path, "train", "simple_cnn_bn", "--data", "digits", "--epochs", "1", "--quiet",
                     "--out", "run")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "run\n" and result.stderr == ""


def test_long_error_messages_end_at_a_sentence_or_word() -> None:
    from zoo.errors import error_head

    exc = RuntimeError("PytorchStreamReader failed reading zip archive: failed finding central directory. "
                       "This is an internal miniz error. If you are seeing this error, there is a high "
                       "likelihood that your checkpoint file is corrupted\nsecond line")
    assert error_head(exc, 120) == ("PytorchStreamReader failed reading zip archive: failed finding central "
                                    "directory. This is an internal miniz error.")
    assert error_head(RuntimeError("word " * 50), 23) == "word word word word..."
    assert error_head(RuntimeError("short\nmore")) == "short"
    assert error_head(RuntimeError("")) == "RuntimeError"


WAIT_POLICY_PROBE = """
import os, sys
from zoo.cli import main
sys.argv = ["zoo", "--version"]
try:
    main()
except SystemExit:
    pass
print(os.environ.get("OMP_WAIT_POLICY"), "torch" in sys.modules)
"""


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_cli_makes_openmp_threads_wait_passively_unless_told(given: str | None, expected: str) -> None:
    """Spinning OpenMP threads collapse on a shared machine (benchmarks/RESULTS.md, "Threads on a busy
    machine"): the CLI sets OMP_WAIT_POLICY before torch loads, and a user's own value wins."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run([sys.executable, "-c", WAIT_POLICY_PROBE], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split()[-2:] == [expected, "False"]  # set, and before torch was imported
