"""Write a synthetic ImageFolder of JPEGs (class folders of photos-sized images) for speed checks.

Each image is a smooth random colour field (a few control points blown up bilinearly, like the
low-frequency content of a photo) with a per-class tint and mild noise, saved as JPEG at quality
90 with a random size, so decoding costs what a real photo of that size costs and the classes
can be learnt. Seeded: the same arguments give the same files.

    python benchmarks/make_jpeg_folder.py DIR --count 6080 --classes 10 --min-side 256 --max-side 384
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image


def _write(job: tuple[Path, int, int, int, int, int]) -> None:
    path, index, label, classes, min_side, max_side = job
    rng = np.random.default_rng(index)
    width, height = (int(v) for v in rng.integers(min_side, max_side + 1, size=2))
    field = rng.uniform(0, 255, size=(6, 6, 3)).astype(np.uint8)
    image = np.asarray(Image.fromarray(field).resize((width, height), Image.BILINEAR), dtype=np.float32)
    tint = np.array([np.cos(2 * np.pi * (label / classes + k / 3)) for k in range(3)], dtype=np.float32)
    image = image * 0.6 + 50 * tint + 80 + rng.normal(0, 8, size=image.shape)
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path, quality=90)


def make_folder(root: Path, count: int, classes: int = 10, min_side: int = 256, max_side: int = 384,
                workers: int | None = None) -> Path:
    """``count`` JPEGs in ``classes`` class folders under ``root`` (created; must not hold images)."""
    jobs = []
    for i in range(count):
        label = i % classes
        folder = root / f"class_{label:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        jobs.append((folder / f"{i:06d}.jpg", i, label, classes, min_side, max_side))
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        list(pool.map(_write, jobs, chunksize=64))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("--count", type=int, default=6080)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--min-side", type=int, default=256)
    parser.add_argument("--max-side", type=int, default=384)
    args = parser.parse_args()
    if args.root.exists() and any(args.root.iterdir()):
        raise SystemExit(f"{args.root} is not empty")
    make_folder(args.root, args.count, args.classes, args.min_side, args.max_side)
    print(f"{args.count} JPEGs in {args.classes} classes under {args.root}")


if __name__ == "__main__":
    main()
