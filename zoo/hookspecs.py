"""The hook specifications a zoo plugin can implement.

Each hook receives a ``register`` callback: call it once per thing the plugin provides.
Hooks must stay cheap: no torch import, no model building. Builders are given as
``"package.module:function"`` strings (or callables) and only resolved when a model is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from zoo.registry import ArchSpec, DatasetSpec

PROJECT_NAME = "zoo"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def zoo_register_architectures(register: Callable[[ArchSpec], None]) -> None:
    """Register architectures: ``register(ArchSpec(name=..., family=..., builder="pkg.mod:fn"))``."""


@hookspec
def zoo_register_exporters(register: Callable[[Any], None]) -> None:
    """Register exporters: ``register(MyExporter())`` where the object has ``name``,
    ``suffix``, ``description`` and ``export(...)`` (see ``zoo.export_api.Exporter``)."""


@hookspec
def zoo_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Register built-in, download-free data sets: ``register(DatasetSpec(...))``."""
