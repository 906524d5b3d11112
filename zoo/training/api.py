"""``zoo.train``, ``zoo.evaluate``: what the CLI does, as functions a notebook can call.

Everything that can be wrong with the input (options, architecture, data, the run to resume,
``--out``) is checked before the first byte is written, so a failing command never damages an
existing run directory.
"""

from __future__ import annotations

import inspect
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from zoo.catalog import get_spec
from zoo.data.load import DATASET_PREFIX
from zoo.errors import ZooUsageError, error_head
from zoo.model_check import check_trainable
from zoo.registry import ArchSpec
from zoo.run import (
    CLASSES_FILE,
    CONFIG_FILE,
    LOCK_FILE,
    RunLock,
    atomic_write_json,
    atomic_write_text,
    build_model,
    claim_run_dir,
    load_checkpoint,
    load_config,
    load_model,
    new_run_dir,
    read_json,
    stopped_before_first_checkpoint,
)
from zoo.training import distributed
from zoo.training.checkpoint import check_compatible, check_optimizer_fits, check_resumable, set_rng_state
from zoo.training.config import RESUMABLE, TrainConfig, family_defaults, resolve_options
from zoo.training.device import check_compile, configure_device, out_of_memory_as_error
from zoo.training.ema import ModelEMA
from zoo.training.loop import LoopState, Parts, fit
from zoo.training.loop import evaluate as evaluate_loader
from zoo.training.optim import Schedule, build_optimizer
from zoo.training.precision import autocast, resolve_device, resolve_precision
from zoo.training.report import Reporter, plot_confusion
from zoo.training.speed import speed_summary

SPLIT_FILE = "split.json"
SKIPPED_FILE = "skipped.txt"
RESULTS_FILE = "results.json"
EVAL_FILE = "eval.json"
SMALL_INPUT_MAX = 64  # ImageNet-style nets keep their early resolution for images up to this size


@dataclass
class Run:
    """A finished (or resumed-and-finished) training run."""

    run_dir: Path
    config: dict[str, Any]
    history: list[dict[str, Any]]
    result: dict[str, Any] = field(default_factory=dict)

    def load_model(self, checkpoint: str = "best") -> nn.Module:
        return load_model(self.run_dir, checkpoint)[0]


@dataclass
class _Prior:
    run_dir: Path
    config: dict[str, Any]
    checkpoint: dict[str, Any] | None  # None: the run stopped before its first checkpoint
    split_record: dict[str, Any] | None


