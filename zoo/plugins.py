"""The plugin manager: built-ins and ``zoo`` entry points, loaded lazily and once.

Built-in families and exporters are plugins too, registered through the very hooks a
third-party package implements. Environment:

- ``ZOO_PLUGINS``: unset loads every installed plugin; ``""`` none; ``"a,b"`` only those.
- ``ZOO_STRICT_PLUGINS=1``: a plugin that fails to load or register is fatal, not skipped.

Policy: plugins register in load order (built-ins first, then entry points by name). A plugin
is all or nothing: if any of its hooks raises, registers something invalid, or reuses a name
an earlier plugin holds, none of its items are registered and it is skipped with a one-line
warning that names both owners. So built-ins always keep their names.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pluggy

from zoo import hookspecs
from zoo.errors import PluginError
from zoo.registry import ArchSpec, DatasetSpec, Registry, spec_problems

ENTRY_POINT_GROUP = "zoo"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "zoo.builtins.simple_cnn",
    "zoo.builtins.vgg",
    "zoo.builtins.resnet",
    "zoo.builtins.mobilenet",
    "zoo.builtins.se",
    "zoo.builtins.datasets",
    "exporters",
)

# hook name -> the PluginHost registry (and ``provides`` key) it fills
REGISTRATION_HOOKS = {
    "zoo_register_architectures": "architectures",
    "zoo_register_exporters": "exporters",
    "zoo_register_datasets": "datasets",
}


class PluginLoadWarning(UserWarning):
    """A plugin was skipped because it failed to load or register."""


@dataclass
class PluginRecord:
    """What ``zoo plugins`` reports about one plugin."""

    name: str
    version: str
    builtin: bool
    module: str = ""
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "builtin": self.builtin,
            "module": self.module,
            "hooks": self.hooks,
            "provides": self.provides,
            "error": self.error,
        }


@dataclass
class PluginHost:
    """A loaded plugin manager and the registries its plugins filled."""

    pm: pluggy.PluginManager
    records: dict[str, PluginRecord] = field(default_factory=dict)
    architectures: Registry[ArchSpec] = field(default_factory=lambda: Registry("architecture"))
    exporters: Registry[Any] = field(default_factory=lambda: Registry("exporter"))
    datasets: Registry[DatasetSpec] = field(default_factory=lambda: Registry("data set"))


_host: PluginHost | None = None
_loading = False
_lock = threading.RLock()


def get_host() -> PluginHost:
    """The loaded plugins, loading them on first use."""
    global _host, _loading
    if _host is not None:
        return _host
    with _lock:
        if _host is None:
            if _loading:  # a registration hook reached back into the registry
                raise PluginError("zoo's registry was used while plugins were loading; "
                                  "registration hooks may only call register()")
            _loading = True
            try:
                _host = load_plugins()
            finally:
                _loading = False
    return _host


def reset_host() -> None:
    """Forget loaded plugins so the next registry access loads them again (tests)."""
    global _host
    with _lock:
        _host = None


def strict() -> bool:
    return os.environ.get("ZOO_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes"}


def selected_plugins() -> set[str] | None:
    """The third-party plugin names ZOO_PLUGINS selects, or None for all."""
    value = os.environ.get("ZOO_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _zoo_version() -> str:
    from zoo import __version__

    return __version__


def load_plugins() -> PluginHost:
    """Register built-ins and selected entry points, validate hooks, run registration."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm=pm)
    for module_name in BUILTIN_PLUGINS:
        record = PluginRecord(_builtin_name(module_name), _zoo_version(), builtin=True, module=module_name)
        _add_plugin(host, record, lambda m=module_name: importlib.import_module(m))
    _load_entry_points(host)
    _check_hooks(host)
    for name, record in list(host.records.items()):  # load order: built-ins win duplicates
        plugin = pm.get_plugin(name)
        if plugin is not None:
            record.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
            _register_items(host, name, plugin)
    return host


def _builtin_name(module_name: str) -> str:
    short = module_name.rsplit(".", 1)[-1]
    return f"zoo.{short}"


