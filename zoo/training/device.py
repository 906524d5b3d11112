"""What a device needs beyond precision: CUDA switches, the ``--compile`` probe, out-of-memory errors.

Each is small and separate so that the CUDA-only branches are easy to read (and to trust) on a
machine where they cannot run.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from zoo.errors import ZooUsageError, error_head


def configure_device(device: str) -> Callable[[], None]:
    """On CUDA: ``cudnn.benchmark`` (training batches have one fixed shape, so the autotuned kernels
    are reused) and TF32 matmuls for fp32 work. Returns a function restoring the previous settings."""
    if not device.startswith("cuda"):
        return lambda: None
    benchmark, matmul = torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision()
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("high")

    def restore() -> None:
        torch.backends.cudnn.benchmark = benchmark
        torch.set_float32_matmul_precision(matmul)

    return restore


def check_compile(device: str) -> None:
    """Compile and run a two-op function on ``device``: torch.compile defers all its work to the first
    call, so without this probe a missing C++ compiler (CPU) or Triton (CUDA) would surface as a long
    traceback in the middle of epoch 1, after the run directory was written."""
    try:
        probe = torch.compile(lambda x: x * 2 + 1, fullgraph=True, dynamic=False)
        probe(torch.ones(8, device=device))
    except Exception as exc:  # inductor fails in many ways (no compiler, no Triton, old GPU, ...)
        raise ZooUsageError(
            f"--compile: torch.compile does not work on {device} here ({error_head(exc, 160)}); "
            f"train without --compile"
        ) from None


def remove_run(run_dir: Path, keep_dir: bool) -> None:
    """Delete what a failed new run wrote; an ``--out`` directory that existed (empty) stays."""
    if not keep_dir:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for path in run_dir.iterdir():
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


@contextmanager
def out_of_memory_as_error(run_dir: Path, *, arch: str, batch_size: int, epochs_done: Callable[[], int],
                           new_run: bool, keep_dir: bool) -> Iterator[None]:
    """Turn ``torch.cuda.OutOfMemoryError`` into a one-line error that suggests a smaller batch.

    Before any epoch completed nothing in a new run's directory is worth keeping, so it is removed;
    after one, last.pt holds that epoch and the directory stays resumable.
    """
    try:
        yield
    except torch.cuda.OutOfMemoryError:
        smaller = max(1, batch_size // 2)
        done = epochs_done()
        if done == 0 and new_run:
            remove_run(run_dir, keep_dir)
            raise ZooUsageError(
                f"out of GPU memory at batch size {batch_size} before the first epoch completed; "
                f"try --batch-size {smaller} (nothing was kept)"
            ) from None
        raise ZooUsageError(
            f"out of GPU memory at batch size {batch_size} in epoch {done + 1}; {run_dir}/last.pt holds "
            f"epoch {done}: continue with zoo train {arch} --resume {run_dir}, or start again with "
            f"--batch-size {smaller}"
        ) from None
