"""Timing harness shared by ``zoo bench`` and ``benchmarks/``: the same model, side by side in
one process, across backends (PyTorch eager, torchvision's same-named network, the TorchScript
and ONNX artefacts zoo ships, int8 ONNX), in rotating blocks so drift hits all alike, reported
as medians and p95 over repeats.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ZooUsageError
from zoo.timing import percentile, time_calls

BACKENDS = ("torch", "torchvision", "torchscript", "onnxruntime", "onnxruntime-int8")
DEFAULT_BACKENDS = ("torch", "torchscript", "onnxruntime", "onnxruntime-int8")

Runner = Callable[[np.ndarray], Any]


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_backends(text: str) -> list[str]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    for name in names:
        if name not in BACKENDS:
            raise ZooUsageError(f"unknown backend '{name}'; choose from {', '.join(BACKENDS)}")
    if not names:
        raise ZooUsageError("no backend given")
    return list(dict.fromkeys(names))


def _source(target: str, image_size: int | None, num_classes: int) -> tuple[Any, dict[str, Any], str]:
    """(model in eval mode, export config, label) from an architecture name or a run directory."""
    from zoo.registry import get_spec

    path = Path(target)
    if path.exists():
        from zoo.run import load_model

        model, config = load_model(path)
        if image_size is not None:
            from exporters.predictor import input_spec

            config = {**config, "preprocessing": input_spec(config, image_size)}
        return model, config, f"{config['arch']} ({path.name})"
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
    return model, config, spec.name


def _torch_runner(model: Any, device: str, channels_last: bool) -> Runner:
    import torch

    model = model.to(device).eval()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        model = model.to(memory_format=memory_format)

    def run(batch: np.ndarray) -> Any:
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(device).contiguous(memory_format=memory_format)
            out = torch.softmax(model(x), dim=1).cpu().numpy()
        return out

    return run


def _torchvision_model(arch: str, num_classes: int) -> Any | None:
    import torchvision

    if arch not in torchvision.models.list_models(module=torchvision.models):
        return None
    return torchvision.models.get_model(arch, weights=None, num_classes=num_classes).eval()


def _artefact_runner(backend: str, model: Any, config: dict[str, Any], workdir: Path,
                     threads: int | None, calib: np.ndarray) -> Runner:
    from zoo.export_api import ExportOptions, get_exporter

    size = int(config["preprocessing"]["crop"])
    options = ExportOptions(image_size=size, batch_size=2)
    if backend == "torchscript":
        exporter = get_exporter("torchscript")
        path = exporter.export(model, config, workdir / "model.pt", options)
        return exporter.load(path, threads=threads).run
    exporter = get_exporter("onnx")
    fp32 = workdir / "model.onnx"
    if not fp32.exists():
        exporter.export(model, config, fp32, options)
    if backend == "onnxruntime":
        return exporter.load(fp32, threads=threads).run
    from exporters.quantize import quantize_file
    from zoo.export_api import resolve_int8_scheme

    int8 = workdir / "model.int8.onnx"
    quantize_file(fp32, int8, list(calib), per_channel=True, scheme=resolve_int8_scheme("auto"))
    return exporter.load(int8, threads=threads).run


@dataclass
class Prepared:
    """One model ready to time: each backend's ``run(batch)``, and why any were skipped."""

    label: str
    image_size: int
    channels: int
    runners: dict[str, Runner]
    notes: list[str]


def make_runners(target: str, backends: Sequence[str], device: str, image_size: int | None,
                 threads: int | None, channels_last: bool, workdir: Path,
                 num_classes: int = 1000) -> Prepared:
    """Build each backend's ``run(batch)`` for one model (artefacts are written to ``workdir``)."""
    model, config, label = _source(target, image_size, num_classes)
    spec = config["preprocessing"]
    size, channels = int(spec["crop"]), int(spec["channels"])
    calib = np.random.default_rng(0).standard_normal((32, channels, size, size), dtype=np.float32)
    runners: dict[str, Runner] = {}
    notes: list[str] = []
    for backend in backends:
        if backend == "torch":
            runners[backend] = _torch_runner(model, device, channels_last)
        elif backend == "torchvision":
            reference = _torchvision_model(str(config["arch"]), int(config["num_classes"]))
            if reference is None or channels != 3:
                notes.append(f"{label}: torchvision has no '{config['arch']}' (3-channel) to compare with")
                continue
            runners[backend] = _torch_runner(reference, device, channels_last)
        elif device != "cpu":
            notes.append(f"{label}: {backend} is benchmarked on the CPU only")
        else:
            runners[backend] = _artefact_runner(backend, model.cpu(), config, workdir, threads, calib)
    return Prepared(label, size, channels, runners, notes)


