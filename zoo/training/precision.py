"""Device and numeric precision: what ``auto`` means on this machine, and the autocast context.

bf16 autocast on CPU only pays off with AVX-512-BF16 (or AMX) and only for some families
(it speeds resnets up and slows mobilenets down on this CPU), so ``auto`` asks both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import torch

from zoo.errors import ZooUsageError


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ZooUsageError("--device cuda: no CUDA device is available (use --device cpu)")
    return device


def cpu_has_bf16() -> bool:
    """True when the CPU executes bf16 natively (AVX-512-BF16 or AMX), where autocast is fast."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        return True
    return torch.backends.cpu.get_cpu_capability() == "AMX"  # type: ignore[attr-defined]


def resolve_precision(precision: str, device: str, family_bf16: bool) -> str:
    """``auto``: AMP on CUDA (bf16 where supported, else fp16); bf16 on CPU where it helps the family."""
    if precision == "auto":
        if device == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if family_bf16 and cpu_has_bf16() else "fp32"
    if precision == "fp16" and device != "cuda":
        raise ZooUsageError("--precision fp16 needs --device cuda (on CPU use bf16 or fp32)")
    if precision == "bf16" and device == "cpu" and not cpu_has_bf16():
        raise ZooUsageError("--precision bf16: this CPU has no AVX-512-BF16; use fp32")
    return precision


def autocast(device: str, precision: str) -> Callable[[], AbstractContextManager[object]]:
    """A factory of autocast contexts (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast(device_type=device, dtype=dtype)
