"""The augmentation presets as batched tensor ops on the training device, one random draw per image.

Each preset of zoo.data.transforms (torchvision v2 on PIL images, one image at a time) has a twin
here with the same parameter distributions (tests/test_batched.py compares them with torchvision's
own ``make_params`` and policy tables):

- ``standard``: RandomAffine (+-10 deg, translate 10 % in whole pixels, scale 0.9-1.1, nearest, zero
  fill), ColorJitter 0.2/0.2/0.2 in a random order per image (RGB only), flip, random crop (reflect
  padding of crop/8 for small images, else from the resize margin);
- ``light``: RandomResizedCrop (scale 0.6-1, ratio 3/4-4/3, torchvision's ten tries and fallback),
  bilinear, then flip;
- ``randaugment`` / ``trivialaugment``: random crop + flip, then torchvision's RandAugment (2 ops,
  magnitude 9 of 31) / TrivialAugmentWide ops and magnitude tables, images grouped by the op drawn;
- ``none``: nothing (the eval pixels).

Geometry is one batched warp per step (``grid_sample`` over a per-image affine grid built the way
torchvision's tensor kernel builds it); crops are an index gather; colour ops are per-image broadcast
factors. Images are float 0..255 between steps, kept integer-valued (nearest sampling, floor after
blends) like torchvision's uint8 kernels, so posterize/equalize see exact pixel values.

Parameters are drawn on the CPU from a ``torch.Generator`` and moved to the device, so one seed gives
one batch of parameters on CPU and CUDA alike. Mixup/CutMix stay torchvision's batch transforms
(zoo.data.transforms.batch_mixer), which already run on the device batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import torch
import torch.nn.functional as F

Params = dict[str, torch.Tensor]

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale


class Step(Protocol):
    """One augmentation: ``sample`` draws per-image parameters (CPU), ``apply`` uses them."""

    def sample(self, n: int, generator: torch.Generator) -> Params: ...

    def apply(self, images: torch.Tensor, params: Params) -> torch.Tensor: ...


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator, dtype=torch.float64) * (high - low) + low


def _randint(high: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One integer in [0, high) per element of ``high`` (int64)."""
    return (torch.rand(high.shape, generator=generator, dtype=torch.float64) * high).floor().long()


