"""The plugin contract as checks: ``zoo.testing``, ``zoo plugins --check`` and ``zoo plugin new``.

Each way a plugin can break the contract is a real throwaway plugin whose check must fail, and
the built-in architectures must pass (all checks on the small ones, the meta-device subset on
the big ones, to fit CI time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_kit import MakePlugin, spec_plugin
from typer.testing import CliRunner

import zoo
import zoo.testing
from zoo.cli import app

BROKEN_MODELS = '''
import torch
import torch.nn.functional as F
from torch import nn

from zoo.models.simple_cnn import simple_cnn


def fixed_head(num_classes, in_channels):
    return simple_cnn(num_classes=1000, in_channels=in_channels)


def rgb_only(num_classes, in_channels):
    return simple_cnn(num_classes=num_classes, in_channels=3)


def lenient(num_classes, in_channels, **ignored):
    return simple_cnn(num_classes=num_classes, in_channels=in_channels)


def no_small_input(num_classes, in_channels):
    return simple_cnn(num_classes=num_classes, in_channels=in_channels)


class Dead(nn.Module):
    def __init__(self, num_classes, in_channels):
        super().__init__()
        self.net = simple_cnn(num_classes=num_classes, in_channels=in_channels)
        self.unused = nn.Linear(3, 3)

    def forward(self, x):
        return self.net(x)


def dead_parameter(num_classes, in_channels):
    return Dead(num_classes, in_channels)


class OddConv(nn.Conv2d):
    """Says padding 1, computes padding 0: the formulas must notice."""

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, 0)


class Odd(nn.Module):
    def __init__(self, num_classes, in_channels):
        super().__init__()
        self.conv = OddConv(in_channels, 8, 3, padding=1)
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(self.conv(x).mean((2, 3)))


def odd_padding(num_classes, in_channels):
    return Odd(num_classes, in_channels)


class Unsaved(nn.Module):
    """A random buffer left out of the state_dict: a reloaded model computes something else."""

    def __init__(self, num_classes, in_channels):
        super().__init__()
        self.net = simple_cnn(num_classes=num_classes, in_channels=in_channels)
        self.register_buffer("offset", torch.randn(num_classes), persistent=False)

    def forward(self, x):
        return self.net(x) + self.offset


def unsaved_buffer(num_classes, in_channels):
    return Unsaved(num_classes, in_channels)


class BatchTwo(nn.Module):
    """Python control flow on the batch size: the trace freezes it, so ONNX disagrees at batch 1."""

    def __init__(self, num_classes, in_channels):
        super().__init__()
        self.net = simple_cnn(num_classes=num_classes, in_channels=in_channels)

    def forward(self, x):
        out = self.net(x)
        return out * 3 if x.shape[0] == 2 else out


def batch_two(num_classes, in_channels):
    return BatchTwo(num_classes, in_channels)
'''

# architecture -> (builder, extra spec fields, the check that must fail)
BROKEN = {
    "fixedhead": ("fixed_head", "", "sizes"),
    "rgbonly": ("rgb_only", "", "sizes"),
    "lenient": ("lenient", "", "options"),
    "nosmall": ("no_small_input", ", tags=('imagenet',)", "options"),
    "deadparam": ("dead_parameter", "", "train_step"),
    "oddpadding": ("odd_padding", "", "formulas"),
    "unsaved": ("unsaved_buffer", "", "state_dict"),
    "batchtwo": ("batch_two", "", "onnx"),
}


@pytest.fixture
def broken_plugin(make_plugin: MakePlugin, plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (plugin_dir / "zp_broken_models.py").write_text(BROKEN_MODELS)
    specs = [f"ArchSpec({arch!r}, 'broken', builder='zp_broken_models:{builder}', image_size=16, "
             f"min_image_size=8{extra})" for arch, (builder, extra, _) in BROKEN.items()]
    specs.append("ArchSpec('sound', 'broken', builder='zoo.models.simple_cnn:simple_cnn', image_size=16, "
                 "min_image_size=8)")
    make_plugin("broken", "import torch  # a hook module must not do this\n" + spec_plugin(*specs))
    monkeypatch.setenv("ZOO_PLUGINS", "broken")
    return "broken"


@pytest.mark.slow
def test_each_broken_contract_fails_its_check(broken_plugin: str) -> None:
    results = zoo.testing.check_plugin(broken_plugin)
    failed = {(r.arch, r.check) for r in zoo.testing.failures(results)}
    for arch, (_, _, check) in BROKEN.items():
        assert (arch, check) in failed, (arch, check, [r for r in results if r.arch == arch])
    assert {check for arch, check in failed if arch == "sound"} == {"torch-free"}
    # a builder that cannot build the tiny network fails every check that needs one
    cascade = {("rgbonly", c) for c in ("train_step", "state_dict", "onnx")}
    cascade |= {("nosmall", c) for c in ("counts", "train_step", "state_dict", "onnx")}
    # the exported file's metadata names more classes than a fixed head outputs: refused on load
    cascade.add(("fixedhead", "onnx"))
    main = {(arch, check) for arch, (_, _, check) in BROKEN.items()}
    assert {(arch, check) for arch, check in failed if check != "torch-free"} == main | cascade
    detail = {(r.arch, r.check): r.detail for r in results}
    assert "ignores num_classes" in detail["fixedhead", "sizes"]
    assert "ignores in_channels" in detail["rgbonly", "sizes"]
    assert "unknown option was accepted" in detail["lenient", "options"]
    assert "does not take option(s) small_input" in detail["nosmall", "options"]
    assert "get no gradient, e.g. unused.weight" in detail["deadparam", "train_step"]
    assert "at 8 px: conv: formula predicts output H=8, torch produced 6" in detail["oddpadding", "formulas"]
    assert "computes other outputs" in detail["unsaved", "state_dict"]
    assert "between onnxruntime and PyTorch" in detail["batchtwo", "onnx"]
    assert "imports torch" in detail["sound", "torch-free"]
    pattern = r"plugin 'broken': \d+ of \d+ checks failed\n  fixedhead sizes: "
    with pytest.raises(AssertionError, match=pattern):
        zoo.testing.assert_plugin_conforms(broken_plugin)


@pytest.mark.slow
def test_plugins_check_cli_table_and_exit_code(broken_plugin: str) -> None:
    result = CliRunner().invoke(app, ["plugins", "--check", broken_plugin, "--quick"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")
    assert "conformance checks failed: fixedhead sizes, plugin 'broken' torch-free, rgbonly sizes," in line
    rows = {ln.split()[1]: ln for ln in result.stdout.splitlines() if ln.startswith("│")}
    assert rows["fixedhead"].count("FAIL") == 2 and rows["sound"].count("FAIL") == 1  # sizes; torch-free
    assert "train_step" not in result.stdout  # --quick builds nothing real
    assert "FAIL fixedhead sizes: architecture 'fixedhead' (plugin 'broken') ignores num_classes" in \
        result.stdout
    as_json = CliRunner().invoke(app, ["plugins", "--check", "sound", "--json", "--quick"])
    assert as_json.exit_code == 1  # torch imported by the hook module
    records = json.loads(as_json.stdout)
    assert {r["check"]: r["status"] for r in records} == {c: ("fail" if c == "torch-free" else "pass")
                                                         for c in zoo.testing.QUICK}


def test_unknown_name_and_broken_plugin_are_one_line_errors(make_plugin: MakePlugin,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    make_plugin("crashing", "raise RuntimeError('no')\n")
    monkeypatch.setenv("ZOO_PLUGINS", "crashing")
    result = CliRunner().invoke(app, ["plugins", "--check", "resnt18"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith("error: unknown architecture 'resnt18'; ")
    result = CliRunner().invoke(app, ["plugins", "crashng"])
    assert result.exit_code == 2
    assert result.stderr == "error: unknown plugin 'crashng'; did you mean crashing?\n"
    result = CliRunner().invoke(app, ["plugins", "--check", "crashing"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "error: plugin 'crashing' did not load: RuntimeError: no"


SMALL_BUILTINS = ("simple_cnn", "simple_cnn_bn", "strided_cnn", "se_simple_cnn", "resnet20",
                  "mobilenet_v3_small")


@pytest.mark.parametrize("arch", SMALL_BUILTINS)
def test_small_builtins_pass_every_check(arch: str) -> None:
    results = zoo.testing.assert_conforms(arch)
    assert [r.check for r in results] == list(zoo.testing.CHECKS)


def test_every_builtin_passes_the_meta_device_checks() -> None:
    """Builds nothing real: spec, build at the published size, options (small_input), torch-free."""
    names = [n for n in zoo.list_models() if zoo.get_spec(n).plugin.startswith("zoo.")]
    assert len(names) >= 25
    for name in names:
        zoo.testing.assert_conforms(name, ("spec", "build", "options", "torch-free"))


# ------------------------------------------------------------------ zoo plugin new


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ZOO_PLUGINS", "ZOO_STRICT_PLUGINS")}
    return subprocess.run(list(args), capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


@pytest.mark.slow
def test_plugin_new_installs_passes_its_tests_and_is_listed(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["plugin", "new", "scaffolded", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    package = tmp_path / "zoo-scaffolded"
    assert result.stdout.splitlines()[0] == (f"wrote {package}: plugin 'scaffolded', "
                                             "architecture 'scaffolded_cnn'")
    assert {str(p.relative_to(package)) for p in package.rglob("*") if p.is_file()} == {
        "pyproject.toml", "README.md", ".gitignore", ".github/workflows/ci.yml", "tests/test_scaffolded.py",
        "zoo_scaffolded/__init__.py", "zoo_scaffolded/plugin.py", "zoo_scaffolded/models.py"}
    test_source = (package / "tests/test_scaffolded.py").read_text()
    assert 'zoo.testing.assert_plugin_conforms("scaffolded")' in test_source  # one line
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e"]
    installed = run(*pip, str(package))
    assert installed.returncode == 0, installed.stderr
    try:
        zoo_cli = str(Path(sys.executable).parent / "zoo")
        listed = run(zoo_cli, "list", "--json", "--family", "scaffolded")
        assert listed.returncode == 0, listed.stderr
        [row] = json.loads(listed.stdout)
        assert (row["name"], row["plugin"], row["error"]) == ("scaffolded_cnn", "scaffolded", None)
        own_tests = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=package)
        assert own_tests.returncode == 0, own_tests.stdout + own_tests.stderr
        assert "3 passed" in own_tests.stdout
    finally:
        run(sys.executable, "-m", "pip", "uninstall", "--quiet", "--yes", "zoo-scaffolded")
    assert "scaffolded_cnn" not in run(zoo_cli, "list", "--json").stdout


def test_plugin_new_refuses_bad_names_and_existing_folders(tmp_path: Path) -> None:
    (tmp_path / "zoo-taken").mkdir()
    cases = [(["plugin", "new", "Bad Name"], "plugin name 'Bad Name' must be"),
             (["plugin", "new", "taken"], "zoo-taken: already exists"),
             (["plugin", "new", "zoo.resnet"], "plugin name 'zoo.resnet' must be")]
    for args, message in cases:
        result = CliRunner().invoke(app, [*args, "--dir", str(tmp_path)])
        assert result.exit_code == 2 and message in result.stderr, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["zoo-taken"]
