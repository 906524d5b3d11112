"""zoo train on the device pipeline: replayable batches, both pipelines, the speed figures, CUDA
defaults, --compile, and the device errors (no GPU, fp16 on CPU, out of GPU memory)."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import zoo
from zoo.cli import app
from zoo.training.config import FAMILY_DEFAULTS, TrainConfig, family_defaults, resolve_options, scaled_lr
from zoo.tuning.space import default_space

TINY = {"image_size": 16, "workers": 0, "quiet": True}


pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def rows(run_dir: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run_dir / "metrics.csv").open()))


def test_resume_replays_the_batches_it_would_have_seen(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Two epochs straight, or Ctrl-C after the first and a resume: the second epoch is the same epoch
    (same batches, same augmentation draws), so its losses agree to the last digit."""
    from zoo.training.loop import TrainingInterrupted
    from zoo.training.report import Reporter

    straight = zoo.train("simple_cnn_bn", "digits", out=tmp_path / "a", epochs=2, **TINY).run_dir
    end_epoch = Reporter.end_epoch

    def interrupt_after_epoch_1(self: Reporter, row: dict, *args: object) -> None:
        end_epoch(self, row, *args)
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(Reporter, "end_epoch", interrupt_after_epoch_1)
    with pytest.raises(TrainingInterrupted):
        zoo.train("simple_cnn_bn", "digits", out=tmp_path / "b", epochs=2, **TINY)
    zoo.train("simple_cnn_bn", resume=tmp_path / "b", quiet=True)
    a, b = rows(straight), rows(tmp_path / "b")
    assert len(a) == len(b) == 2
    for key in ("train_loss", "train_top1", "val_loss"):
        assert a[1][key] == b[1][key]


@pytest.mark.parametrize("pipeline", ["batched", "pil"])
def test_both_pipelines_train_and_report_loader_speed(tmp_path: Path, pipeline: str) -> None:
    result = invoke("train", "simple_cnn_bn", "--data", "digits", "--epochs", "2", "--image-size", "16",
                    "--workers", "0" if pipeline == "batched" else "1", "--pipeline", pipeline,
                    "--out", tmp_path / "r", "--json", "--quiet")
    assert result.exit_code == 0, result.output
    speed = json.loads(result.stdout)["speed"]
    assert speed["pipeline"] == pipeline and speed["data_on_device"] == (pipeline == "batched")
    assert len(speed["img_per_s"]) == len(speed["loader_img_per_s"]) == len(speed["model_img_per_s"]) == 2
    for total, loader, model in zip(speed["img_per_s"], speed["loader_img_per_s"], speed["model_img_per_s"],
                                    strict=True):
        # the two parts add up: 1/total = 1/loader + 1/model (loader and model time split the epoch)
        assert 1 / total == pytest.approx(1 / loader + 1 / model, rel=1e-6)
    written = rows(tmp_path / "r")
    assert float(written[0]["loader_img_per_s"]) == pytest.approx(speed["loader_img_per_s"][0])
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["runtime"]["pipeline"] == pipeline and config["train"]["pipeline"] == pipeline


def test_progress_line_shows_loader_and_model_speed(tmp_path: Path) -> None:
    result = invoke("train", "simple_cnn_bn", "--data", "digits", "--epochs", "1", "--image-size", "16",
                    "--workers", "0", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert "batched pipeline, data on the device" in result.stderr
    line = next(x for x in result.stderr.splitlines() if x.startswith("epoch   1/1"))
    assert " img/s (loader " in line and ", model " in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pipeline", "gpu"], "error: --pipeline must be one of auto, batched, pil, got 'gpu'"),
        (["--precision", "fp16", "--device", "cpu"], "error: --precision fp16 needs --device cuda"),
        pytest.param(["--device", "cuda"], "error: --device cuda: no CUDA device is available",
                     marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")),
    ],
)
def test_device_errors_are_one_line_and_write_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke("train", "simple_cnn_bn", "--data", "digits", "--runs-dir", tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output and list(tmp_path.iterdir()) == []


def _oom_after(monkeypatch: pytest.MonkeyPatch, steps: int) -> None:
    """The training step runs out of GPU memory after ``steps`` good steps (as CUDA would say)."""
    import zoo.training.loop as loop

    real, calls = loop._step, {"n": 0}

    def step(*args: object) -> None:
        calls["n"] += 1
        if calls["n"] > steps:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; ...)")
        real(*args)

    monkeypatch.setattr(loop, "_step", step)


