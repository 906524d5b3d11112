"""Throwaway plugin distributions for the tests: a module and a ``NAME-0.1.dist-info`` folder on
sys.path, so zoo finds them through its real entry-point machinery."""

from __future__ import annotations

from collections.abc import Callable

MakePlugin = Callable[..., str]


def arch_plugin(*names: str, extra: str = "") -> str:
    """Source of a plugin module that registers architectures ``names`` (builder never called)."""
    specs = "\n".join(
        f"    register(ArchSpec(name={n!r}, family='throwaway', builder='zoo.models.simple_cnn:simple_cnn'))"
        for n in names
    )
    header = "import zoo\nfrom zoo import ArchSpec\n\n@zoo.hookimpl\n"
    header += "def zoo_register_architectures(register):\n"
    return f"{header}    pass\n{specs}\n{extra}"


def spec_plugin(*specs: str) -> str:
    """Source of a plugin registering the given ``ArchSpec(...)`` / ``DatasetSpec(...)`` expressions."""
    body = "".join(f"    register({spec})\n" for spec in specs if spec.startswith("ArchSpec"))
    data = "".join(f"    register({spec})\n" for spec in specs if spec.startswith("DatasetSpec"))
    source = "import zoo\nfrom zoo import ArchSpec, DatasetSpec\n\n"
    if body:
        source += f"@zoo.hookimpl\ndef zoo_register_architectures(register):\n{body}\n"
    if data:
        source += f"@zoo.hookimpl\ndef zoo_register_datasets(register):\n{data}\n"
    return source
