"""RESULTS.md, shared by the benchmark scripts that write their own section of it (``--write``)."""

from __future__ import annotations

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
