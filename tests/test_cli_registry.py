"""`zoo list` and `zoo info` through Typer's CliRunner: stdout, stderr, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import zoo
from zoo.cli import app

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _private_cache(tmp_path_factory):
    """One summary cache for this module (the first `zoo list` fills it), never the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def _list_json(*args: str) -> list[dict]:
    result = invoke("list", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_list_table_shows_every_architecture_with_readable_numbers():
    result = invoke("list")
    assert result.exit_code == 0, result.output
    for name in zoo.list_models():
        assert name in result.stdout
    line = next(ln for ln in result.stdout.splitlines() if " resnet18 " in ln)
    for cell in ("resnet", "11.7M", "1.81G", "3x224x224", "imagenet", "zoo.resnet"):
        assert cell in line
    assert "138M" in next(ln for ln in result.stdout.splitlines() if " vgg16 " in ln)


def test_list_json_has_exact_numbers():
    records = _list_json()
    assert [r["name"] for r in records] == zoo.list_models()
    by_name = {r["name"]: r for r in records}
    assert by_name["resnet18"]["params"] == 11_689_512
    assert by_name["mobilenet_v2"]["params"] == 3_504_872
    assert by_name["resnet18"]["macs"] == pytest.approx(1.82e9, rel=0.01)
    assert set(by_name["resnet18"]) >= {"family", "image_size", "in_channels", "tags", "plugin", "macs"}
    assert by_name["resnet18"]["plugin"] == zoo.get_spec("resnet18").plugin
    # each network as published: CIFAR-10 ResNets at 10 classes (He et al. 2015, table 6: 0.27M)
    assert (by_name["resnet20"]["num_classes"], by_name["resnet20"]["params"]) == (10, 269_722)
    assert by_name["resnet18"]["num_classes"] == 1000
    assert sum(p.numel() for p in zoo.get_model("resnet20").parameters()) == 269_722


def test_list_filters():
    assert {r["name"] for r in _list_json("resnet*")} == set(zoo.list_models("resnet*"))
    assert {r["name"] for r in _list_json("vgg11", "vgg13*")} == {"vgg11", "vgg13", "vgg13_bn"}
    assert {r["family"] for r in _list_json("--family", "vgg")} == {"vgg"}
    tagged = _list_json("--tag", "se")
    assert tagged and all("se" in r["tags"] for r in tagged)
    assert {r["name"] for r in _list_json("*resnet*", "--tag", "se", "--family", "se")} == set(
        zoo.list_models("*resnet*", family="se", tag="se"))


def test_list_no_match_is_an_empty_answer_not_an_error():
    result = invoke("list", "nothing*")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr.strip() == "no architectures match pattern nothing*"
    assert _list_json("nothing*") == []


def test_list_unknown_family_or_tag_is_a_usage_error():
    result = invoke("list", "--family", "resnt")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: unknown family 'resnt'; did you mean resnet?"
    result = invoke("list", "--tag", "no-such-tag")
    assert result.exit_code == 2 and result.stderr.startswith("error: unknown tag 'no-such-tag'; known: ")
    result = invoke("list", "")
    assert result.exit_code == 2 and result.stderr.strip() == "error: empty name pattern"


def test_info_table():
    result = invoke("info", "resnet18")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ("resnet18", "input 1x3x224x224", "512x7x7", "435", "total", "11.7M", "1.81G",
                 "parameters 11,689,512", "0 mismatches"):
        assert text in out
    deeper = invoke("info", "resnet18", "--depth", "1")
    assert len(deeper.stdout.splitlines()) > len(out.splitlines())


def test_info_json_and_options():
    result = invoke("info", "resnet50", "--json", "--image-size", "64", "--in-channels", "1",
                    "--num-classes", "10")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    sizes = (data["name"], data["image_size"], data["in_channels"], data["num_classes"])
    assert sizes == ("resnet50", 64, 1, 10)
    assert data["output_shape"] == [1, 10]
    assert data["mismatches"] == []
    assert data["rows"][-1]["output_shape"] == [1, 10]
    assert sum(r["params"] for r in data["rows"] if r["depth"] == 0) == data["params"]
    fields = {"path", "type", "output_shape", "params", "macs", "receptive_field", "jump", "sees_whole_image"}
    assert fields <= set(data["rows"][0])


def test_info_unknown_name_suggests():
    result = invoke("info", "resnt18")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: unknown architecture 'resnt18'; did you mean resnet18")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image-size", "8"],
         "error: image size 8 is too small for resnet50: it downsamples 32x, use --image-size >= 32"),
        (["--in-channels", "0"], "error: in_channels must be a positive integer, got 0"),
        (["--num-classes", "-3"], "error: num_classes must be a positive integer, got -3"),
        (["--image-size", "0"], "error: image size must be a positive integer, got 0"),
    ],
)
def test_info_bad_sizes_are_one_line_errors(args, message):
    result = invoke("info", "resnet50", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [message]


def test_warm_list_does_not_import_torch():
    """Once the cache is filled, `zoo list` answers without loading torch."""
    assert invoke("list").exit_code == 0  # fills this module's cache (if no test did yet)
    code = ("import sys, json; from typer.testing import CliRunner; from zoo.cli import app; "
            "r = CliRunner().invoke(app, ['list', '--json']); assert r.exit_code == 0, r.output; "
            "print(len(json.loads(r.stdout)), 'torch' in sys.modules)")
    warm = subprocess.run([sys.executable, "-c", code], env=dict(os.environ), capture_output=True, text=True,
                          check=True)
    assert warm.stdout.split() == [str(len(zoo.list_models())), "False"]