def train(
    arch: str,
    data: str | Path | None = None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    root: str | Path = "runs",
    model_kwargs: dict[str, Any] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    **options: Any,
) -> Run:
    """Train ``arch`` on ``data`` (an ImageFolder directory or a built-in data set name).

    ``options`` are :class:`TrainConfig` fields (``epochs=3, lr=0.01, ...``); unset ones are chosen
    per family and data. ``resume=RUN_DIR`` continues that run from its last completed epoch.
    ``model_kwargs`` go to the architecture's builder (``se=True``, ``width_mult=0.5``, ...).
    ``on_epoch(row)`` is called with each epoch's metrics.csv row once that epoch is saved; an
    exception it raises (``optuna.TrialPruned`` in ``zoo tune``) ends training there, leaves a
    resumable run directory and propagates to the caller.
    """
    try:
        cfg = TrainConfig(**options).validate()
    except TypeError as exc:
        raise ZooUsageError(f"unknown training option ({exc})") from None
    if model_kwargs is not None and not isinstance(model_kwargs, dict):
        raise ZooUsageError(f"model_kwargs must be a mapping of builder options, got {model_kwargs!r}")
    spec = get_spec(arch)
    picked = f"{arch}: the {arch} family's default member, {spec.name}" if spec.name != arch else None
    arch = spec.name
    if resume is not None and out is not None:
        raise ZooUsageError("--out and --resume cannot be combined (a resumed run stays in its directory)")
    prior = _load_prior(Path(resume), arch) if resume is not None else None
    same_data = prior is not None and data is None  # the run's own data, named by its split record
    if prior is not None:
        cfg = _merge_resume(prior, options)
        if model_kwargs is not None and model_kwargs != prior.config.get("model_kwargs", {}):
            raise ZooUsageError(f"model options cannot change on --resume (the run used "
                                f"{prior.config.get('model_kwargs', {})})")
        data = data if data is not None else prior.config["data"]["source"]
    if data is None:
        raise ZooUsageError(
            "--data is required: a directory of class folders or a data set from 'zoo data list'"
        )
    out_dir = _check_out(Path(out)) if out is not None else None
    dist = distributed.start(resolve_device(cfg.device))  # None unless torchrun started several processes

    from zoo.data import load_splits

    same_data = same_data or (prior is not None and _source_id(data) == prior.config["data"]["source"])
    splits = load_splits(
        data,
        val_split=cfg.val_split,
        seed=cfg.seed,
        split_record=prior.split_record if prior and same_data else None,
        check_images=cfg.check_images,
    )
    if prior is not None:
        check_compatible(prior.config, arch, splits.classes, prior.run_dir)
        if not same_data:
            raise ZooUsageError(
                f"--resume {prior.run_dir}: that run trained on {prior.config['data']['source']}, "
                f"not {data}; leave --data out to continue on the same split"
            )
    if dist is not None:  # a data directory that differs between nodes fails here, on every rank
        dist.agree([list(splits.classes), len(splits.train), len(splits.val)], "data (classes, train, val)")
    defaults = family_defaults(spec.family, spec.tags)
    device = dist.device if dist is not None else resolve_device(cfg.device)
    cfg = resolve_options(cfg, defaults, len(splits.train), device=device,
                          image_size=_image_size(spec, splits, cfg, prior))
    precision = resolve_precision(cfg.precision, device, defaults.cpu_bf16)
    if cfg.compile:
        check_compile(device)
    distributed.check_sync_bn(cfg.sync_bn and dist is not None, device)
    rank_batch = dist.per_rank_batch(int(cfg.batch_size)) if dist is not None else int(cfg.batch_size)  # type: ignore[arg-type]
    if prior is not None:
        c = prior.config
        check_trainable(spec, int(c["image_size"]), int(c["in_channels"]), int(c["num_classes"]),
                        c.get("model_kwargs", {}), batch_size=int(cfg.batch_size), device=device)  # type: ignore[arg-type]
    else:
        check_new_run(spec, splits, cfg, device, model_kwargs)
    config = _updated_config(prior, cfg) if prior else new_run_config(spec, data, splits, cfg, model_kwargs)
    from zoo.data import resolve_pipeline

    pipeline = resolve_pipeline(cfg.pipeline, device, int(config["image_size"]))
    config["runtime"] = {
        "device": device,
        "precision": precision,
        "torch": torch.__version__,
        "threads": cfg.threads or torch.get_num_threads(),
        "pipeline": pipeline,
    }
    _seed_everything(cfg.seed)
    model = build_model(config)

    writer = dist is None or dist.writer  # rank 0 alone writes the run directory and logs
    tracker = None
    if cfg.mlflow and writer:  # started before anything is written: a tracking error leaves no run directory
        from zoo.training.tracking import MlflowTracker

        tracker = MlflowTracker((prior.run_dir if prior else out_dir or Path(arch)).name)
    # -- nothing was written above this line --
    run_dir = prior.run_dir if prior else (out_dir or (new_run_dir(arch, root) if writer else None))
    if dist is not None:
        run_dir = dist.from_rank0(run_dir)
    out_existed = out_dir is not None and out_dir.exists()  # an OOM before epoch 1 leaves it, emptied

    from zoo.data import batch_mixer, make_loaders

    train_loader, val_loader, test_loader = make_loaders(
        distributed.shard_splits(splits, dist, cfg.seed) if dist is not None else splits,
        config["preprocessing"],
        augment=cfg.augment,
        batch_size=rank_batch,
        workers=cfg.workers,
        cache=cfg.cache,
        device=device,
        seed=cfg.seed,
        pipeline=pipeline,
    )
    num_classes = len(splits.classes)
    mixer = batch_mixer(cfg.mixup, num_classes, cfg.mixup_alpha)
    parts = _build_parts(model, cfg, device, precision, len(train_loader), mixer, dist)
    state = LoopState()
    if prior is not None and prior.checkpoint is not None:
        state = _restore(parts, prior.checkpoint, cfg, len(train_loader), prior.run_dir / "last.pt")
    recorder = None
    if cfg.activation_stats and writer:
        from zoo.training.activations import ActivationRecorder

        steps = len(train_loader)
        recorder = ActivationRecorder(parts.model, run_dir, every=cfg.activation_every,
                                      steps_per_epoch=steps, start_step=state.epoch * steps)
    callbacks = [recorder.end_epoch] if recorder is not None else []
    callbacks += [tracker.log_epoch] if tracker is not None else []
    callbacks += [on_epoch] if on_epoch is not None else []
    reporter = Reporter(cfg.quiet or cfg.json or not writer)
    if picked:
        reporter.info(picked)
    if splits.skipped and prior is None:
        reporter.info(f"skipped {len(splits.skipped)} unreadable file(s) (not an image, truncated, ...): "
                      f"the list is in {run_dir / SKIPPED_FILE}")
    if not splits.checked and prior is None:
        reporter.info("images are not all checked up front: an unreadable one is skipped, with a warning, "
                      "when it is first decoded (--check-images decodes every file first)")
    meta = {"arch": arch, "classes": list(splits.classes)}
    reporter.info(
        f"training {arch} on {config['data']['source']} ({len(splits.train)} train / "
        f"{len(splits.val)} val images, {config['image_size']}px, {device} {precision}, batch "
        f"{cfg.batch_size}{f' = {dist.world} processes x {rank_batch}' if dist else ''}, {pipeline} pipeline"
        f"{', data on the device' if train_loader.resident else ''})"
        f" -> {run_dir}"
    )
    if prior is not None:
        done = state.epoch >= int(cfg.epochs)  # type: ignore[arg-type]
        reporter.info(
            f"already trained {state.epoch} of {cfg.epochs} epochs; pass --epochs N to train longer"
            if done
            else f"resuming after epoch {state.epoch} of {cfg.epochs}"
        )
    if tracker is not None:
        tracker.log_config(run_dir, config)
    threads_before = torch.get_num_threads()
    claim = None
    restore_device = configure_device(device)
    start = time.perf_counter()
    try:
        if writer:  # a second process on this directory is refused
            claim = claim_run_dir(run_dir, fresh=prior is None)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        start = time.perf_counter()
        if claim is not None and claim.reused:
            reporter.info(f"{run_dir}: a run stopped before its first checkpoint; starting it afresh")
        if writer:
            _write_run_files(run_dir, config, splits, new=prior is None or prior.checkpoint is None)
        oom = out_of_memory_as_error(run_dir, arch=arch, batch_size=rank_batch,
                                     epochs_done=lambda: state.epoch, new_run=prior is None,
                                     keep_dir=out_existed or not writer)
        with distributed.lost_peers(dist), oom:
            state = fit(
                parts, state, cfg, train_loader, val_loader, run_dir, num_classes, meta, reporter,
                _chain(callbacks),
            )
        seconds = time.perf_counter() - start
        activations, recorder = _close_recorder(recorder, reporter, seconds), None
        # still under --threads: the final evaluation is part of the run the user sized
        with distributed.lost_peers(dist):
            result = _final_report(run_dir, config, splits.classes, state, val_loader, test_loader, device,
                                   dist)
        result.update(train_seconds=seconds, epochs_run=state.epoch, stopped_early=state.stopped_early,
                      speed=speed_summary(state.history, pipeline, train_loader.resident))
        if activations is not None:
            result["activation_stats"] = activations
        if dist is not None:
            result["processes"] = dist.world
        if writer:
            atomic_write_json(run_dir / RESULTS_FILE, result)
        if dist is not None:
            dist.finish()
    except BaseException as exc:
        if tracker is not None:
            tracker.finish(run_dir, None, exc)
        raise
    finally:
        torch.set_num_threads(threads_before)
        restore_device()
        if recorder is not None:  # stopped by an error: still write what was recorded
            _close_recorder(recorder, reporter, time.perf_counter() - start)
        if claim is not None:
            claim.release()
        if dist is not None:
            parts.forward = parts.model  # drop the DDP wrapper (it holds the group) before the group closes
            dist.stop()
    if tracker is not None:
        tracker.finish(run_dir, result, None)
    reporter.summary(result)
    return Run(run_dir, config, state.history, result)


