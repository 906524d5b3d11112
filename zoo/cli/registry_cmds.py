"""`zoo list` and `zoo info`: the registry, sized without allocating weights.

torch is imported only when a size has to be computed (``zoo.analysis`` imports it lazily), so
``zoo --help`` never loads it and ``zoo list`` answered from the summary cache does not either.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import typer

from zoo.errors import ZooError, ZooUsageError
from zoo.output import console
from zoo.registry import unknown_message


def _check_choice(kind: str, value: str | None, known: list[str]) -> None:
    """A --family/--tag that exists nowhere is a typo, not an empty filter."""
    if value is None or value in known:
        return
    raise ZooUsageError(unknown_message(kind, value, known, otherwise=f"known: {', '.join(known)}"))


def list_models(
    patterns: list[str] | None = typer.Argument(None, metavar="PATTERN",
                                                help="fnmatch patterns, e.g. 'resnet*' (any matches)."),
    family: str | None = typer.Option(None, "--family", "-f", help="Only this family."),
    tag: str | None = typer.Option(None, "--tag", "-t", help="Only architectures with this tag."),
    as_json: bool = typer.Option(False, "--json", help="Emit a JSON array with exact numbers."),
) -> None:
    """List architectures with params and MACs at their default size.

    A filter that matches nothing prints nothing on stdout ('[]' with --json), says so on stderr
    and exits 0; an unknown --family or --tag is a typo and exits 2.
    """
    from zoo.analysis import default_summaries, human
    from zoo.catalog import get_spec, list_families
    from zoo.catalog import list_models as registry_list

    every = [get_spec(n) for n in registry_list()]
    _check_choice("family", family, list_families())
    _check_choice("tag", tag, sorted({t for spec in every for t in spec.tags}))
    specs = [get_spec(n) for n in registry_list(include=patterns or None, family=family, tag=tag)]
    failures: dict[str, str] = {}
    summaries = default_summaries(specs, progress=True, failures=failures)
    for spec in specs:  # a broken architecture is a row marked '?' and one warning, never a crash
        if spec.name in failures:
            typer.echo(f"warning: architecture {spec.label()} cannot be built: {failures[spec.name]}; "
                       f"see 'zoo plugins --check {spec.plugin}'", err=True)
    records = [
        {
            "name": spec.name,
            "family": spec.family,
            "params": None if s is None else s.params,
            "macs": None if s is None else s.macs,
            "image_size": spec.image_size,
            "in_channels": spec.in_channels,
            "min_image_size": spec.min_image_size,
            "num_classes": spec.num_classes if s is None else s.num_classes,
            "tags": list(spec.tags),
            "plugin": spec.plugin,
            "paper": spec.paper,
            "family_default": spec.family_default,
            "error": failures.get(spec.name),
        }
        for spec, s in zip(specs, summaries, strict=True)
    ]
    if as_json:
        typer.echo(json.dumps(records, indent=2))
    if not records:
        wanted = [f"pattern {' '.join(patterns)}" if patterns else "", f"family {family}" if family else "",
                  f"tag {tag}" if tag else ""]
        typer.echo(f"no architectures match {', '.join(w for w in wanted if w)}", err=True)
        return
    if as_json:
        return
    from zoo.output import Col, fitted_table

    cols = [Col("name"), Col("family"), Col("params", "right"), Col("MACs", "right", drop=3),
            Col("input", "right", drop=4), Col("classes", "right", drop=5), Col("tags", wrap=16, drop=2),
            Col("plugin", drop=6)]
    rows = [[r["name"], r["family"] + (" *" if r["family_default"] else ""),
             "?" if r["error"] else human(r["params"]), "?" if r["error"] else human(r["macs"]),
             f"{r['in_channels']}x{r['image_size']}x{r['image_size']}",
             str(r["num_classes"]), ", ".join(r["tags"]), r["plugin"]] for r in records]
    defaults = [r for r in records if r["family_default"]]
    caption = (f"* the family's default member: 'zoo train {defaults[0]['family']}' trains "
               f"{defaults[0]['name']}" if defaults else None)
    table = fitted_table(f"zoo architectures ({len(records)}; params and MACs of the published network: "
                         "its input and class count, batch 1)", cols, rows, caption=caption)
    console().print(table)


def info(
    arch: str = typer.Argument(..., help="Architecture name (see 'zoo list')."),
    image_size: int | None = typer.Option(None, "--image-size",
                                          help="Input height and width [default: the arch's]."),
    in_channels: int | None = typer.Option(None, "--in-channels",
                                           help="Input channels [default: the arch's]."),
    num_classes: int | None = typer.Option(None, "--num-classes",
                                           help="Classifier outputs [default: the arch's published head]."),
    depth: int = typer.Option(0, "--depth", help="Open blocks this many levels (0: one row per block)."),
    as_json: bool = typer.Option(False, "--json", help="Emit one JSON object with exact numbers."),
) -> None:
    """Per-block shapes, params, MACs, receptive field and jump of one architecture.

    Rows are conv/pool/linear layers and whole blocks (a residual or inverted-residual block is
    one row); --depth N opens blocks N levels. Totals at the bottom.
    """
    from zoo.analysis import FormulaMismatchWarning, describe, human
    from zoo.catalog import get_spec

    spec = get_spec(arch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FormulaMismatchWarning)  # reported below, once
        report = describe(spec, image_size=image_size, in_channels=in_channels, num_classes=num_classes,
                          depth=depth)
    if as_json:
        typer.echo(json.dumps({"family": spec.family, "plugin": spec.plugin, **report.as_dict()}, indent=2))
    else:
        _print_report(report, spec.family, spec.plugin, human)
    for problem in report.mismatches:
        typer.echo(f"warning: formula mismatch: {problem}", err=True)
    if report.mismatches:
        raise ZooError(f"{len(report.mismatches)} formula mismatch(es) in {report.name}: "
                       "the course formulas disagree with torch")


def _print_report(report: Any, family: str, plugin: str, human: Any) -> None:
    from rich.table import Table

    shape = "x".join(str(d) for d in (1, report.in_channels, report.image_size, report.image_size))
    title = f"{report.name} ({family}, plugin {plugin}): input {shape}, {report.num_classes} classes"
    caption = ("RF: receptive field in input pixels; jump: input pixels between neighbouring outputs; "
               "*: also sees the whole image (global pooling, SE gate)")
    table = Table(title=title, caption=caption)
    for column, justify in (("layer", "left"), ("type", "left"), ("output", "right"), ("params", "right"),
                            ("MACs", "right"), ("RF", "right"), ("jump", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in report.rows:
        out = "x".join(str(d) for d in row.output_shape[1:]) if row.output_shape else "-"
        mark = " *" if row.sees_whole_image else ""
        rf = "-" if row.receptive_field is None else f"{row.receptive_field}{mark}"
        table.add_row("  " * row.depth + row.path, row.type, out, human(row.params) if row.params else "",
                      human(row.macs) if row.macs else "", rf, "-" if row.jump is None else str(row.jump))
    table.add_section()
    rf_total = "-" if report.receptive_field is None else str(report.receptive_field)
    table.add_row("total", "", "x".join(str(d) for d in report.output_shape[1:]), human(report.params),
                  human(report.macs), rf_total, "")
    out = console()
    out.print(table)
    out.print(f"parameters {report.params:,}   MACs {report.macs:,}   receptive field of the last "
                  f"feature map {rf_total} px   formula checks: {report.checked_convs} conv layers, "
                  f"{len(report.mismatches)} mismatches", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("list")(list_models)
    app.command("info")(info)
