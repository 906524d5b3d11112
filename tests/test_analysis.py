"""zoo.analysis: meta-device sizes, course formulas vs torch, receptive fields, the summary cache."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

import zoo
from zoo import analysis
from zoo.analysis import (
    conv_output_size,
    conv_params,
    default_summaries,
    describe,
    human,
    summarize,
)
from zoo.errors import UnknownNameError, ZooUsageError

ARCHS = zoo.list_models()


def _meta(name: str) -> nn.Module:
    with torch.device("meta"):
        return zoo.get_spec(name).build().eval()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", ARCHS)
def test_course_formulas_equal_torch(name):
    """Independently of describe(): every Conv2d's formula output size and parameter count equal
    torch's, at the default size and at an odd small size (floor division matters there)."""
    spec = zoo.get_spec(name)
    for size in (spec.image_size, spec.min_image_size + 3):
        model = _meta(name)
        calls: list[tuple[nn.Conv2d, tuple[int, ...], tuple[int, ...]]] = []

        def record(m, a, y, calls=calls):
            calls.append((m, tuple(a[0].shape), tuple(y.shape)))

        hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, nn.Conv2d)]
        model(torch.empty(1, spec.in_channels, size, size, device="meta"))
        for h in hooks:
            h.remove()
        assert calls, f"{name} has no Conv2d"
        for conv, x, y in calls:
            assert not isinstance(conv.padding, str)
            for axis in (0, 1):
                want = conv_output_size(x[2 + axis], conv.kernel_size[axis], conv.stride[axis],
                                        conv.padding[axis], conv.dilation[axis])
                assert want == y[2 + axis], (name, size, conv)
            want = conv_params(conv.in_channels, conv.out_channels, *conv.kernel_size, conv.groups,
                               conv.bias is not None)
            assert want == sum(p.numel() for p in conv.parameters()), (name, conv)
    # describe() runs the same check itself (at the default size in the test below)
    report = describe(name, image_size=size)
    assert report.mismatches == ()
    assert report.checked_convs == len(calls)


@pytest.mark.parametrize("name", ARCHS)
def test_meta_sizes_equal_the_real_model(name):
    real = zoo.get_model(name)
    n_real = sum(p.numel() for p in real.parameters())
    del real
    summary = summarize(name)
    report = describe(name)
    assert summary.params == report.params == n_real
    assert summary.macs == report.macs > 0
    assert report.mismatches == () and report.checked_convs > 0
    # depth-0 rows partition the model: their parameters add up to the total
    assert sum(r.params for r in report.rows if r.depth == 0) == n_real
    assert report.output_shape == (1, zoo.get_spec(name).num_classes)
    assert all(p.is_meta for p in _meta(name).parameters())


def test_resnet18_macs_match_torchvision():
    # torchvision documents 1.81 GFLOPS (counted as multiply-adds) for resnet18 at 224
    assert summarize("resnet18").macs == pytest.approx(1.82e9, rel=0.01)
    # at 448 every map is exactly twice as wide: conv MACs x4, the 512x1000 classifier unchanged
    conv_macs = summarize("resnet18").macs - 512 * 1000
    assert summarize("resnet18", image_size=448).macs == 4 * conv_macs + 512 * 1000


def test_receptive_field_of_stacked_convs():
    stack = nn.Sequential(*(nn.Conv2d(4, 4, 3, padding=1) for _ in range(3)))
    rows = describe(stack, image_size=16).rows
    assert [r.receptive_field for r in rows] == [3, 5, 7]
    assert [r.jump for r in rows] == [1, 1, 1]
    strided = nn.Sequential(nn.Conv2d(4, 4, 3, stride=2, padding=1),
                            nn.Conv2d(4, 4, 3, dilation=2, padding=2))
    rows = describe(strided, image_size=16).rows
    assert [(r.receptive_field, r.jump) for r in rows] == [(3, 2), (3 + 2 * 2 * 2, 2)]


class TwoPaths(nn.Module):
    """The shortcut (7x7) runs first and sees more than the branch (two 3x3): a per-module-order
    count would report the branch's 5, the per-tensor one the output's true 7."""

    def __init__(self) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(4, 4, 7, padding=3)
        self.branch = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.shortcut(x)
        return self.branch(x) + s


