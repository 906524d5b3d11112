"""`zoo bench`: every backend runs the same model and reports sane figures (no timing asserts)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from zoo.bench import BACKENDS, bench, parse_backends
from zoo.cli import app
from zoo.errors import ZooUsageError

runner = CliRunner()


def test_all_backends_side_by_side() -> None:
    results, notes = bench(["resnet20"], backends=BACKENDS, batch_sizes=(1, 3), image_size=16,
                           threads=1, repeats=2, warmup=1)
    assert {r.backend for r in results} == set(BACKENDS) - {"torchvision"}
    assert any("torchvision has no 'resnet20'" in n for n in notes)
    assert {r.batch for r in results} == {1, 3}
    for r in results:
        assert r.p50_ms > 0 and r.p95_ms >= r.p50_ms and r.images_per_s > 0
        assert r.image_size == 16
    first = [r for r in results if r.backend == "torch"]
    assert all(r.speedup == 1.0 for r in first)


def test_cli_json_against_torchvision() -> None:
    result = runner.invoke(app, ["bench", "resnet18", "--backend", "torch,torchvision", "--batch-size", "2",
                                 "--image-size", "32", "--repeats", "2", "--warmup", "0", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["backend"] for r in rows] == ["torch", "torchvision"]
    assert all(r["batch"] == 2 and r["model"] == "resnet18" for r in rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simple_cnn", "--backend", "tensorrt"], "unknown backend 'tensorrt'"),
        (["simple_cnn", "--batch-size", "0"], "batch sizes must be positive"),
        (["simple_cnn", "--batch-size", "x"], "--batch-size takes comma-separated integers"),
        (["resnt18"], "did you mean resnet18"),
        (["resnet50", "--image-size", "8"], "too small for resnet50"),
    ],
)
def test_bad_input_is_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["bench", *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_parse_backends_dedupes() -> None:
    assert parse_backends("torch, onnxruntime,torch") == ["torch", "onnxruntime"]
    with pytest.raises(ZooUsageError):
        parse_backends(",")
