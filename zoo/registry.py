"""Registries of architectures, exporters and data sets, filled by plugins.

A spec is data; building a model is a call. Importing this module does not import torch.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from zoo.errors import DuplicateNameError, UnknownNameError, ZooUsageError

if TYPE_CHECKING:
    from torch import nn


def resolve(target: str | Callable[..., Any]) -> Callable[..., Any]:
    """Turn a ``"package.module:attribute"`` string into the object it names."""
    if callable(target):
        return target
    module_name, _, attr = target.partition(":")
    if not attr:
        raise ValueError(f"builder {target!r} must look like 'package.module:function'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class ArchSpec:
    """Everything the registry knows about one architecture, without building it."""

    name: str
    family: str
    builder: str | Callable[..., nn.Module]
    tags: tuple[str, ...] = ()
    image_size: int = 224
    in_channels: int = 3
    min_image_size: int = 32
    num_classes: int = 1000  # the published head: 1000 for ImageNet networks, 10 for CIFAR-10 ones
    paper: str = ""
    notes: str = ""
    default_kwargs: tuple[tuple[str, Any], ...] = ()
    family_default: bool = False  # the member `zoo train FAMILY` picks (one per family)
    plugin: str = ""

    def build(
        self, num_classes: int | None = None, in_channels: int | None = None, **kwargs: Any
    ) -> nn.Module:
        """Build the network (weights randomly initialised); classes and channels default to the spec's."""
        channels = self.in_channels if in_channels is None else in_channels
        num_classes = self.num_classes if num_classes is None else num_classes
        check_positive("num_classes", num_classes)
        check_positive("in_channels", channels)
        builder = resolve(self.builder)
        options = {**dict(self.default_kwargs), **kwargs}
        try:
            return builder(num_classes=num_classes, in_channels=channels, **options)
        except TypeError as exc:
            if "unexpected keyword argument" not in str(exc):
                raise
            raise ZooUsageError(f"{self.name} does not take option(s) {', '.join(sorted(options))}: "
                                f"{exc}") from None


@dataclass(frozen=True)
class DatasetSpec:
    """A data set that needs no download: ``loader`` returns the images and labels."""

    name: str
    loader: str | Callable[..., Any]
    description: str = ""
    num_classes: int = 0
    image_size: int = 0
    channels: int = 0
    available: str | Callable[[], bool] | None = None
    plugin: str = ""

    def is_available(self) -> bool:
        return True if self.available is None else bool(resolve(self.available)())


class Named(Protocol):
    name: str


T = TypeVar("T", bound=Named)


@dataclass
class Registry(Generic[T]):
    """Name -> item, where a duplicate name is an error that names both owners."""

    kind: str
    _items: dict[str, T] = field(default_factory=dict)
    _owners: dict[str, str] = field(default_factory=dict)

    def register(self, item: T, owner: str) -> None:
        name = item.name
        if not name or not isinstance(name, str):
            raise ValueError(f"{self.kind} from plugin '{owner}' has no name")
        if name in self._items:
            raise DuplicateNameError(
                f"{self.kind} '{name}' is registered twice: by plugin '{self._owners[name]}' "
                f"and by plugin '{owner}'"
            )
        self._items[name] = item
        self._owners[name] = owner

    def owner(self, name: str) -> str:
        return self._owners[self.get(name).name]

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(unknown_message(self.kind, name, self._items)) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self._items[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._items)


def unknown_message(kind: str, name: str, known: Iterable[str], otherwise: str | None = None) -> str:
    """``unknown architecture 'resnt18'; did you mean resnet18?`` (else ``otherwise``, or where to look)."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else otherwise or f"see 'zoo {_list_command(kind)}'"
    return f"unknown {kind} '{name}'; {hint}"


def _list_command(kind: str) -> str:
    return {"architecture": "list", "data set": "data list", "exporter": "plugins"}.get(kind, "plugins")


def check_positive(what: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ZooUsageError(f"{what} must be a positive integer, got {value!r}")


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
    from zoo.plugins import get_host

    archs = get_host().architectures
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
    from zoo.plugins import get_host

    archs = get_host().architectures
    if name not in archs:
        default = family_default(name, archs)
        if default is not None:
            return default
    return archs.get(name)


def family_default(family: str, archs: Iterable[ArchSpec]) -> ArchSpec | None:
    """The member a family declares as its default, or None when ``family`` is no family.

    A family without a declared default, or with several, is a usage error that lists its members.
    """
    members = [spec for spec in archs if spec.family == family]
    if not members:
        return None
    defaults = [spec for spec in members if spec.family_default]
    if len(defaults) == 1:
        return defaults[0]
    names = ", ".join(spec.name for spec in members)
    why = "declares no default member" if not defaults else "declares several defaults"
    raise ZooUsageError(f"'{family}' is an architecture family that {why}; pick one of {names}")


def get_model(
    name: str, num_classes: int | None = None, in_channels: int | None = None, **kwargs: Any
) -> nn.Module:
    """Build a registered architecture, torchvision-style (defaults: the published head and input)."""
    return get_spec(name).build(num_classes=num_classes, in_channels=in_channels, **kwargs)


def list_families() -> list[str]:
    from zoo.plugins import get_host

    return sorted({spec.family for spec in get_host().architectures})
