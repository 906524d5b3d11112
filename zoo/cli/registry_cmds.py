"""`zoo list` and `zoo info` (placeholder until the analysis lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
