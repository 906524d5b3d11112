"""The built-in architectures: every one forwards at its default and its smallest size, standard
names equal torchvision's networks (parameter counts and, for a few, outputs), and the options
(se, small_input, width_mult) do what they say. Big networks are counted on the meta device."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import torch
import torchvision
from torch import nn

import zoo
from zoo.models.blocks import SqueezeExcite
from zoo.plugins import reset_host

HEAVY = {
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "resnet101",
    "resnet152",
}
FAMILIES = {"simple", "vgg", "resnet", "mobilenet", "se"}

# The standard networks at 1000 classes and 3 channels (the figures, equal to torchvision).
STANDARD = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "vgg11": 132_863_336,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "mobilenet_v2": 3_504_872,
    "mobilenet_v3_small": 2_542_856,
    "mobilenet_v3_large": 5_483_032,
}
SAME_AS_TORCHVISION = sorted(
    {*STANDARD, "resnet101", "resnet152", "vgg11_bn", "vgg13", "vgg13_bn", "vgg19", "vgg19_bn"}
)
# CIFAR ResNets at 10 classes: exact count, and the paper's figure in millions (Table 6).
CIFAR = {
    "resnet20": (269_722, 0.27),
    "resnet32": (464_154, 0.46),
    "resnet44": (658_586, 0.66),
    "resnet56": (853_018, 0.85),
}


def _builtin_names(tag: str | None = None) -> list[str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZOO_PLUGINS", "")
        reset_host()
        names = zoo.list_models(tag=tag)
    reset_host()
    return names


BUILTIN = _builtin_names()
IMAGENET = _builtin_names(tag="imagenet")
LIGHT = [n for n in BUILTIN if n not in HEAVY]


@pytest.fixture(autouse=True)
def builtins_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ZOO_PLUGINS", "")
    reset_host()
    yield
    reset_host()


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_count(build, **kwargs) -> int:
    with torch.device("meta"):
        return n_params(build(**kwargs))


def test_all_families_registered() -> None:
    assert {zoo.get_spec(n).family for n in BUILTIN} == FAMILIES
    assert set(BUILTIN) == {
        *(f"resnet{d}" for d in (18, 34, 50, 101, 152, 20, 32, 44, 56)),
        *(f"se_resnet{d}" for d in (18, 34, 50)),
        *(f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")),
        *(f"mobilenet_{v}" for v in ("v1", "v2", "v3_small", "v3_large")),
        "simple_cnn", "simple_cnn_bn", "strided_cnn", "se_simple_cnn",
    }  # fmt: skip
    assert len(IMAGENET) == 20  # resnet18..152, se_resnet*, vgg*, mobilenet*: all take small_input


@pytest.mark.parametrize("name", LIGHT)
def test_forward_at_default_size(name: str) -> None:
    spec = zoo.get_spec(name)
    model = zoo.get_model(name, num_classes=10).eval()
    with torch.no_grad():
        out = model(torch.randn(2, spec.in_channels, spec.image_size, spec.image_size))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", BUILTIN)
def test_forward_at_smallest_size_one_channel(name: str) -> None:
    size = zoo.get_spec(name).min_image_size
    model = zoo.get_model(name, num_classes=7, in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, size, size)).shape == (2, 7)
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == 1


# One network per kind of block: plain, BN, strided, SE, option-A residual, basic + SE,
# depthwise-separable, inverted residual with hard-sigmoid SE.
@pytest.mark.parametrize(
    "name", ["simple_cnn", "simple_cnn_bn", "strided_cnn", "se_simple_cnn", "resnet20", "se_resnet18",
             "mobilenet_v1", "mobilenet_v3_small"]
)  # fmt: skip
def test_gradients_reach_the_first_layer(name: str) -> None:
    model = zoo.get_model(name, num_classes=7, in_channels=1).train()
    size = zoo.get_spec(name).min_image_size
    model(torch.randn(2, 1, size, size)).logsumexp(1).sum().backward()
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", BUILTIN)
def test_min_image_size_is_the_downsampling_factor(name: str) -> None:
    spec = zoo.get_spec(name)
    with torch.device("meta"):
        model = zoo.get_model(name)
        features = model.features(torch.empty(1, 3, spec.image_size, spec.image_size))
    assert features.shape[-1] == spec.image_size // spec.min_image_size
    assert spec.image_size == (224 if "imagenet" in spec.tags else 32)
    assert spec.plugin.startswith("zoo.")


@pytest.mark.parametrize("name", SAME_AS_TORCHVISION)
def test_parameter_count_equals_torchvision(name: str) -> None:
    ours = meta_count(zoo.get_model, name=name)
    assert ours == meta_count(getattr(torchvision.models, name))
    if name in STANDARD:
        assert ours == STANDARD[name]


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "vgg11_bn"])
def test_same_function_as_torchvision(name: str) -> None:
    """Loading torchvision's (random) weights in order gives the same outputs: same layers, strides,
    activations and skips, not just the same counts."""
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, name)().eval()
    ours = zoo.get_model(name).eval()
    ours.load_state_dict(dict(zip(ours.state_dict(), theirs.state_dict().values(), strict=True)))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(CIFAR))
def test_cifar_resnet_counts_match_the_paper(name: str) -> None:
    exact, millions = CIFAR[name]
    count = n_params(zoo.get_model(name, num_classes=10))
    assert count == exact
    assert round(count / 1e6, 2) == millions


def test_se_resnet_counts() -> None:
    assert meta_count(zoo.get_model, name="se_resnet18") == 11_778_592
    assert meta_count(zoo.get_model, name="se_resnet34") == 21_958_868
    assert meta_count(zoo.get_model, name="se_resnet50") == 28_088_024  # the paper's 28.1M


@pytest.mark.parametrize(
    "name", ["simple_cnn", "simple_cnn_bn", "strided_cnn", "resnet18", "resnet20", "resnet50"]
)
def test_se_option_adds_se_blocks(name: str) -> None:
    plain = zoo.get_model(name, num_classes=7)
    with_se = zoo.get_model(name, num_classes=7, se=True).eval()
    assert not any(isinstance(m, SqueezeExcite) for m in plain.modules())
    assert any(isinstance(m, SqueezeExcite) for m in with_se.modules())
    assert n_params(with_se) > n_params(plain)
    with torch.no_grad():
        assert with_se(torch.randn(2, 3, 32, 32)).shape == (2, 7)


def test_se_names_are_the_se_option() -> None:
    assert n_params(zoo.get_model("se_simple_cnn")) == n_params(zoo.get_model("simple_cnn", se=True))
    assert meta_count(zoo.get_model, name="se_resnet50") == meta_count(
        zoo.get_model, name="resnet50", se=True
    )


@pytest.mark.parametrize("name", IMAGENET)
def test_small_input_keeps_more_resolution(name: str) -> None:
    with torch.device("meta"):
        x = torch.empty(2, 3, 32, 32)
        standard = zoo.get_model(name).features(x)
        small = zoo.get_model(name, small_input=True).features(x)
    gain = 4 if "resnet" in name else 2  # resnet loses the stem stride and the max-pool, the others one 2x
    assert small.shape[-1] == gain * standard.shape[-1]
    if name not in HEAVY:  # forwards at the smaller minimum size small_input allows
        size = zoo.get_spec(name).min_image_size // gain
        model = zoo.get_model(name, num_classes=7, in_channels=1, small_input=True).eval()
        with torch.no_grad():
            assert model(torch.randn(2, 1, size, size)).shape == (2, 7)


def test_mobilenet_width_mult() -> None:
    assert meta_count(zoo.get_model, name="mobilenet_v1") == 4_231_976  # the paper's 4.2M
    assert meta_count(zoo.get_model, name="mobilenet_v1", width_mult=0.5) == 1_331_592
    for name in ("mobilenet_v2", "mobilenet_v3_large"):
        ours = meta_count(zoo.get_model, name=name, width_mult=0.75)
        assert ours == meta_count(getattr(torchvision.models, name), width_mult=0.75)
    model = zoo.get_model("mobilenet_v1", num_classes=7, width_mult=0.25).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 7)


def test_torchvision_initialisation() -> None:
    torch.manual_seed(0)
    model = zoo.get_model("resnet18")
    stem = model.features[0][0][0]
    fan_out = stem.out_channels * stem.kernel_size[0] * stem.kernel_size[1]
    assert stem.weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.05)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(bool((m.weight == 1).all() and (m.bias == 0).all()) for m in bns)
    head = zoo.get_model("mobilenet_v2").classifier[-1]
    assert head.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert bool((head.bias == 0).all())


def test_plain_vgg_keeps_its_signal_at_initialisation() -> None:
    """Without BatchNorm nothing renormalises the activations: torchvision's fan_out convs shrank them
    layer by layer (features' std 0.09 here, vgg11_bn's 0.69; logits 2e-3 on digits), and SGD never
    left chance. fan_in keeps them at the _bn network's scale."""
    torch.manual_seed(0)
    x = torch.randn(16, 1, 32, 32)
    for name in ("vgg11", "vgg11_bn"):
        model = zoo.get_model(name, num_classes=10, in_channels=1, small_input=True).train()
        with torch.no_grad():
            assert model.features(x).std().item() > 0.3, name