def time_interleaved(runners: dict[str, Runner], batch: np.ndarray, repeats: int, warmup: int,
                     sync: Callable[[], None], passes: int = 3) -> dict[str, list[float]]:
    """Seconds per call for each runner: ``passes`` rotations over the runners, each a block of
    calls after one untimed call. Blocks (not single calls) because a runtime's worker threads
    keep spinning briefly after a call and would tax whichever backend ran next; rotation
    because the machine drifts."""
    for run in runners.values():
        for _ in range(warmup):
            run(batch)
    sync()
    names = list(runners)
    passes = max(1, min(passes, repeats))
    per_pass = [repeats // passes + (i < repeats % passes) for i in range(passes)]
    times: dict[str, list[float]] = {name: [] for name in names}
    for p, count in enumerate(per_pass):
        for name in names[p % len(names):] + names[: p % len(names)]:
            times[name] += time_calls(runners[name], batch, count, warmup=1, sync=sync)
    return times


def bench(
    targets: Sequence[str],
    backends: Sequence[str] = DEFAULT_BACKENDS,
    batch_sizes: Sequence[int] = (1, 8),
    device: str = "cpu",
    image_size: int | None = None,
    threads: int | None = None,
    repeats: int = 20,
    warmup: int = 3,
    channels_last: bool = False,
    log: Callable[[str], None] | None = None,
) -> tuple[list[BenchResult], list[str]]:
    """Benchmark each target (architecture name or run directory) across backends."""
    import torch

    say = log or (lambda _msg: None)
    if repeats < 1 or warmup < 0:
        raise ZooUsageError("--repeats must be >= 1 and --warmup >= 0")
    for b in batch_sizes:
        if b < 1:
            raise ZooUsageError(f"batch sizes must be positive integers, got {b}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ZooUsageError("--device cuda: no CUDA device is available")
    if device not in ("cpu", "cuda"):
        raise ZooUsageError(f"--device must be cpu or cuda, got '{device}'")
    if threads is not None:
        if threads < 1:
            raise ZooUsageError(f"--threads must be a positive integer, got {threads}")
        torch.set_num_threads(threads)
    for target in targets:  # fail on a bad name before spending minutes on the good ones
        _check_target(target, image_size)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    results: list[BenchResult] = []
    notes: list[str] = []
    for target in targets:
        with tempfile.TemporaryDirectory(prefix="zoo-bench-") as work:
            say(f"preparing {target} ({', '.join(backends)})")
            prepared = make_runners(target, backends, device, image_size, threads, channels_last, Path(work))
            notes += prepared.notes
            size = prepared.image_size
            for batch_size in batch_sizes:
                rng = np.random.default_rng(batch_size)
                batch = rng.standard_normal((batch_size, prepared.channels, size, size), dtype=np.float32)
                say(f"timing {prepared.label} at batch {batch_size}")
                times = time_interleaved(prepared.runners, batch, repeats, warmup, sync)
                row = []
                for name, values in times.items():
                    p50 = statistics.median(values)
                    row.append(BenchResult(prepared.label, name, device, batch_size, size, threads,
                                           p50 * 1e3, percentile(values, 95) * 1e3, batch_size / p50))
                for r in row:
                    r.speedup = r.images_per_s / row[0].images_per_s
                results += row
    return results, notes



def _check_target(target: str, image_size: int | None) -> None:
    from zoo.analysis import check_sizes
    from zoo.registry import get_spec
    from zoo.run import load_config

    path = Path(target)
    if path.exists():
        load_config(path if path.is_dir() else path.parent)
        return
    spec = get_spec(target)
    if image_size is not None:
        check_sizes(spec, image_size, spec.in_channels, 1)
