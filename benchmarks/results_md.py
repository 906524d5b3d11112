"""RESULTS.md, shared by the benchmark scripts that write their own section of it (``--write``)."""

from __future__ import annotations

import platform
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def write_section(section: str, text: str) -> None:
    """Replace (or append) the section headed ``section`` with ``text``, leaving the others alone."""
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    start = old.find(section)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = old.find("\n## ", start + len(section))
        new = old[:start] + text + ("" if end < 0 else old[end:])
    RESULTS.write_text(new)


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name and int8 dot-product instructions, for a section's machine line.

    int8 speed, and whether 8-bit weights saturate, depend on VNNI (README, "int8"), and these VMs
    change CPU between sessions; ``platform.processor()`` is empty on Linux.
    """
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()

    def field(key: str) -> str:
        return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(key)), "")

    flags = set(field("flags").split())
    isa = ("AVX-512 VNNI" if "avx512_vnni" in flags else "AVX-VNNI" if "avx_vnni" in flags
           else "AVX2, no VNNI" if "avx2" in flags else "")
    name = field("model name") or platform.machine()
    return f"{name} ({isa})" if isa else name
