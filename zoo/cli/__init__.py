"""The ``zoo`` command: thin Typer commands over the library.

Each subcommand lives in its own module and imports torch only inside its body, so
``zoo --help`` stays fast. Every ``ZooError`` becomes one line on stderr and an exit code:
0 done; 1 the command failed (a check or validation failed, a write failed, training diverged);
2 bad input (an unknown name, a bad option, a missing or malformed file); 130 interrupted.
"""

from __future__ import annotations

import errno
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from zoo.errors import ZooError
from zoo.output import printable

_FILE_SYSTEM_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


class ZooGroup(TyperGroup):
    """Turns library errors into one-line messages instead of tracebacks."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            typer.echo(f"error: {printable(str(exc))}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except OSError as exc:  # a full disk or a refused write that no library code named: still one line
            if exc.errno not in _FILE_SYSTEM_ERRORS:
                raise
            where = f" {exc.filename}" if exc.filename else ""
            typer.echo(f"error: cannot write{where}: {printable(exc.strerror or str(exc))}", err=True)
            raise typer.Exit(1) from None


def _one_line_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> str:
    return f"warning: {message}\n"


app = typer.Typer(
    cls=ZooGroup,
    name="zoo",
    help="A zoo of convolutional image classifiers: list, train, export, predict, bench.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _show_version(value: bool) -> None:
    if value:
        from zoo import __version__

        typer.echo(f"zoo {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """A zoo of convolutional image classifiers: list, train, export, predict, bench."""


def most_recent_run(what: str) -> Path:
    """The most recent run under ./runs, announced on stderr (commands given no run use it)."""
    from zoo.run import latest_run

    run = latest_run()
    typer.echo(f"{what} the most recent run, {run}", err=True)
    return run


def _register_commands() -> None:
    from zoo.cli import bench_cmds, data_cmds, export_cmds, plugins_cmd, registry_cmds, train_cmds, tune_cmds

    registry_cmds.register(app)
    plugins_cmd.register(app)
    export_cmds.register(app)
    train_cmds.register(app)
    tune_cmds.register(app)
    bench_cmds.register(app)
    data_cmds.register(app)


_register_commands()


# OpenMP threads that wait by spinning collapse when another job shares the cores: on the 2-core
# development VM with other work running, 2 intra-op threads trained resnet20 at 15-20 img/s with
# the default policy and 109-145 img/s with PASSIVE, at a cost of 20% when the machine is idle
# (benchmarks/RESULTS.md, "Threads on a busy machine"). libgomp reads it once, when torch loads.
WAIT_POLICY = "PASSIVE"


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)  # before torch is imported; a user's value wins
    warnings.formatwarning = _one_line_warning  # type: ignore[assignment]
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 prints as \xe9, never crashes
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    sys.exit(app())
