"""``zoo bench`` as a library: the same model, side by side in one process, across backends
(zoo's network eagerly or compiled, a plain hand-written loop, torchvision's same-named network,
the TorchScript and ONNX artefacts zoo ships, int8 ONNX, onnxruntime's GPU providers), at a
precision, memory format, mode (inference or a training step) and input placement, on the CPU
or a CUDA GPU. Shared by the CLI and ``benchmarks/``.
"""

from zoo.bench.harness import (
    BACKENDS,
    DEFAULT_BACKENDS,
    DEFAULT_CUDA_BACKENDS,
    FLOPS_PER_MAC,
    INPUTS,
    MODES,
    PRECISIONS,
    BenchReport,
    BenchResult,
    bench,
    bench_report,
    parse_backends,
    plan_backends,
    time_interleaved,
)
from zoo.bench.runners import BenchOptions, Runner
from zoo.timing import percentile, time_calls

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKENDS",
    "DEFAULT_CUDA_BACKENDS",
    "FLOPS_PER_MAC",
    "INPUTS",
    "MODES",
    "PRECISIONS",
    "BenchOptions",
    "BenchReport",
    "BenchResult",
    "Runner",
    "bench",
    "bench_report",
    "parse_backends",
    "percentile",
    "plan_backends",
    "time_calls",
    "time_interleaved",
]
