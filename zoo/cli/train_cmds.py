"""`zoo train`, `zoo eval` and `zoo lr-find`: thin wrappers over zoo.training.

Every option defaults to ``None`` = "not given", so the library can tell a choice from a default:
unset options are picked per architecture family and data, and ``--resume`` knows which options
the user tried to change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

_EPILOG = (
    "Unset options are chosen per architecture family and data set: see the README, \"Training and "
    "evaluation\" (defaults table)."
)


def _given(**options: Any) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not None}


def _command_line(ctx: typer.Context, skip: str) -> list[str]:
    """The arguments of this command as given (defaults included), less option ``skip``: what each
    process that ``--nproc`` starts is run with."""
    args: list[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.name == skip or value is None:
            continue
        if param.param_type_name == "argument":
            args.insert(0, str(value))
        elif getattr(param, "is_flag", False):
            if value or param.secondary_opts:  # type: ignore[attr-defined]
                args.append(param.opts[0] if value else param.secondary_opts[0])  # type: ignore[attr-defined]
        else:
            args += [param.opts[0], str(value)]
    return args


def register(app: typer.Typer) -> None:
    @app.command("train", epilog=_EPILOG)
    def train_cmd(
        ctx: typer.Context,
        arch: str | None = typer.Argument(
            None, help="Architecture name (see 'zoo list'); may come from --config."
        ),
        data: str | None = typer.Option(
            None, "--data", "-d", help="ImageFolder directory or built-in data set (see 'zoo data list')."
        ),
        config: Path | None = typer.Option(
            None, "--config", help="JSON of options (e.g. zoo tune's best.json); flags override it."
        ),
        out: Path | None = typer.Option(None, "--out", "-o", help="Run directory (default runs/<arch>-<n>)."),
        resume: Path | None = typer.Option(None, "--resume", help="Continue this run from its last.pt."),
        root: Path = typer.Option(Path("runs"), "--runs-dir", help="Where new run directories go."),
        epochs: int | None = typer.Option(
            None, "--epochs", "-e", help="Epochs (default 30, fewer for big data)."
        ),
        batch_size: int | None = typer.Option(None, "--batch-size", "-b", help="Batch size."),
        optimizer: str | None = typer.Option(None, "--optimizer", help="sgd | adam | adamw."),
        lr: float | None = typer.Option(None, "--lr", help="(Peak) learning rate."),
        weight_decay: float | None = typer.Option(None, "--weight-decay", help="Weight decay."),
        momentum: float | None = typer.Option(None, "--momentum", help="SGD momentum [0.9]."),
        nesterov: bool | None = typer.Option(None, "--nesterov/--no-nesterov", help="Nesterov SGD [on]."),
        scheduler: str | None = typer.Option(
            None, "--scheduler", help="onecycle | cosine | step | plateau | none [onecycle]."
        ),
        warmup_epochs: float | None = typer.Option(None, "--warmup-epochs", help="Cosine warm-up [1]."),
        step_size: int | None = typer.Option(None, "--step-size", help="Epochs per step (step) [10]."),
        gamma: float | None = typer.Option(None, "--gamma", help="LR factor (step, plateau) [0.1]."),
        label_smoothing: float | None = typer.Option(None, "--label-smoothing", help="[0.1]."),
        ema: bool | None = typer.Option(None, "--ema/--no-ema", help="Evaluate an EMA of the weights [off]."),
        ema_decay: float | None = typer.Option(None, "--ema-decay", help="[0.999]."),
        clip_grad: float | None = typer.Option(None, "--clip-grad", help="Max gradient norm, 0 = off [0]."),
        patience: int | None = typer.Option(
            None, "--patience", help="Stop after this many epochs without a lower val loss, 0 = off [5]."
        ),
        mixup: str | None = typer.Option(None, "--mixup", help="mixup | cutmix | mixup,cutmix [off]."),
        mixup_alpha: float | None = typer.Option(None, "--mixup-alpha", help="[1.0]."),
        augment: str | None = typer.Option(
            None, "--augment", help="none | light | standard | randaugment | trivialaugment [standard]."
        ),
        image_size: int | None = typer.Option(
            None, "--image-size", help="Crop size (default from arch and data)."
        ),
        in_channels: int | None = typer.Option(
            None, "--in-channels", help="Model input channels (default: data's)."
        ),
        norm: str | None = typer.Option(None, "--norm", help="dataset | imagenet | half [dataset]."),
        val_split: float | None = typer.Option(
            None, "--val-split", help="Held-out fraction without a val dir [0.2]."
        ),
        seed: int | None = typer.Option(None, "--seed", help="[0]."),
        workers: int | None = typer.Option(
            None, "--workers", help="Data loader workers (default: CPU count)."
        ),
        threads: int | None = typer.Option(
            None, "--threads", help="Intra-op CPU threads for this run (default: torch's, the core count)."
        ),
        cache: str | None = typer.Option(None, "--cache", help="auto | on | off [auto]."),
        check_images: bool | None = typer.Option(
            None, "--check-images/--no-check-images", help="Decode every image of a folder before training, "
            "listing unreadable ones in skipped.txt [auto: folders up to 10,000 files; larger ones skip a "
            "bad file with a warning when it is first decoded]."
        ),
        pipeline: str | None = typer.Option(
            None,
            "--pipeline",
            help="auto | batched | pil: augment batched on the training device, or per image in PIL "
            "workers [auto: batched on CUDA and for images up to 64 px].",
        ),
        device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda [auto]."),
        precision: str | None = typer.Option(None, "--precision", help="auto | fp32 | bf16 | fp16 [auto]."),
        channels_last: bool | None = typer.Option(
            None, "--channels-last/--no-channels-last", help="[per family]."
        ),
        compile: bool | None = typer.Option(None, "--compile/--no-compile", help="torch.compile [off]."),
        quiet: bool | None = typer.Option(None, "--quiet", "-q", help="No progress output."),
        as_json: bool | None = typer.Option(None, "--json", help="Print the result as JSON on stdout."),
        mlflow: bool | None = typer.Option(None, "--mlflow", help="Log params and metrics to MLflow."),
        activation_stats: bool | None = typer.Option(
            None, "--activation-stats", help="Per-layer activation statistics: activations.csv/.png [off]."
        ),
        activation_every: int | None = typer.Option(
            None, "--activation-every", help="Record activation statistics every this many steps [10]."
        ),
        nproc: int | None = typer.Option(
            None, "--nproc", help="Train with N processes on this machine (torchrun --standalone "
            "--nproc-per-node N); --batch-size is then the global batch [1]."
        ),
        sync_bn: bool | None = typer.Option(
            None, "--sync-bn", help="With several processes: BatchNorm statistics over the global batch "
            "(CUDA only) [off]."
        ),
    ) -> None:
        """Train ARCH (a name, or a family such as 'vgg' for its default member) on an image folder
        or a built-in data set; writes a run directory. --quiet prints only the run directory."""
        from zoo.catalog import get_spec
        from zoo.errors import ZooUsageError
        from zoo.training.config import TrainConfig

        options = _given(
            epochs=epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            nesterov=nesterov,
            scheduler=scheduler,
            warmup_epochs=warmup_epochs,
            step_size=step_size,
            gamma=gamma,
            label_smoothing=label_smoothing,
            ema=ema,
            ema_decay=ema_decay,
            clip_grad=clip_grad,
            patience=patience,
            mixup=mixup,
            mixup_alpha=mixup_alpha,
            augment=augment,
            image_size=image_size,
            in_channels=in_channels,
            norm=norm,
            val_split=val_split,
            seed=seed,
            workers=workers,
            threads=threads,
            cache=cache,
            check_images=check_images,
            pipeline=pipeline,
            device=device,
            precision=precision,
            channels_last=channels_last,
            compile=compile,
            quiet=quiet,
            json=as_json,
            mlflow=mlflow,
            activation_stats=activation_stats,
            activation_every=activation_every,
            sync_bn=sync_bn,
        )
        model_kwargs = None
        if config is not None:
            from zoo.training.config_file import merge_train_config

            arch, data, model_kwargs, options = merge_train_config(config, arch, data, options)
        if arch is None:
            raise ZooUsageError("missing ARCH: name an architecture (or give --config FILE with an \"arch\")")
        get_spec(arch)  # a mistyped name or option fails here, before torch is imported
        TrainConfig(**options).validate()
        if nproc is not None and nproc != 1:
            from zoo.training.launch import launch_local

            launch_local(nproc, _command_line(ctx, skip="nproc"), batch_size=options.get("batch_size"),
                         sync_bn=bool(options.get("sync_bn")), device=options.get("device"))
            return
        from zoo.training.api import train
        from zoo.training.distributed import env_rank, exit_now, launched

        run = train(arch, data, out=out, resume=resume, root=root, model_kwargs=model_kwargs, **options)
        if env_rank() != 0:  # under torchrun rank 0 alone prints the result
            exit_now(0)
        if as_json:
            typer.echo(json.dumps(run.result))
        elif quiet:
            typer.echo(str(run.run_dir))  # scripts chain: zoo export "$(zoo train ... --quiet)"
        if launched():
            exit_now(0)  # everything is written: skip the interpreter teardown (see exit_now)

    @app.command("eval")
    def eval_cmd(
        run_dir: Path | None = typer.Argument(
            None, help="A run directory (or a .pt file inside one) [default: the most recent run in ./runs]."
        ),
        data: str | None = typer.Option(
            None,
            "--data",
            "-d",
            help="Other data: an ImageFolder tree, one folder of class folders, "
            "or a data set name (default: the run's own, same split).",
        ),
        split: str | None = typer.Option(None, "--split", help="test | val (default: test if present)."),
        checkpoint: str = typer.Option("best", "--checkpoint", help="best | last."),
        batch_size: int = typer.Option(256, "--batch-size", "-b"),
        workers: int | None = typer.Option(None, "--workers"),
        as_json: bool = typer.Option(False, "--json", help="Print eval.json on stdout instead of a table."),
    ) -> None:
        """Top-1, top-5, per-class accuracy and confusion matrix; writes RUN_DIR/eval.json."""
        from zoo.training.api import evaluate

        if run_dir is None:
            from zoo.cli import most_recent_run

            run_dir = most_recent_run("evaluating")
        result = evaluate(
            run_dir,
            data,
            split=split,
            checkpoint=checkpoint,
            batch_size=batch_size,
            workers=workers,
            quiet=as_json,
        )
        if as_json:
            typer.echo(json.dumps(result))

    @app.command("lr-find")
    def lr_find_cmd(
        arch: str = typer.Argument(..., help="Architecture name."),
        data: str = typer.Option(..., "--data", "-d", help="ImageFolder directory or built-in data set."),
        start_lr: float = typer.Option(1e-6, "--start-lr"),
        end_lr: float = typer.Option(10.0, "--end-lr"),
        steps: int = typer.Option(100, "--steps", help="Batches in the sweep."),
        plot: Path | None = typer.Option(None, "--plot", help="Loss-vs-lr plot [runs/lr-find-<arch>.png]."),
        optimizer: str | None = typer.Option(None, "--optimizer", help="sgd | adam | adamw [per family]."),
        batch_size: int | None = typer.Option(None, "--batch-size", "-b"),
        image_size: int | None = typer.Option(None, "--image-size"),
        augment: str | None = typer.Option(None, "--augment"),
        workers: int | None = typer.Option(None, "--workers"),
        device: str | None = typer.Option(None, "--device"),
        as_json: bool = typer.Option(False, "--json", help="Print lrs, losses and the suggestion as JSON."),
    ) -> None:
        """The learning-rate range test: a loss-vs-lr plot and a suggested --lr."""
        from zoo.training.lr_find import lr_find

        result = lr_find(
            arch,
            data,
            start_lr=start_lr,
            end_lr=end_lr,
            steps=steps,
            plot=plot or Path("runs") / f"lr-find-{arch}.png",
            progress=not as_json,
            **_given(
                optimizer=optimizer,
                batch_size=batch_size,
                image_size=image_size,
                augment=augment,
                workers=workers,
                device=device,
            ),
        )
        if as_json:
            typer.echo(json.dumps(result))
        else:
            typer.echo(
                f"suggested --lr {result['suggested']:.3g} ({result['optimizer']}, batch "
                f"{result['batch_size']}; lowest loss at {result['lowest_loss_lr']:.3g}); "
                f"plot: {result['plot']}"
            )
