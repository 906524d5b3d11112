"""User-facing errors: one line of text and an exit code, never a traceback."""

from __future__ import annotations


def error_head(exc: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (its type name if empty), for one-line errors.

    Past ``limit`` characters it ends at the last full sentence that fits (or the last whole word,
    with "..."), never mid-word."""
    text = str(exc).strip()
    head = text.splitlines()[0] if text else type(exc).__name__
    if limit is None or len(head) <= limit:
        return head
    cut = head[:limit]
    sentence = cut.rfind(". ")
    if sentence > 0:
        return cut[: sentence + 1]
    return cut[: cut.rfind(" ")].rstrip(",;:") + "..." if " " in cut else cut


class ZooError(Exception):
    """An error the CLI reports as a single line on stderr."""

    exit_code = 1


class ZooUsageError(ZooError):
    """Bad input from the user (unknown name, invalid number, ...): exit code 2."""

    exit_code = 2


class UnknownNameError(ZooUsageError, KeyError):
    """A name that is not in a registry; the message suggests the closest ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(ZooError):
    """Two plugins registered the same name; the message names both owners."""


class PluginError(ZooError):
    """A plugin failed to load or to register (fatal only with ZOO_STRICT_PLUGINS=1)."""


class BuildError(ZooError):
    """A registered architecture's builder could not be loaded or raised; ``reason`` says why
    without the architecture's name, for tables that already show it."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


class WriteError(ZooError):
    """A file could not be written (full disk, no permission); ``path`` is the file."""

    def __init__(self, message: str, path: object):
        super().__init__(message)
        self.path = path
