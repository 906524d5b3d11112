"""``zoo.tune``: hyperparameter search over ``zoo.train`` runs, on Optuna.

Every trial is a normal run directory under the study directory (evaluate, export or resume it like
any other); its per-epoch validation figure goes to Optuna, whose pruner may stop it early. The study
lives in Optuna's RDB storage: a SQLite file in the study directory by default (``--resume`` reopens
it), or any database URL (``--storage``), which several machines can share to search one study.

Everything that can be wrong with the input is checked before the study directory is created.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from zoo.catalog import get_spec
from zoo.errors import ZooError, ZooUsageError, error_head
from zoo.run import atomic_write_json, new_run_dir
from zoo.training.config import TrainConfig
from zoo.tuning.space import Param, check_space, default_space, parse_space, split_values
from zoo.tuning.summary import METRICS, StudySummary

STUDY_FILE = "study.json"
DB_FILE = "study.db"
LOCK_FILE = ".lock"
TRIALS_DIR = "trials"
SAMPLERS = ("grid", "random", "tpe", "gp")
PRUNERS = ("median", "halving", "none")
# may differ on --resume: how long to go on, and how the trials run on this machine
RESUMABLE = ("trials", "timeout", "quiet", "mlflow", "storage")
FIXED_RESUMABLE = ("workers", "threads", "device")
HEARTBEAT_S = 60  # a trial whose process stops beating for 2x this is failed and retried


class TrialFailed(Exception):
    """A trial whose training raised a ZooError (e.g. a diverging lr): recorded as FAIL, the study goes on."""


class TuneInterrupted(ZooError):
    """Ctrl-C during a study: finished trials are kept; the message says how to continue."""

    exit_code = 130


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ZooUsageError("zoo tune needs Optuna: pip install 'zoo[tune]' or pip install optuna") from None
    return optuna


# ---------------------------------------------------------------------------------------------
# the study settings (study.json)


def _check_args(sampler: str, pruner: str, trials: Any, timeout: Any, metric: str, epochs: Any) -> None:
    if sampler not in SAMPLERS:
        raise ZooUsageError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if pruner not in PRUNERS:
        raise ZooUsageError(f"--pruner must be one of {', '.join(PRUNERS)}, got {pruner!r}")
    if metric not in METRICS:
        raise ZooUsageError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ZooUsageError(f"--trials must be a positive integer, got {trials!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                or timeout <= 0):
        raise ZooUsageError(f"--timeout must be a positive number of seconds, got {timeout!r}")
    TrainConfig(epochs=epochs).validate()


def _resume_settings(study_dir: Path, arch: str, data: str | None, given: dict[str, Any]) -> dict[str, Any]:
    """study.json of ``study_dir``, checked against ARCH and --data; ``given`` may change RESUMABLE keys."""
    from zoo.training.new_run import source_id

    path = study_dir / STUDY_FILE
    if not path.is_file():
        raise ZooUsageError(f"--resume {study_dir}: not a study directory (no {STUDY_FILE})")
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ZooUsageError(f"--resume {path}: unreadable ({error_head(exc)})") from None
    if stored["arch"] != arch:
        raise ZooUsageError(f"--resume {study_dir}: that study tunes '{stored['arch']}', not '{arch}'")
    if data is not None and source_id(data) != stored["data"]:
        raise ZooUsageError(f"--resume {study_dir}: that study tunes on {stored['data']}, not {data}")
    merged = dict(stored)
    for key, value in given.items():
        if value is None or value == stored.get(key):
            continue
        if key == "fixed":
            for name, v in value.items():
                if stored["fixed"].get(name) != v and name not in FIXED_RESUMABLE:
                    raise ZooUsageError(f"--{name.replace('_', '-')} cannot change on --resume "
                                        f"(the study used {stored['fixed'].get(name)!r})")
            merged["fixed"] = {**stored["fixed"], **value}
        elif key not in RESUMABLE:
            raise ZooUsageError(f"--{key.replace('_', '-')} cannot change on --resume "
                                f"(the study used {stored.get(key)!r}); start a new study instead")
        else:
            merged[key] = value
    return merged


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ZooUsageError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise ZooUsageError(f"--out {out}: directory is not empty; choose another or --resume it")


# ---------------------------------------------------------------------------------------------
# Optuna parts


def _open_storage(url: str) -> Any:
    from optuna.storages import RDBStorage

    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5
            warnings.simplefilter("ignore", optuna_warning())
            return RDBStorage(url, heartbeat_interval=HEARTBEAT_S,
                              heartbeat_stale_trial_callback=_retry_stale)
    except Exception as exc:  # SQLAlchemy: bad URL, missing driver, unreachable server, ...
        reason = error_head(exc, 200)
        raise ZooUsageError(f"--storage {_hide_password(url)}: cannot open ({reason})") from None


def optuna_warning() -> type[Warning]:
    from optuna.exceptions import ExperimentalWarning

    return ExperimentalWarning


def _hide_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1] if "@" in url else url


def _retry_stale(study: Any, trial: Any) -> None:
    """A trial whose machine stopped beating (crash, kill): run its parameters again."""
    _enqueue_retry(study, trial)


def _enqueue_retry(study: Any, trial: Any) -> None:
    study.enqueue_trial(
        trial.params,
        user_attrs={"retry_of": trial.number, "resume_dir": trial.user_attrs.get("run_dir")},
        skip_if_exists=False,
    )


def _sampler(optuna: Any, name: str, params: list[Param], seed: int, trials: int) -> Any:
    startup = max(2, min(10, trials // 3))  # Optuna's 10 random first trials: all of a short study
    if name == "grid":
        return optuna.samplers.GridSampler({p.name: p.grid() for p in params if not p.fixed}, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def _pruner(optuna: Any, name: str, trials: int, epochs: int | None) -> Any:
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    warmup = (epochs or 8) // 4  # never judge a run on its first quarter (0 for runs of 3 epochs or fewer)
    return optuna.pruners.MedianPruner(n_startup_trials=max(1, min(5, trials // 4)), n_warmup_steps=warmup)


@contextmanager
def _study_lock(study_dir: Path) -> Iterator[None]:
    """One process per study directory (several machines share a study through --storage instead)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    fh: IO[str] = (study_dir / LOCK_FILE).open("a")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise ZooUsageError(f"{study_dir}: another zoo tune is running this study") from None
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


