"""`zoo tune`: a thin wrapper over zoo.tuning.study.tune (Optuna is imported only when it runs)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

_EPILOG = (
    "SPACE is name=values pairs: lr=1e-4..1e-1:log wd=1e-5..1e-2:log batch=64,128,256 "
    "optimizer=sgd,adamw augment=none,light,standard (a range, :log for a log scale, or a comma list; "
    "one value fixes an option). Default: around the family's defaults (shown in study.json)."
)


def register(app: typer.Typer) -> None:
    @app.command("tune", epilog=_EPILOG)
    def tune_cmd(
        arch: str = typer.Argument(..., help="Architecture name (see 'zoo list')."),
        data: str | None = typer.Option(None, "--data", "-d", help="ImageFolder directory or data set name."),
        sampler: str | None = typer.Option(None, "--sampler", help="grid | random | tpe | gp [tpe]."),
        pruner: str | None = typer.Option(None, "--pruner", help="median | halving | none [median]."),
        trials: int | None = typer.Option(None, "--trials", "-n", help="Trials in the study, in all [20]."),
        timeout: float | None = typer.Option(None, "--timeout", help="Stop starting trials after SECONDS."),
        space: str | None = typer.Option(None, "--space", help="The search space (see below)."),
        epochs: int | None = typer.Option(None, "--epochs", "-e", help="Epochs per trial [zoo train's]."),
        metric: str | None = typer.Option(None, "--metric", help="val_loss | val_top1 [val_loss]."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Study directory [runs/tune-<arch>-<n>]."),
        resume: Path | None = typer.Option(None, "--resume", help="Continue this study directory."),
        root: Path = typer.Option(Path("runs"), "--runs-dir", help="Where new study directories go."),
        storage: str | None = typer.Option(
            None, "--storage", help="Optuna RDB URL shared by several machines [sqlite in the study dir]."
        ),
        study_name: str | None = typer.Option(None, "--study-name", help="Study name in --storage."),
        seed: int | None = typer.Option(None, "--seed", help="Training and sampler seed [0]."),
        image_size: int | None = typer.Option(None, "--image-size", help="Crop size for every trial."),
        workers: int | None = typer.Option(None, "--workers", help="Data loader workers per trial."),
        threads: int | None = typer.Option(None, "--threads", help="Intra-op CPU threads per trial."),
        device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda [auto]."),
        mlflow: bool = typer.Option(False, "--mlflow", help="One MLflow parent run, a child run per trial."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-trial lines or table."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    ) -> None:
        """Hyperparameter search for ARCH on Optuna; every trial is a zoo train run directory."""
        from zoo.tuning.study import tune

        fixed = {k: v for k, v in {"image_size": image_size, "workers": workers, "threads": threads,
                                   "device": device}.items() if v is not None}
        summary = tune(
            arch, data, out=out, resume=resume, root=root, sampler=sampler, pruner=pruner, trials=trials,
            timeout=timeout, space=space, epochs=epochs, metric=metric, storage=storage,
            study_name=study_name, seed=seed, mlflow=mlflow, quiet=quiet or as_json, **fixed,
        )
        if as_json:
            typer.echo(json.dumps(summary.as_dict()))
