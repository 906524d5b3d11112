"""``zoo train --mlflow``: a real MLflow store on disk, read back with MLflow's own client."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from zoo.cli import app

FAST = ["--image-size", "16", "--workers", "0", "--threads", "1", "--quiet"]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A file-backed MLflow store in tmp_path (MLflow 3 wants an explicit opt-in for it)."""
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return uri


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_mlflow_records_params_epochs_final_figures_and_artifacts(tmp_path: Path, store: str) -> None:
    out = tmp_path / "run"
    result = invoke("train", "simple_cnn_bn", "--data", "digits", "--epochs", "2", "--out", out,
                    "--mlflow", *FAST)
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=store)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "run"
    assert run.data.tags["zoo.run_dir"] == str(out.resolve())
    assert run.data.params["arch"] == "simple_cnn_bn" and run.data.params["epochs"] == "2"
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in history] == [1, 2]
    metrics_csv = (out / "metrics.csv").read_text().splitlines()
    assert [round(m.value, 6) for m in history] == [round(float(r.split(",")[4]), 6) for r in metrics_csv[1:]]
    results = json.loads((out / "results.json").read_text())
    assert run.data.metrics["final_test_top1"] == pytest.approx(results["test"]["top1"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"best.pt", "last.pt", "metrics.csv", "config.json", "results.json"} <= artifacts


def test_a_store_mlflow_refuses_is_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://nowhere")
    out = tmp_path / "run"
    result = invoke("train", "simple_cnn_bn", "--data", "digits", "--epochs", "1", "--out", out,
                    "--mlflow", *FAST)
    assert result.exit_code == 1
    assert "--mlflow: cannot start an MLflow run" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists()


def test_mlflow_not_installed_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what `import mlflow` sees when it is absent
    out = tmp_path / "run"
    result = invoke("train", "simple_cnn_bn", "--data", "digits", "--out", out, "--mlflow", *FAST)
    assert result.exit_code == 2
    assert "MLflow is not installed" in result.stderr
    assert not out.exists()


def test_a_logging_failure_mid_training_warns_once_and_training_finishes(
    tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    def unreachable(*args: object, **kwargs: object) -> None:
        raise ConnectionError("tracking server went away")

    monkeypatch.setattr(mlflow, "log_metrics", unreachable)
    out = tmp_path / "run"
    result = invoke("train", "simple_cnn_bn", "--data", "digits", "--epochs", "2", "--out", out,
                    "--mlflow", *FAST)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("tracking stops (tracking server went away)") == 1
    assert (out / "results.json").is_file() and len((out / "metrics.csv").read_text().splitlines()) == 3
    client = MlflowClient(tracking_uri=store)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED"  # the run is still closed