def _one_line(text: str, limit: int = 300) -> str:
    """Exception texts can span lines; a warning or CLI error must not."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _fail(host: PluginHost, name: str, error: str) -> None:
    """Record a plugin failure and drop the plugin; warn, or raise when strict."""
    error = _one_line(error)
    record = host.records.get(name)
    if record is not None:
        record.error = error
    plugin = host.pm.get_plugin(name)
    if plugin is not None:
        host.pm.unregister(plugin, name=name)
    if strict():
        raise PluginError(f"plugin '{name}' failed: {error}")
    warnings.warn(f"plugin '{name}' skipped: {error}", PluginLoadWarning, stacklevel=2)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _add_plugin(host: PluginHost, record: PluginRecord, load: Callable[[], object]) -> None:
    """Import a plugin and hand it to pluggy; a failure skips just this plugin."""
    host.records[record.name] = record
    try:
        plugin = load()
        host.pm.register(plugin, name=record.name)
    except Exception as exc:  # a broken plugin must not break zoo
        _fail(host, record.name, _describe(exc))
        return
    if not record.builtin and not host.pm.get_hookcallers(plugin):
        _fail(host, record.name, f"{record.module} implements no zoo hook (forgot @zoo.hookimpl?)")


def _load_entry_points(host: PluginHost) -> None:
    wanted = selected_plugins()
    found: dict[str, list[metadata.EntryPoint]] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if wanted is None or ep.name in wanted:
            same = found.setdefault(ep.name, [])
            if all(other.value != ep.value for other in same):  # a path listed twice is one plugin
                same.append(ep)
    for name in sorted(found):
        eps = found[name]
        ep = eps[0]
        version = ep.dist.version if ep.dist is not None else "?"
        key = name if name not in host.records else f"{name} ({_dist_name(ep)})"
        record = PluginRecord(key, version, builtin=False, module=ep.value)
        if key != name:
            host.records[key] = record
            _fail(host, key, f"plugin name '{name}' is taken by a built-in plugin")
        elif len(eps) > 1:
            host.records[key] = record
            owners = " and ".join(f"{_dist_name(e)} ({e.value})" for e in eps)
            _fail(host, key, f"two installed distributions provide plugin '{name}': {owners}")
        else:
            _add_plugin(host, record, ep.load)
    for name in sorted((wanted or set()) - set(found)):
        host.records[name] = PluginRecord(name, "?", builtin=False)
        _fail(host, name, f"ZOO_PLUGINS names '{name}' but no installed plugin has that name")


def _dist_name(ep: metadata.EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else "?"


def _check_hooks(host: PluginHost) -> None:
    """Reject plugins that implement hooks zoo does not define (misspellings)."""
    while True:
        try:
            host.pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = host.pm.get_name(exc.plugin) or repr(exc.plugin)
            _fail(host, name, str(exc))
            if host.pm.is_registered(exc.plugin):
                host.pm.unregister(exc.plugin)


def _register_items(host: PluginHost, name: str, plugin: object) -> None:
    """Call the plugin's registration hooks, check everything, then commit it all or nothing."""
    collected: list[tuple[str, Any]] = []  # (registry attribute, item)
    try:
        for hook_name, kind in REGISTRATION_HOOKS.items():
            caller = getattr(host.pm.hook, hook_name)
            impl = next((i for i in caller.get_hookimpls() if i.plugin is plugin), None)
            if impl is None:
                continue
            if impl.hookwrapper or impl.wrapper:
                raise PluginError(f"{hook_name} must be a plain hook, not a wrapper")
            items: list[Any] = []
            args = {"register": items.append}
            try:
                impl.function(**{arg: args[arg] for arg in impl.argnames})
            except Exception as exc:
                raise PluginError(f"{hook_name} raised {_describe(exc)}") from exc
            collected.extend((kind, _checked(hook_name, item, name)) for item in items)
        _check_names(host, collected, name)
    except PluginError as exc:
        _fail(host, name, str(exc))
        return
    provides = host.records[name].provides
    for kind, item in collected:
        getattr(host, kind).register(item, owner=name)
        provides.setdefault(kind, []).append(item.name)


def _checked(hook_name: str, item: Any, owner: str) -> Any:
    """Validate one registered item without importing or building anything; stamp its owner."""
    expected = {"zoo_register_architectures": ArchSpec, "zoo_register_datasets": DatasetSpec}.get(hook_name)
    if expected is not None and not isinstance(item, expected):
        raise PluginError(f"{hook_name} registered {type(item).__name__}, expected {expected.__name__}")
    name = getattr(item, "name", None)
    if not isinstance(name, str) or not name:
        raise PluginError(f"{hook_name} registered {type(item).__name__} without a name")
    if isinstance(item, (ArchSpec, DatasetSpec)):
        problems = spec_problems(item)
        if problems:
            kind = "architecture" if isinstance(item, ArchSpec) else "data set"
            raise PluginError(f"{kind} '{name}' is invalid: {'; '.join(problems)}")
    if hook_name == "zoo_register_exporters" and not callable(getattr(item, "export", None)):
        raise PluginError(f"exporter '{name}' has no export() method")
    return replace(item, plugin=owner) if isinstance(item, (ArchSpec, DatasetSpec)) else item


def _check_names(host: PluginHost, collected: list[tuple[str, Any]], owner: str) -> None:
    """A name already taken (by an earlier plugin or this one) rejects the whole plugin."""
    mine: set[tuple[str, str]] = set()
    for kind, item in collected:
        registry: Registry[Any] = getattr(host, kind)
        if item.name in registry:
            raise PluginError(f"{registry.kind} '{item.name}' is registered twice: "
                              f"by plugin '{registry.owner(item.name)}' and by plugin '{owner}'")
        if (kind, item.name) in mine:
            raise PluginError(f"{registry.kind} '{item.name}' is registered twice by plugin '{owner}'")
        mine.add((kind, item.name))
    _check_families(host, [item for kind, item in collected if kind == "architectures"])


def _check_families(host: PluginHost, new: list[ArchSpec]) -> None:
    """``zoo train FAMILY`` must mean one architecture: a family has at most one default member,
    and no architecture (but that default) carries the family's name."""
    everyone = [*host.architectures, *new]
    for family in sorted({a.family for a in new} | {a.name for a in new}):
        members = [a for a in everyone if a.family == family]
        defaults = [a for a in members if a.family_default]
        if len(defaults) > 1:
            raise PluginError(f"family '{family}' has two default members: {defaults[0].label()} and "
                              f"{defaults[1].label()}")
        named = [a for a in everyone if a.name == family]
        clash = next((a for a in named if not (a.family == family and a.family_default)), None)
        if members and clash is not None:
            raise PluginError(f"family '{family}' is also the name of an architecture (by plugin "
                              f"'{clash.plugin}'), so 'zoo train {family}' could not mean the family")


def plugin_records() -> list[PluginRecord]:
    """Every plugin, built-in first, with what it provides and any load error."""
    host = get_host()
    return sorted(host.records.values(), key=lambda r: (not r.builtin, r.name))
