"""`zoo bench`: throughput and latency of one or more models across backends, side by side."""

from __future__ import annotations

import json
from typing import Any

import typer

from zoo.output import console

INPUT_WORDS = {"host": "numpy batch copied in, results copied out on every call",
               "device": "the batch already on the device"}


def _batch_sizes(text: str) -> list[int]:
    from zoo.errors import ZooUsageError

    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ZooUsageError(f"--batch-size takes comma-separated integers, got '{text}'") from None
    if not sizes:
        raise ZooUsageError("--batch-size: give at least one batch size")
    return sizes


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
    batch_size: str = typer.Option("1,8", "--batch-size", help="Comma list of batch sizes."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (CPU artefact backends run on the CPU)."),
    precision: str = typer.Option("fp32", "--precision",
                                  help="fp32 | bf16 | fp16 (autocast; fp16: CUDA only)."),
    channels_last: bool = typer.Option(False, "--channels-last", help="channels_last (torch backends)."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the torch/torchvision backends "
                                 "(compile time reported apart)."),
    mode: str = typer.Option("infer", "--mode", help="infer | train (forward + backward + SGD step)."),
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
    if not targets:
        from zoo.cli import most_recent_run

        targets = [str(most_recent_run("benchmarking"))]
    options = BenchOptions(device=device, precision=precision, channels_last=channels_last, compile=compile,
                           mode=mode, input=input, threads=threads)
    report = bench_report(
        targets, None if backend is None else parse_backends(backend), _batch_sizes(batch_size), options,
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


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
