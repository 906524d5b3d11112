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
