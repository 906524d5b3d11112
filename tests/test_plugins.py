"""The plugin system, driven for real: throwaway plugin distributions (a module and a
``NAME-0.1.dist-info`` folder) on sys.path, subprocesses for laziness, and the example plugin
pip-installed into the running venv."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import site
import subprocess
import sys
import sysconfig
import textwrap
import warnings
from pathlib import Path

import pytest
from plugin_kit import MakePlugin, arch_plugin, spec_plugin
from typer.testing import CliRunner

import zoo
from zoo.cli import app
from zoo.errors import DuplicateNameError, PluginError
from zoo.plugins import BUILTIN_PLUGINS, REGISTRATION_HOOKS, PluginLoadWarning, get_host, reset_host
from zoo.registry import ArchSpec, Registry

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "plugins" / "zoo-squeezenet"

def records() -> dict[str, dict]:
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    return {r["name"]: r for r in json.loads(result.stdout)}


def load_warnings() -> list[str]:
    """Load the plugins, returning the PluginLoadWarning messages."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        get_host()
    return [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]


def python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_import_is_lazy_and_plugins_load_once(make_plugin: MakePlugin, plugin_dir: Path) -> None:
    marker = plugin_dir / "marker.txt"
    make_plugin("counted", f"from pathlib import Path\nPath({str(marker)!r}).open('a').write('import\\n')\n"
                + arch_plugin("countednet", extra=f"    Path({str(marker)!r}).open('a').write('hook\\n')\n"))
    code = textwrap.dedent(f"""
        import sys, pathlib
        import zoo
        assert 'torch' not in sys.modules, 'import zoo imported torch'
        assert 'zoo.plugins' not in sys.modules, 'import zoo loaded the plugin host'
        assert not pathlib.Path({str(marker)!r}).exists(), 'import zoo imported a plugin'
        zoo.list_models(); zoo.get_spec('countednet'); zoo.list_families(); zoo.list_models('c*')
        print(pathlib.Path({str(marker)!r}).read_text().split())
    """)
    out = python(code, {"PYTHONPATH": str(plugin_dir), "ZOO_PLUGINS": "counted"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['import', 'hook']"


def test_help_and_plugin_loading_do_not_import_torch() -> None:
    help_code = ("import sys\nfrom zoo.cli import main\nsys.argv = ['zoo', '--help']\n"
                 "try:\n    main()\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)")
    out = python(help_code)
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout and out.stdout.strip().endswith("False")
    # every installed plugin, built-ins included, registers without importing torch
    heavy = "('torch', 'torchvision', 'onnx', 'onnxruntime')"
    out = python(f"import sys, zoo\nassert zoo.list_models()\nprint(sorted(set({heavy}) & set(sys.modules)))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_builtins_are_plugins(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_PLUGINS", "")
    found = records()
    builtins = {r["module"]: r for r in found.values() if r["builtin"]}
    assert set(builtins) == set(BUILTIN_PLUGINS)
    assert all(r["version"] == zoo.__version__ and r["error"] is None for r in builtins.values())
    assert all(set(r["hooks"]) <= set(REGISTRATION_HOOKS) for r in builtins.values())
    assert not [r for r in found.values() if not r["builtin"]]  # ZOO_PLUGINS="" loads no third party
    provided = {name: r["name"] for r in builtins.values() for name in r["provides"].get("architectures", [])}
    assert {"resnet18", "vgg11", "simple_cnn", "mobilenet_v2", "se_resnet18"} <= set(provided)
    assert sorted(provided) == zoo.list_models()
    assert all(zoo.get_spec(name).plugin == owner for name, owner in provided.items())
    assert builtins["zoo.builtins.resnet"]["hooks"] == ["zoo_register_architectures"]


def test_third_party_plugin_is_recorded_with_owner_version_hooks(make_plugin: MakePlugin,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # the plugin claims another owner; the host stamps the real one
    make_plugin("tiny", arch_plugin("tinynet").replace("family=", "plugin='someone-else', family="), "2.5")
    monkeypatch.setenv("ZOO_PLUGINS", "tiny")
    assert zoo.get_spec("tinynet").plugin == "tiny"
    assert get_host().architectures.owner("tinynet") == "tiny"
    tiny = records()["tiny"]
    assert (tiny["version"], tiny["builtin"], tiny["error"]) == ("2.5", False, None)
    assert tiny["hooks"] == ["zoo_register_architectures"]
    assert tiny["provides"] == {"architectures": ["tinynet"]}


def test_exporters_and_datasets_are_registered_with_owner(make_plugin: MakePlugin,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    make_plugin("extras", textwrap.dedent("""
        import zoo
        from zoo import DatasetSpec

        class CsvExporter:
            name, suffix, description = "csv", ".csv", "weights as text"
            def export(self, *args, **kwargs):
                raise NotImplementedError

        @zoo.hookimpl
        def zoo_register_exporters(register):
            register(CsvExporter())

        @zoo.hookimpl
        def zoo_register_datasets(register):
            register(DatasetSpec(name="noise", loader="zoo.data.builtin:load_digits", num_classes=2))
    """))
    monkeypatch.setenv("ZOO_PLUGINS", "extras")
    host = get_host()
    assert host.exporters.get("csv").suffix == ".csv" and host.exporters.owner("csv") == "extras"
    assert host.datasets.get("noise").plugin == "extras"
    assert records()["extras"]["provides"] == {"exporters": ["csv"], "datasets": ["noise"]}


def test_plugin_that_fails_to_import_is_skipped(make_plugin: MakePlugin,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    make_plugin("broken", "raise ImportError(\"No module named 'cv9'\\n(pip install zoo[cv])\")\n")
    make_plugin("good", arch_plugin("goodnet"))
    monkeypatch.setenv("ZOO_PLUGINS", "broken,good")
    messages = load_warnings()
    assert messages == ["plugin 'broken' skipped: ImportError: No module named 'cv9' (pip install zoo[cv])"]
    assert "goodnet" in zoo.list_models()
    found = records()
    assert found["broken"]["error"] == "ImportError: No module named 'cv9' (pip install zoo[cv])"
    assert found["good"]["error"] is None
    table = CliRunner().invoke(app, ["plugins"])  # error text is shown as is, not read as markup
    assert table.exit_code == 0 and "zoo[cv]" in table.stdout


def test_cli_warning_is_one_line(make_plugin: MakePlugin, plugin_dir: Path) -> None:
    make_plugin("broken", "raise RuntimeError('boom')\n")
    code = "import sys\nfrom zoo.cli import main\nsys.argv = ['zoo', 'plugins', '--json']\nmain()"
    out = python(code, {"PYTHONPATH": str(plugin_dir), "ZOO_PLUGINS": "broken"})
    assert out.returncode == 0
    assert out.stderr.splitlines() == ["warning: plugin 'broken' skipped: RuntimeError: boom"]
    assert {r["name"]: r["error"] for r in json.loads(out.stdout)}["broken"] == "RuntimeError: boom"


def test_hook_that_raises_registers_nothing(make_plugin: MakePlugin, monkeypatch: pytest.MonkeyPatch) -> None:
    # the architectures hook succeeds, the data sets hook fails: the plugin is dropped whole
    make_plugin("half", arch_plugin("halfnet", extra=textwrap.dedent("""
        @zoo.hookimpl
        def zoo_register_datasets(register):
            raise RuntimeError('disk on fire')
    """)))
    make_plugin("good", arch_plugin("goodnet"))
    monkeypatch.setenv("ZOO_PLUGINS", "half,good")
    assert load_warnings() == [
        "plugin 'half' skipped: zoo_register_datasets raised RuntimeError: disk on fire"]
    assert "halfnet" not in zoo.list_models() and "goodnet" in zoo.list_models()
    assert records()["half"]["provides"] == {}


def test_invalid_registration_is_rejected(make_plugin: MakePlugin, monkeypatch: pytest.MonkeyPatch) -> None:
    make_plugin("sloppy", arch_plugin("fine", extra="    register({'name': 'dictnet'})\n"))
    make_plugin("nobuilder", arch_plugin(extra="    register(ArchSpec('x', 'f', builder='nocolon'))\n"))
    monkeypatch.setenv("ZOO_PLUGINS", "sloppy,nobuilder")
    assert load_warnings() == [
        "plugin 'nobuilder' skipped: architecture 'x' is invalid: builder 'nocolon' is not a callable "
        "or 'package.module:function'",
        "plugin 'sloppy' skipped: zoo_register_architectures registered dict, expected ArchSpec",
    ]
    assert "fine" not in zoo.list_models()


def test_hook_using_the_registry_while_loading_is_skipped(make_plugin: MakePlugin,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    make_plugin("eager", arch_plugin("eagernet", extra="    zoo.list_models()\n"))
    monkeypatch.setenv("ZOO_PLUGINS", "eager")
    [message] = load_warnings()  # an error, not a deadlock or endless recursion
    assert message.startswith("plugin 'eager' skipped: zoo_register_architectures raised PluginError: "
                              "zoo's registry was used while plugins were loading")


def test_duplicate_between_plugins_names_both_owners(make_plugin: MakePlugin,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    make_plugin("alpha", arch_plugin("sharednet", "alphanet"))
    make_plugin("beta", arch_plugin("betanet", "sharednet"))
    monkeypatch.setenv("ZOO_PLUGINS", "alpha,beta")
    assert load_warnings() == ["plugin 'beta' skipped: architecture 'sharednet' is registered twice: "
                               "by plugin 'alpha' and by plugin 'beta'"]
    assert zoo.get_spec("sharednet").plugin == "alpha"
    assert "betanet" not in zoo.list_models()  # the later plugin is skipped whole


def test_builtin_keeps_its_name(make_plugin: MakePlugin, monkeypatch: pytest.MonkeyPatch) -> None:
    make_plugin("shadow", arch_plugin("resnet18"))
    monkeypatch.setenv("ZOO_PLUGINS", "shadow")
    assert load_warnings() == ["plugin 'shadow' skipped: architecture 'resnet18' is registered twice: "
                               "by plugin 'zoo.resnet' and by plugin 'shadow'"]
    assert zoo.get_spec("resnet18").plugin == "zoo.resnet"


def test_same_name_twice_in_one_plugin(make_plugin: MakePlugin, monkeypatch: pytest.MonkeyPatch) -> None:
    make_plugin("stutter", arch_plugin("echonet", "echonet"))
    monkeypatch.setenv("ZOO_PLUGINS", "stutter")
    assert load_warnings() == ["plugin 'stutter' skipped: architecture 'echonet' is registered twice "
                               "by plugin 'stutter'"]


def test_registry_register_raises_on_duplicate() -> None:
    registry: Registry[ArchSpec] = Registry("architecture")
    registry.register(ArchSpec("net", "f", "m:f"), owner="first")
    message = "'net' is registered twice: by plugin 'first' and by plugin 'second'"
    with pytest.raises(DuplicateNameError, match=message):
        registry.register(ArchSpec("net", "f", "m:g"), owner="second")
    assert registry.get("net").builder == "m:f"


def test_misspelled_hook_is_rejected(make_plugin: MakePlugin, monkeypatch: pytest.MonkeyPatch) -> None:
    source = arch_plugin("typonet").replace("def zoo_register_architectures", "def zoo_register_architecture")
    make_plugin("typo", source + "\n@zoo.hookimpl\ndef zoo_register_datasets(register):\n    pass\n")
    make_plugin("undecorated", "def zoo_register_architectures(register):\n    pass\n")
    monkeypatch.setenv("ZOO_PLUGINS", "typo,undecorated")
    undecorated, typo = load_warnings()
    assert typo.startswith("plugin 'typo' skipped: unknown hook 'zoo_register_architecture' in plugin")
    assert undecorated.startswith("plugin 'undecorated' skipped: zp_undecorated_")
    assert undecorated.endswith("implements no zoo hook (forgot @zoo.hookimpl?)")
    assert "typonet" not in zoo.list_models()
    assert records()["typo"]["provides"] == {}


def test_zoo_plugins_selects(make_plugin: MakePlugin, monkeypatch: pytest.MonkeyPatch) -> None:
    make_plugin("alpha", arch_plugin("alphanet"))
    make_plugin("beta", arch_plugin("betanet"))
    monkeypatch.setenv("ZOO_PLUGINS", "")
    assert not {"alphanet", "betanet"} & set(zoo.list_models())
    assert all(r["builtin"] for r in records().values())
    reset_host()
    monkeypatch.setenv("ZOO_PLUGINS", " alpha , ghost")
    assert load_warnings() == ["plugin 'ghost' skipped: ZOO_PLUGINS names 'ghost' but no installed plugin "
                               "has that name"]
    assert "alphanet" in zoo.list_models() and "betanet" not in zoo.list_models()
    found = records()
    assert "beta" not in found and found["ghost"]["error"].startswith("ZOO_PLUGINS names 'ghost'")
    reset_host()
    monkeypatch.delenv("ZOO_PLUGINS")  # unset: everything installed
    assert {"alphanet", "betanet"} <= set(zoo.list_models())


FAILURES = {
    "import": ("raise ImportError('cv9 missing')\n", "ImportError: cv9 missing"),
    "hook": (arch_plugin("x", extra="    raise ValueError('bad')\n"), "architectures raised ValueError: bad"),
    "duplicate": (arch_plugin("resnet18"), "'resnet18' is registered twice: by plugin 'zoo.resnet' and"),
    "misspelled": (arch_plugin("x").replace("architectures(", "architecture("), "unknown hook"),
}


@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_strict_mode_makes_failures_fatal(kind: str, make_plugin: MakePlugin,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    source, expected = FAILURES[kind]
    make_plugin("bad", source)
    monkeypatch.setenv("ZOO_PLUGINS", "bad")
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"^plugin 'bad' failed: ") as info:
        zoo.list_models()
    assert expected in str(info.value)
    result = CliRunner().invoke(app, ["plugins"])
    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: plugin 'bad' failed: ") and expected in line
    assert "Traceback" not in result.output
    monkeypatch.delenv("ZOO_STRICT_PLUGINS")  # the failed load was not cached: lenient mode retries
    with pytest.warns(PluginLoadWarning, match="^plugin 'bad' skipped: "):
        assert "resnet18" in zoo.list_models()


def test_strict_mode_fails_on_missing_selection(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_PLUGINS", "ghost")
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert (result.exit_code, result.stderr) == (
        1, "error: plugin 'ghost' failed: ZOO_PLUGINS names 'ghost' but no installed plugin has that name\n")


@pytest.fixture(scope="session")
def example_installed() -> str:
    """pip-install plugins/zoo-squeezenet into the running venv (offline: no build isolation)."""
    try:
        importlib.metadata.distribution("zoo-squeezenet")
    except importlib.metadata.PackageNotFoundError:
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        subprocess.run([*pip, "-e", str(EXAMPLE)], check=True, timeout=300)
        site.addsitedir(sysconfig.get_paths()["purelib"])  # run the new editable .pth in this process
        importlib.invalidate_caches()
    return importlib.metadata.distribution("zoo-squeezenet").version


def test_example_plugin_through_the_cli(example_installed: str, plugin_dir: Path) -> None:
    rows = json.loads(CliRunner().invoke(app, ["list", "squeeze*", "--json"]).stdout)
    assert [(r["name"], r["plugin"]) for r in rows] == [("squeezenet1_0", "squeezenet"),
                                                        ("squeezenet1_1", "squeezenet")]
    table = CliRunner().invoke(app, ["list"])
    assert table.exit_code == 0 and "squeezenet1_1" in table.stdout and "resnet18" in table.stdout
    record = records()["squeezenet"]
    assert record == {
        "name": "squeezenet", "version": example_installed, "builtin": False,
        "module": "zoo_squeezenet.plugin", "hooks": ["zoo_register_architectures"],
        "provides": {"architectures": ["squeezenet1_0", "squeezenet1_1"]}, "error": None,
    }
    table = CliRunner().invoke(app, ["plugins"])
    assert table.exit_code == 0
    assert "squeezenet" in table.stdout and "installed" in table.stdout and "squeezenet1_1" in table.stdout


# ------------------------------------------------------------------ the contract, checked at registration


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    return result


def test_builder_module_that_does_not_exist_is_caught_at_load(make_plugin: MakePlugin, plugin_dir: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    make_plugin("ghost", spec_plugin("ArchSpec('ghostnet', 'ghost', builder='zp_no_such_module:net')"))
    make_plugin("ghostsub", spec_plugin("ArchSpec('ghostsub', 'ghost', builder='zoo.models.no_such:net')"))
    make_plugin("good", arch_plugin("goodnet"))
    # a package whose __init__ must not run just to find out that its builder module exists
    package = plugin_dir / "zp_lazy_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(f"open({str(plugin_dir / 'ran.txt')!r}, 'w').write('ran')\n")
    (package / "models.py").write_text("def net(num_classes, in_channels):\n    raise RuntimeError\n")
    make_plugin("lazy", spec_plugin("ArchSpec('lazynet', 'lazy', builder='zp_lazy_pkg.models:net')"))
    monkeypatch.setenv("ZOO_PLUGINS", "ghost,ghostsub,good,lazy")
    assert load_warnings() == [
        "plugin 'ghost' skipped: architecture 'ghostnet' is invalid: builder module 'zp_no_such_module' "
        "not found (builder 'zp_no_such_module:net')",
        "plugin 'ghostsub' skipped: architecture 'ghostsub' is invalid: builder module 'zoo.models.no_such' "
        "not found (builder 'zoo.models.no_such:net')",
    ]
    assert not (plugin_dir / "ran.txt").exists()
    assert {"goodnet", "lazynet"} <= set(zoo.list_models()) and "ghostnet" not in zoo.list_models()
    result = invoke("list", "goodnet", "resnet18")
    assert result.exit_code == 0 and "goodnet" in result.stdout and "resnet18" in result.stdout
    reset_host()
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    result = invoke("list")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: plugin 'ghost' failed: architecture 'ghostnet' is invalid: ")


def test_one_broken_builder_never_hides_the_zoo(make_plugin: MakePlugin, plugin_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (plugin_dir / "zp_half_models.py").write_text(
        "def crash(num_classes, in_channels):\n    raise RuntimeError('out of ideas')\n")
    make_plugin("half", spec_plugin(
        "ArchSpec('nofunc', 'half', builder='zp_half_models:missing_function', image_size=32)",
        "ArchSpec('crashnet', 'half', builder='zp_half_models:crash', image_size=32)",
        "ArchSpec('fine', 'half', builder='zoo.models.simple_cnn:simple_cnn', image_size=32)",
    ))
    monkeypatch.setenv("ZOO_PLUGINS", "half")
    for args in (("list",), ("list", "--json")):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert "resnet18" in result.stdout and "fine" in result.stdout
        warned = result.stderr.splitlines()
        assert len(warned) == 2 and all(line.startswith("warning: ") for line in warned)
        assert "'nofunc' (plugin 'half') cannot be built: builder 'zp_half_models:missing_function' " \
               "cannot be loaded (AttributeError" in warned[1]
        assert "'crashnet' (plugin 'half') cannot be built: RuntimeError: out of ideas" in warned[0]
    rows = {r["name"]: r for r in json.loads(invoke("list", "--json").stdout)}
    assert rows["crashnet"]["params"] is None and rows["crashnet"]["error"].startswith("RuntimeError")
    assert rows["fine"]["params"] > 0 and rows["fine"]["error"] is None
    table = invoke("list", "nofunc", "crashnet", "fine").stdout
    assert "nofunc" in table and "crashnet" in table and "?" in table
    result = invoke("info", "nofunc")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: architecture 'nofunc' (plugin 'half'): builder "
                                    "'zp_half_models:missing_function' cannot be loaded (AttributeError")
    out = tmp_path / "run"
    result = invoke("train", "crashnet", "--data", "digits", "--out", str(out), "--epochs", "1")
    assert result.exit_code == 1 and not out.exists()
    assert result.stderr == "error: architecture 'crashnet' (plugin 'half') failed to build: " \
                            "RuntimeError: out of ideas\n"


INVALID_SPECS = {
    "space in name": ("ArchSpec('my net', 'f', builder='zoo.models.simple_cnn:simple_cnn')",
                      "architecture 'my net' is invalid: name must be"),
    "punctuation": ("ArchSpec('net!', 'f', builder='zoo.models.simple_cnn:simple_cnn')",
                    "architecture 'net!' is invalid: name must be"),
    "glob in name": ("ArchSpec('net*', 'f', builder='zoo.models.simple_cnn:simple_cnn')",
                     "architecture 'net*' is invalid: name must be"),
    "sizes": ("ArchSpec('small', 'f', builder='zoo.models.simple_cnn:simple_cnn', image_size=16, "
              "min_image_size=32)",
              "architecture 'small' is invalid: image_size 16 is below min_image_size 32"),
    "zero classes": ("ArchSpec('zero', 'f', builder='zoo.models.simple_cnn:simple_cnn', num_classes=0)",
                     "architecture 'zero' is invalid: num_classes must be a positive integer, got 0"),
    "family": ("ArchSpec('fam', 'My Family', builder='zoo.models.simple_cnn:simple_cnn')",
               "architecture 'fam' is invalid: family must be"),
    "tags as a string": ("ArchSpec('tagged', 'f', builder='zoo.models.simple_cnn:simple_cnn', tags='small')",
                         "architecture 'tagged' is invalid: tags must be a tuple of strings"),
    "builder": ("ArchSpec('b', 'f', builder='zoo.models.simple_cnn:simple_cnn()')",
                "architecture 'b' is invalid: builder 'zoo.models.simple_cnn:simple_cnn()' is not"),
    "reserved option": ("ArchSpec('k', 'f', builder='zoo.models.simple_cnn:simple_cnn', "
                        "default_kwargs=(('num_classes', 3),))",
                        "architecture 'k' is invalid: default_kwargs may not set num_classes"),
    "data set name": ("DatasetSpec('my set', loader='zoo.data.builtin:load_digits')",
                      "data set 'my set' is invalid: name must be"),
    "data set loader": ("DatasetSpec('myset', loader='zoo.data.builtin')",
                        "data set 'myset' is invalid: loader 'zoo.data.builtin' is not"),
}


@pytest.mark.parametrize("case", sorted(INVALID_SPECS))
def test_invalid_spec_rejects_the_plugin_whole(case: str, make_plugin: MakePlugin,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    spec, expected = INVALID_SPECS[case]
    make_plugin("bad", spec_plugin(spec, "ArchSpec('okay', 'f', builder='zoo.models.simple_cnn:simple_cnn')"))
    monkeypatch.setenv("ZOO_PLUGINS", "bad")
    [message] = load_warnings()
    assert message.startswith(f"plugin 'bad' skipped: {expected}"), message
    assert "okay" not in zoo.list_models()  # all or nothing
    result = invoke("list", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)
    reset_host()
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError) as info:
        zoo.list_models()
    assert str(info.value).startswith(f"plugin 'bad' failed: {expected}")


def test_valid_names_follow_the_documented_pattern() -> None:
    from zoo.registry import NAME_PATTERN

    assert all(NAME_PATTERN.fullmatch(name) for name in zoo.list_models())
    assert all(NAME_PATTERN.fullmatch(f) for f in zoo.list_families())
    for bad in ("", "a b", "A", "-x", "x/y", "x*", "é", "x" * 65):
        assert not NAME_PATTERN.fullmatch(bad)


def test_builder_ignoring_num_classes_or_in_channels_is_named_before_anything_is_written(
        make_plugin: MakePlugin, plugin_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (plugin_dir / "zp_ignorant.py").write_text(
        "from zoo.models.simple_cnn import simple_cnn\n\n"
        "def fixed_head(num_classes, in_channels):\n"
        "    return simple_cnn(num_classes=1000, in_channels=in_channels)\n\n"
        "def rgb_only(num_classes, in_channels):\n"
        "    return simple_cnn(num_classes=num_classes, in_channels=3)\n")
    make_plugin("ignorant", spec_plugin(
        "ArchSpec('fixedhead', 'ignorant', builder='zp_ignorant:fixed_head', image_size=32)",
        "ArchSpec('rgbonly', 'ignorant', builder='zp_ignorant:rgb_only', image_size=32)",
    ))
    monkeypatch.setenv("ZOO_PLUGINS", "ignorant")
    expected = {
        "fixedhead": "error: architecture 'fixedhead' (plugin 'ignorant') ignores num_classes: built for "
                     "10 classes, its output for a batch of 2 is (2, 1000)\n",
        "rgbonly": "error: architecture 'rgbonly' (plugin 'ignorant') ignores in_channels: built for "
                   "1 input channel(s), its first convolution takes 3\n",
    }
    for arch, message in expected.items():
        out = tmp_path / arch
        result = invoke("train", arch, "--data", "digits", "--out", str(out), "--epochs", "1",
                        "--image-size", "16", "--workers", "0", "--quiet")
        assert (result.exit_code, result.stderr) == (1, message)
        assert not out.exists()


def test_each_family_has_at_most_one_default(make_plugin: MakePlugin,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    fine = "builder='zoo.models.simple_cnn:simple_cnn'"
    make_plugin("twice", spec_plugin(f"ArchSpec('one', 'mine', {fine}, family_default=True)",
                                     f"ArchSpec('two', 'mine', {fine}, family_default=True)"))
    make_plugin("thief", spec_plugin(f"ArchSpec('vggish', 'vgg', {fine}, family_default=True)"))
    make_plugin("masked", spec_plugin(f"ArchSpec('maskednet', 'resnet18', {fine}, family_default=True)"))
    make_plugin("okay", spec_plugin(f"ArchSpec('solo', 'solo', {fine}, family_default=True)",
                                    f"ArchSpec('solo_big', 'solo', {fine})"))
    monkeypatch.setenv("ZOO_PLUGINS", "twice,thief,masked,okay")
    assert load_warnings() == [
        "plugin 'masked' skipped: family 'resnet18' is also the name of an architecture (by plugin "
        "'zoo.resnet'), so 'zoo train resnet18' could not mean the family",
        "plugin 'thief' skipped: family 'vgg' has two default members: 'vgg11_bn' (plugin 'zoo.vgg') "
        "and 'vggish' (plugin 'thief')",
        "plugin 'twice' skipped: family 'mine' has two default members: 'one' (plugin 'twice') and "
        "'two' (plugin 'twice')",
    ]
    assert zoo.get_spec("solo").name == "solo" and zoo.get_spec("vgg").name == "vgg11_bn"
