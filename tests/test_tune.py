"""``zoo tune`` on the built-in digits: real Optuna studies over real zoo train runs, read back with
Optuna's own API; ``zoo train --config best.json`` reproduces the best trial bit for bit."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from image_folders import digits_folder
from typer.testing import CliRunner

import zoo
from zoo.catalog import get_spec
from zoo.cli import app
from zoo.errors import ZooUsageError
from zoo.tuning.space import check_space, default_space, parse_space

FAST = ["--image-size", "16", "--workers", "0", "--threads", "1"]
SMALL = "lr=1e-3..1e-2:log batch=64,128"  # for the plain CNN: two trials of it take a few seconds


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def snapshot(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def load(study_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name=json.loads((study_dir / "study.json").read_text())["study_name"],
                             storage=f"sqlite:///{study_dir / 'study.db'}")


# ---------------------------------------------------------------------------------------------
# the Done-when study: resnet20 on digits, 8 trials of 3 epochs, pruned by the median rule


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("tune") / "study"
    result = invoke("tune", "resnet20", "--data", "digits", "--trials", "8", "--epochs", "3", "--out", out,
                    *FAST)
    assert result.exit_code == 0, result.output
    return out, result


@pytest.mark.slow
def test_study_directory_trials_pruning_and_plots(study: tuple[Path, object]) -> None:
    out, result = study
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] + summary["pruned"] == 8 and summary["failed"] == 0
    assert summary["pruned"] >= 1 and summary["epochs_run"] < summary["epochs_planned"] == 24
    stored = load(out)  # Optuna's own view of the SQLite study agrees with zoo's summary
    states = [t.state.name.lower() for t in stored.trials]
    assert states == [t["state"] for t in summary["trials"]]
    for trial in stored.trials:
        run_dir = Path(trial.user_attrs["run_dir"])
        assert run_dir.parent == out / "trials" and (run_dir / "last.pt").is_file()
        metrics = list(csv.DictReader((run_dir / "metrics.csv").open()))
        assert len(metrics) == trial.user_attrs["epochs"] == max(trial.intermediate_values)
        assert [float(r["val_loss"]) for r in metrics] == list(trial.intermediate_values.values())
        if trial.state == optuna.trial.TrialState.COMPLETE:
            results = json.loads((run_dir / "results.json").read_text())
            assert trial.value == results["val"]["loss"]
    best = min((t for t in stored.trials if t.value is not None), key=lambda t: t.value)
    assert summary["best"]["number"] == best.number
    for name in ("history.png", "importance.png", "parallel.png", "intermediate.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG", name
    assert "pruned" in result.stdout and "zoo train --config" in result.stdout
    assert f"{summary['pruned']} pruned" in result.stdout


@pytest.mark.slow
def test_best_json_reproduces_the_best_trial(study: tuple[Path, object], tmp_path: Path) -> None:
    out, _ = study
    summary = json.loads((out / "summary.json").read_text())
    best = json.loads((out / "best.json").read_text())
    assert best["arch"] == "resnet20" and best["data"] == "digits" and best["threads"] == 1
    assert {k: best[k] for k in summary["best"]["params"]} == summary["best"]["params"]
    again = tmp_path / "again"
    result = invoke("train", "--config", out / "best.json", "--out", again, "--quiet")
    assert result.exit_code == 0, result.output
    trial_dir = Path(summary["best"]["run_dir"])
    # same seed, threads and workers on the same CPU: bit-identical (checked: training here is deterministic)
    columns = ("epoch", "lr", "train_loss", "val_loss", "val_top1")
    ours = [{k: r[k] for k in columns} for r in csv.DictReader((again / "metrics.csv").open())]
    theirs = [{k: r[k] for k in columns} for r in csv.DictReader((trial_dir / "metrics.csv").open())]
    assert ours == theirs
    assert json.loads((again / "results.json").read_text())["val"] == json.loads(
        (trial_dir / "results.json").read_text())["val"]


@pytest.mark.slow
def test_a_pruned_trial_is_a_resumable_run(study: tuple[Path, object]) -> None:
    out, _ = study
    summary = json.loads((out / "summary.json").read_text())
    pruned = next(t for t in summary["trials"] if t["state"] == "pruned" and t["epochs"] < 3)
    result = invoke("train", "resnet20", "--resume", pruned["run_dir"], "--quiet")
    assert result.exit_code == 0, result.output
    assert len(list(csv.DictReader((Path(pruned["run_dir"]) / "metrics.csv").open()))) == 3


@pytest.mark.slow
def test_resume_of_a_finished_study_reports_again_and_another_arch_is_refused(
    study: tuple[Path, object],
) -> None:
    out, _ = study
    before = snapshot(out / "trials")
    result = invoke("tune", "resnet20", "--resume", out, "--quiet", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["complete"] + json.loads(result.stdout)["pruned"] == 8
    assert snapshot(out / "trials") == before  # nothing trained again
    for args, message in (
        (("resnet32", "--resume", out), "that study tunes 'resnet20', not 'resnet32'"),
        (("resnet20", "--resume", out, "--data", "fashion-mnist"), "tunes on digits, not fashion-mnist"),
        (("resnet20", "--resume", out, "--space", "lr=0.1..0.2"), "--space cannot change on --resume"),
    ):
        study_files = snapshot(out)
        result = invoke("tune", *args)
        assert result.exit_code == 2 and message in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1
        assert snapshot(out) == study_files


# ---------------------------------------------------------------------------------------------
# resume after Ctrl-C, the Python API, samplers, MLflow


def test_ctrl_c_then_resume_finishes_the_interrupted_trial(tmp_path: Path) -> None:
    out = tmp_path / "study"
    cmd = [str(Path(sys.executable).parent / "zoo"), "tune", "simple_cnn", "--data", "digits",
           "--trials", "3", "--epochs", "3", "--sampler", "random", "--pruner", "none", "--space", SMALL,
           "--out", str(out), *FAST]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # preexec: a background job's children ignore SIGINT; Ctrl-C must reach this one
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    target = out / "trials" / "trial-001" / "metrics.csv"
    deadline = time.monotonic() + 180
    while not target.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert f"continue with: zoo tune simple_cnn --resume {out}" in stderr and "Traceback" not in stderr
    interrupted = load(out).trials[1]
    assert interrupted.state == optuna.trial.TrialState.FAIL and interrupted.user_attrs["interrupted"]
    done_before = len(list(csv.DictReader(target.open())))

    summary = zoo.tune("simple_cnn", resume=out, quiet=True)
    assert summary.count("complete") == 3
    retry = next(t for t in load(out).trials if t.user_attrs.get("retry_of") == 1)
    assert retry.params == interrupted.params and retry.user_attrs["run_dir"] == str(target.parent)
    metrics = list(csv.DictReader(target.open()))
    assert len(metrics) == 3 >= done_before  # the same run directory, trained on to its 3 epochs
    assert sorted(retry.intermediate_values) == [1, 2, 3]


@pytest.mark.parametrize("sampler", ["grid", "gp"])
def test_grid_and_gp_samplers_run(tmp_path: Path, sampler: str) -> None:
    summary = zoo.tune("simple_cnn", "digits", out=tmp_path / "s", sampler=sampler, pruner="none", trials=3,
                       epochs=1, space=SMALL, image_size=16, workers=0, threads=1, quiet=True)
    assert summary.count("complete") == 3
    params = [t.params for t in summary.trials]
    assert len({json.dumps(p, sort_keys=True) for p in params}) == 3  # three different points
    if sampler == "grid":  # ranges become 3 points: lo, geometric middle, hi
        grid = {1e-3, 1e-3 * 10**0.5, 1e-2}
        assert all(any(abs(p["lr"] - g) < 1e-12 for g in grid) for p in params)
        assert all(p["batch_size"] in (64, 128) for p in params)


def test_mlflow_parent_run_with_a_child_per_trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    result = invoke("tune", "simple_cnn", "--data", "digits", "--trials", "2", "--epochs", "1",
                    "--space", SMALL, "--out", tmp_path / "s", "--mlflow", "--quiet", *FAST)
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 2 and parent.info.status == "FINISHED"
    assert parent.data.params["arch"] == "simple_cnn" and "best_val_loss" in parent.data.metrics
    assert {c.info.run_name for c in children} == {"trial-000", "trial-001"}


# ---------------------------------------------------------------------------------------------
# bad input: one line, exit 2, nothing written


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--trials", "0"), "--trials must be a positive integer, got 0"),
        (("--space", "  "), "--space is empty"),
        (("--space", "lr=1e-1..1e-4:log"), "low must be below high"),
        (("--space", "lr=0..1e-1:log"), "a :log range must be above 0"),
        (("--space", "lr=1e-3..1e-2 lr=1e-2"), "lr is given twice"),
        (("--space", "batch=64,,128"), "has an empty choice"),
        (("--space", "optimizer=adamw momentum=0.8..0.99"), "searching momentum while optimizer is never"),
        (("--space", "width_mult=0.5,1.0"), "width_mult is neither a zoo train option nor an option of"),
        (("--space", "optimizer=sgd,lion"), "--optimizer must be one of sgd, adam, adamw"),
        (("--space", "epochs=1,2"), "set epochs with --epochs"),
        (("--space", "image_size=16,32"), "also fixed by its own flag"),
        (("--sampler", "bayes"), "--sampler must be one of grid, random, tpe, gp"),
        (("--metric", "top1"), "--metric must be one of val_loss, val_top1"),
        (("--storage", "sqlite:////nonexistent/dir/study.db"), "sqlite:////nonexistent/dir/study.db: cannot"),
        (("--storage", "postgresql://zoo:secret@127.0.0.1:1/zoo"), "cannot open"),
        (("--data", "digts"), "unknown data set 'digts'"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    out = tmp_path / "study"
    data = () if "--data" in args else ("--data", "digits")
    result = invoke("tune", "resnet20", *data, "--out", out, *args, *FAST)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "secret" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists() and not (tmp_path / "runs").exists()


def test_optuna_missing_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # what `import optuna` sees when it is not installed
    result = invoke("tune", "resnet20", "--data", "digits", "--out", tmp_path / "s")
    assert result.exit_code == 2 and "zoo tune needs Optuna: pip install 'zoo[tune]'" in result.stderr
    assert not (tmp_path / "s").exists()


def test_space_text_parses_into_ranges_and_choices() -> None:
    params = {p.name: p for p in parse_space("lr=1e-4..1e-1:log wd=0..1e-2 batch=64,128 mixup=none,mixup "
                                              "ema=true se=true,false image_size=16..32")}
    lr = params["lr"]
    assert (lr.low, lr.high, lr.log, lr.integer) == (1e-4, 0.1, True, False)
    assert params["weight_decay"].low == 0 and not params["weight_decay"].log  # wd: weight_decay's short form
    assert params["batch_size"].choices == (64, 128)
    assert params["mixup"].choices == (None, "mixup") and params["ema"].fixed
    assert params["se"].model and params["se"].choices == (True, False)
    assert params["image_size"].integer
    check_space(list(params.values()), get_spec("resnet20"), {})  # se is a resnet builder option


@pytest.mark.parametrize("arch", ["simple_cnn", "resnet20", "vgg11_bn", "mobilenet_v2", "squeezenet1_1"])
def test_every_family_has_a_valid_default_space(arch: str) -> None:
    spec = get_spec(arch)
    params = parse_space(default_space(spec))
    check_space(params, spec, {})
    assert {"lr", "weight_decay", "batch_size", "augment"} <= {p.name for p in params}


def test_space_errors_without_the_cli() -> None:
    with pytest.raises(ZooUsageError, match="dropout is neither"):
        check_space(parse_space("dropout=0.1,0.3"), get_spec("resnet20"), {})
    check_space(parse_space("dropout=0.1,0.3"), get_spec("simple_cnn"), {})  # the plain CNN takes it
    with pytest.raises(ZooUsageError, match="only be fixed"):
        check_space(parse_space("workers=0,2"), get_spec("simple_cnn"), {})


def test_default_space_follows_the_size_the_data_trains_at(tmp_path: Path) -> None:
    # 72 px photos, no --image-size: the trials train a BatchNorm VGG with torchvision's head, whose
    # default lr is 0.005, so the space is centred there and not on the small head's 0.05
    spec = get_spec("vgg11_bn")
    photos = digits_folder(tmp_path / "data", 40, size=72)
    summary = zoo.tune("vgg11_bn", photos, out=tmp_path / "s", trials=1, epochs=1, workers=0, threads=1,
                       quiet=True)
    assert summary.space == default_space(spec, 72) != default_space(spec, 64)
    assert summary.space.startswith("lr=0.0005..0.015:log")
    (trial,) = summary.trials
    assert json.loads((Path(trial.run_dir) / "config.json").read_text())["image_size"] == 72


def test_defaults_epochs_and_space_when_not_given(tmp_path: Path) -> None:
    # val_split 0.9: 144 training scans, so zoo train's default 30 epochs take seconds
    summary = zoo.tune("simple_cnn", "digits", out=tmp_path / "s", trials=1, image_size=8, val_split=0.9,
                       workers=0, threads=1, quiet=True)
    assert summary.space == default_space(get_spec("simple_cnn")) and summary.sampler == "tpe"
    (trial,) = summary.trials
    assert trial.state == "complete" and trial.planned == 30  # zoo train's default for digits
