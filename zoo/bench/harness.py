"""The timing harness: every backend of one model side by side in one process, in rotating
blocks so drift hits all alike, reported as the median and p95 of per-call times, with peak
memory, achieved TFLOP/s against the device's matmul peak (measured here) and the ratio to the
first backend.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.bench.hardware import Peak, device_name, is_out_of_memory, matmul_peak, memory_probe
from zoo.bench.runners import (
    CPU_ARTEFACTS,
    GPU_PROVIDERS,
    TORCH_BACKENDS,
    BenchOptions,
    Prepared,
    Runner,
    check_backend_use,
    prepare,
    skip_reason,
)
from zoo.errors import ZooError, ZooUsageError, error_head
from zoo.timing import percentile, time_calls, time_calls_cuda

BACKENDS = (*TORCH_BACKENDS, *CPU_ARTEFACTS, *GPU_PROVIDERS)
DEFAULT_BACKENDS = ("torch", "torchscript", "onnxruntime", "onnxruntime-int8")  # --device cpu
DEFAULT_CUDA_BACKENDS = ("torch", *GPU_PROVIDERS)  # the GPU providers only where onnxruntime-gpu is
PRECISIONS = ("fp32", "bf16", "fp16")
MODES = ("infer", "train")
INPUTS = ("host", "device")
FLOPS_PER_MAC = {"infer": 2, "train": 6}  # train: forward + backward (about two forwards) = 3 forwards


@dataclass
class BenchResult:
    """One (model, backend, batch) cell of the table."""

    model: str
    backend: str
    device: str
    batch: int
    image_size: int
    threads: int | None
    p50_ms: float
    p95_ms: float
    images_per_s: float
    speedup: float = 1.0  # images/s relative to the first backend of the same model and batch
    mode: str = "infer"
    precision: str = "fp32"  # what this backend computed in
    input: str = "host"
    channels_last: bool = False
    compiled: bool = False
    compile_s: float | None = None  # its first call at this batch size (compilation), untimed otherwise
    timer: str = "wall"
    peak_mem_mib: float | None = None
    tflops: float | None = None  # FLOPS_PER_MAC[mode] x MACs x images/s
    peak_tflops: float | None = None  # the n x n matmul peak at this precision, measured in this process
    peak_fraction: float | None = None
    device_name: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BenchReport:
    """Rows plus what a reader needs to trust them: notes, how memory and the peak were measured."""

    results: list[BenchResult]
    notes: list[str]
    memory: str | None  # what peak_mem_mib measures, or None where it cannot be measured
    peaks: dict[str, str]  # precision -> 'bf16 8192x8192 matmul: 712.3 TFLOP/s'
    device_name: str


def parse_backends(text: str) -> list[str]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    for name in names:
        if name not in BACKENDS:
            raise ZooUsageError(f"unknown backend '{name}'; choose from {', '.join(BACKENDS)}")
    if not names:
        raise ZooUsageError("no backend given")
    return list(dict.fromkeys(names))


def time_interleaved(runners: dict[str, Runner | Callable[[np.ndarray], Any]], batch: np.ndarray,
                     repeats: int, warmup: int, sync: Callable[[], None], passes: int = 3,
                     probe: Any = None, peaks: dict[str, int] | None = None) -> dict[str, list[float]]:
    """Seconds per call for each runner: ``passes`` rotations over the runners, each a block of
    calls after one untimed call. Blocks (not single calls) because a runtime's worker threads
    keep spinning briefly after a call and would tax whichever backend ran next; rotation
    because the machine drifts. With a memory ``probe``, ``peaks`` gets each runner's highest
    peak over its blocks (bytes)."""
    named = {name: r if isinstance(r, Runner) else Runner(r, "fp32", "host") for name, r in runners.items()}
    for runner in named.values():
        for _ in range(warmup):
            runner.run(batch)
    sync()
    names = list(named)
    passes = max(1, min(passes, repeats))
    per_pass = [repeats // passes + (i < repeats % passes) for i in range(passes)]
    times: dict[str, list[float]] = {name: [] for name in names}
    for p, count in enumerate(per_pass):
        for name in names[p % len(names):] + names[: p % len(names)]:
            if probe is not None:
                probe.reset()
            times[name] += _time_block(named[name], batch, count, sync)
            if probe is not None and peaks is not None:
                peaks[name] = max(peaks.get(name, 0), probe.peak_bytes() or 0)
    return times


def _time_block(runner: Runner, batch: np.ndarray, count: int, sync: Callable[[], None]) -> list[float]:
    if runner.timer == "cuda-events":
        return time_calls_cuda(runner.run, batch, count, warmup=1)
    return time_calls(runner.run, batch, count, warmup=1, sync=sync)


def _source(target: str, image_size: int | None, num_classes: int) -> tuple[Any, dict[str, Any], str, int]:
    """(model in eval mode, export config, label, MACs per image) from an architecture name or a run dir."""
    from zoo.analysis import summarize
    from zoo.catalog import get_spec

    path = Path(target)
    if path.exists():
        from zoo.run import load_model

        model, config = load_model(path)
        if image_size is not None:
            from exporters.predictor import input_spec

            config = {**config, "preprocessing": input_spec(config, image_size)}
        size = int(config["preprocessing"]["crop"])
        macs = summarize(config["arch"], size, int(config["in_channels"]), int(config["num_classes"]),
                         model_kwargs=config.get("model_kwargs")).macs
        return model, config, f"{config['arch']} ({path.name})", macs
    spec = get_spec(target)
    size = image_size or spec.image_size
    model = spec.build(num_classes=num_classes, in_channels=spec.in_channels).eval()
    config = {
        "arch": spec.name,
        "num_classes": num_classes,
        "in_channels": spec.in_channels,
        "classes": [str(i) for i in range(num_classes)],
        "preprocessing": {"resize": size, "crop": size, "channels": spec.in_channels,
                          "mean": [0.5] * spec.in_channels, "std": [0.5] * spec.in_channels},
    }
    return model, config, spec.name, summarize(spec, size, spec.in_channels, num_classes).macs


def _check_options(options: BenchOptions, batch_sizes: Sequence[int], repeats: int, warmup: int) -> None:
    import torch

    if repeats < 1 or warmup < 0:
        raise ZooUsageError("--repeats must be >= 1 and --warmup >= 0")
    for b in batch_sizes:
        if b < 1:
            raise ZooUsageError(f"batch sizes must be positive integers, got {b}")
    if options.device not in ("cpu", "cuda"):
        raise ZooUsageError(f"--device must be cpu or cuda, got '{options.device}'")
    if options.device == "cuda" and not torch.cuda.is_available():
        raise ZooUsageError("--device cuda: no CUDA device is available")
    for flag, value, choices in (("--precision", options.precision, PRECISIONS),
                                 ("--mode", options.mode, MODES), ("--input", options.input, INPUTS)):
        if value not in choices:
            raise ZooUsageError(f"{flag} must be one of {', '.join(choices)}, got '{value}'")
    if options.precision == "fp16" and options.device == "cpu":
        raise ZooUsageError("--precision fp16 needs --device cuda (on the CPU use bf16 or fp32)")
    if options.precision == "bf16" and options.device == "cuda" and not torch.cuda.is_bf16_supported():
        raise ZooUsageError(f"--precision bf16: {torch.cuda.get_device_name()} has no bf16; use fp16")
    if options.threads is not None and options.threads < 1:
        raise ZooUsageError(f"--threads must be a positive integer, got {options.threads}")


def plan_backends(backends: Sequence[str] | None, options: BenchOptions) -> tuple[list[str], list[str]]:
    """(backends to run, notes). Named backends that cannot run are usage errors; defaults that
    cannot run here (onnxruntime's GPU providers without onnxruntime-gpu) are dropped with a note."""
    if backends is not None:
        for backend in backends:
            problem = check_backend_use(backend, options)
            if problem:
                raise ZooUsageError(problem)
        return list(backends), []
    if options.mode == "train":
        return ["torch"], []
    chosen, notes = [], []
    for backend in DEFAULT_CUDA_BACKENDS if options.device == "cuda" else DEFAULT_BACKENDS:
        problem = check_backend_use(backend, options)
        if problem:
            notes.append(f"{problem}; skipped")
        else:
            chosen.append(backend)
    return chosen, notes


def _compile_error(label: str, exc: BaseException) -> ZooUsageError:
    inner = getattr(exc, "inner_exception", None) or exc.__cause__ or exc  # dynamo wraps the real failure
    return ZooUsageError(f"--compile: torch.compile could not compile {label} here: {error_head(inner, 300)}")


def _first_calls(prepared: Prepared, batch: np.ndarray, sync: Callable[[], None]) -> dict[str, float]:
    """Each compiled runner's first call at this batch size (compilation: torch.compile, a
    TensorRT engine), in seconds, so that it never lands in the timed calls."""
    import time

    seconds = {}
    for name, runner in prepared.runners.items():
        if runner.compiled:
            start = time.perf_counter()
            try:
                runner.run(batch)
                sync()
            except Exception as exc:
                if is_out_of_memory(exc):
                    raise
                if name in TORCH_BACKENDS:
                    raise _compile_error(prepared.label, exc) from None
                failure = f"{prepared.label}: {name} failed on its first call: {error_head(exc, 300)}"
                raise ZooError(failure) from None
            seconds[name] = time.perf_counter() - start
    return seconds


def _out_of_memory(label: str, batch: int, options: BenchOptions, fitted: list[int]) -> ZooUsageError:
    where = "GPU" if options.device == "cuda" else "CPU"
    ran = f" (batch {max(fitted)} ran)" if fitted else ""
    return ZooUsageError(f"batch {batch} does not fit in {where} memory for {label} ({options.mode}, "
                         f"{options.precision}){ran}: try a smaller --batch-size")


def bench_report(
    targets: Sequence[str],
    backends: Sequence[str] | None = None,
    batch_sizes: Sequence[int] = (1, 8),
    options: BenchOptions | None = None,
    image_size: int | None = None,
    repeats: int = 20,
    warmup: int = 3,
    num_classes: int = 1000,
    log: Callable[[str], None] | None = None,
) -> BenchReport:
    """Benchmark each target (architecture name or run directory) across backends.

    ``backends=None`` takes the defaults for the device and mode (see ``plan_backends``). Every
    input is checked before anything is built."""
    import torch

    options = options or BenchOptions()
    say = log or (lambda _msg: None)
    _check_options(options, batch_sizes, repeats, warmup)
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    chosen, notes = plan_backends(backends, options)
    for target in targets:  # fail on bad input before spending minutes on the good targets
        arch, channels = _check_target(target, image_size)
        why = [w for b in chosen if (w := skip_reason(b, arch, channels, options))]
        if len(why) == len(chosen):
            raise ZooUsageError(f"{target}: no backend left to run ({'; '.join(why) or 'none given'})")
    probe = memory_probe(options.device)
    name = device_name(options.device)
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = saved or options.device == "cuda"  # fixed shapes: fastest cuDNN kernels
    try:
        before = {p: matmul_peak(options.device, p) for p in (options.precision, "fp32")}
        results, more = _run_targets(targets, chosen, batch_sizes, options, image_size, repeats, warmup,
                                     num_classes, probe, name, say)
        peaks = _add_peaks(results, options, before)
    finally:
        torch.backends.cudnn.benchmark = saved
    return BenchReport(results, notes + more, probe.kind if probe else None, peaks, name)


def _run_targets(targets: Sequence[str], chosen: list[str], batch_sizes: Sequence[int], options: BenchOptions,
                 image_size: int | None, repeats: int, warmup: int, num_classes: int, probe: Any, name: str,
                 say: Callable[[str], None]) -> tuple[list[BenchResult], list[str]]:
    results: list[BenchResult] = []
    notes: list[str] = []
    for target in targets:
        with tempfile.TemporaryDirectory(prefix="zoo-bench-") as work:
            say(f"preparing {target} ({', '.join(chosen)})")
            model, config, label, macs = _source(target, image_size, num_classes)
            try:
                prepared = prepare(label, model, config, macs, chosen, options, Path(work))
            except Exception as exc:
                if is_out_of_memory(exc):
                    raise ZooUsageError(f"{label} does not fit in {options.device} memory") from None
                raise
            notes += prepared.notes
            fitted: list[int] = []
            for batch_size in batch_sizes:
                say(f"timing {prepared.label} at batch {batch_size}")
                results += measure_batch(prepared, batch_size, options, repeats, warmup, probe, name, fitted)
                fitted.append(batch_size)
            del prepared, model
    return results, notes


def measure_batch(prepared: Prepared, batch_size: int, options: BenchOptions, repeats: int, warmup: int,
                  probe: Any = None, name: str = "", fitted: Sequence[int] = ()) -> list[BenchResult]:
    """One row per backend at one batch size; a batch that does not fit in memory is a one-line
    error that says so (and which batch size did fit), never an allocator's traceback."""
    try:
        return _measure(prepared, batch_size, options, repeats, warmup, probe, name)
    except ZooError:
        raise
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        raise _out_of_memory(prepared.label, batch_size, options, list(fitted)) from None


def _measure(prepared: Prepared, batch_size: int, options: BenchOptions, repeats: int, warmup: int,
             probe: Any, name: str) -> list[BenchResult]:
    import torch

    sync = torch.cuda.synchronize if options.device == "cuda" else (lambda: None)
    size = prepared.image_size
    rng = np.random.default_rng(batch_size)
    batch = rng.standard_normal((batch_size, prepared.channels, size, size), dtype=np.float32)
    compile_s = _first_calls(prepared, batch, sync)
    peaks: dict[str, int] = {}
    times = time_interleaved(prepared.runners, batch, repeats, warmup, sync, probe=probe, peaks=peaks)
    row = []
    for backend, values in times.items():
        runner = prepared.runners[backend]
        p50 = statistics.median(values)
        ips = batch_size / p50
        row.append(BenchResult(
            prepared.label, backend, options.device, batch_size, size, options.threads, p50 * 1e3,
            percentile(values, 95) * 1e3, ips,
            mode=options.mode, precision=runner.precision, input=runner.input,
            channels_last=options.channels_last and backend in TORCH_BACKENDS, compiled=runner.compiled,
            compile_s=compile_s.get(backend), timer=runner.timer,
            peak_mem_mib=peaks[backend] / 2**20 if peaks.get(backend) else None,
            tflops=FLOPS_PER_MAC[options.mode] * prepared.macs * ips / 1e12, device_name=name,
        ))
    for r in row:
        r.speedup = r.images_per_s / row[0].images_per_s
    return row


def _add_peaks(results: list[BenchResult], options: BenchOptions, before: dict[str, Peak]) -> dict[str, str]:
    """The matmul peak of each precision the rows ran at: measured again now, after the timed
    calls, and the better of that and the measurement before them is kept (a busy moment can
    only make a measurement slower)."""
    described = {}
    for precision in dict.fromkeys(r.precision for r in results):
        if precision not in PRECISIONS:  # int8: no comparable matmul here
            continue
        peak = max(matmul_peak(options.device, precision), before.get(precision, Peak("", 0, 0.0)),
                   key=lambda p: p.tflops)
        described[precision] = f"{peak.precision} {peak.n}x{peak.n} matmul: {peak.tflops:.3g} TFLOP/s"
        for r in results:
            if r.precision == precision and r.tflops is not None:
                r.peak_tflops = peak.tflops
                r.peak_fraction = r.tflops / peak.tflops
    return described


def bench(
    targets: Sequence[str],
    backends: Sequence[str] | None = None,
    batch_sizes: Sequence[int] = (1, 8),
    device: str = "cpu",
    image_size: int | None = None,
    threads: int | None = None,
    repeats: int = 20,
    warmup: int = 3,
    channels_last: bool = False,
    log: Callable[[str], None] | None = None,
    **options: Any,
) -> tuple[list[BenchResult], list[str]]:
    """``bench_report`` with the options as keywords (precision, compile, mode, input):
    (rows, notes)."""
    settings = BenchOptions(device=device, threads=threads, channels_last=channels_last, **options)
    report = bench_report(targets, backends, batch_sizes, settings, image_size=image_size, repeats=repeats,
                          warmup=warmup, log=log)
    return report.results, report.notes


def _check_target(target: str, image_size: int | None) -> tuple[str, int]:
    """(architecture, input channels) of a target, or a usage error."""
    from zoo.analysis import check_sizes
    from zoo.catalog import get_spec
    from zoo.run import load_config

    path = Path(target)
    if path.exists():
        config = load_config(path if path.is_dir() else path.parent)
        return str(config["arch"]), int(config["in_channels"])
    spec = get_spec(target)
    if image_size is not None:
        check_sizes(spec, image_size, spec.in_channels, 1)
    return spec.name, spec.in_channels


