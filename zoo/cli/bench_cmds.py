"""`zoo bench`: throughput and latency of one or more models across backends, side by side."""

from __future__ import annotations

import json
from typing import Any

import typer

from zoo.output import console

INPUT_WORDS = {"host": "numpy batch copied in, results copied out on every call",
               "device": "the batch already on the device"}


def _integers(flag: str, text: str) -> list[int]:
    from zoo.errors import ZooUsageError

    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ZooUsageError(f"{flag} takes comma-separated integers, got '{text}'") from None
    if not values:
        raise ZooUsageError(f"{flag}: give at least one number")
    return values


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def bench(
    targets: list[str] | None = typer.Argument(
        None, metavar="[ARCH|RUN_DIR]...",
        help="Architecture names (random weights) or run directories [the most recent run under ./runs]."),
    backend: str | None = typer.Option(
        None, "--backend", "-b",
        help="Comma list of torch, plain, torchvision, torchscript, onnxruntime, onnxruntime-int8, "
             "onnxruntime-cuda, onnxruntime-tensorrt [cpu: torch,torchscript,onnxruntime,onnxruntime-int8; "
             "cuda: torch and onnxruntime's GPU providers where installed; --mode train: torch]."),
    batch_size: str | None = typer.Option(
        None, "--batch-size", help="Comma list of batch sizes [1,8; --mode loader: one, 64]."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (CPU artefact backends run on the CPU)."),
    precision: str = typer.Option("fp32", "--precision",
                                  help="fp32 | bf16 | fp16 (autocast; fp16: CUDA only)."),
    channels_last: bool = typer.Option(False, "--channels-last", help="channels_last (torch backends)."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the torch/torchvision backends "
                                 "(compile time reported apart)."),
    mode: str = typer.Option(
        "infer", "--mode", help="infer | train (forward + backward + SGD step) | loader (the training input "
        "pipeline on --data, per worker count, beside ARCH's step)."),
    data: str | None = typer.Option(None, "--data", "-d", help="--mode loader: image folder or data set."),
    workers: str | None = typer.Option(None, "--workers", help="--mode loader: comma list of DataLoader "
                                       "worker counts [0,1,2,...cores]."),
    pipeline: str = typer.Option("auto", "--pipeline", help="--mode loader: auto | batched | pil."),
    cache: str = typer.Option("off", "--cache", help="--mode loader: off (decode every epoch) | on | auto."),
    input: str = typer.Option("host", "--input", help="host (numpy in, results out on every call) | "
                              "device (the batch already on the device)."),
    image_size: int | None = typer.Option(None, "--image-size", help="Input size (default: the model's)."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for every backend."),
    repeats: int = typer.Option(20, "--repeats", help="Timed calls per backend and batch (median, p95)."),
    warmup: int = typer.Option(3, "--warmup", help="Untimed calls first."),
    as_json: bool = typer.Option(False, "--json", help="Emit JSON lines instead of a table."),
) -> None:
    """Benchmark models across backends: images/s, p50/p95 latency, peak memory, TFLOP/s against
    the device's measured matmul peak, and the ratio to the first backend."""
    from rich.console import Console

    from zoo.bench import BenchOptions, bench_report, parse_backends

    err = Console(stderr=True)
    loader_only = {"--data": data, "--workers": workers}
    if mode == "loader":
        _bench_loader(targets, data, workers, batch_size, pipeline, cache, device, image_size, threads,
                      repeats, as_json)
        return
    if any(v is not None for v in loader_only.values()):
        from zoo.errors import ZooUsageError

        given = [k for k, v in loader_only.items() if v is not None]
        raise ZooUsageError(f"{', '.join(given)} goes with --mode loader")
    if not targets:
        from zoo.cli import most_recent_run

        targets = [str(most_recent_run("benchmarking"))]
    options = BenchOptions(device=device, precision=precision, channels_last=channels_last, compile=compile,
                           mode=mode, input=input, threads=threads)
    report = bench_report(
        targets, None if backend is None else parse_backends(backend),
        _integers("--batch-size", batch_size or "1,8"), options,
        image_size=image_size, repeats=repeats, warmup=warmup,
        log=None if as_json else (lambda msg: err.print(f"[dim]{msg}[/dim]")),
    )
    for note in report.notes:
        err.print(f"note: {note}", style="yellow", markup=False)
    if as_json:
        for r in report.results:
            typer.echo(json.dumps(r.as_dict()))
        return
    _print_table(report, options, repeats)


def _print_table(report: Any, options: Any, repeats: int) -> None:
    from zoo.bench import FLOPS_PER_MAC
    from zoo.output import Col, fitted_table

    first = report.results[0].backend if report.results else "-"
    title = (f"zoo bench: {report.device_name} ({options.device}), {options.mode}, input on "
             f"{options.input}, threads={options.threads or 'default'}, {repeats} repeats")
    compiled = any(r.compiled for r in report.results)
    cols = [Col("model"), Col("backend"), Col("precision"), Col("batch", "right"),
            Col("size", "right", drop=8), Col("p50 ms", "right", drop=7), Col("p95 ms", "right", drop=1),
            Col("img/s", "right"), Col("peak MiB", "right", drop=5), Col("TFLOP/s", "right", drop=6),
            Col("% peak", "right", drop=4), Col(f"x {first}", "right")]
    cols += [Col("compile s", "right", drop=3)] if compiled else []
    rows = []
    for r in report.results:
        precision = r.precision + (" cl" if r.channels_last else "") + (" compiled" if r.compiled else "")
        fraction = None if r.peak_fraction is None else 100 * r.peak_fraction
        rows.append([r.model, r.backend, precision, str(r.batch), str(r.image_size), f"{r.p50_ms:.2f}",
                     f"{r.p95_ms:.2f}", f"{r.images_per_s:.1f}", _num(r.peak_mem_mib, ".0f"),
                     _num(r.tflops, ".3g"), _num(fraction, ".1f"), f"{r.speedup:.2f}"]
                    + ([_num(r.compile_s, ".1f")] if compiled else []))
    table = fitted_table(title, cols, rows)
    out = console()
    out.print(table)
    rule = FLOPS_PER_MAC[options.mode]
    lines = [
        f"input: {options.input} ({INPUT_WORDS[options.input]}); plain always runs on a batch already there.",
        "img/s = batch / median time per call; p95 of per-call times ("
        + ("CUDA events, no synchronisation between calls; onnxruntime: perf_counter"
           if options.device == "cuda" else "perf_counter") + ").",
        f"TFLOP/s = {rule} x MACs x img/s ("
        + ("forward + backward, about 3 forwards" if rule == 6 else "forward") + "); "
        "% peak: of the best matmul at the row's precision, measured in this process: "
        + ("; ".join(report.peaks.values()) or "none"),
        "peak MiB: " + (report.memory or "not measurable here (no /proc/self/clear_refs); left empty"),
    ]
    if any(r.compiled for r in report.results):
        lines.append("compile s: the first call at each batch size (torch.compile, or a TensorRT engine "
                     "build), never inside the timed calls.")
    for line in lines:
        out.print(line, markup=False, highlight=False)


def _bench_loader(targets: list[str] | None, data: str | None, workers: str | None, batch_size: str | None,
                  pipeline: str, cache: str, device: str, image_size: int | None, threads: int | None,
                  repeats: int, as_json: bool) -> None:
    from zoo.bench.loader import bench_loader, verdict
    from zoo.errors import ZooUsageError
    from zoo.output import Col, fitted_table

    if data is None:
        raise ZooUsageError("--mode loader needs --data DIR (an image folder or a data set name)")
    if targets and len(targets) > 1:
        raise ZooUsageError("--mode loader takes one architecture (its input size and training step)")
    sizes = _integers("--batch-size", batch_size or "64")
    if len(sizes) > 1:
        raise ZooUsageError("--mode loader takes one --batch-size")
    counts = None if workers is None else _integers("--workers", workers)
    arch = targets[0] if targets else None
    rows = bench_loader(data, arch=arch, image_size=image_size, batch_size=sizes[0], workers=counts,
                        pipeline=pipeline, cache=cache, batches=repeats, device=device, threads=threads)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row.as_dict()))
        return
    step = rows[0].step_images_per_s
    cols = [Col("workers", "right"), Col("pipeline"), Col("batch", "right"), Col("size", "right"),
            Col("img/s", "right"), Col("img/s per worker", "right")]
    cols += [Col("x model step", "right")] if step else []
    table = fitted_table(
        f"zoo bench: the training loader on {data} ({device}, cache {cache}, {repeats} batches)", cols,
        [[str(r.workers), r.pipeline, str(r.batch), str(r.image_size), f"{r.images_per_s:,.0f}",
          f"{r.per_worker:,.0f}"] + ([f"{r.images_per_s / step:.2f}"] if step else []) for r in rows])
    out = console()
    out.print(table)
    if step:
        out.print(f"model step: {arch}, forward + backward + SGD, batch {sizes[0]} already on the device: "
                  f"{step:,.0f} img/s", markup=False, highlight=False)
    out.print(verdict(rows), markup=False, highlight=False)
    out.print("0 workers: the main process decodes; img/s per worker = img/s / workers.", markup=False,
              highlight=False)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
