"""Fixtures shared by the tests: a sys.path folder for throwaway plugin distributions, and one
intra-op thread for the modules that train."""

from __future__ import annotations

import importlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_kit import MakePlugin

from zoo.plugins import reset_host


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A sys.path entry for throwaway plugins, a clean environment, a fresh host each side."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("ZOO_PLUGINS", raising=False)
    monkeypatch.delenv("ZOO_STRICT_PLUGINS", raising=False)
    importlib.invalidate_caches()
    reset_host()
    yield tmp_path
    reset_host()


@pytest.fixture
def make_plugin(plugin_dir: Path) -> Iterator[MakePlugin]:
    """make_plugin(entry_point_name, source) -> module name; installs it as a distribution."""
    modules: list[str] = []

    def make(name: str, source: str, version: str = "0.1") -> str:
        module = f"zp_{name}_{uuid.uuid4().hex[:8]}"  # unique: sys.modules outlives a test
        (plugin_dir / f"{module}.py").write_text(source)
        info = plugin_dir / f"zoo_test_{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: zoo-test-{name}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[zoo]\n{name} = {module}\n")
        importlib.invalidate_caches()
        modules.append(module)
        return module

    yield make
    for module in modules:
        sys.modules.pop(module, None)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """The test machine is shared: one intra-op thread is faster than two fighting ones. A module
    that trains asks for it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