def evaluate(
    run_dir: str | Path,
    data: str | Path | None = None,
    *,
    split: str | None = None,
    checkpoint: str = "best",
    batch_size: int = 256,
    workers: int | None = None,
    quiet: bool = True,
) -> dict[str, Any]:
    """Top-1, top-5, per-class accuracy and confusion matrix of a run on a split; writes eval.json.

    Without ``data`` the run's own data and recorded split are used (``split`` defaults to test when
    the data has one, else val). ``data`` may be another ImageFolder tree or a single folder of class
    folders (all of it is evaluated).
    """
    if split not in (None, "test", "val"):
        raise ZooUsageError(f"--split must be test or val, got {split!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ZooUsageError(f"--batch-size must be a positive integer, got {batch_size!r}")
    model, config = load_model(run_dir, checkpoint)
    run_dir = Path(run_dir) if Path(run_dir).is_dir() else Path(run_dir).parent
    classes = list(config["classes"])
    samples, source, split_name = _eval_samples(run_dir, config, data, split)

    from zoo.data import make_eval_loader

    device = resolve_device("auto")
    loader = make_eval_loader(
        samples, config["preprocessing"], batch_size=batch_size, workers=workers, device=device
    )
    meter = evaluate_loader(model.to(device), loader, len(classes), device=device)
    result = {
        "run_dir": str(run_dir),
        "checkpoint": checkpoint,
        "data": source,
        "split": split_name,
        **meter.summary(classes),
    }
    atomic_write_json(run_dir / EVAL_FILE, result)
    Reporter(quiet).eval_table(result)
    return result


# ---------------------------------------------------------------------------------------------
# resume


def _load_prior(run_dir: Path, arch: str) -> _Prior:
    """The run to resume, checked whole before anything is written. A run killed before its first
    checkpoint (config but no last.pt) resumes from epoch 0 on its recorded options and split."""
    config = load_config(run_dir)
    if config["arch"] != arch:
        raise ZooUsageError(f"--resume {run_dir}: that run trained '{config['arch']}', not '{arch}'")
    last = run_dir / "last.pt"
    split_file = run_dir / config.get("split_file", SPLIT_FILE)
    if not last.is_file():
        if not stopped_before_first_checkpoint(run_dir):
            raise ZooUsageError(f"--resume {run_dir}: no last.pt to resume from")
        record = read_json(split_file, "split record") if split_file.is_file() else None
        return _Prior(run_dir, config, None, record)
    checkpoint = load_checkpoint(last)
    check_resumable(checkpoint, last)
    return _Prior(run_dir, config, checkpoint, read_json(split_file, "split record"))


def _merge_resume(prior: _Prior, options: dict[str, Any]) -> TrainConfig:
    """The run's own options, except the few that may change (``--epochs`` to train longer...)."""
    stored = TrainConfig.from_dict(prior.config["train"])
    merged = stored.to_dict()
    for key, value in options.items():
        if value is None or value == merged.get(key):
            continue
        if key not in RESUMABLE:
            flag = "--" + key.replace("_", "-")
            raise ZooUsageError(
                f"{flag} cannot change on --resume (the run used {merged.get(key)!r}); "
                f"start a new run instead"
            )
        merged[key] = value
    return TrainConfig.from_dict(merged).validate()


def _restore(
    parts: Parts, ckpt: dict[str, Any], cfg: TrainConfig, steps_per_epoch: int, path: Path
) -> LoopState:
    """Load last.pt into the run's parts (before anything is written): what does not fit the
    rebuilt model and optimizer is a usage error naming the checkpoint."""
    try:
        return _load_parts(parts, ckpt, cfg, steps_per_epoch)
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ZooUsageError(f"--resume {path}: does not fit {ckpt.get('arch', 'the model')} as "
                            f"configured ({type(exc).__name__}: {error_head(exc, 200)})") from None


def _load_parts(parts: Parts, ckpt: dict[str, Any], cfg: TrainConfig, steps_per_epoch: int) -> LoopState:
    state = LoopState.from_dict(ckpt["loop"])
    parts.model.load_state_dict(ckpt.get("raw_model", ckpt["model"]))
    if parts.ema is not None and "ema" in ckpt:
        parts.ema.load_state_dict(ckpt["ema"])
    parts.optimizer.load_state_dict(ckpt["optimizer"])
    check_optimizer_fits(parts.optimizer)
    parts.schedule.restore(
        ckpt["scheduler"],
        same_length=int(ckpt["epochs"]) == cfg.epochs,
        epochs_done=state.epoch,
        steps_per_epoch=steps_per_epoch,
    )
    if parts.scaler is not None and "scaler" in ckpt:
        parts.scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])
    if state.stopped_early:  # resuming an early-stopped run means: train on
        state.stopped_early, state.bad_epochs = False, 0
    return state


