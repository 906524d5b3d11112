"""`zoo plugins`: every plugin, built-in or installed, what it provides, and load errors;
`zoo plugins --check [NAME]`: the conformance checks of ``zoo.testing`` as a table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from zoo.errors import ZooError
from zoo.output import console


def plugins(
    name: str | None = typer.Argument(None, help="A plugin (or, with --check, also an architecture)."),
    check: bool = typer.Option(False, "--check", help="Run the conformance checks (zoo.testing) on NAME's "
                               "architectures, or on every architecture; exit 1 if any fails."),
    quick: bool = typer.Option(False, "--quick", help="With --check: only the checks that build nothing "
                               "real (meta device): spec, build, sizes, options, counts, formulas, "
                               "torch-free."),
    as_json: bool = typer.Option(False, "--json", help="Emit a JSON array."),
) -> None:
    """List plugins: version, hooks implemented, what each registered, and load errors."""
    if check:
        _check(name, quick, as_json)
        return
    from rich.markup import escape

    from zoo.output import Col, fitted_table
    from zoo.plugins import plugin_records
    from zoo.registry import unknown_message

    records = plugin_records()
    if name is not None:
        if name not in {r.name for r in records}:
            from zoo.errors import ZooUsageError

            raise ZooUsageError(unknown_message("plugin", name, [r.name for r in records],
                                                otherwise="see 'zoo plugins'"))
        records = [r for r in records if r.name == name]
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


def _targets(name: str | None) -> list[str]:
    """Architectures to check: NAME's (a plugin, else an architecture), or every one."""
    from zoo.catalog import get_spec, list_models
    from zoo.plugins import get_host
    from zoo.testing import plugin_architectures

    if name is None:
        return list_models()
    if name in get_host().records:
        return plugin_architectures(name)
    return [get_spec(name).name]  # unknown names suggest the closest


def _check(name: str | None, quick: bool, as_json: bool) -> None:
    from zoo.testing import CHECKS, QUICK, check_architecture, failures

    checks = QUICK if quick else tuple(CHECKS)
    targets = _targets(name)
    results = []
    out = console(stderr=True)
    for i, arch in enumerate(targets, 1):
        if out.is_terminal:  # progress for a person; logs and pipes get the table alone
            out.print(f"checking {arch} ({i}/{len(targets)})", highlight=False)
        results.extend(check_architecture(arch, checks))
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        _table(results, checks)
    failed = failures(results)
    if failed:
        # the torch-free check is the plugin's, shown on each of its rows but named once
        names = list(dict.fromkeys(f"plugin '{r.plugin}' {r.check}" if r.check == "torch-free"
                                   else f"{r.arch} {r.check}" for r in failed))
        named = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise ZooError(f"{len(failed)} of {len(results)} conformance checks failed: {named}")


def _table(results: list[Any], checks: tuple[str, ...]) -> None:
    from rich.markup import escape
    from rich.table import Table

    cells: dict[tuple[str, str], Any] = {(r.arch, r.check): r for r in results}
    rows = list(dict.fromkeys((r.arch, r.plugin) for r in results))
    table = Table(title=f"zoo conformance checks ({len(rows)} architectures)")
    table.add_column("architecture")
    table.add_column("plugin")
    for check in checks:
        table.add_column(check, justify="center")
    marks = {"pass": "[green]pass[/green]", "fail": "[red bold]FAIL[/red bold]", "skip": "-"}
    for arch, plugin in rows:
        table.add_row(arch, plugin, *(marks[cells[arch, c].status] if (arch, c) in cells else ""
                                      for c in checks))
    out = console()
    out.print(table)
    for r in results:
        if r.status == "fail":
            out.print(f"FAIL {r.arch} {r.check}: {escape(r.detail)}", highlight=False, soft_wrap=True)


plugin_app = typer.Typer(help="Write a new plugin package.", no_args_is_help=True, rich_markup_mode=None)


@plugin_app.command("new")
def new(
    name: str = typer.Argument(..., help="Plugin name (entry point): lowercase letters, digits, '_', '-'."),
    directory: Path = typer.Option(Path("."), "--dir", help="Where the zoo-NAME folder goes."),
) -> None:
    """Scaffold zoo-NAME/: pyproject with the entry point, an example architecture, the hook module,
    a test using zoo.testing, a README and a CI workflow."""
    from zoo.scaffold import new_plugin

    made = new_plugin(name, directory)
    typer.echo(f"wrote {made.path}: plugin '{made.plugin}', architecture '{made.architecture}'")
    typer.echo(f"next: pip install --no-deps -e {made.path} && zoo plugins --check {made.plugin}")


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)
    app.add_typer(plugin_app, name="plugin")