def _subset(selected: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Indices (on ``device``) of the True entries of a CPU mask: found host-side, so no device sync."""
    return selected.nonzero().squeeze(1).to(device, non_blocking=True)


# --- geometry ------------------------------------------------------------------------------------


def inverse_affine(
    angle: torch.Tensor,
    translate: torch.Tensor,
    scale: torch.Tensor,
    shear: torch.Tensor,
    center: torch.Tensor,
) -> torch.Tensor:
    """torchvision's ``_get_inverse_affine_matrix`` for a batch: (N,2,3) float64, output pixel ->
    input pixel, coordinates centred on the image (``center`` relative to the image centre).
    ``angle`` (N,) and ``shear`` (N,2) in degrees, ``translate`` and ``center`` (N,2) in pixels."""
    rot = torch.deg2rad(angle)
    sx, sy = torch.deg2rad(shear[:, 0]), torch.deg2rad(shear[:, 1])
    a = torch.cos(rot - sy) / torch.cos(sy)
    b = -torch.cos(rot - sy) * torch.tan(sx) / torch.cos(sy) - torch.sin(rot)
    c = torch.sin(rot - sy) / torch.cos(sy)
    d = -torch.sin(rot - sy) * torch.tan(sx) / torch.cos(sy) + torch.cos(rot)
    m0, m1, m3, m4 = d / scale, -b / scale, -c / scale, a / scale
    cx, cy = center[:, 0], center[:, 1]
    ox, oy = -cx - translate[:, 0], -cy - translate[:, 1]
    m2 = m0 * ox + m1 * oy + cx
    m5 = m3 * ox + m4 * oy + cy
    return torch.stack([m0, m1, m2, m3, m4, m5], dim=1).view(-1, 2, 3)


def warp(images: torch.Tensor, matrix: torch.Tensor, mode: str = "nearest") -> torch.Tensor:
    """Every image through its own inverse affine ``matrix`` (N,2,3), zero fill outside: torchvision's
    tensor ``affine`` (its ``_affine_grid`` + ``grid_sample``), batched."""
    n, _, h, w = images.shape
    device = images.device
    theta = matrix.to(device=device, dtype=torch.float32, non_blocking=True)
    base = torch.empty(1, h, w, 3, device=device)
    base[..., 0].copy_(torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w, device=device))
    base[..., 1].copy_(torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h, device=device).unsqueeze(-1))
    base[..., 2].fill_(1)
    rescaled = theta.transpose(1, 2) / torch.tensor([0.5 * w, 0.5 * h], device=device)
    grid = base.view(1, h * w, 3).expand(n, -1, -1).bmm(rescaled).view(n, h, w, 2)
    return F.grid_sample(images, grid, mode=mode, padding_mode="zeros", align_corners=False)


def _zeros2(n: int) -> torch.Tensor:
    return torch.zeros(n, 2, dtype=torch.float64)


class RandomAffine:
    """``v2.RandomAffine(degrees, translate=(t, t), scale=scale)`` (nearest, zero fill)."""

    def __init__(self, size: int, degrees: float = 10.0, translate: float = 0.1,
                 scale: tuple[float, float] = (0.9, 1.1)) -> None:
        self.size, self.degrees, self.translate, self.scale = size, degrees, translate, scale

    def sample(self, n: int, generator: torch.Generator) -> Params:
        angle = _uniform(n, -self.degrees, self.degrees, generator)
        max_d = float(self.translate * self.size)
        tx = _uniform(n, -max_d, max_d, generator).round()
        ty = _uniform(n, -max_d, max_d, generator).round()
        scale = _uniform(n, self.scale[0], self.scale[1], generator)
        return {"angle": angle, "translate": torch.stack([tx, ty], dim=1), "scale": scale}

    def apply(self, images: torch.Tensor, params: Params) -> torch.Tensor:
        n = len(images)
        matrix = inverse_affine(params["angle"], params["translate"], params["scale"], _zeros2(n), _zeros2(n))
        return warp(images, matrix, "nearest")


class RandomResizedCrop:
    """``v2.RandomResizedCrop(crop, scale, ratio)`` then ``v2.RandomHorizontalFlip(p)``: the same ten
    tries and fallback per image; the box is resampled bilinearly in one ``grid_sample`` (no
    antialiasing: the box is at most 1.15x the crop here), mirrored by reversing its x coordinates."""

    def __init__(self, size: int, crop: int, scale: tuple[float, float] = (0.6, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), tries: int = 10, p_flip: float = 0.5) -> None:
        self.size, self.crop, self.scale, self.ratio, self.tries = size, crop, scale, ratio, tries
        self.p_flip = p_flip

    def sample(self, n: int, generator: torch.Generator) -> Params:
        side, area = self.size, self.size * self.size
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        target = area * _uniform(n * self.tries, *self.scale, generator).view(n, self.tries)
        aspect = torch.exp(_uniform(n * self.tries, log_lo, log_hi, generator).view(n, self.tries))
        w = torch.sqrt(target * aspect).round().long()
        h = torch.sqrt(target / aspect).round().long()
        ok = (w > 0) & (w <= side) & (h > 0) & (h <= side)
        first = ok.long().argmax(dim=1, keepdim=True)  # the first try that fits (0 if none)
        w, h = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)
        found = ok.any(dim=1)
        # square images: the fallback is the whole image (its ratio 1 lies inside [3/4, 4/3])
        w, h = torch.where(found, w, side), torch.where(found, h, side)
        top = torch.where(found, _randint(side - h + 1, generator), (side - h) // 2)
        left = torch.where(found, _randint(side - w + 1, generator), (side - w) // 2)
        flip = torch.rand(n, generator=generator) < self.p_flip
        return {"top": top, "left": left, "height": h, "width": w, "flip": flip}

    def apply(self, images: torch.Tensor, params: Params) -> torch.Tensor:
        side, device = images.shape[-1], images.device
        box = torch.stack([params["left"], params["top"], params["width"], params["height"]], 1).double()
        box = box.to(device=device, dtype=torch.float32, non_blocking=True)
        steps = (torch.arange(self.crop, device=device, dtype=torch.float32) + 0.5) / self.crop
        flip = params["flip"].to(device, non_blocking=True)[:, None]
        x_steps = torch.where(flip, 1.0 - steps, steps)
        xs = (box[:, 0:1] + x_steps * box[:, 2:3]) * (2.0 / side) - 1.0  # (N, crop), normalised
        ys = (box[:, 1:2] + steps * box[:, 3:4]) * (2.0 / side) - 1.0
        grid = torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), dim=-1)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


class CropFlip:
    """``v2.RandomCrop(crop, padding, padding_mode="reflect")`` (from the margin when ``padding`` is 0)
    and ``v2.RandomHorizontalFlip(p)``, as one index gather. Flip-then-crop and crop-then-flip have
    the same distribution (the crop offset is uniform and symmetric), so one gather serves both."""

    def __init__(self, size: int, crop: int, padding: int, p_flip: float = 0.5) -> None:
        self.size, self.crop, self.padding, self.p_flip = size, crop, padding, p_flip

    def sample(self, n: int, generator: torch.Generator) -> Params:
        span = torch.full((n,), self.size + 2 * self.padding - self.crop + 1)
        return {"top": _randint(span, generator), "left": _randint(span, generator),
                "flip": torch.rand(n, generator=generator) < self.p_flip}

    def _index(self, start: torch.Tensor, flip: torch.Tensor | None, device: torch.device) -> torch.Tensor:
        """Source row/column of each output row/column, reflected at the border (no edge repeat)."""
        steps = torch.arange(self.crop, device=device)
        offsets = steps if flip is None else torch.where(flip[:, None], self.crop - 1 - steps, steps)
        index = start.to(device, non_blocking=True)[:, None] + offsets - self.padding
        last = self.size - 1
        return torch.where(index < 0, -index, torch.where(index > last, 2 * last - index, index))

    def apply(self, images: torch.Tensor, params: Params) -> torch.Tensor:
        n, c, side, _ = images.shape
        device = images.device
        rows = self._index(params["top"], None, device)
        cols = self._index(params["left"], params["flip"].to(device, non_blocking=True), device)
        flat = (rows[:, :, None] * side + cols[:, None, :]).view(n, 1, -1).expand(n, c, -1)
        return images.reshape(n, c, side * side).gather(2, flat).view(n, c, self.crop, self.crop)


# --- colour --------------------------------------------------------------------------------------


def _per_image(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(device=like.device, dtype=like.dtype, non_blocking=True).view(-1, 1, 1, 1)


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``factor * images + (1 - factor) * other``, clamped and floored like torchvision's uint8 kernels."""
    return torch.lerp(other, images, _per_image(factor, images)).clamp_(0.0, 255.0).floor_()


def _gray(images: torch.Tensor) -> torch.Tensor:
    """Luma (N,1,H,W), floored like torchvision's uint8 kernels; one 1x1 convolution."""
    if images.shape[1] == 1:
        return images
    weights = torch.tensor(GRAY_WEIGHTS, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return F.conv2d(images, weights).floor_()


def brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (images * _per_image(factor, images)).clamp_(0.0, 255.0).floor_()


def contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(images, _gray(images).mean(dim=(1, 2, 3), keepdim=True), factor)


def saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return images if images.shape[1] == 1 else _blend(images, _gray(images), factor)


def sharpness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the 3x3 smoothed image (border pixels kept), as torchvision's adjust_sharpness."""
    c = images.shape[1]
    if images.shape[-1] <= 2 or images.shape[-2] <= 2:
        return images
    kernel = torch.ones(3, 3, device=images.device) / 13.0
    kernel[1, 1] = 5.0 / 13.0
    blurred = images.clone()
    blurred[..., 1:-1, 1:-1] = F.conv2d(images, kernel.expand(c, 1, 3, 3), groups=c).round_()
    return _blend(images, blurred, factor)


class ColorJitter:
    """``v2.ColorJitter(brightness=b, contrast=c, saturation=s)``: factors uniform in [1-x, 1+x], the
    three ops in a random order per image."""

    OPS = (brightness, contrast, saturation)

    def __init__(self, strength: Sequence[float] = (0.2, 0.2, 0.2)) -> None:
        self.strength = tuple(strength)

    def sample(self, n: int, generator: torch.Generator) -> Params:
        factors = torch.stack([_uniform(n, 1 - s, 1 + s, generator) for s in self.strength], dim=1)
        order = torch.rand(n, len(self.OPS), generator=generator).argsort(dim=1)
        return {"factors": factors, "order": order}

    def apply(self, images: torch.Tensor, params: Params) -> torch.Tensor:
        """One gather and one scatter per order drawn (at most six), the three ops in between."""
        out = torch.empty_like(images)
        order, factors = params["order"], params["factors"]
        key = order[:, 0] * 9 + order[:, 1] * 3 + order[:, 2]
        for value in key.unique().tolist():
            selected = key == value
            index = _subset(selected, images.device)
            group = images[index]
            for op in order[selected][0].tolist():
                group = self.OPS[op](group, factors[selected, op])
            out[index] = group
        return out


# --- RandAugment / TrivialAugmentWide --------------------------------------------------------------

AUTO_OPS = ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color",
            "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize")
SIGNED = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast",
          "Sharpness"}
GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")


def magnitude_table(policy: str, bins: int, size: int) -> dict[str, torch.Tensor | None]:
    """torchvision's ``_AUGMENTATION_SPACE`` of RandAugment (``rand``) or TrivialAugmentWide
    (``trivial``) for a square image of ``size`` px (tests check them against torchvision's)."""
    wide = policy == "trivial"
    shear, rotate, enhance = (0.99, 135.0, 0.99) if wide else (0.3, 30.0, 0.9)
    translate = 32.0 if wide else 150.0 / 331.0 * size
    levels = 6 if wide else 4
    lin = torch.linspace
    return {
        "Identity": None,
        "ShearX": lin(0.0, shear, bins), "ShearY": lin(0.0, shear, bins),
        "TranslateX": lin(0.0, translate, bins), "TranslateY": lin(0.0, translate, bins),
        "Rotate": lin(0.0, rotate, bins),
        "Brightness": lin(0.0, enhance, bins), "Color": lin(0.0, enhance, bins),
        "Contrast": lin(0.0, enhance, bins), "Sharpness": lin(0.0, enhance, bins),
        "Posterize": (8 - (torch.arange(bins) / ((bins - 1) / levels))).round().int(),
        "Solarize": lin(1.0, 0.0, bins),
        "AutoContrast": None, "Equalize": None,
    }


