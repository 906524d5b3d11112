"""benchmarks/gpu_check.sh and its Python parts: the whole check runs on the CPU at tiny settings,
invoked the way the GPU machine runs zoo (from the source tree, ``python -c ... main()``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))

from gpu_table import report  # noqa: E402
from reference import crop_flip  # noqa: E402


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ZOO", "PYTHONPATH")}
    env["PATH"] = "/usr/bin:/bin"  # no `zoo` on PATH: the check must find zoo through $ZOO / $PYTHON
    env["PYTHON"] = sys.executable
    return {**env, **extra}


@pytest.mark.slow
def test_cpu_check_runs_every_step_and_writes_the_report(tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "report.md"
    zoo = f"{sys.executable} -c 'import sys; from zoo.cli import main; sys.argv[0] = \"zoo\"; main()'"
    proc = subprocess.run(["bash", str(SCRIPT), "--device", "cpu", "--threads", "1", "--workdir", str(work),
                           "--out", str(out)], capture_output=True, text=True, env=_env(ZOO=zoo), timeout=900,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert proc.stdout.strip() == text.strip()
    for heading in ("## GPU check:", "### (a) `zoo bench`", "### (b) `zoo train resnet20 --data digits`",
                    "### (c) `zoo train resnet50`", "### Commands", "Versions: Python"):
        assert heading in text
    rows = [json.loads(line) for name in ("a-infer.jsonl", "a-train.jsonl")
            for line in (work / name).read_text().splitlines()]
    assert {(r["model"], r["mode"], r["backend"]) for r in rows} == {
        (m, mode, b) for m in ("resnet50", "mobilenet_v2") for mode in ("infer", "train")
        for b in ("plain", "torch", "torchvision")}
    assert all(r["precision"] == "bf16" and r["channels_last"] and r["input"] == "device" for r in rows)
    assert text.count("| resnet50 | infer | 2 | torch |") == 1
    plain = json.loads((work / "b-plain.json").read_text())
    assert 0 <= plain["test_top1"] <= 1 and plain["epochs"][0]["img_per_s"] > 0
    assert (work / "b-zoo" / "results.json").is_file() and (work / "c-zoo" / "metrics.csv").is_file()
    assert len(list((work / "jpegs").rglob("*.jpg"))) == 48
    commands = text.split("### Commands")[1]
    assert commands.count("\nzoo ") == 5 and "\npython benchmarks/reference.py folder" in commands
    assert "$WORK/jpegs" in commands and str(work) not in commands  # the temporary path is not in the report


def test_bad_usage_is_one_line(tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("")
    cases = [(["--device", "tpu"], "--device must be cuda or cpu"),
             (["--threads", "0"], "--threads takes a positive integer"),
             (["--device", "cpu", "--workdir", str(busy)], "is not empty")]
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda"], "torch sees no CUDA device"))
    for args, message in cases:
        proc = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=_env(),
                              timeout=120, cwd=tmp_path)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ")
        assert message in proc.stderr and not (tmp_path / "gpu_check.md").exists()


def test_reference_crop_flip_is_a_window_per_image() -> None:
    torch.manual_seed(0)
    n, pad = 64, 4
    image = torch.arange(3 * 8 * 8, dtype=torch.float32).view(1, 3, 8, 8) + 1
    out = crop_flip(image.expand(n, -1, -1, -1), pad, flip=True)
    padded = torch.nn.functional.pad(image, (pad,) * 4)[0]
    windows = {(dy, dx, f) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1) for f in (False, True)}

    def window(dy: int, dx: int, mirrored: bool) -> torch.Tensor:
        w = padded[:, dy:dy + 8, dx:dx + 8]
        return w.flip(2) if mirrored else w

    seen = set()
    for crop in out:  # every output is one window of the padded image, mirrored or not
        match = [key for key in windows if torch.equal(crop, window(*key))]
        assert len(match) == 1
        seen.add(match[0])
    assert len(seen) > n // 2  # independent per image, not one draw for the batch
    assert {f for _, _, f in seen} == {False, True}
    unflipped = crop_flip(image.expand(n, -1, -1, -1), pad, flip=False)
    for crop in unflipped:
        assert any(torch.equal(crop, padded[:, dy:dy + 8, dx:dx + 8]) for dy in range(9) for dx in range(9))


def test_report_names_a_failed_step(tmp_path: Path) -> None:
    (tmp_path / "commands.tsv").write_text("b-zoo\t3\t1\tzoo train resnet20 --data fashion-mnist\n")
    text = report(tmp_path, "cpu", "fashion-mnist", "", None)
    assert "`zoo train resnet20 --data fashion-mnist` failed (exit 1; its log is `b-zoo.log`" in text
    assert "zoo train resnet20 --data fashion-mnist    # 3 s, exit 1" in text
