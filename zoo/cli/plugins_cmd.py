"""`zoo plugins`: every plugin, built-in or installed, what it provides, and load errors."""

from __future__ import annotations

import json

import typer

from zoo.output import console


def plugins(as_json: bool = typer.Option(False, "--json", help="Emit a JSON array.")) -> None:
    """List plugins: version, hooks implemented, what each registered, and load errors."""
    from rich.markup import escape

    from zoo.output import Col, fitted_table
    from zoo.plugins import plugin_records

    records = plugin_records()
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in records], indent=2))
        return
    rows = []
    for r in records:
        provides = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in r.provides.items())
        hooks = ", ".join(h.removeprefix("zoo_register_") for h in r.hooks)
        status = f"[red]error: {escape(r.error)}[/red]" if r.error else "[green]ok[/green]"
        rows.append([escape(r.name), escape(r.version), "built-in" if r.builtin else "installed", hooks,
                     escape(provides), status])
    cols = [Col("plugin"), Col("version", drop=2), Col("kind", drop=1), Col("hooks", drop=3),
            Col("provides", wrap=24), Col("status", wrap=8)]
    table = fitted_table("zoo plugins", cols, rows)
    console().print(table)


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)
