"""``zoo train --activation-stats``: real training on digits, healthy and deliberately badly initialised."""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import zoo
from zoo.cli import app
from zoo.models.simple_cnn import simple_cnn
from zoo.plugins import get_host, reset_host
from zoo.registry import ArchSpec
from zoo.training.activations import HIST_BINS, HIST_COLUMNS, Record, diagnose, tensor_stats

FAST = {"image_size": 16, "workers": 0, "threads": 1, "quiet": True, "epochs": 2}
# zoo info's rows that own parameters
ROWS = ["features.0.0", "features.1.0", "features.2.0", "classifier.0", "classifier.3"]


def scaled_cnn(scale: float):
    """simple_cnn (no BatchNorm to undo the damage) with every weight matrix multiplied by ``scale``."""

    def build(num_classes: int = 10, in_channels: int = 1) -> torch.nn.Module:
        model = simple_cnn(num_classes, in_channels)
        with torch.no_grad():
            for p in model.parameters():
                if p.ndim > 1:
                    p.mul_(scale)
        return model

    return build


@pytest.fixture(scope="module", autouse=True)
def scaled_archs() -> Iterator[None]:
    """Two badly initialised networks, registered like a plugin's (for this module only)."""
    zoo.list_models()
    registry = get_host().architectures
    names = {"cnn_x0_01": 0.01, "cnn_x10": 10.0, "cnn_x1": 1.0}
    for name, scale in names.items():
        registry.register(ArchSpec(name, "simple", scaled_cnn(scale), tags=("small",), image_size=32,
                                   min_image_size=8, in_channels=1, num_classes=10), owner="test")
    yield
    reset_host()  # the next registry access loads the real plugins again


def train(arch: str, out: Path, **options: object) -> tuple[dict, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = zoo.train(arch, "digits", out=out, activation_stats=True, activation_every=5,
                        **{**FAST, **options})
    return run.result, [str(w.message) for w in caught if "activation stats" in str(w.message)]


def rows(run_dir: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run_dir / "activations.csv").open()))


def test_healthy_network_records_every_row_and_does_not_warn(tmp_path: Path) -> None:
    result, warned = train("cnn_x1", tmp_path / "run", optimizer="sgd")
    assert warned == []
    assert result["activation_stats"]["unhealthy"] == []
    table = rows(tmp_path / "run")
    steps_per_epoch = 1150 // 64  # 1,438 training scans, 20% held out for val, drop_last
    steps = sorted({int(r["step"]) for r in table})
    assert steps == list(range(1, 2 * steps_per_epoch + 1, 5))  # step 1 (the initial state), then every 5th
    assert [r["layer"] for r in table[: len(ROWS)]] == ROWS
    assert {int(r["epoch"]) for r in table} == {1, 2}
    for r in table:
        hist = [float(r[c]) for c in HIST_COLUMNS]
        assert sum(hist) == pytest.approx(1.0, abs=1e-4)
        assert 0.0 <= float(r["near_zero"]) <= 1.0 and float(r["std"]) > 0
    assert (tmp_path / "run" / "activations.png").read_bytes()[:4] == b"\x89PNG"
    assert 0 < result["activation_stats"]["overhead"] < 1  # measured, not asserted as a timing bound


def test_weights_x0_01_collapse_and_warn_from_epoch_1(tmp_path: Path) -> None:
    result, warned = train("cnn_x0_01", tmp_path / "run", optimizer="sgd")
    unhealthy = {f["layer"]: f for f in result["activation_stats"]["unhealthy"]}
    assert {"features.1.0", "features.2.0"} <= set(unhealthy)
    assert all(f["problem"] == "collapsed" and f["since_epoch"] == 1 for f in unhealthy.values())
    (message,) = warned
    assert "features.1.0 (Conv2d) std collapsed" in message and "since epoch 1" in message


def test_weights_x10_explode_and_warn(tmp_path: Path) -> None:
    result, warned = train("cnn_x10", tmp_path / "run", optimizer="adamw", epochs=2)
    problems = {f["layer"]: f["problem"] for f in result["activation_stats"]["unhealthy"]}
    assert problems.get("classifier.3") == "exploded"
    assert len(warned) == 1 and "classifier.3 (Linear) std exploded" in warned[0]


def test_off_writes_nothing_and_adds_no_hooks(tmp_path: Path) -> None:
    run = zoo.train("cnn_x1", "digits", out=tmp_path / "run", **{**FAST, "epochs": 1})
    assert not (tmp_path / "run" / "activations.csv").exists()
    assert "activation_stats" not in run.result
    model = run.load_model()
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_resume_continues_the_csv_without_gaps(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train("cnn_x1", out, epochs=1)
    first = rows(out)
    zoo.train("cnn_x1", resume=out, epochs=2, quiet=True)
    table = rows(out)
    assert table[: len(first)] == first
    steps = [int(r["step"]) for r in table[:: len(ROWS)]]
    assert steps == sorted(set(steps)) and {int(r["epoch"]) for r in table} == {1, 2}
    assert max(steps) > 1150 // 64


def test_cli_flag_and_compile_conflict(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "cnn_x1", "--data", "digits", "--epochs", "1", "--image-size", "16",
                                 "--workers", "0", "--activation-stats", "--activation-every", "3",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "activations at step" in result.stderr  # the zoo info-style table
    assert json.loads((out / "config.json").read_text())["train"]["activation_every"] == 3
    bad = tmp_path / "bad"
    result = runner.invoke(app, ["train", "cnn_x1", "--data", "digits", "--activation-stats", "--compile",
                                 "--out", str(bad)])
    assert result.exit_code == 2 and "--activation-stats cannot be combined with --compile" in result.stderr
    assert not bad.exists()


def test_tensor_stats_on_known_values() -> None:
    mean, std, near, hist = tensor_stats(torch.tensor([0.0, 0.0, 1e-5, 1.0, -1.0, 10.0]))
    assert mean == pytest.approx(10.00001 / 6)
    assert std == pytest.approx(float(torch.tensor([0.0, 0.0, 1e-5, 1.0, -1.0, 10.0]).std()))
    assert near == pytest.approx(3 / 6)  # the two zeros and 1e-5
    assert len(hist) == HIST_BINS and sum(hist) == pytest.approx(1.0)
    assert hist[0] == pytest.approx(2 / 6)  # zeros fall into the lowest bin (log10|x| <= -7)
    assert hist[8] == pytest.approx(1 / 6)  # 1e-5: log10 = -5, bin (-5 + 7) / 0.25 = 8
    assert hist[28] == pytest.approx(2 / 6)  # +-1: log10 = 0
    assert hist[32] == pytest.approx(1 / 6)  # 10: log10 = 1


def test_diagnose_names_the_epoch_the_final_streak_began() -> None:
    def rec(step: int, epoch: int, std: float, near: float = 0.5) -> Record:
        return Record(step, epoch, "a", "Conv2d", 0.0, std, near, [1.0] + [0.0] * (HIST_BINS - 1))

    records = [rec(1, 1, 1e-5), rec(2, 2, 0.5), rec(3, 3, 1e-5), rec(4, 4, 1e-6)]
    (finding,) = diagnose(records)
    assert (finding.problem, finding.since_epoch) == ("collapsed", 3)
    assert diagnose([rec(1, 1, 1e-5), rec(2, 2, 0.5)]) == []  # recovered: healthy at the end
    (dead,) = diagnose([rec(1, 1, 0.5, near=0.99)])
    assert dead.problem == "dead"
