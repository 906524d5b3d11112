"""What the machine is and what a run costs it: the device's name, its matmul peak for a
precision (measured here, in this process, not looked up), peak memory over a timed block, and
how to tell an out-of-memory failure from any other."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from zoo.timing import time_calls, time_calls_cuda

MATMUL_SIZE = {"cuda": 8192, "cpu": 1024}  # large enough to reach the peak, short enough to time


def device_name(device: str) -> str:
    """'NVIDIA H100 80GB HBM3', or the CPU's model name."""
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class Peak:
    """The best rate of an n x n matmul at one precision on one device."""

    precision: str  # as measured: 'tf32' where fp32 convolutions run as TF32 (PyTorch's CUDA default)
    n: int
    tflops: float


def matmul_peak(device: str, precision: str) -> Peak:
    """Best of several n x n matmuls in ``precision``: the practical peak a convolution at that
    precision can be compared with. On CUDA, fp32 convolutions use TF32 when cuDNN allows it
    (PyTorch's default), so the fp32 peak is measured with TF32 matmuls then, and labelled so.
    It runs on torch's current thread count, as the benchmark does."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    n = MATMUL_SIZE[device]
    label = precision
    saved = torch.get_float32_matmul_precision()
    if device == "cuda" and precision == "fp32" and torch.backends.cudnn.allow_tf32:
        torch.set_float32_matmul_precision("high")
        label = "tf32"
    try:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        if device == "cuda":
            seconds = min(time_calls_cuda(lambda _: a @ b, None, repeats=10, warmup=3))
        else:
            seconds = min(time_calls(lambda _: a @ b, None, repeats=5, warmup=1))
    finally:
        torch.set_float32_matmul_precision(saved)
    return Peak(label, n, 2 * n**3 / seconds / 1e12)


class MemoryProbe(Protocol):
    """Peak memory over a block of calls: ``reset()`` before, ``peak_bytes()`` after."""

    kind: str

    def reset(self) -> None: ...

    def peak_bytes(self) -> int | None: ...


class CudaMemory:
    kind = "CUDA max_memory_allocated (every tensor of the process, incl. other backends' models)"

    def reset(self) -> None:
        import torch

        torch.cuda.reset_peak_memory_stats()

    def peak_bytes(self) -> int | None:
        import torch

        return int(torch.cuda.max_memory_allocated())


class ProcessRss:
    """Linux's high-water mark of the process's resident memory (VmHWM), which writing '5' to
    /proc/self/clear_refs resets: the whole process (Python, torch, every model loaded), since
    CPU tensors have no allocator of their own to ask."""

    kind = "process peak RSS (VmHWM, reset before each block; the whole process)"

    def reset(self) -> None:
        Path("/proc/self/clear_refs").write_text("5")

    def peak_bytes(self) -> int | None:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return None


def memory_probe(device: str) -> MemoryProbe | None:
    """The probe for ``device``, or None where peak memory cannot be measured honestly."""
    if device == "cuda":
        return CudaMemory()
    probe = ProcessRss()
    try:
        probe.reset()
        return probe if probe.peak_bytes() is not None else None
    except OSError:  # not Linux, or /proc not writable
        return None


def is_out_of_memory(exc: BaseException) -> bool:
    """A failed allocation (CUDA or CPU), as opposed to any other error."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":  # torch's (CUDA)
        return True
    text = str(exc).lower()  # torch's CPU allocator, onnxruntime's arenas
    return any(s in text for s in ("can't allocate memory", "out of memory", "failed to allocate memory"))