class AutoAugment:
    """``v2.RandAugment()`` (``rand``: 2 ops, magnitude bin 9 of 31) or ``v2.TrivialAugmentWide()``
    (``trivial``: 1 op, a random bin): an op per image per slot, uniform over the 14 ops, signed ops
    negated with probability 1/2; nearest sampling and zero fill for the geometric ops."""

    def __init__(self, policy: str, size: int, bins: int = 31, magnitude: int = 9, num_ops: int = 2) -> None:
        self.policy, self.size, self.bins, self.magnitude = policy, size, bins, magnitude
        self.num_ops = num_ops if policy == "rand" else 1
        table = magnitude_table(policy, bins, size)
        # (op, bin) -> magnitude; 0 for the ops without one
        self.values = torch.stack([
            torch.zeros(bins, dtype=torch.float64) if table[op] is None else table[op].double()  # type: ignore[union-attr]
            for op in AUTO_OPS
        ])
        self.signed = torch.tensor([op in SIGNED for op in AUTO_OPS])

    def sample(self, n: int, generator: torch.Generator) -> Params:
        shape = (n, self.num_ops)
        op = torch.randint(len(AUTO_OPS), shape, generator=generator)
        if self.policy == "rand":
            level = torch.full(shape, self.magnitude)
        else:
            level = torch.randint(self.bins, shape, generator=generator)
        negate = (torch.rand(shape, generator=generator) <= 0.5) & self.signed[op]
        magnitude = self.values[op, level] * torch.where(negate, -1.0, 1.0).double()
        return {"op": op, "magnitude": magnitude}

    def apply(self, images: torch.Tensor, params: Params) -> torch.Tensor:
        images = images.clone()
        for slot in range(self.num_ops):
            ops, magnitude = params["op"][:, slot], params["magnitude"][:, slot]
            geometric = torch.isin(ops, torch.tensor([AUTO_OPS.index(g) for g in GEOMETRIC]))
            if geometric.any():  # all geometric ops of this slot in one warp
                index = _subset(geometric, images.device)
                matrix = self._matrix(ops[geometric], magnitude[geometric])
                images[index] = warp(images[index], matrix, "nearest")
            for op in ops[~geometric].unique().tolist():
                if AUTO_OPS[op] == "Identity":
                    continue
                selected = ops == op
                index = _subset(selected, images.device)
                images[index] = _colour_op(AUTO_OPS[op], images[index], magnitude[selected])
        return images

    def _matrix(self, ops: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
        """The inverse affine matrices of the geometric ops, the arguments torchvision passes."""
        n = len(ops)

        def is_(name: str) -> torch.Tensor:
            return ops == AUTO_OPS.index(name)

        zero = torch.zeros(n, dtype=torch.float64)
        shear_deg = torch.rad2deg(torch.atan(magnitude))
        shear = torch.stack([torch.where(is_("ShearX"), shear_deg, zero),
                             torch.where(is_("ShearY"), shear_deg, zero)], dim=1)
        translate = torch.stack([torch.where(is_("TranslateX"), magnitude.trunc(), zero),
                                 torch.where(is_("TranslateY"), magnitude.trunc(), zero)], dim=1)
        angle = torch.where(is_("Rotate"), -magnitude, zero)  # rotate() passes -angle to the matrix
        corner = -0.5 * self.size  # shears turn about the top-left corner (center=[0, 0])
        sheared = (is_("ShearX") | is_("ShearY")).double()[:, None]
        center = sheared * torch.full((1, 2), corner, dtype=torch.float64)
        return inverse_affine(angle, translate, torch.ones(n, dtype=torch.float64), shear, center)


def _colour_op(name: str, images: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as TF

    if name == "Brightness":
        return brightness(images, 1.0 + magnitude)
    if name == "Color":
        return saturation(images, 1.0 + magnitude)
    if name == "Contrast":
        return contrast(images, 1.0 + magnitude)
    if name == "Sharpness":
        return sharpness(images, 1.0 + magnitude)
    if name == "Solarize":
        threshold = _per_image(255.0 * magnitude, images)
        return torch.where(images >= threshold, 255.0 - images, images)
    pixels = images.to(torch.uint8)
    if name == "Posterize":
        bits = magnitude.long()
        mask = ((255 << (8 - bits)) & 255).to(device=images.device, dtype=torch.uint8).view(-1, 1, 1, 1)
        return (pixels & mask).to(images.dtype)
    if name == "AutoContrast":
        return TF.autocontrast(pixels).to(images.dtype)
    if name == "Equalize":
        return TF.equalize(pixels).to(images.dtype)
    raise ValueError(f"unknown op {name}")


# --- presets ---------------------------------------------------------------------------------------


class BatchAugment:
    """A preset as a chain of batched steps: uint8 (N,C,side,side) -> float (N,C,crop,crop), 0..255."""

    def __init__(self, preset: str, *, crop: int, side: int, channels: int, hflip: bool = True) -> None:
        from zoo.data.transforms import check_augment, crop_padding

        check_augment(preset)
        self.preset, self.crop, self.side = preset, crop, side
        p_flip = 0.5 if hflip else 0.0
        crop_flip = CropFlip(side, crop, crop_padding(crop, side), p_flip)
        steps: list[Step]
        if preset == "none":
            if side != crop:
                raise ValueError("'none' trains on the eval pixels: decode them at the crop size")
            steps = []
        elif preset == "light":
            steps = [RandomResizedCrop(side, crop, p_flip=p_flip)]
        elif preset == "standard":
            steps = [RandomAffine(side), *([ColorJitter()] if channels == 3 else []), crop_flip]
        elif preset == "randaugment":
            steps = [crop_flip, AutoAugment("rand", crop)]
        else:
            steps = [crop_flip, AutoAugment("trivial", crop)]
        self.steps = steps

    def sample(self, n: int, generator: torch.Generator) -> list[Params]:
        return [step.sample(n, generator) for step in self.steps]

    def apply(self, images: torch.Tensor, params: list[Params]) -> torch.Tensor:
        x = images.float()
        for step, p in zip(self.steps, params, strict=True):
            x = step.apply(x, p)
        return x

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.apply(images, self.sample(len(images), generator))


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(N,C,H,W) 0..255 -> float32 standardised, with the operations (and so the float32 rounding) of
    zoo.runtime.preprocess.normalize. ``mean``/``std`` are (1,C,1,1) tensors on the images' device:
    dividing by a CPU scalar would let CUDA multiply by a reciprocal instead, one bit off.

    The result is always plain NCHW: a permuted NHWC batch of one channel also passes as contiguous,
    and its strides would silently switch every convolution of the model to channels_last."""
    scale = torch.full((1, 1, 1, 1), 255.0, device=images.device)
    out = torch.empty(images.shape, dtype=torch.float32, device=images.device)
    return torch.div(images, scale, out=out).sub_(mean).div_(std)
