"""Console output shared by the commands."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


def console(stderr: bool = False) -> Any:
    """A rich Console; when piped (no terminal) it is wide, so tables never squeeze into 80 columns."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, width=None if Console().is_terminal else 200)


@dataclass(frozen=True)
class Col:
    """A table column: ``drop`` > 0 columns go first (highest first) when the terminal is too narrow;
    ``wrap`` > 0 marks a column that takes the remaining width and folds (descriptions): it is
    counted at most ``wrap`` cells wide when deciding what to drop."""

    header: str
    justify: str = "left"
    drop: int = 0
    wrap: int = 0


def fitted_table(title: str, cols: Sequence[Col], rows: Sequence[Sequence[str]], width: int | None = None,
                 caption: str | None = None) -> Any:
    """A rich Table that fits ``width`` (the console's) without truncating any kept cell: columns
    marked ``drop`` are left out, highest first, until the rest fits; other cells never wrap."""
    from rich.table import Table
    from rich.text import Text

    width = console().width if width is None else width

    def natural(i: int) -> int:
        cells = [Text.from_markup(row[i]).cell_len for row in rows]
        size = max([len(cols[i].header), *cells])
        return (min(size, cols[i].wrap) if cols[i].wrap else size) + 3  # padding and the border

    keep = list(range(len(cols)))
    for i in sorted((i for i in keep if cols[i].drop), key=lambda i: -cols[i].drop):
        if sum(natural(k) for k in keep) + 1 <= width:
            break
        keep.remove(i)
    table = Table(title=title, caption=caption)
    for i in keep:
        c = cols[i]
        fixed = None if c.wrap else natural(i) - 3
        table.add_column(c.header, justify=c.justify, no_wrap=not c.wrap,  # type: ignore[arg-type]
                         overflow="fold" if c.wrap else "ellipsis", min_width=fixed)
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    return table


@contextmanager
def progress_bar(description: str, total: int, enabled: bool = True) -> Iterator[Callable[[], None]]:
    """A transient progress bar on stderr, shown only on a terminal (logs get nothing); yields
    ``advance()``. For the slow first steps a user would otherwise watch in silence."""
    err = console(stderr=True)
    if not enabled or not err.is_terminal:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda: progress.advance(task)


def printable(text: str) -> str:
    """A name from the file system as text that can be shown anywhere: bytes that are not UTF-8
    (held by Python as surrogate escapes) become ``\\xe9``-style escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
