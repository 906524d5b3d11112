"""Plain reference training loops, the "done right by hand" side of benchmarks/gpu_check.sh.

Each trains zoo's own network (the registry's, so the same layers and FLOPs as ``zoo train``) with
nothing of zoo's training code, and prints one JSON object: images/s per epoch (training images
over the epoch's wall time, loader waits included, as ``zoo train`` counts them) and, where the
data has a test split, test top-1.

- ``tensors``: a built-in data set (fashion-mnist, digits) decoded once to uint8 and kept on the
  device whole; random crop (pad 4) and horizontal flip done batch-wise on the device with
  per-image random offsets; autocast, channels_last, SGD with a one-cycle learning rate.
- ``folder``: an image folder decoded every epoch by DataLoader workers, then trained on the
  device: ``--loader torchvision`` (ImageFolder, RandomResizedCrop + flip in the workers, uint8
  to the device, normalised there) or ``--loader timm`` (timm's own loader: its transforms and,
  on CUDA, its prefetcher).

    python benchmarks/reference.py tensors --arch resnet20 --data fashion-mnist --epochs 2 --device cuda
    python benchmarks/reference.py folder --arch resnet50 --data DIR --image-size 224 --batch-size 128 \\
        --epochs 2 --device cuda --loader timm
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _autocast(device: str, precision: str) -> Any:
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device, dtype=dtype, enabled=dtype is not None)


def _model(arch: str, num_classes: int, in_channels: int, device: str, channels_last: bool,
           small_input: bool = False) -> torch.nn.Module:
    from zoo.catalog import get_model, get_spec

    kwargs = {"small_input": True} if small_input and "imagenet" in get_spec(arch).tags else {}
    model = get_model(arch, num_classes=num_classes, in_channels=in_channels, **kwargs)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return model.to(device, memory_format=fmt)


def _train_epochs(model: torch.nn.Module, batches: Any, epochs: int, steps_per_epoch: int, lr: float,
                  device: str, precision: str) -> list[dict[str, float]]:
    """SGD (nesterov, weight decay 5e-4) with a one-cycle schedule (linear up 20%, linear down)."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    total, step = epochs * steps_per_epoch, 0
    scaler = torch.amp.GradScaler(device, enabled=precision == "fp16")
    rows = []
    for epoch in range(1, epochs + 1):
        model.train()
        seen, start = 0, time.perf_counter()
        for x, y in batches(epoch):
            frac = step / max(1, total)
            for group in opt.param_groups:
                group["lr"] = lr * (frac / 0.2 if frac < 0.2 else (1 - frac) / 0.8)
            with _autocast(device, precision):
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            seen, step = seen + len(y), step + 1
        _sync(device)
        seconds = time.perf_counter() - start
        rows.append({"epoch": epoch, "img_per_s": seen / seconds, "seconds": seconds, "images": seen})
    return rows


# ----------------------------------------------------------------------------- tensors on the device


def _device_split(samples: Any, size: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, C, size, size) and int64 labels on the device, resized once (bilinear)."""
    x = torch.from_numpy(samples.images).to(device)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    if x.shape[-1] != size:
        x = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False)
        x = x.round().clamp(0, 255).to(torch.uint8)
    return x.contiguous(), torch.as_tensor(samples.labels, device=device)


def crop_flip(x: torch.Tensor, pad: int, flip: bool) -> torch.Tensor:
    """Random crop with zero padding ``pad`` and a random horizontal flip, independently per image,
    as one gather over the batch."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n, 1), device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), device=x.device)
    rows = (dy + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx + torch.arange(w, device=x.device))
    if flip:
        mirrored = torch.rand(n, 1, device=x.device) < 0.5
        cols = torch.where(mirrored, cols.flip(1), cols)
    cols = cols[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    return padded[batch, torch.arange(c, device=x.device)[None, :, None, None], rows, cols]


def tensors(args: argparse.Namespace) -> dict[str, Any]:
    from zoo.catalog import get_spec
    from zoo.data import default_image_size, load_splits

    device = args.device
    splits = load_splits(args.data)
    size = args.image_size or default_image_size(splits.native_size, get_spec(args.arch).image_size)
    train_x, train_y = _device_split(splits.train, size, device)
    test = splits.test or splits.val
    test_x, test_y = _device_split(test, size, device)
    scaled = train_x.float().div_(255)
    mean = scaled.mean(dim=(0, 2, 3), keepdim=True)
    std = scaled.std(dim=(0, 2, 3), keepdim=True)
    del scaled
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    torch.manual_seed(args.seed)
    model = _model(args.arch, len(splits.classes), splits.channels, device, args.channels_last,
                   small_input=size <= 64)  # as zoo train does for ImageNet-style nets on small images

    def normalise(x: torch.Tensor) -> torch.Tensor:
        return ((x.float() / 255 - mean) / std).contiguous(memory_format=fmt)

    steps = len(train_y) // args.batch_size

    def batches(epoch: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(train_y), device=device)
        for i in range(steps):
            idx = order[i * args.batch_size:(i + 1) * args.batch_size]
            yield normalise(crop_flip(train_x[idx], 4, splits.hflip)), train_y[idx]

    rows = _train_epochs(model, batches, args.epochs, steps, (args.lr or 0.4) * args.batch_size / 512, device,
                         args.precision)
    model.eval()
    correct = 0
    with torch.inference_mode(), _autocast(device, args.precision):
        for i in range(0, len(test_y), 1024):
            correct += int((model(normalise(test_x[i:i + 1024])).argmax(1) == test_y[i:i + 1024]).sum())
    return {"loop": "plain tensors on the device", "data": args.data, "image_size": size,
            "train_images": len(train_y), "epochs": rows, "test_top1": correct / len(test_y),
            "test_split": "test" if splits.test is not None else "val"}


# ----------------------------------------------------------------------------- an image folder


def _torchvision_loader(args: argparse.Namespace) -> tuple[Any, int, bool]:
    """(loader of uint8 batches, number of classes, normalised already?)"""
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision.transforms import v2

    transform = v2.Compose([v2.RandomResizedCrop(args.image_size, antialias=True), v2.RandomHorizontalFlip(),
                            v2.PILToTensor()])
    data = datasets.ImageFolder(args.data, transform=transform)
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                        pin_memory=args.device == "cuda", drop_last=True, persistent_workers=args.workers > 0)
    return loader, len(data.classes), False