def test_plain_vgg_learns_digits_with_its_defaults(tmp_path) -> None:
    """vgg11 with the VGG family's SGD at lr 0.05 stayed at 10% on digits for 5 epochs."""
    run = zoo.train("vgg11", "digits", out=tmp_path / "run", epochs=5, quiet=True, patience=0, threads=2)
    assert run.config["train"]["optimizer"] == "adamw"
    assert run.result["val"]["top1"] > 0.6


def test_batchnorm_vgg_learns_digits_above_64_px_with_its_defaults(tmp_path) -> None:
    """With torchvision's 25088-4096-4096 head (images above 64 px), the small head's SGD at 0.05 left
    vgg11_bn at chance on digits at 72 px (5.9% val after 3 epochs); the head's own default learns."""
    run = zoo.train("vgg11_bn", "digits", out=tmp_path / "run", epochs=3, image_size=72, quiet=True,
                    patience=0, threads=2, workers=0)
    assert run.config["train"]["lr"] == pytest.approx(0.005)
    assert run.result["val"]["top1"] > 0.6


def test_unknown_option_is_refused() -> None:
    with pytest.raises(zoo.ZooUsageError, match=r"resnet18 does not take option.*width_mult"):
        zoo.get_model("resnet18", width_mult=0.5)


def test_registration_does_not_import_torch() -> None:
    code = "import sys, zoo; zoo.list_models(); zoo.get_spec('resnet50'); assert 'torch' not in sys.modules"
    env = {**os.environ, "ZOO_PLUGINS": ""}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_mobilenet_v3_evaluates_what_it_learned_on_a_short_run(tmp_path) -> None:
    """torchvision's BatchNorm momentum (0.01) left the running statistics so far behind the weights
    that 4 epochs on digits evaluated at chance (9.8% val) while training loss fell; zoo uses 0.1."""
    run = zoo.train("mobilenet_v3_small", "digits", out=tmp_path / "run", epochs=4, image_size=32,
                    quiet=True, patience=0, threads=2)
    assert run.result["val"]["top1"] > 0.5
    bns = [m for m in zoo.get_model("mobilenet_v3_large").modules() if isinstance(m, nn.BatchNorm2d)]
    assert {(m.momentum, m.eps) for m in bns} == {(0.1, 0.001)}