# ---------------------------------------------------------------------------------------------
# the run directory


def _check_out(out: Path) -> Path:
    """--out must be new, empty, or a run stopped before its first checkpoint (checked again under
    the run's lock before the first write)."""
    if out.exists() and not out.is_dir():
        raise ZooUsageError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and (out / LOCK_FILE).exists():
        RunLock(out).release()  # refused now, with the holder's pid, if another process writes there
    stopped_early = out.is_dir() and stopped_before_first_checkpoint(out)
    if out.is_dir() and any(p.name != LOCK_FILE for p in out.iterdir()) and not stopped_early:
        raise ZooUsageError(f"--out {out}: directory is not empty; choose another or --resume it")
    return out


def _model_kwargs(spec: ArchSpec, image_size: int) -> dict[str, Any]:
    """``small_input`` for ImageNet-style nets on small images (when the builder knows it)."""
    if image_size > SMALL_INPUT_MAX or "imagenet" not in spec.tags:
        return {}
    params = inspect.signature(spec.builder_function()).parameters
    accepts = "small_input" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    return {"small_input": True} if accepts else {}


def _input_shape(spec: ArchSpec, splits: Any, cfg: TrainConfig) -> tuple[int, int]:
    """(image size, channels) of a new run: the options, else from the data and architecture."""
    from zoo.data import default_image_size

    return cfg.image_size or default_image_size(splits.native_size, spec.image_size), (
        cfg.in_channels or splits.channels)


