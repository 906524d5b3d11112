"""`zoo data list` and `zoo data export`: the registered data sets and their ImageFolder form."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from zoo.output import console

data_app = typer.Typer(
    help="Built-in and plugin data sets: list them, export them as ImageFolder trees.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _availability(spec: object) -> str:
    try:
        return "yes" if spec.is_available() else "no"  # type: ignore[attr-defined]
    except Exception as exc:  # a plugin's broken check must not break the listing
        return f"error: {type(exc).__name__}"


@data_app.command("list")
def list_datasets(as_json: bool = typer.Option(False, "--json", help="Emit a JSON array.")) -> None:
    """Every registered data set, whether it is available here, and what it is."""
    from rich.table import Table

    from zoo.plugins import get_host

    rows = [
        {"name": s.name, "available": _availability(s), "classes": s.num_classes, "image_size": s.image_size,
         "channels": s.channels, "plugin": s.plugin, "description": s.description}
        for s in get_host().datasets
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="zoo data sets")
    for column in ("name", "available", "classes", "size", "channels", "plugin", "description"):
        table.add_column(column)
    for r in rows:
        size = f"{r['image_size']}x{r['image_size']}" if r["image_size"] else "?"
        table.add_row(r["name"], r["available"], str(r["classes"] or "?"), size, str(r["channels"] or "?"),
                      r["plugin"], r["description"])
    console().print(table)


@data_app.command("export")
def export(
    name: str = typer.Argument(..., help="A data set from 'zoo data list'."),
    directory: Path = typer.Argument(..., help="A new or empty folder: gets DIR/<split>/<class>/*.png."),
    split: str = typer.Option("all", "--split", help="all, train, val or test."),
) -> None:
    """Write a data set as an ImageFolder tree, readable with --data DIR."""
    from zoo.data.export import export_dataset

    counts = export_dataset(name, directory, split)
    written = ", ".join(f"{part} {n:,}" for part, n in counts.items())
    typer.echo(f"wrote {name} to {directory}: {written} images")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
