"""The plugin manager: built-ins and ``zoo`` entry points, loaded lazily and once.

Built-in families and exporters are plugins too, registered through the very hooks a
third-party package implements. Environment:

- ``ZOO_PLUGINS``: unset loads every installed plugin; ``""`` none; ``"a,b"`` only those.
- ``ZOO_STRICT_PLUGINS=1``: a plugin that fails to load or register is fatal, not skipped.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import pluggy

from zoo import hookspecs
from zoo.errors import PluginError, ZooError
from zoo.registry import ArchSpec, DatasetSpec, Registry

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

REGISTRATION_HOOKS = {
    "zoo_register_architectures": "architectures",
    "zoo_register_exporters": "exporters",
    "zoo_register_datasets": "datasets",
}


class PluginLoadWarning(UserWarning):
    """A third-party plugin was skipped because it failed to load or register."""


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
_lock = threading.Lock()


def get_host() -> PluginHost:
    """The loaded plugins, loading them on first use."""
    global _host
    if _host is None:
        with _lock:
            if _host is None:
                _host = load_plugins()
    return _host


def reset_host() -> None:
    """Forget loaded plugins so the next registry access loads them again (tests)."""
    global _host
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
        module = importlib.import_module(module_name)
        name = _builtin_name(module_name)
        pm.register(module, name=name)
        host.records[name] = PluginRecord(name, _zoo_version(), builtin=True, module=module_name)
    _load_entry_points(host)
    _check_hooks(host)
    for hook_name, registry_name in REGISTRATION_HOOKS.items():
        _run_registration(host, hook_name, getattr(host, registry_name))
    for name, record in host.records.items():
        plugin = pm.get_plugin(name)
        if plugin is not None:
            record.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
    return host


def _builtin_name(module_name: str) -> str:
    short = module_name.rsplit(".", 1)[-1]
    return f"zoo.{short}"


def _fail(host: PluginHost, name: str, error: str) -> None:
    """Record a plugin failure; warn, or raise when strict."""
    record = host.records.get(name)
    if record is not None:
        record.error = error
    if strict():
        raise PluginError(f"plugin '{name}' failed: {error}")
    warnings.warn(f"plugin '{name}' skipped: {error}", PluginLoadWarning, stacklevel=3)


def _load_entry_points(host: PluginHost) -> None:
    wanted = selected_plugins()
    seen: set[str] = set()
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in seen or (wanted is not None and ep.name not in wanted):
            continue
        seen.add(ep.name)
        dist = getattr(ep, "dist", None)
        version = dist.version if dist is not None else "?"
        host.records[ep.name] = PluginRecord(ep.name, version, builtin=False, module=ep.value)
        try:
            plugin = ep.load()
            host.pm.register(plugin, name=ep.name)
        except Exception as exc:  # a broken plugin must not break zoo
            _fail(host, ep.name, f"{type(exc).__name__}: {exc}")
    for name in sorted((wanted or set()) - seen):
        host.records[name] = PluginRecord(name, "?", builtin=False)
        _fail(host, name, f"ZOO_PLUGINS names '{name}' but no such plugin is installed")


def _check_hooks(host: PluginHost) -> None:
    """Reject plugins that implement hooks zoo does not define (misspellings)."""
    while True:
        try:
            host.pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = host.pm.get_name(exc.plugin) or repr(exc.plugin)
            host.pm.unregister(exc.plugin)
            _fail(host, name, str(exc).splitlines()[0])


def _run_registration(host: PluginHost, hook_name: str, registry: Registry[Any]) -> None:
    """Call each plugin's hook on its own, so every item knows its owner and a failing
    plugin is skipped as a whole, not half-registered."""
    caller = getattr(host.pm.hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):  # pluggy lists in reverse registration order
        name = impl.plugin_name
        items: list[Any] = []
        try:
            impl.function(register=items.append)
            for item in items:
                if isinstance(item, (ArchSpec, DatasetSpec)):
                    item = _with_owner(item, name)
                registry.register(item, owner=name)
        except Exception as exc:
            for item in items:
                if getattr(item, "name", None) in registry and registry.owner(item.name) == name:
                    _forget(registry, item.name)
            if isinstance(exc, ZooError):
                _fail(host, name, str(exc))
            else:
                _fail(host, name, f"{hook_name} raised {type(exc).__name__}: {exc}")
            continue
        if items:
            kind = REGISTRATION_HOOKS[hook_name]
            host.records[name].provides.setdefault(kind, []).extend(i.name for i in items)


def _with_owner(spec: Any, owner: str) -> Any:
    from dataclasses import replace

    return replace(spec, plugin=owner)


def _forget(registry: Registry[Any], name: str) -> None:
    registry._items.pop(name, None)
    registry._owners.pop(name, None)


def plugin_records() -> list[PluginRecord]:
    """Every plugin, built-in first, with what it provides and any load error."""
    host = get_host()
    return sorted(host.records.values(), key=lambda r: (not r.builtin, r.name))