def test_out_of_memory_at_the_start_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _oom_after(monkeypatch, 0)
    runs = tmp_path / "runs"
    result = invoke("train", "simple_cnn_bn", "--data", "digits", "--runs-dir", runs, "--workers", "0", "-q")
    assert result.exit_code == 2, result.output
    assert result.stderr == ("error: out of GPU memory at batch size 64 before the first epoch completed; "
                             "try --batch-size 32 (nothing was kept)\n")
    assert list(runs.iterdir()) == []
    empty = tmp_path / "given"
    empty.mkdir()
    result = invoke("train", "simple_cnn_bn", "--data", "digits", "--out", empty, "--workers", "0", "-q")
    assert result.exit_code == 2 and empty.is_dir() and list(empty.iterdir()) == []


def test_out_of_memory_later_leaves_a_resumable_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _oom_after(monkeypatch, 17)  # digits: 1,151 training images are 17 full batches of 64
    out = tmp_path / "r"
    result = invoke("train", "simple_cnn_bn", "--data", "digits", "--out", out, "--epochs", "3",
                    "--image-size", "16", "--workers", "0", "--quiet")
    assert result.exit_code == 2, result.output
    assert f"in epoch 2; {out}/last.pt holds epoch 1" in result.stderr
    assert f"zoo train simple_cnn_bn --resume {out}" in result.stderr and result.stderr.count("\n") == 1
    monkeypatch.undo()
    assert invoke("train", "simple_cnn_bn", "--resume", out, "--quiet").exit_code == 0
    assert [int(r["epoch"]) for r in rows(out)] == [1, 2, 3]


def test_cuda_defaults_scale_batch_and_lr() -> None:
    resnet, simple = family_defaults("resnet"), family_defaults("simple")
    cpu = resolve_options(TrainConfig(), resnet, 48_000, device="cpu", image_size=32)
    assert (cpu.batch_size, cpu.lr, cpu.channels_last) == (64, 0.1, False)  # CPU defaults unchanged
    gpu = resolve_options(TrainConfig(), resnet, 48_000, device="cuda", image_size=32)
    assert gpu.batch_size == 512 and gpu.lr == pytest.approx(0.1 * math.sqrt(8)) and gpu.channels_last
    assert resolve_options(TrainConfig(), simple, 9_000, device="cuda", image_size=224).batch_size == 128
    given = resolve_options(TrainConfig(batch_size=256, lr=0.05), resnet, 48_000, device="cuda")
    assert (given.batch_size, given.lr) == (256, 0.05)  # what the user sets stays
    assert resolve_options(TrainConfig(batch_size=16), simple, 900).lr == pytest.approx(3e-3 / 2)
    assert scaled_lr(0.1, 64, 64) == 0.1


def test_vgg_without_batchnorm_has_its_own_defaults() -> None:
    plain, bn = zoo.get_spec("vgg16"), zoo.get_spec("vgg16_bn")
    assert family_defaults(plain.family, plain.tags) == FAMILY_DEFAULTS["vgg-plain"]
    assert family_defaults(bn.family, bn.tags) == FAMILY_DEFAULTS["vgg"]
    assert FAMILY_DEFAULTS["vgg-plain"].optimizer == "adamw"


def test_batchnorm_vgg_with_torchvisions_head_takes_a_lower_lr() -> None:
    """Above 64 px a VGG keeps its 25088-wide head, which SGD at the small head's 0.05 blows up."""
    bn, plain = zoo.get_spec("vgg16_bn"), zoo.get_spec("vgg16")
    assert family_defaults(bn.family, bn.tags, 64) == FAMILY_DEFAULTS["vgg"]
    assert family_defaults(bn.family, bn.tags, 65) == FAMILY_DEFAULTS["vgg-imagenet-head"]
    assert FAMILY_DEFAULTS["vgg-imagenet-head"].lr < FAMILY_DEFAULTS["vgg"].lr / 5
    assert family_defaults(plain.family, plain.tags, 224) == FAMILY_DEFAULTS["vgg-plain"]
    assert "lr=0.0005..0.015:log" in default_space(bn, 224)


def test_configure_device_is_a_no_op_on_cpu() -> None:
    from zoo.training.device import configure_device

    before = torch.backends.cudnn.benchmark
    configure_device("cpu")()
    assert torch.backends.cudnn.benchmark == before


@pytest.mark.slow
def test_compile_trains(tmp_path: Path) -> None:
    from zoo.errors import ZooUsageError
    from zoo.training.device import check_compile

    try:
        check_compile("cpu")
    except ZooUsageError as exc:
        pytest.skip(str(exc))
    run = zoo.train("simple_cnn_bn", "digits", out=tmp_path / "c", epochs=1, compile=True, **TINY)
    assert run.config["train"]["compile"] and 0 <= run.result["test"]["top1"] <= 1


@pytest.mark.slow
def test_compile_without_a_compiler_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "CXX": str(tmp_path / "no-such-c++"), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path)}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "zoo"), "train", "simple_cnn_bn", "--data", "digits", "--compile",
         "--device", "cpu", "--runs-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: --compile: torch.compile does not work on cpu here (")
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "runs").exists()
