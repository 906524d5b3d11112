"""The package's query API over the loaded plugins: ``list_models``, ``get_spec``, ``get_model``,
``list_families`` (re-exported by ``zoo``).

It sits above both the registry (``zoo.registry``: the spec types, which know nothing of plugins)
and the plugin host (``zoo.plugins``: what fills the registries), so neither reaches up for the
other. The host is imported on first call: ``import zoo`` loads no plugin.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from zoo.errors import ZooUsageError

if TYPE_CHECKING:
    from torch import nn

    from zoo.registry import ArchSpec, Registry


def _architectures() -> Registry[ArchSpec]:
    from zoo.plugins import get_host

    return get_host().architectures


def _patterns(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def list_models(
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    family: str | None = None,
    tag: str | None = None,
) -> list[str]:
    """Sorted architecture names matching fnmatch ``include`` patterns (a family name includes the
    family), minus ``exclude``."""
    archs = _architectures()
    inc, exc = _patterns(include), _patterns(exclude)
    for pattern in inc + exc:
        if not pattern or not pattern.strip():
            raise ZooUsageError("empty name pattern")
    names = []
    for spec in archs:
        if inc and not any(fnmatch.fnmatchcase(spec.name, p) or p == spec.family for p in inc):
            continue
        if any(fnmatch.fnmatchcase(spec.name, p) for p in exc):
            continue
        if family is not None and spec.family != family:
            continue
        if tag is not None and tag not in spec.tags:
            continue
        names.append(spec.name)
    return names


def get_spec(name: str) -> ArchSpec:
    """The frozen spec of one architecture; a family name (``vgg``) means the family's default
    member (``vgg11_bn``). Unknown names suggest the closest."""
    from zoo.registry import family_default

    archs = _architectures()
    if name not in archs:
        default = family_default(name, archs)
        if default is not None:
            return default
    return archs.get(name)


def get_model(
    name: str, num_classes: int | None = None, in_channels: int | None = None, **kwargs: Any
) -> nn.Module:
    """Build a registered architecture, torchvision-style (defaults: the published head and input)."""
    return get_spec(name).build(num_classes=num_classes, in_channels=in_channels, **kwargs)


def list_families() -> list[str]:
    return sorted({spec.family for spec in _architectures()})
