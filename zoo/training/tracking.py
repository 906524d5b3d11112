"""Optional MLflow experiment tracking for ``zoo train --mlflow``.

The MLflow run is started before anything is written, so a tracking server that cannot be
reached (or a store MLflow refuses) is a one-line error with the run directory untouched. Once
training has started, a tracking failure is reported once and tracking stops: a lost metric must
not cost a training run. The run ends FINISHED, FAILED or KILLED (Ctrl-C) like MLflow's own
integrations, with the final val/test figures and the whole run directory as artifacts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from zoo.errors import ZooError, ZooUsageError, error_head

FINAL_METRICS = ("top1", "top5", "loss")


class MlflowTracker:
    """One MLflow run mirroring one ``zoo train`` run."""

    def __init__(self, run_name: str) -> None:
        try:
            import mlflow
        except ImportError:
            raise ZooUsageError("--mlflow: MLflow is not installed (pip install mlflow)") from None
        self._mlflow: Any = mlflow
        try:
            # inside another run (zoo tune's study), this one is its child
            self.run = mlflow.start_run(run_name=run_name, nested=mlflow.active_run() is not None)
        except Exception as exc:  # MLflow raises its own types for a bad URI, store or server
            raise ZooError(f"--mlflow: cannot start an MLflow run ({error_head(exc, 200)})") from None
        self.active = True

    def call(self, what: str, *args: Any, **kwargs: Any) -> None:
        """``mlflow.<what>(...)``; the first failure warns once and stops tracking."""
        if not self.active:
            return
        try:
            getattr(self._mlflow, what)(*args, **kwargs)
        except Exception as exc:
            self.active = False
            reason = error_head(exc, 200)
            print(f"warning: --mlflow: {what} failed, tracking stops ({reason})", file=sys.stderr)

    def log_config(self, run_dir: Path, config: dict[str, Any]) -> None:
        self.call("set_tags", {"zoo.run_dir": str(run_dir.resolve()), "mlflow.runName": run_dir.name})
        self.call(
            "log_params",
            {"arch": config["arch"], "data": config["data"]["source"], "image_size": config["image_size"],
             **config["train"], **config["runtime"]},
        )

    def log_epoch(self, row: dict[str, Any]) -> None:
        metrics = {k: float(v) for k, v in row.items() if k != "epoch" and v is not None}
        self.call("log_metrics", metrics, step=int(row["epoch"]))

    def finish(self, run_dir: Path, result: dict[str, Any] | None, error: BaseException | None) -> None:
        """Final figures and artifacts, then end the run with the status the training ended in."""
        if result is not None:
            final = {f"final_{split}_{name}": float(result[split][name])
                     for split in ("val", "test") if result.get(split)
                     for name in FINAL_METRICS if result[split].get(name) is not None}
            self.call("log_metrics", final)
        self.call("log_artifacts", str(run_dir))
        self.active = True  # always try to close the run, even after a logging failure
        self.call("end_run", status=end_status(error))


def end_status(error: BaseException | None) -> str:
    """FINISHED; KILLED when stopped from outside (Ctrl-C, or pruned by zoo tune); else FAILED."""
    from zoo.training.loop import TrainingInterrupted

    if error is None:
        return "FINISHED"
    pruned = type(error).__name__ == "TrialPruned"  # optuna's, raised through zoo.train's on_epoch
    stopped = pruned or isinstance(error, (KeyboardInterrupt, TrainingInterrupted))
    return "KILLED" if stopped else "FAILED"