@contextmanager
def _quiet_optuna(optuna: Any) -> Iterator[None]:
    """zoo prints its own line per trial; Optuna's logging and experimental warnings stay out of the way."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


# ---------------------------------------------------------------------------------------------
# tune


DEFAULTS = {"sampler": "tpe", "pruner": "median", "trials": 20, "metric": "val_loss", "seed": 0}


def tune(
    arch: str,
    data: str | Path | None = None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    root: str | Path = "runs",
    sampler: str | None = None,
    pruner: str | None = None,
    trials: int | None = None,
    timeout: float | None = None,
    space: str | None = None,
    epochs: int | None = None,
    metric: str | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    seed: int | None = None,
    mlflow: bool = False,
    quiet: bool = False,
    **fixed: Any,
) -> StudySummary:
    """Search ``space`` (default: around the family's defaults) for the options that train ``arch``
    best on ``data``. Each trial is ``zoo.train`` for ``epochs`` with the ``fixed`` training options
    (``image_size=16, workers=0, ...``). Unset arguments take the defaults (sampler tpe, pruner
    median, 20 trials, metric val_loss, seed 0) or, with ``resume=STUDY_DIR``, the study's own.
    Returns the summary; writes the study directory.
    """
    optuna = import_optuna()
    from zoo.training.new_run import input_shape, source_id

    spec = get_spec(arch)
    arch = spec.name  # a family name ("vgg") means its default member
    try:
        fixed_config = TrainConfig(**fixed)
        fixed_config.validate()
    except TypeError as exc:
        raise ZooUsageError(f"unknown training option ({exc})") from None
    if resume is not None and out is not None:
        raise ZooUsageError("--out and --resume cannot be combined (a resumed study stays in its directory)")
    given = {"sampler": sampler, "pruner": pruner, "trials": trials, "timeout": timeout, "space": space,
             "epochs": epochs, "metric": metric, "storage": storage, "study_name": study_name, "seed": seed,
             "fixed": fixed or None}
    if resume is not None:
        study_dir = Path(resume)
        settings = _resume_settings(study_dir, arch, data, given)
    else:
        if data is None:
            raise ZooUsageError("--data is required: a directory of class folders or a data set name")
        if out is not None:
            _check_out(Path(out))
        settings = {k: DEFAULTS.get(k) if v is None else v for k, v in given.items()}
        settings.update(arch=spec.name, data=source_id(data), fixed=fixed, study_name=study_name or "")
    _check_args(settings["sampler"], settings["pruner"], settings["trials"], settings.get("timeout"),
                settings["metric"], settings.get("epochs"))
    from zoo.data import load_splits

    splits = None  # loaded before anything is written: bad data writes nothing
    if settings["space"] is None:  # around the defaults at the size the trials will train at
        splits = load_splits(settings["data"], val_split=fixed_config.val_split, seed=settings["seed"])
        settings["space"] = default_space(spec, input_shape(spec, splits, fixed_config)[0])
    params = parse_space(settings["space"])
    both = sorted(set(settings["fixed"]) & {p.name for p in params})
    if both:
        raise ZooUsageError(f"--space searches {', '.join(both)}, which is also fixed by its own flag")
    base = {**settings["fixed"], **{p.name: p.choices[0] for p in params if p.fixed and not p.model}}
    check_space(params, spec, base)
    if splits is None:  # the split as the space's fixed values leave it
        load_splits(settings["data"], val_split=TrainConfig.from_dict(base).val_split, seed=settings["seed"])
    external = settings.get("storage")
    if external and "***" in external:
        raise ZooUsageError("--storage: the study's database password is not stored; give --storage again")
    storage_obj = _open_storage(external) if external else None
    parent = _ParentRun(arch) if mlflow else None
    # -- nothing was written above this line --
    if resume is None:
        study_dir = Path(out) if out is not None else new_run_dir(f"tune-{arch}", root)
        study_dir.mkdir(parents=True, exist_ok=True)
        settings["study_name"] = settings["study_name"] or study_dir.name
    from zoo import __version__

    stored = {**settings, "storage": _hide_password(external) if external else None,
              "zoo_version": __version__}
    start = time.perf_counter()
    with _study_lock(study_dir), _quiet_optuna(optuna):
        atomic_write_json(study_dir / STUDY_FILE, stored)
        if storage_obj is None:
            storage_obj = _open_storage(f"sqlite:///{(study_dir / DB_FILE).resolve()}")
        study = _create_study(optuna, storage_obj, settings, params)
        if resume is not None:
            _retry_interrupted(study, _worker(study_dir))
        if parent is not None:
            parent.start(study_dir, settings)
        try:
            _optimize(study, study_dir, settings, params, quiet, mlflow)
        except BaseException as exc:
            if parent is not None:
                parent.finish(study_dir, None, exc)
            raise
        from zoo.tuning.report import finish_study

        summary = finish_study(study, study_dir, settings, time.perf_counter() - start, quiet)
    if parent is not None:
        parent.finish(study_dir, summary, None)
    return summary


def _create_study(optuna: Any, storage: Any, settings: dict[str, Any], params: list[Param]) -> Any:
    """Create or join the study; a study of that name tuning something else is refused."""
    name = settings["study_name"]
    attrs = {k: settings[k] for k in ("arch", "data", "metric", "space", "epochs")}
    existing = {s.study_name: s for s in optuna.study.get_all_study_summaries(storage)}
    theirs = existing[name].user_attrs.get("zoo") if name in existing else None
    if theirs is not None and theirs != attrs:
        raise ZooUsageError(
            f"study '{name}' in {_hide_password(storage.url)} tunes {theirs['arch']} on {theirs['data']} "
            f"({theirs['metric']}, epochs {theirs['epochs']}, space {theirs['space']!r}); "
            f"choose another --study-name"
        )
    pruner = _pruner(optuna, settings["pruner"], settings["trials"], settings["epochs"])
    study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True,
                                direction=METRICS[settings["metric"]][1], pruner=pruner)
    # a resumed study must not replay the random draws it already made
    seed = settings["seed"] + len(study.get_trials(deepcopy=False))
    study.sampler = _sampler(optuna, settings["sampler"], params, seed, settings["trials"])
    study.set_user_attr("zoo", attrs)
    return study


def _retry_interrupted(study: Any, worker: str) -> None:
    """Trials this study directory left unfinished (Ctrl-C, a crash): run their parameters again,
    resuming their run directories. This process holds the directory's lock, so a trial of ours
    still marked running is dead."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for t in trials:
        dead = t.state == TrialState.RUNNING and t.user_attrs.get("worker") == worker
        if dead:
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        interrupted = t.state == TrialState.FAIL and t.user_attrs.get("interrupted")
        if (dead or interrupted) and t.number not in retried:
            _enqueue_retry(study, t)


def _worker(study_dir: Path) -> str:
    """This machine and study directory (one process at a time holds it)."""
    import socket

    return f"{socket.gethostname()}:{study_dir.resolve()}"


def _optimize(
    study: Any, study_dir: Path, settings: dict[str, Any], params: list[Param], quiet: bool, mlflow: bool
) -> None:
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    remaining = settings["trials"] - len(study.get_trials(deepcopy=False, states=finished))
    if remaining <= 0:
        return
    interrupts = _Interrupts()
    objective = _Objective(study_dir, settings, params, mlflow, interrupts)
    callbacks = [MaxTrialsCallback(settings["trials"], states=finished)]
    if not quiet:
        callbacks.append(_print_trial(settings["metric"], settings["trials"]))
    try:
        with interrupts.installed():
            study.optimize(objective, n_trials=remaining, timeout=settings.get("timeout"),
                           catch=(TrialFailed,), callbacks=callbacks, gc_after_trial=False)
            interrupts.check()  # Ctrl-C while the last trial was being recorded
    except KeyboardInterrupt:
        number = objective.current
        raise TuneInterrupted(
            f"interrupted{f' in trial {number}' if number is not None else ''}; finished trials are kept in "
            f"{study_dir}; continue with: zoo tune {settings['arch']} --resume {study_dir}"
        ) from None


class _Interrupts:
    """Ctrl-C lands only while a trial trains (zoo.train then keeps a resumable last.pt). While Optuna
    writes its database it waits for the next safe point: SQLite interrupted inside a commit keeps its
    lock, and every later write then fails with "database is locked"."""

    def __init__(self) -> None:
        self.pending = False
        self.deferring = True

    def _handler(self, signum: int, frame: Any) -> None:
        if self.deferring:
            self.pending = True
        else:
            raise KeyboardInterrupt

    def check(self) -> None:
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator[None]:
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
            yield
            return
        previous = signal.signal(signal.SIGINT, self._handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    @contextmanager
    def allowed(self) -> Iterator[None]:
        """Around training: an interrupt raises at once (one that waited, right here)."""
        self.check()
        self.deferring = False
        try:
            yield
        finally:
            self.deferring = True

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Around database writes during training; a waiting interrupt raises after them."""
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        self.check()


class _Objective:
    """One trial: a zoo.train run in STUDY_DIR/trials/, reporting each epoch's figure for pruning."""

    def __init__(self, study_dir: Path, settings: dict[str, Any], params: list[Param], mlflow: bool,
                 interrupts: _Interrupts) -> None:
        self.study_dir, self.settings, self.params, self.mlflow = study_dir, settings, params, mlflow
        self.interrupts = interrupts
        self.worker = _worker(study_dir)
        self.current: int | None = None

    def __call__(self, trial: Any) -> float:
        from optuna import TrialPruned

        from zoo.training.api import train
        from zoo.training.loop import TrainingInterrupted

        s = self.settings
        self.current = trial.number
        values = {p.name: p.choices[0] if p.fixed else p.suggest(trial) for p in self.params}
        options, model_kwargs = split_values(self.params, values)
        resume_dir = trial.user_attrs.get("resume_dir")
        resume = Path(resume_dir) if resume_dir and (Path(resume_dir) / "last.pt").is_file() else None
        run_dir = resume or self.study_dir / TRIALS_DIR / f"trial-{trial.number:03d}"
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("worker", self.worker)
        common = {"on_epoch": lambda row: self._report(trial, row), "quiet": True, "mlflow": self.mlflow}
        if resume is not None:  # the epochs it finished count again for the pruner
            self._replay(trial, resume)
        try:
            with self.interrupts.allowed():
                if resume is not None:
                    run = train(s["arch"], resume=resume, **common)
                else:
                    run = train(s["arch"], s["data"], out=run_dir, model_kwargs=model_kwargs or None,
                                epochs=s["epochs"], seed=s["seed"], **common, **{**s["fixed"], **options})
        except (TrainingInterrupted, KeyboardInterrupt):
            trial.set_user_attr("interrupted", True)
            raise KeyboardInterrupt from None
        except TrialPruned:
            raise
        except ZooError as exc:
            trial.set_user_attr("error", error_head(exc, 300))
            raise TrialFailed(error_head(exc, 300)) from None
        trial.set_user_attr("seconds", run.result["train_seconds"])
        if run.result.get("test"):
            trial.set_user_attr("test_top1", run.result["test"]["top1"])
        return float(run.result["val"][METRICS[s["metric"]][0]])

    def _report(self, trial: Any, row: dict[str, Any]) -> None:
        from optuna import TrialPruned

        key, epoch = self.settings["metric"], int(row["epoch"])
        value = float(row[key])
        with self.interrupts.deferred():
            trial.report(value, epoch)
            trial.set_user_attr("epochs", epoch)
            prune = epoch < self._planned(trial) and trial.should_prune()  # the last epoch saves nothing
        if prune:
            raise TrialPruned(f"pruned after epoch {row['epoch']} ({key} {value:.4g})")

    @staticmethod
    def _planned(trial: Any) -> int:
        config = json.loads((Path(trial.user_attrs["run_dir"]) / "config.json").read_text())
        return int(config["train"]["epochs"])

    def _replay(self, trial: Any, run_dir: Path) -> None:
        import csv

        with (run_dir / "metrics.csv").open(newline="") as fh:
            for row in csv.DictReader(fh):
                trial.report(float(row[self.settings["metric"]]), int(row["epoch"]))
                trial.set_user_attr("epochs", int(row["epoch"]))


def _print_trial(metric: str, total: int) -> Any:
    import sys

    def callback(study: Any, trial: Any) -> None:
        params = " ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
        epochs = trial.user_attrs.get("epochs", 0)
        state = trial.state.name.lower()
        if state == "complete":
            what = f"{metric} {trial.value:.4g} ({epochs} epochs)"
        elif state == "pruned":
            value = trial.intermediate_values.get(epochs, math.nan)
            what = f"pruned after epoch {epochs} ({metric} {value:.4g})"
        else:
            what = f"failed: {trial.user_attrs.get('error', 'error')}"
        print(f"trial {trial.number}: {what}  {params}", file=sys.stderr, flush=True)

    return callback


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


class _ParentRun:
    """``--mlflow``: one parent MLflow run for the study; each trial's zoo.train run nests under it."""

    def __init__(self, arch: str) -> None:
        from zoo.training.tracking import MlflowTracker

        self.tracker = MlflowTracker(f"tune-{arch}")

    def start(self, study_dir: Path, settings: dict[str, Any]) -> None:
        tags = {"zoo.study_dir": str(study_dir.resolve()), "mlflow.runName": study_dir.name}
        self.tracker.call("set_tags", tags)
        self.tracker.call("log_params", {k: v for k, v in settings.items() if k != "fixed"})

    def finish(self, study_dir: Path, summary: StudySummary | None, error: BaseException | None) -> None:
        from zoo.training.tracking import end_status

        if summary is not None and summary.best is not None and summary.best.value is not None:
            self.tracker.call("log_metrics", {f"best_{summary.metric}": summary.best.value,
                                              "trials_pruned": summary.count("pruned")})
        for name in ("best.json", "summary.json", "trials.csv"):
            if (study_dir / name).is_file():
                self.tracker.call("log_artifact", str(study_dir / name))
        self.tracker.active = True  # always try to close the run
        self.tracker.call("end_run", status=end_status(error))
