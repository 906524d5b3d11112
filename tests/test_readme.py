"""The README's tour, run as written in an empty folder (issue 13: its first command printed nothing).

Each command must succeed and show what its comment says. Only the schedule and the timing repeats
are shortened for CI time (``--epochs``, ``--repeats``, ``--batch-size``, ``--image-size`` on bench).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zoo.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"
FASTER = {"train": ["--epochs", "2"], "bench": ["--repeats", "2", "--batch-size", "1", "--image-size", "64"]}


def tour() -> list[list[str]]:
    """The command lines of the README's "A tour" block, comments dropped."""
    text = README.read_text()
    block = re.search(r"## A tour\n+```\n(.*?)```", text, re.S)
    assert block, "README has no '## A tour' code block"
    return [shlex.split(line, comments=True) for line in block.group(1).splitlines() if line.strip()]


@pytest.mark.slow
def test_the_tour_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    runner = CliRunner()
    shown: dict[str, str] = {}
    for argv in tour():
        assert argv[0] == "zoo"
        args = argv[1:] + FASTER.get(argv[1], [])
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (argv, result.output)
        assert "Traceback" not in result.output and result.stdout.strip(), argv
        shown[" ".join(argv[1:3])] = result.stdout
    run = tmp_path / "runs" / "vgg11_bn-1"
    se = [line for line in shown["list *resnet*"].splitlines() if line.startswith("│")]
    assert len(se) == 3 and all("se_resnet" in line for line in se)
    assert "parameters 11,689,512" in shown["info resnet18"]
    assert "digits" in shown["data list"] and "zoo.vgg" in shown["plugins"]
    assert (run / "best.pt").is_file() and (run / "eval.json").is_file()
    assert {p.name for p in (run / "export").iterdir()} >= {"model.onnx", "model.pt", "model.int8.onnx"}
    assert shown["predict runs/vgg11_bn-1/export/model.int8.onnx"].count("imagefolder/test/3/") >= 30
    assert all(b in shown["bench resnet18"] for b in ("onnxruntime-int8", "mobilenet_v2"))
