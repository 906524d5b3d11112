"""zoo.data.batched: the augmentation presets as batched tensor ops, against torchvision's own.

Parameters: the same distributions as torchvision's ``make_params`` / policy tables (KS and chi-square
tests on thousands of draws, seeded so the tests are deterministic). Pixels: the same results as
torchvision's tensor kernels for the same parameters. Batches: shapes, per-image independence,
determinism under a seed, and the same result on CPU and CUDA (when a GPU is present).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from zoo.data.batched import (
    AUTO_OPS,
    SIGNED,
    AutoAugment,
    BatchAugment,
    ColorJitter,
    CropFlip,
    RandomAffine,
    RandomResizedCrop,
    _colour_op,
    magnitude_table,
    normalize,
)
from zoo.runtime.preprocess import normalize as numpy_normalize

PRESETS = ["none", "light", "standard", "randaugment", "trivialaugment"]
DRAWS = 4000
P_MIN = 1e-3  # seeded draws: a distribution mismatch gives p far below this, a match far above


pytestmark = pytest.mark.usefixtures("one_thread")


def images(n: int = 16, channels: int = 3, side: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, channels, side, side), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def torchvision_draws(transform: v2.Transform, side: int = 32, n: int = DRAWS) -> list[dict]:
    torch.manual_seed(1)
    image = torch.zeros(3, side, side, dtype=torch.uint8)
    return [transform.make_params([image]) for _ in range(n)]


def same_continuous(a, b) -> None:
    assert stats.ks_2samp(np.asarray(a, float), np.asarray(b, float)).pvalue > P_MIN


def same_discrete(a, b) -> None:
    values = sorted(set(np.asarray(a).tolist()) | set(np.asarray(b).tolist()))
    table = [[list(np.asarray(x).tolist()).count(v) for v in values] for x in (a, b)]
    assert set(np.asarray(a).tolist()) == set(np.asarray(b).tolist())
    assert stats.chi2_contingency(table).pvalue > P_MIN


# --- batches: shapes, independence, determinism ---------------------------------------------------

@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("side", "crop"), [(32, 32), (37, 32)])
def test_shapes_range_and_integer_pixels(preset: str, channels: int, side: int, crop: int) -> None:
    if preset == "none" and side != crop:
        with pytest.raises(ValueError, match="eval pixels"):
            BatchAugment(preset, crop=crop, side=side, channels=channels)
        return
    aug = BatchAugment(preset, crop=crop, side=side, channels=channels)
    out = aug(images(16, channels, side), gen())
    assert out.shape == (16, channels, crop, crop) and out.dtype == torch.float32
    assert float(out.min()) >= 0 and float(out.max()) <= 255
    if preset != "light":  # nearest sampling, gathers and floored blends keep uint8 values
        assert torch.equal(out, out.round())


@pytest.mark.parametrize("preset", PRESETS[1:])
def test_each_image_gets_its_own_draw(preset: str) -> None:
    aug = BatchAugment(preset, crop=32, side=32, channels=3)
    same = images(1).expand(64, -1, -1, -1).contiguous()
    out = aug(same, gen())
    distinct = {out[i].numpy().tobytes() for i in range(64)}
    assert len(distinct) > 48  # (a few images may draw no-ops: identity, flips of a crop...)
    # and an image's result depends on its own parameters only
    x = images(8)
    params = aug.sample(8, gen(3))
    whole = aug.apply(x, params)
    for i in range(8):
        alone = aug.apply(x[i:i + 1], [{k: v[i:i + 1] for k, v in p.items()} for p in params])
        assert torch.equal(alone[0], whole[i])


@pytest.mark.parametrize("preset", PRESETS[1:])
def test_a_seed_fixes_the_batch(preset: str) -> None:
    aug = BatchAugment(preset, crop=32, side=32, channels=3)
    x = images()
    assert torch.equal(aug(x, gen(5)), aug(x, gen(5)))
    assert not torch.equal(aug(x, gen(5)), aug(x, gen(6)))


def test_no_flip_where_mirroring_changes_the_class() -> None:
    for preset in ("light", "standard", "randaugment"):
        params = BatchAugment(preset, crop=32, side=32, channels=1, hflip=False).sample(500, gen())
        assert not any(bool(p["flip"].any()) for p in params if "flip" in p)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("preset", PRESETS[1:])
def test_cpu_and_cuda_agree_for_one_seed(preset: str) -> None:
    aug = BatchAugment(preset, crop=32, side=32, channels=3)
    x = images(128)
    cpu = aug(x, gen(9))
    cuda = aug(x.cuda(), gen(9)).cpu()
    if preset == "light":  # bilinear: float rounding only
        assert torch.allclose(cpu, cuda, atol=0.05)
    else:  # nearest: a pixel may flip where a coordinate lands on a rounding edge
        assert (cpu != cuda).float().mean() < 1e-3


# --- parameter distributions vs torchvision ------------------------------------------------------

def test_random_affine_parameters() -> None:
    ours = RandomAffine(32).sample(DRAWS, gen())
    theirs = torchvision_draws(v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)))
    same_continuous(ours["angle"], [p["angle"] for p in theirs])
    same_continuous(ours["scale"], [p["scale"] for p in theirs])
    same_discrete(ours["translate"][:, 0].long(), [p["translate"][0] for p in theirs])
    same_discrete(ours["translate"][:, 1].long(), [p["translate"][1] for p in theirs])


def test_random_resized_crop_parameters() -> None:
    ours = RandomResizedCrop(32, 32).sample(DRAWS, gen())
    theirs = torchvision_draws(v2.RandomResizedCrop(32, scale=(0.6, 1.0), antialias=True))
    for key in ("top", "left", "height", "width"):
        same_discrete(ours[key], [p[key] for p in theirs])
    same_discrete(ours["flip"].long(), torch.rand(DRAWS, generator=gen(2)) < 0.5)


def test_reflect_crop_and_margin_crop_parameters() -> None:
    for side, padding, transform in [(32, 4, v2.RandomCrop(32, padding=4, padding_mode="reflect")),
                                     (37, 0, v2.RandomCrop(32))]:
        ours = CropFlip(side, 32, padding).sample(DRAWS, gen())
        theirs = torchvision_draws(transform, side=side)
        same_discrete(ours["top"], [p["top"] for p in theirs])
        same_discrete(ours["left"], [p["left"] for p in theirs])


def test_color_jitter_parameters() -> None:
    ours = ColorJitter().sample(DRAWS, gen())
    theirs = torchvision_draws(v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2))
    for op, key in enumerate(("brightness_factor", "contrast_factor", "saturation_factor")):
        same_continuous(ours["factors"][:, op], [p[key] for p in theirs])
    their_orders = [tuple(i for i in p["fn_idx"].tolist() if i != 3) for p in theirs]  # hue is off
    same_discrete([str(tuple(o)) for o in ours["order"].tolist()], [str(o) for o in their_orders])


@pytest.mark.parametrize(("policy", "transform"),
                         [("rand", v2.RandAugment), ("trivial", v2.TrivialAugmentWide)])
def test_auto_augment_tables_equal_torchvision(policy: str, transform: type) -> None:
    space = transform._AUGMENTATION_SPACE
    assert tuple(space) == AUTO_OPS
    ours = magnitude_table(policy, 31, 32)
    for name, (magnitudes, signed) in space.items():
        expected = magnitudes(31, 32, 32)
        assert (ours[name] is None) == (expected is None), name
        if expected is not None:
            assert torch.equal(ours[name].double(), expected.double()), name
        assert signed == (name in SIGNED)


@pytest.mark.parametrize("policy", ["rand", "trivial"])
def test_auto_augment_draws(policy: str) -> None:
    aug = AutoAugment(policy, 32)
    params = aug.sample(DRAWS, gen())
    ops, magnitude = params["op"].flatten(), params["magnitude"].flatten()
    assert params["op"].shape == (DRAWS, 2 if policy == "rand" else 1)
    counts = np.bincount(ops.numpy(), minlength=len(AUTO_OPS))
    assert stats.chisquare(counts).pvalue > P_MIN  # every op equally likely
    table = magnitude_table(policy, 31, 32)
    rotate = magnitude[ops == AUTO_OPS.index("Rotate")]
    assert abs(float((rotate < 0).double().mean()) - 0.5) < 0.1  # signed ops: either sign
    if policy == "rand":  # always bin 9
        assert set(rotate.abs().tolist()) == {float(table["Rotate"][9])}
    else:  # a uniform bin
        bins = torch.bucketize(rotate.abs(), table["Rotate"].double() - 1e-9, right=True) - 1
        assert stats.chisquare(np.bincount(bins.numpy(), minlength=31)).pvalue > P_MIN


# --- pixels vs torchvision's tensor kernels ---------------------------------------------------------

def test_affine_warp_equals_torchvision() -> None:
    x = images(32)
    step = RandomAffine(32)
    p = step.sample(32, gen())
    out = step.apply(x.float(), p)
    for i in range(32):
        ref = TF.affine(x[i], angle=float(p["angle"][i]), translate=[int(v) for v in p["translate"][i]],
                        scale=float(p["scale"][i]), shear=[0.0, 0.0], interpolation=InterpolationMode.NEAREST)
        assert torch.equal(ref.float(), out[i])


@pytest.mark.parametrize("name", ["ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"])
def test_geometric_ops_equal_torchvision(name: str) -> None:
    x = images(24)
    magnitude = torch.linspace(-0.99, 0.99, 24, dtype=torch.float64)
    if name in ("TranslateX", "TranslateY", "Rotate"):
        magnitude = magnitude * 30
    out = AutoAugment("trivial", 32).apply(
        x.float(), {"op": torch.full((24, 1), AUTO_OPS.index(name)), "magnitude": magnitude[:, None]})
    nearest = InterpolationMode.NEAREST
    sheared = {"translate": [0, 0], "scale": 1.0, "interpolation": nearest, "center": [0, 0]}
    for i, m in enumerate(magnitude.tolist()):
        shear = math.degrees(math.atan(m))
        ref = {
            "ShearX": lambda im, s=shear: TF.affine(im, angle=0.0, shear=[s, 0.0], **sheared),
            "ShearY": lambda im, s=shear: TF.affine(im, angle=0.0, shear=[0.0, s], **sheared),
            "TranslateX": lambda im, m=m: TF.affine(im, angle=0.0, translate=[int(m), 0], scale=1.0,
                                                    shear=[0.0, 0.0], interpolation=nearest),
            "TranslateY": lambda im, m=m: TF.affine(im, angle=0.0, translate=[0, int(m)], scale=1.0,
                                                    shear=[0.0, 0.0], interpolation=nearest),
            "Rotate": lambda im, m=m: TF.rotate(im, angle=m, interpolation=nearest),
        }[name](x[i])
        assert torch.equal(ref.float(), out[i]), (name, m)


@pytest.mark.parametrize("name", ["Brightness", "Color", "Contrast", "Sharpness", "Posterize", "Solarize",
                                  "AutoContrast", "Equalize"])
def test_colour_ops_equal_torchvision(name: str) -> None:
    x = images(24)
    magnitude = {"Posterize": torch.arange(24) % 7 + 2.0, "Solarize": torch.linspace(0, 1, 24)}.get(
        name, torch.linspace(-0.9, 0.9, 24)).double()
    out = _colour_op(name, x.float(), magnitude)
    for i, m in enumerate(magnitude.tolist()):
        ref = {
            "Brightness": lambda im, m=m: TF.adjust_brightness(im, 1 + m),
            "Color": lambda im, m=m: TF.adjust_saturation(im, 1 + m),
            "Contrast": lambda im, m=m: TF.adjust_contrast(im, 1 + m),
            "Sharpness": lambda im, m=m: TF.adjust_sharpness(im, 1 + m),
            "Posterize": lambda im, m=m: TF.posterize(im, int(m)),
            "Solarize": lambda im, m=m: TF.solarize(im, 255 * m),
            "AutoContrast": TF.autocontrast,
            "Equalize": TF.equalize,
        }[name](x[i])
        assert (ref.float() - out[i]).abs().max() <= 1  # blends round a last bit differently


def test_crop_flip_equals_reflect_pad_crop_and_flip() -> None:
    x = images(32)
    step = CropFlip(32, 32, 4)
    p = step.sample(32, gen())
    out = step.apply(x.float(), p)
    for i in range(32):
        top, left = int(p["top"][i]), int(p["left"][i])
        ref = TF.pad(x[i], [4, 4, 4, 4], padding_mode="reflect")[:, top:top + 32, left:left + 32]
        assert torch.equal((ref.flip(-1) if p["flip"][i] else ref).float(), out[i])


def test_resized_crop_close_to_torchvision() -> None:
    x = images(32)
    step = RandomResizedCrop(32, 32)
    p = step.sample(32, gen())
    out = step.apply(x.float(), p)
    for i in range(32):
        ref = TF.resized_crop(x[i].float(), int(p["top"][i]), int(p["left"][i]), int(p["height"][i]),
                              int(p["width"][i]), [32, 32], InterpolationMode.BILINEAR, antialias=False)
        ref = ref.flip(-1) if p["flip"][i] else ref
        # grid_sample reads the pixel beyond the box edge where torch's resize clamps to the box
        assert (ref - out[i]).abs().mean() < 2.0


def test_normalize_equals_the_runtime_bit_for_bit() -> None:
    pixels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).repeat(2, 3, 1, 1)
    mean, std = [0.2860402, 0.31, 0.5], [0.3530239, 0.25, 0.2]
    ours = normalize(pixels, torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1))
    theirs = numpy_normalize(pixels.permute(0, 2, 3, 1).numpy(), mean, std)
    assert np.array_equal(ours.numpy(), theirs)
    gray = normalize(torch.zeros(2, 8, 8, 1, dtype=torch.uint8).permute(0, 3, 1, 2), torch.zeros(1, 1, 1, 1),
                     torch.ones(1, 1, 1, 1))
    assert gray.stride() == (64, 64, 8, 1)  # plain NCHW, never the channels_last strides of a permuted batch