class Gate(nn.Module):
    """An SE-style gate: a global mean broadcast back over the map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x.mean((2, 3), keepdim=True).sigmoid()


def test_receptive_field_is_per_tensor():
    model = nn.Sequential(TwoPaths(), Gate())
    report = describe(model, image_size=20)
    block, gate = report.rows
    assert (block.receptive_field, block.sees_whole_image) == (7, False)
    # the gate leaves the local field and spacing alone but makes every pixel see the whole image
    assert (gate.receptive_field, gate.jump, gate.sees_whole_image) == (7, 1, True)


def test_known_receptive_fields():
    vgg = [r for r in describe("vgg16", depth=5).rows if r.type in ("Conv2d", "MaxPool2d")]
    convs = [r for r in vgg if r.type == "Conv2d"]
    assert len(convs) == 13
    assert convs[-1].receptive_field == 196  # conv5_3
    assert vgg[-1].type == "MaxPool2d" and vgg[-1].receptive_field == 212  # pool5
    assert describe("resnet18").receptive_field == 435
    assert describe("resnet50").receptive_field == 427  # stride on the 3x3 conv (torchvision v1.5)
    assert describe("mobilenet_v2").receptive_field == 491  # as in Araujo et al., Distill 2019
    # SE changes what the pixels see globally, not the local field
    assert describe("se_resnet18").receptive_field == 435


def test_global_pooling_covers_the_map():
    rows = describe("resnet18").rows
    pool = next(r for r in rows if r.type == "AdaptiveAvgPool2d")
    assert pool.sees_whole_image and pool.output_shape == (1, 512, 1, 1)
    assert pool.receptive_field == 435 + (7 - 1) * 32


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pool_formula(ceil_mode):
    for i in range(5, 40):
        for k, s, p in ((2, 2, 0), (3, 2, 1), (3, 2, 0), (3, 1, 1)):
            y = nn.MaxPool2d(k, s, p, ceil_mode=ceil_mode)(torch.empty(1, 1, i, i, device="meta"))
            assert analysis.pool_output_size(i, k, s, p, ceil_mode=ceil_mode) == y.shape[-1], (i, k, s, p)


class LyingConv(nn.Conv2d):
    """A conv whose output is not what the formula predicts: describe must say so."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[..., 1:, :]


def test_mismatch_is_reported_loudly():
    with pytest.warns(analysis.FormulaMismatchWarning, match="formula predicts output H=8"):
        report = describe(nn.Sequential(LyingConv(3, 4, 3, padding=1)), image_size=8)
    assert len(report.mismatches) == 1


def test_bad_sizes_are_one_line_usage_errors():
    with pytest.raises(ZooUsageError) as err:
        summarize("resnet50", image_size=8)
    assert str(err.value) == (
        "image size 8 is too small for resnet50: it downsamples 32x, use --image-size >= 32"
    )
    with pytest.raises(ZooUsageError, match="in_channels must be a positive integer, got 0"):
        describe("resnet18", in_channels=0)
    with pytest.raises(ZooUsageError, match="num_classes"):
        summarize("resnet18", num_classes=-1)
    with pytest.raises(UnknownNameError, match="did you mean resnet18"):
        summarize("resnt18")


def test_options_change_the_numbers():
    gray = describe("resnet18", in_channels=1, num_classes=10, image_size=64)
    assert gray.output_shape == (1, 10)
    assert gray.params == 11689512 - 64 * 2 * 7 * 7 - 990 * 513


def test_depth_opens_blocks():
    blocks = describe("resnet18").rows
    opened = describe("resnet18", depth=1).rows
    assert len(opened) > len(blocks)
    assert {r.path for r in blocks} <= {r.path for r in opened}
    assert max(r.depth for r in opened) == 1


def test_human_numbers():
    assert [human(n) for n in (512, 272474, 3504872, 11689512, 138357544, 1814073344, 999_600_000)] == [
        "512", "272K", "3.50M", "11.7M", "138M", "1.81G", "1.00G"]


def test_summary_cache_round_trip(tmp_path, monkeypatch):
    specs = [zoo.get_spec(n) for n in ("resnet18", "simple_cnn")]
    first = default_summaries(specs)
    path = analysis.cache_path()
    assert path.is_relative_to(tmp_path) and path.exists()
    cached = json.loads(path.read_text())
    assert {v["summary"]["name"] for v in cached.values()} == {"resnet18", "simple_cnn"}

    def no_compute(*a, **k):
        raise AssertionError("served from the cache, nothing to compute")

    monkeypatch.setattr(analysis, "summarize", no_compute)
    assert default_summaries(specs) == first
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # a stale fingerprint (new zoo or plugin version, edited model source) is recomputed
    key = next(k for k, v in cached.items() if v["summary"]["name"] == "resnet18")
    cached[key]["fingerprint"] = "0.0.0|zoo.resnet=0.0.0"
    cached[key]["summary"]["params"] = 1
    path.write_text(json.dumps(cached))
    assert default_summaries(specs)[0].params == 11689512
    path.write_text("{ not json")  # a damaged cache is ignored and rewritten
    assert default_summaries(specs) == first
    assert json.loads(path.read_text())
    path.unlink()  # deleting it is always safe
    assert default_summaries(specs) == first


def test_importing_analysis_does_not_import_torch():
    code = "import sys, zoo.analysis, zoo.cli.registry_cmds; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
