"""Timing primitives: the one way zoo times a call, shared by ``zoo bench``, the int8 gate in
``exporters/`` and ``benchmarks/``. It imports nothing from zoo, so every caller can import it
without pulling in the bench harness (which itself builds exporters)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def time_calls(run: Callable[[Any], Any], arg: Any, repeats: int, warmup: int = 1,
               sync: Callable[[], None] = lambda: None) -> list[float]:
    """Wall-clock seconds of each of ``repeats`` calls ``run(arg)``, after ``warmup`` untimed ones
    (which also absorb whatever the previous workload left running); ``sync`` after each call
    waits for asynchronous work."""
    for _ in range(warmup):
        run(arg)
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(arg)
        sync()
        times.append(time.perf_counter() - start)
    return times


def time_calls_cuda(run: Callable[[Any], Any], arg: Any, repeats: int, warmup: int = 1) -> list[float]:
    """Seconds of each of ``repeats`` calls as the GPU saw them: a CUDA event recorded on the
    current stream before and after each call, read once all calls are done. The host is never
    made to wait between calls, so launches overlap execution as in a real loop; the intervals
    tile the stream's timeline, and a call that is bound by the host's launch rate shows as such."""
    import torch

    for _ in range(warmup):
        run(arg)
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(repeats)]
    torch.cuda.synchronize()
    for start, end in events:
        start.record()
        run(arg)
        end.record()
    torch.cuda.synchronize()
    return [start.elapsed_time(end) / 1e3 for start, end in events]

