"""`zoo bench`: throughput and latency of one or more models across backends, side by side."""

from __future__ import annotations

import json

import typer

from zoo.output import console


def _batch_sizes(text: str) -> list[int]:
    from zoo.errors import ZooUsageError

    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ZooUsageError(f"--batch-size takes comma-separated integers, got '{text}'") from None
    if not sizes:
        raise ZooUsageError("--batch-size: give at least one batch size")
    return sizes


def bench(
    targets: list[str] = typer.Argument(..., metavar="ARCH|RUN_DIR...",
                                        help="Architecture names (random weights) or run directories."),
    backend: str = typer.Option("torch,torchscript,onnxruntime,onnxruntime-int8", "--backend", "-b",
                                help="Comma list of torch, torchvision, torchscript, onnxruntime, "
                                     "onnxruntime-int8."),
    batch_size: str = typer.Option("1,8", "--batch-size", help="Comma list of batch sizes."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (artefact backends run on the CPU)."),
    image_size: int | None = typer.Option(None, "--image-size", help="Input size (default: the model's)."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for every backend."),
    repeats: int = typer.Option(20, "--repeats", help="Timed calls per backend and batch (median, p95)."),
    warmup: int = typer.Option(3, "--warmup", help="Untimed calls first."),
    channels_last: bool = typer.Option(False, "--channels-last", help="channels_last (torch backends)."),
    as_json: bool = typer.Option(False, "--json", help="Emit JSON lines instead of a table."),
) -> None:
    """Benchmark models across backends: images/s, p50/p95 latency, speed-up over the first backend."""
    from rich.console import Console
    from rich.table import Table

    from zoo.bench import bench as run_bench
    from zoo.bench import parse_backends

    err = Console(stderr=True)
    results, notes = run_bench(
        targets, parse_backends(backend), _batch_sizes(batch_size), device=device, image_size=image_size,
        threads=threads, repeats=repeats, warmup=warmup, channels_last=channels_last,
        log=None if as_json else (lambda msg: err.print(f"[dim]{msg}[/dim]")),
    )
    for note in notes:
        err.print(f"note: {note}", style="yellow", markup=False)
    if as_json:
        for r in results:
            typer.echo(json.dumps(r.as_dict()))
        return
    table = Table(title=f"zoo bench ({device}, threads={threads or 'default'}, {repeats} repeats)")
    for col in ("model", "backend", "batch", "size", "p50 ms", "p95 ms", "img/s", "speed-up"):
        table.add_column(col, justify="left" if col in ("model", "backend") else "right", no_wrap=True)
    for r in results:
        table.add_row(r.model, r.backend, str(r.batch), str(r.image_size), f"{r.p50_ms:.2f}",
                      f"{r.p95_ms:.2f}", f"{r.images_per_s:.1f}", f"{r.speedup:.2f}x")
    console().print(table)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
