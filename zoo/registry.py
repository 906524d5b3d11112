"""Registries of architectures, exporters and data sets, filled by plugins.

A spec is data; building a model is a call. Importing this module does not import torch.
What a valid spec looks like is checked here (``spec_problems``), without importing any plugin
code: the plugin host rejects a plugin whose specs have problems, whole.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from zoo.errors import BuildError, DuplicateNameError, UnknownNameError, ZooError, ZooUsageError, error_head

if TYPE_CHECKING:
    from torch import nn

# Names of architectures, families, tags and data sets: they become CLI arguments, fnmatch
# patterns' targets and run-directory names, so no spaces, glob characters or path separators.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
NAME_RULE = "lowercase letters, digits, '_', '.' and '-', starting with a letter or digit, at most 64"
_IDENTIFIERS = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
TARGET_PATTERN = re.compile(f"{_IDENTIFIERS}:{_IDENTIFIERS}")  # "package.module:function"
RESERVED_OPTIONS = ("num_classes", "in_channels")


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


def module_exists(name: str) -> bool:
    """Whether ``import name`` would find the module, found without running any package's code
    (``importlib.util.find_spec`` would import the parent packages)."""
    if name in sys.modules:
        return True
    parts = name.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return False
    for depth in range(2, len(parts) + 1):
        if spec is None or spec.submodule_search_locations is None:
            return False
        full, parent = ".".join(parts[:depth]), sys.modules.get(".".join(parts[: depth - 1]))
        path = list(getattr(parent, "__path__", None) or spec.submodule_search_locations)
        loaded = sys.modules.get(full)
        spec = loaded.__spec__ if loaded is not None else _find_spec(full, path)
    return spec is not None


def _find_spec(fullname: str, path: Sequence[str]) -> Any:
    for finder in sys.meta_path:  # the import system's own search, editable-install finders included
        find = getattr(finder, "find_spec", None)
        if find is not None:
            found = find(fullname, path, None)
            if found is not None:
                return found
    return None


def _name_problem(what: str, value: object) -> str | None:
    if isinstance(value, str) and NAME_PATTERN.fullmatch(value):
        return None
    return f"{what} must be {NAME_RULE} characters, got {value!r}"


def _target_problem(what: str, target: object, module_check: bool) -> str | None:
    """A callable, or a well-formed "package.module:function" whose module exists."""
    if callable(target):
        return None
    if not isinstance(target, str) or not TARGET_PATTERN.fullmatch(target):
        return f"{what} {target!r} is not a callable or 'package.module:function'"
    module = target.partition(":")[0]
    if module_check and not module_exists(module):
        return f"{what} module '{module}' not found ({what} {target!r})"
    return None


def _positive_problem(what: str, value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return None
    return f"{what} must be a positive integer, got {value!r}"


def spec_problems(spec: ArchSpec | DatasetSpec, module_check: bool = True) -> list[str]:
    """What is wrong with a spec (empty when it is valid), checked without importing plugin code.

    A builder (loader) string whose module cannot be found is a problem too; ``module_check=False``
    skips that file-system lookup."""
    if isinstance(spec, DatasetSpec):
        problems = [_name_problem("name", spec.name), _target_problem("loader", spec.loader, module_check),
                    None if spec.available is None else _target_problem("available", spec.available,
                                                                         module_check)]
        for what in ("num_classes", "image_size", "channels"):
            value = getattr(spec, what)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                problems.append(f"{what} must be 0 (unknown) or a positive integer, got {value!r}")
        return [p for p in problems if p]
    problems = [_name_problem("name", spec.name), _name_problem("family", spec.family)]
    if not isinstance(spec.tags, (tuple, list)) or not all(isinstance(t, str) for t in spec.tags):
        problems.append(f"tags must be a tuple of strings, got {spec.tags!r}")
    else:
        problems += [_name_problem("tag", tag) for tag in spec.tags]
    sizes = [_positive_problem(what, getattr(spec, what))
             for what in ("image_size", "min_image_size", "in_channels", "num_classes")]
    problems += sizes
    if not any(sizes[:2]) and spec.image_size < spec.min_image_size:
        problems.append(f"image_size {spec.image_size} is below min_image_size {spec.min_image_size}")
    problems.append(_target_problem("builder", spec.builder, module_check))
    pairs = spec.default_kwargs
    if not isinstance(pairs, tuple) or not all(
        isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) and p[0].isidentifier() for p in pairs
    ):
        problems.append(f"default_kwargs must be a tuple of (name, value) pairs, got {pairs!r}")
    else:
        problems += [f"default_kwargs may not set {key} (zoo passes it)" for key, _ in pairs
                     if key in RESERVED_OPTIONS]
    for what in ("paper", "notes"):
        if not isinstance(getattr(spec, what), str):
            problems.append(f"{what} must be a string")
    if not isinstance(spec.family_default, bool):
        problems.append(f"family_default must be True or False, got {spec.family_default!r}")
    return [p for p in problems if p]


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

    def label(self) -> str:
        """``'resnet18' (plugin 'zoo.resnet')``: how errors name an architecture."""
        return f"'{self.name}'" + (f" (plugin '{self.plugin}')" if self.plugin else "")

    def builder_function(self) -> Callable[..., nn.Module]:
        """The builder, imported; a builder that cannot be loaded is a one-line ZooError."""
        try:
            return resolve(self.builder)
        except (ImportError, AttributeError, ValueError) as exc:
            reason = f"builder {self.builder!r} cannot be loaded ({type(exc).__name__}: {error_head(exc)})"
            raise BuildError(f"architecture {self.label()}: {reason}", reason) from exc

    def build(
        self, num_classes: int | None = None, in_channels: int | None = None, **kwargs: Any
    ) -> nn.Module:
        """Build the network (weights randomly initialised); classes and channels default to the spec's.

        An unknown option is a ZooUsageError; anything else a builder raises becomes a ZooError
        naming the architecture and its plugin (the original exception is its ``__cause__``)."""
        channels = self.in_channels if in_channels is None else in_channels
        num_classes = self.num_classes if num_classes is None else num_classes
        check_positive("num_classes", num_classes)
        check_positive("in_channels", channels)
        builder = self.builder_function()
        options = {**dict(self.default_kwargs), **kwargs}
        try:
            return builder(num_classes=num_classes, in_channels=channels, **options)
        except ZooError:
            raise
        except TypeError as exc:
            if "unexpected keyword argument" not in str(exc):
                raise self._failed(exc) from exc
            raise ZooUsageError(f"{self.name} does not take option(s) {', '.join(sorted(options))}: "
                                f"{exc}") from None
        except Exception as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: Exception) -> BuildError:
        reason = f"{type(exc).__name__}: {error_head(exc)}"
        return BuildError(f"architecture {self.label()} failed to build: {reason}", reason)


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
