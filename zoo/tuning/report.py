"""The end of a study: trials table, trials.csv, best.json, summary.json and Optuna's plots."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path
from typing import Any

from zoo.errors import error_head
from zoo.run import atomic_write_json, atomic_write_text
from zoo.tuning.summary import METRICS, StudySummary, TrialRow

BEST_FILE = "best.json"
SUMMARY_FILE = "summary.json"
TRIALS_FILE = "trials.csv"
OUTPUT_FLAGS = ("quiet", "json", "mlflow")  # how a run reports, not what it trains: left out of best.json
PLOTS = {
    "history.png": "plot_optimization_history",
    "importance.png": "plot_param_importances",
    "parallel.png": "plot_parallel_coordinate",
    "intermediate.png": "plot_intermediate_values",
}


def finish_study(
    study: Any, study_dir: Path, settings: dict[str, Any], wall: float, quiet: bool
) -> StudySummary:
    """Write every summary file of the study and print its table (unless quiet)."""
    rows = [_row(t) for t in study.get_trials(deepcopy=False)]
    best_row = _best(rows, METRICS[settings["metric"]][1])
    best_config = None
    if best_row is not None and best_row.run_dir and Path(best_row.run_dir, "config.json").is_file():
        best = best_train_config(Path(best_row.run_dir))
        best_config = str(atomic_write_json(study_dir / BEST_FILE, best))
    summary = StudySummary(
        study_dir=str(study_dir), study_name=study.study_name,
        storage=settings.get("storage") or "sqlite (study.db)",
        arch=settings["arch"], data=settings["data"], metric=settings["metric"],
        direction=METRICS[settings["metric"]][1], sampler=settings["sampler"], pruner=settings["pruner"],
        space=settings["space"], trials=rows, best=best_row, best_config=best_config, wall_seconds=wall,
    )
    summary.plots = write_plots(study, study_dir)
    write_trials_csv(study_dir / TRIALS_FILE, rows)
    atomic_write_json(study_dir / SUMMARY_FILE, summary.as_dict())
    if not quiet:
        print_summary(summary)
    return summary


def _row(trial: Any) -> TrialRow:
    attrs = trial.user_attrs
    run_dir = attrs.get("run_dir")
    planned = epochs = int(attrs.get("epochs", 0))
    if run_dir and Path(run_dir, "config.json").is_file():
        planned = int(json.loads(Path(run_dir, "config.json").read_text())["train"]["epochs"])
    seconds = None
    if trial.datetime_start is not None and trial.datetime_complete is not None:
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
    return TrialRow(trial.number, trial.state.name.lower(), dict(trial.params), trial.value, epochs, planned,
                    seconds, run_dir, attrs.get("error"))


def _best(rows: list[TrialRow], direction: str) -> TrialRow | None:
    done = [r for r in rows if r.state == "complete" and r.value is not None]
    if not done:
        return None
    return (min if direction == "minimize" else max)(done, key=lambda r: r.value)  # type: ignore[arg-type,return-value]


def best_train_config(run_dir: Path) -> dict[str, Any]:
    """What ``zoo train --config`` needs to train that run again: arch, data, builder options and every
    resolved training option (so a later change of zoo's defaults does not change it)."""
    config = json.loads((run_dir / "config.json").read_text())
    options = {k: v for k, v in config["train"].items() if k not in OUTPUT_FLAGS}
    options["image_size"] = config["image_size"]
    return {"arch": config["arch"], "data": config["data"]["source"], "model_kwargs": config["model_kwargs"],
            **options}


def write_trials_csv(path: Path, rows: list[TrialRow]) -> None:
    names = list(dict.fromkeys(k for r in rows for k in r.params))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["trial", "state", *names, "value", "epochs", "planned_epochs", "seconds", "run_dir",
                     "error"])
    for r in rows:
        writer.writerow([r.number, r.state, *(r.params.get(n, "") for n in names),
                         "" if r.value is None else r.value, r.epochs, r.planned,
                         "" if r.seconds is None else f"{r.seconds:.1f}", r.run_dir or "", r.error or ""])
    atomic_write_text(path, buf.getvalue())


def write_plots(study: Any, study_dir: Path) -> list[str]:
    """Optuna's own matplotlib plots; one that cannot be drawn yet (too few trials) is left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vis

    from zoo.training.report import save_figure

    written = []
    for name, function in PLOTS.items():
        try:
            with warnings.catch_warnings():  # matplotlib's notes on flat axes of a short study
                warnings.simplefilter("ignore", UserWarning)
                axes = getattr(vis, function)(study)
        except Exception as exc:  # Optuna raises ValueError/RuntimeError for "not enough trials" and friends
            _note(f"{name} not drawn ({error_head(exc, 120)})")
            plt.close("all")
            continue
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
        figure.set_size_inches(10, 6)
        figure.tight_layout()
        save_figure(figure, study_dir / name)
        written.append(name)
    return written


def _note(message: str) -> None:
    import sys

    print(f"note: {message}", file=sys.stderr)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def print_summary(summary: StudySummary) -> None:
    from rich.table import Table

    from zoo.output import console

    names = list(dict.fromkeys(k for t in summary.trials for k in t.params))
    table = Table(title=f"{summary.arch} on {summary.data}: {summary.sampler} search, "
                        f"{summary.pruner} pruner ({summary.study_dir})")
    for column in ("trial", "state", *names, summary.metric, "epochs", "seconds"):
        table.add_column(column, justify="left" if column in ("state",) else "right")
    best = summary.best.number if summary.best else None
    for t in summary.trials:
        table.add_row(f"{t.number}{' *' if t.number == best else ''}", t.state,
                      *(_fmt(t.params.get(n)) for n in names), _fmt(t.value),
                      f"{t.epochs}/{t.planned}", _fmt(t.seconds and round(t.seconds, 1)))
    out = console()
    out.print(table)
    run, planned = summary.epochs_run, summary.epochs_planned
    saved = f", {100 * (1 - run / planned):.0f}% of the compute saved" if planned else ""
    out.print(f"{summary.count('complete')} complete, {summary.count('pruned')} pruned, "
              f"{summary.count('fail')} failed; {run} of {planned} epochs trained{saved}; "
              f"{summary.wall_seconds:.0f}s")
    if summary.best is not None:
        out.print(f"best: trial {summary.best.number}, {summary.metric} {summary.best.value:.4g}, "
                  f"{summary.best.run_dir}")
        out.print(f"train it again: zoo train --config {summary.best_config}")
    if summary.plots:
        out.print(f"plots: {', '.join(summary.plots)}")
