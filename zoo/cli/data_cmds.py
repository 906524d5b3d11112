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


def _availability(spec: object) -> bool | str:
    """True/False, or the error of a plugin's broken check (which must not break the listing)."""
    try:
        return bool(spec.is_available())  # type: ignore[attr-defined]
    except Exception as exc:
        return f"error: {type(exc).__name__}"


@data_app.command("list")
def list_datasets(as_json: bool = typer.Option(False, "--json", help="Emit a JSON array.")) -> None:
    """Every registered data set, whether it is available here, and what it is."""
    from zoo.output import Col, fitted_table
    from zoo.plugins import get_host

    rows = [
        {"name": s.name, "available": _availability(s), "classes": s.num_classes, "image_size": s.image_size,
         "channels": s.channels, "plugin": s.plugin, "description": s.description}
        for s in get_host().datasets
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    cols = [Col("name"), Col("available"), Col("classes", "right", drop=1), Col("size", "right", drop=2),
            Col("channels", "right", drop=3), Col("plugin", drop=4), Col("description", wrap=30)]
    table = fitted_table("zoo data sets", cols, [
        [r["name"], "yes" if r["available"] is True else "no" if r["available"] is False else r["available"],
         str(r["classes"] or "?"), f"{r['image_size']}x{r['image_size']}" if r["image_size"] else "?",
         str(r["channels"] or "?"), r["plugin"], r["description"]] for r in rows])
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
