"""zoo-squeezenet's own tests: it registers through zoo's entry point, matches torchvision to
the parameter (and, with the published head, to the output), and builds at any input size."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import pytest
import torch
import torchvision
from typer.testing import CliRunner

import zoo
import zoo.testing
from zoo.cli import app
from zoo.errors import ZooUsageError
from zoo.plugins import reset_host

PUBLISHED = {  # name -> (parameters at 1000 classes, torchvision's builder)
    "squeezenet1_0": (1_248_424, torchvision.models.squeezenet1_0),
    "squeezenet1_1": (1_235_496, torchvision.models.squeezenet1_1),
}


@pytest.fixture(autouse=True)
def only_this_plugin(monkeypatch: pytest.MonkeyPatch):
    """Built-ins plus this plugin, freshly loaded, whatever else is installed."""
    try:
        importlib.metadata.distribution("zoo-squeezenet")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("zoo-squeezenet is not installed: pip install --no-deps -e plugins/zoo-squeezenet")
    monkeypatch.setenv("ZOO_PLUGINS", "squeezenet")
    monkeypatch.delenv("ZOO_STRICT_PLUGINS", raising=False)
    reset_host()
    yield
    reset_host()


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_is_the_published_one(name: str) -> None:
    expected, torchvision_builder = PUBLISHED[name]
    ours = n_params(zoo.get_model(name))
    assert ours == expected
    assert ours == n_params(torchvision_builder())


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_head_computes_what_torchvision_computes(name: str) -> None:
    reference = PUBLISHED[name][1]().eval()
    ours = zoo.get_model(name, head_relu=True).eval()
    ours.load_state_dict(reference.state_dict())  # same layers, same names
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
@pytest.mark.parametrize("in_channels", [1, 3])
def test_forward_shape_from_smallest_to_default_size(name: str, in_channels: int) -> None:
    spec = zoo.get_spec(name)
    model = zoo.get_model(name, num_classes=7, in_channels=in_channels).eval()
    with torch.no_grad():
        for size in (spec.min_image_size, 50, spec.image_size):
            assert model(torch.randn(2, in_channels, size, size)).shape == (2, 7)
        with pytest.raises(RuntimeError):  # min_image_size is the real minimum
            model(torch.randn(1, in_channels, spec.min_image_size - 1, spec.min_image_size - 1))


def test_logits_can_be_negative_by_default() -> None:
    """Without the published head ReLU a wrong class can be pushed below zero (see README)."""
    torch.manual_seed(0)
    model = zoo.get_model("squeezenet1_1", num_classes=50, in_channels=1).eval()
    with torch.no_grad():
        assert (model(torch.randn(4, 1, 17, 17)) < 0).any()


def test_unknown_option_is_a_usage_error() -> None:
    with pytest.raises(ZooUsageError, match="does not take se"):
        zoo.get_model("squeezenet1_1", se=True)


def test_registered_through_the_entry_point() -> None:
    assert zoo.list_models("squeeze*") == ["squeezenet1_0", "squeezenet1_1"]
    spec = zoo.get_spec("squeezenet1_1")
    assert (spec.family, spec.plugin, spec.min_image_size) == ("squeezenet", "squeezenet", 17)
    assert zoo.list_models(family="squeezenet") == ["squeezenet1_0", "squeezenet1_1"]


def test_zoo_list_shows_it() -> None:
    result = CliRunner().invoke(app, ["list", "squeeze*"])
    assert result.exit_code == 0, result.output
    assert "squeezenet1_0" in result.stdout and "squeezenet1_1" in result.stdout
    rows = json.loads(CliRunner().invoke(app, ["list", "squeeze*", "--json"]).stdout)
    assert [row["name"] for row in rows] == ["squeezenet1_0", "squeezenet1_1"]


def test_plugin_module_does_not_import_torch() -> None:
    code = "import sys, zoo_squeezenet.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_conforms_to_the_zoo_plugin_contract() -> None:
    zoo.testing.assert_plugin_conforms("squeezenet")


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_small_input_halves_the_downsampling(name: str) -> None:
    """Tagged imagenet, so zoo trains it with small_input=True on small images: stride-1 stem."""
    assert "imagenet" in zoo.get_spec(name).tags
    big, small = (zoo.get_model(name, num_classes=3, small_input=flag).eval() for flag in (False, True))
    assert n_params(big) == n_params(small)
    with torch.no_grad():
        maps = [m.features(torch.randn(1, 3, 64, 64)).shape[-1] for m in (big, small)]
    assert maps[1] >= 2 * maps[0]