def _class_count(root: str) -> int:
    return sum(1 for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))


def _timm_loader(args: argparse.Namespace) -> tuple[Any, int, bool]:
    """timm's own training pipeline: ImageDataset + create_loader (RandomResizedCrop, flip, colour
    jitter; on CUDA its prefetcher normalises on the device)."""
    from timm.data import ImageDataset, create_loader

    data = ImageDataset(args.data)
    prefetch = args.device == "cuda"
    kwargs: dict[str, Any] = {"input_size": (3, args.image_size, args.image_size),
                              "batch_size": args.batch_size, "is_training": True, "num_workers": args.workers,
                              "pin_memory": prefetch, "use_prefetcher": prefetch,
                              "persistent_workers": args.workers > 0}
    try:
        loader = create_loader(data, device=torch.device(args.device), **kwargs)
    except TypeError:  # timm before 0.9 has no device argument (CUDA only)
        loader = create_loader(data, **kwargs)
    return loader, _class_count(args.data), True


def folder(args: argparse.Namespace) -> dict[str, Any]:
    device = args.device
    make = _timm_loader if args.loader == "timm" else _torchvision_loader
    loader, num_classes, normalised = make(args)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1) * 255
    torch.manual_seed(args.seed)
    model = _model(args.arch, num_classes, 3, device, args.channels_last)

    def batches(epoch: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in loader:
            x = x.to(device, non_blocking=True)
            if not normalised:
                x = (x.float() - mean) / std
            yield x.contiguous(memory_format=fmt), y.to(device, non_blocking=True)

    rows = _train_epochs(model, batches, args.epochs, len(loader), (args.lr or 0.1) * args.batch_size / 256,
                         device, args.precision)
    return {"loop": f"plain, {args.loader} loader", "data": args.data, "image_size": args.image_size,
            "workers": args.workers, "epochs": rows, "test_top1": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["tensors", "folder"])
    parser.add_argument("--arch", required=True)
    parser.add_argument("--data", required=True, help="tensors: a built-in data set; folder: a directory")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--image-size", type=int, default=None, help="tensors: default as zoo train picks it")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default=None, help="fp32 | bf16 | fp16 [cuda: bf16, cpu: fp32]")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="[on for cuda]")
    parser.add_argument("--lr", type=float, default=None,
                        help="peak lr, scaled linearly with the batch "
                             "[tensors: 0.4 at batch 512; folder: 0.1 at 256]")
    parser.add_argument("--loader", choices=["torchvision", "timm"], default="torchvision")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="intra-op CPU threads [torch's default]")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.precision is None:
        args.precision = "bf16" if args.device == "cuda" else "fp32"
    if args.channels_last is None:
        args.channels_last = args.device == "cuda"
    if args.kind == "folder" and args.image_size is None:
        parser.error("folder needs --image-size")
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    result = tensors(args) if args.kind == "tensors" else folder(args)
    result.update(arch=args.arch, device=args.device, batch_size=args.batch_size, precision=args.precision,
                  channels_last=args.channels_last)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