def check_new_run(
    spec: ArchSpec, splits: Any, cfg: TrainConfig, device: str, model_kwargs: dict[str, Any] | None = None
) -> None:
    """The builder contract, the image size and the memory it needs (``check_trainable``), before
    the data is decoded at that size or anything is written."""
    size, channels = _input_shape(spec, splits, cfg)
    kwargs = {**_model_kwargs(spec, size), **(model_kwargs or {})}
    check_trainable(spec, size, channels, len(splits.classes), kwargs,
                    batch_size=int(cfg.batch_size), device=device)  # type: ignore[arg-type]


def new_run_config(
    spec: ArchSpec,
    data: str | Path,
    splits: Any,
    cfg: TrainConfig,
    model_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """config.json of a new run: what rebuilds the model and replays its eval preprocessing."""
    from zoo import __version__
    from zoo.data import eval_preprocessing, norm_stats

    image_size, in_channels = _input_shape(spec, splits, cfg)
    mean, std = norm_stats(cfg.norm, splits.train, in_channels, image_size)
    return {
        "arch": spec.name,
        "num_classes": len(splits.classes),
        "in_channels": in_channels,
        "model_kwargs": {**_model_kwargs(spec, image_size), **(model_kwargs or {})},
        "classes": list(splits.classes),
        "image_size": image_size,
        "preprocessing": eval_preprocessing(image_size, in_channels, mean, std, splits.native_size),
        "data": {
            "source": _source_id(data),
            "channels": splits.channels,
            "native_size": splits.native_size,
            "train": len(splits.train),
            "val": len(splits.val),
            "test": None if splits.test is None else len(splits.test),
            "skipped": len(splits.skipped),
        },
        "split_file": SPLIT_FILE,
        "train": cfg.to_dict(),
        "zoo_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _image_size(spec: ArchSpec, splits: Any, cfg: TrainConfig, prior: _Prior | None) -> int:
    """The run's image size, before config.json exists (the CUDA batch default depends on it)."""
    if prior is not None:
        return int(prior.config["image_size"])
    return _input_shape(spec, splits, cfg)[0]


def _source_id(data: str | Path) -> str:
    """How config.json names the data: an absolute directory path, or the data set name."""
    path = Path(data).expanduser()
    return str(path.resolve()) if path.is_dir() else str(data).removeprefix(DATASET_PREFIX)


def _updated_config(prior: _Prior, cfg: TrainConfig) -> dict[str, Any]:
    return {**prior.config, "train": cfg.to_dict()}


def _write_run_files(run_dir: Path, config: dict[str, Any], splits: Any, new: bool) -> None:
    atomic_write_json(run_dir / CONFIG_FILE, config)
    if not new:
        return
    atomic_write_json(run_dir / CLASSES_FILE, config["classes"])
    atomic_write_json(run_dir / SPLIT_FILE, splits.split_record)
    atomic_write_text(run_dir / SKIPPED_FILE, "".join(f"{f}\t{why}\n" for f, why in splits.skipped))


def _chain(callbacks: list[Callable[[dict[str, Any]], None]]) -> Callable[[dict[str, Any]], None] | None:
    """One on_epoch callback calling each in turn (the caller's last: it may stop the run)."""
    if not callbacks:
        return None

    def call(row: dict[str, Any]) -> None:
        for callback in callbacks:
            callback(row)

    return call


def _close_recorder(recorder: Any, reporter: Reporter, seconds: float) -> dict[str, Any] | None:
    """Write activations.csv/.png, warn about unhealthy layers; the summary for results.json."""
    if recorder is None:
        return None
    from zoo.training.activations import summary_table, warning_text

    findings = recorder.close()
    if not reporter.quiet and recorder.records:
        reporter.err.print(summary_table(recorder.records, findings))
    if findings:
        warnings.warn(warning_text(findings), UserWarning, stacklevel=3)
    return {
        "records": len(recorder.records),
        "every": recorder.every,
        "overhead": recorder.seconds / max(seconds, 1e-9),
        "unhealthy": [vars(f) for f in findings],
    }


def _seed_everything(seed: int) -> None:
    """Same seed, same initial weights and mixup draws (a resume restores the saved RNG states instead)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _build_parts(
    model: nn.Module, cfg: TrainConfig, device: str, precision: str, steps_per_epoch: int, mixer: Any,
    dist: distributed.Dist | None = None,
) -> Parts:
    model = model.to(device)
    channels_last = bool(cfg.channels_last)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if dist is not None:
        model = distributed.convert_sync_bn(model, cfg.sync_bn)
    optimizer = build_optimizer(model, cfg)
    forward = dist.wrap(model) if dist is not None else model
    return Parts(
        model=model,
        forward=torch.compile(forward) if cfg.compile else forward,  # type: ignore[arg-type]
        optimizer=optimizer,
        schedule=Schedule(optimizer, cfg, steps_per_epoch),
        criterion=nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing),
        autocast=autocast(device, precision),
        device=device,
        channels_last=channels_last,
        scaler=torch.amp.GradScaler("cuda") if precision == "fp16" else None,
        ema=ModelEMA(model, cfg.ema_decay) if cfg.ema else None,
        mixer=mixer,
        dist=dist,
    )


def _final_report(
    run_dir: Path,
    config: dict[str, Any],
    classes: list[str],
    state: LoopState,
    val_loader: Any,
    test_loader: Any,
    device: str,
    dist: distributed.Dist | None = None,
) -> dict[str, Any]:
    """The best checkpoint on val (and test) in fp32, as ``zoo eval`` will see it; confusion.png.
    Distributed: rank 0 reads best.pt and sends it; each rank evaluates its share, the counts are summed."""
    writer = dist is None or dist.writer
    model = (load_model(run_dir, "best")[0] if writer else build_model(config)).to(device)
    if dist is not None:
        dist.sync_state(model)
    result: dict[str, Any] = {
        "arch": config["arch"],
        "data": config["data"]["source"],
        "run_dir": str(run_dir),
        "best_epoch": state.best_epoch,
        "best_val_loss": state.best_loss,
    }
    for name, loader in (("val", val_loader), ("test", test_loader)):
        if loader is not None:
            meter = evaluate_loader(model, loader, len(classes), device=device)
            result[name] = (dist.reduce_meter(meter) if dist is not None else meter).summary(classes)
    shown = "test" if test_loader is not None else "val"
    if writer:
        plot_confusion(
            run_dir / "confusion.png",
            result[shown]["confusion"],
            classes,
            f"{config['arch']}: {shown} split, top-1 {100 * result[shown]['top1']:.2f}%",
        )
    return result


def _eval_samples(
    run_dir: Path, config: dict[str, Any], data: str | Path | None, split: str | None
) -> tuple[Any, str, str]:
    """(samples, source, split name): the run's recorded split, another tree, or one class-folder set."""
    from zoo.data import load_imagefolder_set, load_splits

    source = config["data"]["source"] if data is None else str(data)
    path = Path(source).expanduser()
    if data is not None and path.is_dir() and not _has_split_folders(path):
        samples, _ = load_imagefolder_set(path, classes=list(config["classes"]))
        return samples, str(path.resolve()), "all"
    same = data is None or _source_id(source) == config["data"]["source"]
    record = read_json(run_dir / config.get("split_file", SPLIT_FILE), "split record") if same else None
    splits = load_splits(source, seed=int(config["train"].get("seed", 0)), split_record=record)
    if list(splits.classes) != list(config["classes"]):
        raise ZooUsageError(
            f"{source}: its classes {splits.classes[:5]}... do not match the run's {config['classes'][:5]}..."
        )
    name = split or ("test" if splits.test is not None else "val")
    samples = splits.test if name == "test" else splits.val
    if samples is None:
        raise ZooUsageError(f"{source} has no test split; use --split val")
    return samples, source, name


def _has_split_folders(path: Path) -> bool:
    return any((path / name).is_dir() for name in ("train", "val", "valid", "test"))
