"""zoo train on several processes: torchrun + DDP over gloo on this CPU, on the built-in digits.

The launches are real (torchrun, ``python -m zoo``, two processes exchanging gradients), kept small:
16 px digits, a few epochs, one intra-op thread per process. Tolerance for "the same training as one
process": with the same global batch and seed, the 2-process run differs only in its BatchNorm
statistics (per-rank batches of 32 instead of 64) and in which images share a batch, so its final
validation accuracy lands within ACCURACY_TOLERANCE (absolute) of the 1-process run.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from zoo.cli import app
from zoo.errors import ZooUsageError

EPOCHS = 4
ACCURACY_TOLERANCE = 0.10
TRAIN = ["simple_cnn_bn", "--data", "digits", "--device", "cpu", "--image-size", "16", "--workers", "0",
         "--seed", "0", "--batch-size", "64"]
DIST_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
            "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DIST_ENV}
    env.update(OMP_NUM_THREADS="1", ZOO_DIST_TIMEOUT="60", ZOO_PLUGINS="", **extra)
    return env


def _torchrun(cwd: Path, *args: str, nproc: int = 2) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
           "-m", "zoo", "train", *args]
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=240)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank(rank: int, port: int, cwd: Path, *args: str) -> subprocess.Popen[str]:
    """One process of a 2-process group started by hand (what torchrun sets), for the failure tests."""
    env = _env(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(port))
    return subprocess.Popen([sys.executable, "-m", "zoo", "train", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _tail(stderr: str) -> str:
    """What a failed launch said, without torch's warning lines."""
    return "\n".join(line for line in stderr.splitlines() if not line.startswith(("[W", "W1")))[-4000:]


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A 1-process run (in this process) and a 2-process torchrun run, same global batch and seed."""
    from zoo.training.api import train

    tmp = tmp_path_factory.mktemp("ddp")
    one = train("simple_cnn_bn", "digits", out=tmp / "one", epochs=EPOCHS, image_size=16, workers=0,
                device="cpu", seed=0, batch_size=64, quiet=True)
    two = _torchrun(tmp, *TRAIN, "--epochs", str(EPOCHS), "--runs-dir", "runs2", "--quiet")
    return {"tmp": tmp, "one": one, "two": two}


def test_two_processes_train_like_one(runs: dict[str, object]) -> None:
    tmp, one, two = runs["tmp"], runs["one"], runs["two"]
    assert isinstance(tmp, Path) and isinstance(two, subprocess.CompletedProcess)
    assert two.returncode == 0, _tail(two.stderr)
    assert two.stdout.splitlines() == ["runs2/simple_cnn_bn-1"]  # rank 0 alone prints
    assert [p.name for p in (tmp / "runs2").iterdir()] == ["simple_cnn_bn-1"]  # one run directory
    run_dir = tmp / "runs2" / "simple_cnn_bn-1"
    result = json.loads((run_dir / "results.json").read_text())
    assert result["processes"] == 2 and result["epochs_run"] == EPOCHS
    assert len(_rows(run_dir)) == EPOCHS
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["batch_size"] == 64  # the global batch is what the run records
    single = one.result["val"]["top1"]  # type: ignore[attr-defined]
    assert single > 0.5 and result["val"]["top1"] > 0.5
    assert abs(result["val"]["top1"] - single) <= ACCURACY_TOLERANCE, (result["val"]["top1"], single)


def test_ddp_checkpoint_is_plain_and_its_metrics_are_global(runs: dict[str, object]) -> None:
    """best.pt has no ``module.`` keys, loads in one process, and evaluating it there gives exactly
    the all-reduced figures the 2 ranks reported (each saw half of val)."""
    from zoo.training.api import evaluate

    run_dir = runs["tmp"] / "runs2" / "simple_cnn_bn-1"  # type: ignore[operator]
    for name in ("best.pt", "last.pt"):
        ckpt = torch.load(run_dir / name, map_location="cpu", weights_only=False)
        assert not any(k.startswith("module.") for k in ckpt["model"]), name
    result = json.loads((run_dir / "results.json").read_text())
    alone = evaluate(run_dir, split="val")
    assert alone["n"] == result["val"]["n"] == 287
    assert alone["top1"] == result["val"]["top1"]
    assert alone["confusion"] == result["val"]["confusion"]
    assert alone["loss"] == pytest.approx(result["val"]["loss"], rel=1e-5)


def test_resume_with_another_number_of_processes(runs: dict[str, object]) -> None:
    """A 2-process run resumes in one process, and a 1-process run resumes on 2 (``zoo train --nproc``)."""
    from zoo.training.api import train

    tmp = runs["tmp"]
    assert isinstance(tmp, Path)
    ddp_run = tmp / "runs2" / "simple_cnn_bn-1"
    resumed = train("simple_cnn_bn", resume=ddp_run, epochs=EPOCHS + 1, quiet=True)
    assert resumed.result["epochs_run"] == EPOCHS + 1 and "processes" not in resumed.result
    assert [int(r["epoch"]) for r in _rows(ddp_run)] == list(range(1, EPOCHS + 2))

    single_run = tmp / "one"
    cmd = [sys.executable, "-m", "zoo", "train", "simple_cnn_bn", "--resume", str(single_run),
           "--epochs", str(EPOCHS + 1), "--nproc", "2", "--pipeline", "pil", "--quiet"]
    done = subprocess.run(cmd, cwd=tmp, env=_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, _tail(done.stderr)
    assert done.stdout.splitlines() == [str(single_run)]
    result = json.loads((single_run / "results.json").read_text())
    assert result["processes"] == 2 and result["epochs_run"] == EPOCHS + 1
    assert result["speed"]["pipeline"] == "pil"  # the other input pipeline, sharded the same way
    assert [int(r["epoch"]) for r in _rows(single_run)] == list(range(1, EPOCHS + 2))
    assert float(_rows(single_run)[-1]["val_top1"]) > 0.5


@pytest.mark.slow
def test_two_nodes_simulated_with_c10d_rendezvous(tmp_path: Path) -> None:
    """benchmarks/multinode_sim.sh: two torchrun launchers (--nnodes 2, c10d on 127.0.0.1), one run."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "multinode_sim.sh"
    env = _env(PYTHON=sys.executable, PORT=str(_free_port()), EPOCHS="1")
    done = subprocess.run(["bash", str(script), "mn"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, _tail(done.stderr)
    assert done.stdout.splitlines() == ["mn"]  # printed by rank 0 only
    assert [p.name for p in tmp_path.iterdir()] == ["mn"]
    result = json.loads((tmp_path / "mn" / "results.json").read_text())
    assert result["processes"] == 2 and result["epochs_run"] == 1


def _tree(root: Path, classes: list[str]) -> Path:
    rng = np.random.default_rng(0)
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / cls / f"{i}.png")
    return root


def test_data_that_differs_between_ranks_is_an_error(tmp_path: Path) -> None:
    """Two "nodes" whose --data directories hold different classes: both ranks stop with one line."""
    port = _free_port()
    procs = [
        _rank(rank, port, tmp_path, "simple_cnn", "--data", str(_tree(tmp_path / f"data{rank}", classes)),
              "--device", "cpu", "--epochs", "1", "--workers", "0", "--batch-size", "4")
        for rank, classes in ((0, ["cat", "dog"]), (1, ["cat", "cow"]))
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 2, err[-2000:]
        assert "error: rank 1 sees different data (classes, train, val) than rank 0" in err
        assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_rank_that_dies_ends_the_others_with_a_message(tmp_path: Path) -> None:
    """kill -9 one rank mid-training: the other exits with one error line (not a hang), and the run
    directory holds a last.pt to resume from."""
    port = _free_port()
    args = [*TRAIN, "--epochs", "300", "--out", "run", "--patience", "0"]
    procs = [_rank(rank, port, tmp_path, *args) for rank in (0, 1)]
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "run" / "metrics.csv").exists():  # one epoch recorded: deep in training
            assert time.monotonic() < deadline and procs[0].poll() is None, procs[0].communicate()[1][-2000:]
            time.sleep(0.2)
        procs[1].send_signal(signal.SIGKILL)
        _, err = procs[0].communicate(timeout=90)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert procs[0].returncode == 1, err[-2000:]
    assert "error: rank 0: lost the other training processes" in err
    assert "Traceback" not in err
    ckpt = torch.load(tmp_path / "run" / "last.pt", map_location="cpu", weights_only=False)
    assert ckpt["loop"]["epoch"] >= 1


def test_shards_are_equal_for_train_and_disjoint_for_eval() -> None:
    from zoo.data import load_splits
    from zoo.training.distributed import Dist, shard_splits

    splits = load_splits("digits", seed=0)
    for world in (2, 3):
        parts = [shard_splits(splits, Dist(r, world, r, "cpu", False), seed=0) for r in range(world)]
        assert len({len(p.train) for p in parts}) == 1  # same number of steps on every rank
        assert sum(len(p.train) for p in parts) - len(splits.train) < world  # padded by less than N
        assert sum(len(p.val) for p in parts) == len(splits.val)  # val: every image once
        assert sum(len(p.test) for p in parts) == len(splits.test)
        labels = sorted(label for p in parts for label in p.val.labels)
        assert labels == sorted(splits.val.labels)
        images = np.concatenate([p.train.images for p in parts])
        assert len(np.unique(images.reshape(len(images), -1), axis=0)) == len(
            np.unique(splits.train.images.reshape(len(splits.train), -1), axis=0))  # all of train


def test_global_batch_rule() -> None:
    from zoo.training.distributed import Dist, check_sync_bn

    assert Dist(1, 4, 1, "cpu", False).per_rank_batch(64) == 16
    with pytest.raises(ZooUsageError, match="--batch-size 63 is the global batch and must be divisible by "
                                            "the 2 processes"):
        Dist(0, 2, 0, "cpu", False).per_rank_batch(63)
    with pytest.raises(ZooUsageError, match="--sync-bn needs CUDA"):
        check_sync_bn(True, "cpu")


def test_nproc_bad_input_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    cases = [
        (["--nproc", "2", "-b", "63"], "--batch-size 63 is the global batch and must be divisible"),
        (["--nproc", "0"], "--nproc must be a positive integer"),
        (["--nproc", "2", "--sync-bn", "--device", "cpu"], "--sync-bn needs CUDA"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["train", "simple_cnn_bn", "--data", "digits", *extra])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: ") and message in result.stderr
        assert len(result.stderr.splitlines()) == 1
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = runner.invoke(app, ["train", "simple_cnn_bn", "--data", "digits", "--nproc", "2"])
    assert result.exit_code == 2 and "cannot be used inside torchrun" in result.stderr
    assert not (tmp_path / "runs").exists()
