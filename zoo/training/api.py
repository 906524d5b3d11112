"""``zoo.train``, ``zoo.evaluate``: what the CLI does, as functions a notebook can call.

Everything that can be wrong with the input (options, architecture, data, the run to resume,
``--out``) is checked before the first byte is written, so a failing command never damages an
existing run directory.
"""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from zoo.catalog import get_spec
from zoo.errors import ZooUsageError
from zoo.model_check import check_trainable
from zoo.registry import ArchSpec
from zoo.run import (
    SKIPPED_FILE,
    SPLIT_FILE,
    atomic_write_json,
    build_model,
    claim_run_dir,
    load_model,
    new_run_dir,
    read_json,
)
from zoo.training import distributed
from zoo.training.checkpoint import check_compatible
from zoo.training.config import TrainConfig, family_defaults, resolve_options
from zoo.training.device import check_compile, configure_device, out_of_memory_as_error
from zoo.training.ema import ModelEMA
from zoo.training.loop import LoopState, Parts, fit
from zoo.training.loop import evaluate as evaluate_loader
from zoo.training.new_run import (
    check_new_run,
    check_out,
    input_shape,
    new_run_config,
    source_id,
    write_run_files,
)
from zoo.training.optim import Schedule, build_optimizer
from zoo.training.precision import autocast, resolve_device, resolve_precision
from zoo.training.report import Reporter, plot_confusion
from zoo.training.resume import Prior, load_prior, merge_resume, restore, updated_config
from zoo.training.speed import speed_summary

RESULTS_FILE = "results.json"
EVAL_FILE = "eval.json"


@dataclass
class Run:
    """A finished (or resumed-and-finished) training run."""

    run_dir: Path
    config: dict[str, Any]
    history: list[dict[str, Any]]
    result: dict[str, Any] = field(default_factory=dict)

    def load_model(self, checkpoint: str = "best") -> nn.Module:
        return load_model(self.run_dir, checkpoint)[0]


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
    prior = load_prior(Path(resume), arch) if resume is not None else None
    same_data = prior is not None and data is None  # the run's own data, named by its split record
    if prior is not None:
        cfg = merge_resume(prior, options)
        if model_kwargs is not None and model_kwargs != prior.config.get("model_kwargs", {}):
            raise ZooUsageError(f"model options cannot change on --resume (the run used "
                                f"{prior.config.get('model_kwargs', {})})")
        data = data if data is not None else prior.config["data"]["source"]
    if data is None:
        raise ZooUsageError(
            "--data is required: a directory of class folders or a data set from 'zoo data list'"
        )
    out_dir = check_out(Path(out)) if out is not None else None
    dist = distributed.start(resolve_device(cfg.device))  # None unless torchrun started several processes

    from zoo.data import load_splits

    same_data = same_data or (prior is not None and source_id(data) == prior.config["data"]["source"])
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
    image_size = _image_size(spec, splits, cfg, prior)
    defaults = family_defaults(spec.family, spec.tags, image_size)
    device = dist.device if dist is not None else resolve_device(cfg.device)
    cfg = resolve_options(cfg, defaults, len(splits.train), device=device, image_size=image_size)
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
    config = updated_config(prior, cfg) if prior else new_run_config(spec, data, splits, cfg, model_kwargs)
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
        state = restore(parts, prior.checkpoint, cfg, len(train_loader), prior.run_dir / "last.pt")
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
            write_run_files(run_dir, config, splits, new=prior is None or prior.checkpoint is None)
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


def _image_size(spec: ArchSpec, splits: Any, cfg: TrainConfig, prior: Prior | None) -> int:
    """The run's image size, before config.json exists (the CUDA batch default depends on it)."""
    if prior is not None:
        return int(prior.config["image_size"])
    return input_shape(spec, splits, cfg)[0]


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
    same = data is None or source_id(source) == config["data"]["source"]
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
