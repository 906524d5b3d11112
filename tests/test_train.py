"""zoo train, zoo eval and zoo lr-find on the built-in ``digits`` scans: tiny images, few epochs."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import zoo
from zoo.cli import app
from zoo.run import load_model
from zoo.runtime.preprocess import preprocess
from zoo.training.checkpoint import rng_state, set_rng_state
from zoo.training.metrics import Meter

FAST = ["--image-size", "16", "--workers", "0", "--quiet"]
RUN_FILES = {
    "config.json",
    "classes.json",
    "split.json",
    "metrics.csv",
    "best.pt",
    "last.pt",
    "curves.png",
    "confusion.png",
    "skipped.txt",
    "results.json",
}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "cnn"
    zoo.train("simple_cnn_bn", "digits", out=out, epochs=2, image_size=16, workers=0, quiet=True)
    return out


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def snapshot(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def digits_split(run: Path, name: str):
    from zoo.data import load_splits

    return getattr(load_splits("digits", split_record=json.loads((run / "split.json").read_text())), name)


def test_run_directory_has_everything(run_dir: Path) -> None:
    assert {p.name for p in run_dir.iterdir()} >= RUN_FILES
    config = json.loads((run_dir / "config.json").read_text())
    assert config["arch"] == "simple_cnn_bn"
    assert config["num_classes"] == 10 and config["in_channels"] == 1  # digits are grayscale
    assert (
        config["classes"] == [str(i) for i in range(10)] == json.loads((run_dir / "classes.json").read_text())
    )
    assert config["preprocessing"]["crop"] == 16 and config["preprocessing"]["channels"] == 1
    assert config["data"]["source"] == "digits" and config["split_file"] == "split.json"
    assert config["train"]["epochs"] == 2 and config["train"]["optimizer"] == "adamw"
    assert config["zoo_version"] == zoo.__version__
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(0 <= float(r["val_top1"]) <= 1 and float(r["img_per_s"]) > 0 for r in rows)
    assert (run_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_checkpoints_load_with_weights_only(run_dir: Path) -> None:
    for name in ("best", "last"):
        model, _ = load_model(run_dir, name)
        assert model(torch.zeros(2, 1, 16, 16)).shape == (2, 10)
    last = torch.load(run_dir / "last.pt", weights_only=True)
    assert last["loop"]["epoch"] == 2 and {"optimizer", "scheduler", "rng", "model"} <= set(last)
    best = torch.load(run_dir / "best.pt", weights_only=True)
    assert best["epoch"] == last["loop"]["best_epoch"]


def test_eval_json_equals_recomputation(run_dir: Path) -> None:
    result = invoke("eval", run_dir, "--json")
    assert result.exit_code == 0, result.output
    reported = json.loads(result.stdout)
    assert reported == json.loads((run_dir / "eval.json").read_text())
    assert reported["split"] == "test"
    test = digits_split(run_dir, "test")
    model, config = load_model(run_dir)
    batch = np.stack([preprocess(Image.fromarray(img), config["preprocessing"]) for img in test.images])
    with torch.no_grad():
        logits = model(torch.from_numpy(batch))
    predicted = logits.argmax(1).numpy()
    labels = np.asarray(test.labels)
    assert reported["n"] == len(labels)
    assert reported["top1"] == pytest.approx(float((predicted == labels).mean()))
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels))
    assert reported["loss"] == pytest.approx(float(loss), rel=1e-4)
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    assert reported["confusion"] == confusion.tolist()


def test_eval_on_a_folder_of_class_folders(run_dir: Path, tmp_path: Path) -> None:
    test = digits_split(run_dir, "test")
    for i, (img, label) in enumerate(zip(test.images, test.labels, strict=True)):
        (tmp_path / str(label)).mkdir(exist_ok=True)
        Image.fromarray(img).save(tmp_path / str(label) / f"{i}.png")
    folder = zoo.evaluate(run_dir, tmp_path)
    own = zoo.evaluate(run_dir)
    assert folder["split"] == "all" and folder["n"] == own["n"]
    assert folder["top1"] == pytest.approx(own["top1"]) and folder["confusion"] == own["confusion"]


def test_resume_continues_from_the_next_epoch(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "resumed"
    shutil.copytree(run_dir, copy)
    before = list(csv.DictReader((copy / "metrics.csv").open()))
    result = invoke("train", "simple_cnn_bn", "--resume", copy, "--epochs", "3", "--quiet")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((copy / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert rows[:2] == before
    assert torch.load(copy / "last.pt", weights_only=True)["loop"]["epoch"] == 3
    assert json.loads((copy / "split.json").read_text()) == json.loads((run_dir / "split.json").read_text())
    assert json.loads((copy / "config.json").read_text())["train"]["epochs"] == 3


def test_failing_commands_leave_an_existing_run_untouched(run_dir: Path, tmp_path: Path) -> None:
    classes3 = tmp_path / "three"
    for label in range(3):
        (classes3 / str(label)).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), 40 * i + label, np.uint8)).save(
                classes3 / str(label) / f"{i}.png"
            )
    before = snapshot(run_dir)
    cases = [
        (["train", "simple_cnn_bn", "--data", "digits", "--out", run_dir], "not empty"),
        (["train", "resnet20", "--resume", run_dir], "trained 'simple_cnn_bn', not 'resnet20'"),
        (["train", "simple_cnn_bn", "--resume", run_dir, "--data", classes3], "classes do not match"),
        (["train", "simple_cnn_bn", "--resume", run_dir, "--lr", "0.5"], "cannot change on --resume"),
        (["train", "simple_cnn_bn", "--resume", run_dir, "--epochs", "-3"], "--epochs must be a positive"),
        (["eval", run_dir, "--data", classes3], "class"),
    ]
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.output
    assert snapshot(run_dir) == before


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--epochs", "-1"),
        ("--epochs", "0"),
        ("--batch-size", "0"),
        ("--lr", "0"),
        ("--lr", "-0.1"),
        ("--lr", "inf"),
        ("--weight-decay", "-1"),
        ("--val-split", "1.5"),
        ("--label-smoothing", "1"),
        ("--patience", "-2"),
        ("--optimizer", "lbfgs"),
        ("--scheduler", "linear"),
        ("--in-channels", "2"),
    ],
)
def test_bad_numbers_exit_2_and_write_nothing(tmp_path: Path, option: str, value: str) -> None:
    result = invoke("train", "simple_cnn_bn", "--data", "digits", "--runs-dir", tmp_path, option, value)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and option in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_unknown_arch_and_missing_data(tmp_path: Path) -> None:
    result = invoke("train", "resnt20", "--data", "digits", "--runs-dir", tmp_path)
    assert result.exit_code == 2 and "did you mean resnet20" in result.stderr
    result = invoke("train", "resnet20", "--data", tmp_path / "nope", "--runs-dir", tmp_path)
    assert result.exit_code == 2 and "nope" in result.stderr
    result = invoke("train", "resnet20", "--runs-dir", tmp_path)
    assert result.exit_code == 2 and "--data is required" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_training_learns_digits(tmp_path: Path) -> None:
    result = invoke(
        "train", "simple_cnn_bn", "--data", "digits", "--epochs", "8", "--runs-dir", tmp_path, "--json", *FAST
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["test"]["top1"] > 0.8, summary["test"]
    assert summary["test"]["top5"] > 0.95
    assert Path(summary["run_dir"]).parent == tmp_path and Path(summary["run_dir"]).name == "simple_cnn_bn-1"


def test_ctrl_c_saves_last_and_resume_continues(tmp_path: Path) -> None:
    out = tmp_path / "interrupted"
    cmd = [
        str(Path(sys.executable).parent / "zoo"),
        "train",
        "simple_cnn_bn",
        "--data",
        "digits",
        "--epochs",
        "30",
        "--patience",
        "0",
        "--out",
        str(out),
        *FAST,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # preexec: a background job's children ignore SIGINT; Ctrl-C must reach this one
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (out / "metrics.csv").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and f"--resume {out}" in stderr and "Traceback" not in stderr
    done = torch.load(out / "last.pt", weights_only=True)["loop"]["epoch"]
    assert done >= 1
    assert len(list(csv.DictReader((out / "metrics.csv").open()))) == done
    result = invoke("train", "simple_cnn_bn", "--resume", out, "--epochs", str(done + 1), "--quiet")
    assert result.exit_code == 0, result.output
    assert torch.load(out / "last.pt", weights_only=True)["loop"]["epoch"] == done + 1


def test_lr_find_suggests_and_plots(tmp_path: Path) -> None:
    plot = tmp_path / "lr.png"
    result = invoke(
        "lr-find",
        "simple_cnn_bn",
        "--data",
        "digits",
        "--steps",
        "50",  # 30 steps leave two or three between "too low" and "diverging": the dip can be missed
        "--image-size",
        "16",
        "--workers",
        "0",
        "--plot",
        plot,
        "--json",
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert 1e-6 <= found["suggested"] < found["lowest_loss_lr"] <= 10
    assert len(found["lrs"]) == len(found["losses"]) >= 10
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_top_level_functions_survive_importing_the_package() -> None:
    import zoo.training as package

    assert zoo.train is package.train and zoo.evaluate is package.evaluate and callable(zoo.lr_find)


def test_meter_topk_and_confusion() -> None:
    meter = Meter(10, confusion=True)
    logits = torch.eye(10)[[0, 1, 2, 2]] + torch.arange(10) * 0.01  # predicts 0, 1, 2, 2
    meter.update(logits, torch.tensor([0, 1, 2, 3]), loss=1.0)
    assert meter.top1 == 0.75 and meter.top5 == 0.75  # class 3 is not in the top 5 (2, 9, 8, 7, 6)
    per_class = meter.per_class()
    assert per_class[:4] == [1.0, 1.0, 1.0, 0.0] and per_class[4] is None
    assert meter.confusion[3, 2] == 1
    assert Meter(5).top5 is None  # meaningless under 10 classes


def test_rng_state_round_trips_through_weights_only_load(tmp_path: Path) -> None:
    torch.save({"rng": rng_state()}, tmp_path / "r.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(torch.load(tmp_path / "r.pt", weights_only=True)["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2] == again[2]


@pytest.mark.parametrize(
    "options",
    [
        {"ema": True, "mixup": "mixup,cutmix", "scheduler": "cosine", "clip_grad": 1.0},
        {"optimizer": "sgd", "scheduler": "plateau", "augment": "light"},
        {"optimizer": "adam", "scheduler": "step", "in_channels": 3, "norm": "imagenet"},
    ],
)
def test_option_combinations_train_and_reload(tmp_path: Path, options: dict) -> None:
    run = zoo.train(
        "simple_cnn_bn",
        "digits",
        out=tmp_path / "r",
        epochs=1,
        image_size=16,
        workers=0,
        quiet=True,
        **options,
    )
    model, config = load_model(run.run_dir)
    channels = options.get("in_channels", 1)
    assert config["in_channels"] == channels == config["preprocessing"]["channels"]
    assert model(torch.zeros(1, channels, 16, 16)).shape == (1, 10)
    last = torch.load(run.run_dir / "last.pt", weights_only=True)
    if options.get("ema"):  # the evaluated weights are the EMA, the raw ones are kept for resume
        best = torch.load(run.run_dir / "best.pt", weights_only=True)
        for key, value in best["model"].items():
            assert torch.equal(value, last["ema"]["module"][key])
        assert any(not torch.equal(v, last["raw_model"][k]) for k, v in best["model"].items())
    assert 0 <= run.result["val"]["top1"] <= 1
