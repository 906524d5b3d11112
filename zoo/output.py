"""Console output shared by the commands."""

from __future__ import annotations

from typing import Any


def console(stderr: bool = False) -> Any:
    """A rich Console; when piped (no terminal) it is wide, so tables never squeeze into 80 columns."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, width=None if Console().is_terminal else 200)
