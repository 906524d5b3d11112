"""Large image folders: how long zoo's folder scan takes, and PIL vs torchvision.io decoding (issue 10).

1. Writes ``--count`` small images (``--side`` px, PNG or JPEG, 10 class folders; seeded) and times
   a bare directory walk (what any scan must pay) against ``zoo.data.folders.scan_folder``, which
   today decodes every file once to skip corrupt ones up front. The per-file cost is extrapolated to
   100,000 files.
2. Writes ``--decode-count`` JPEGs of ``--decode-side`` px and decodes them on one thread with PIL
   (``Image.open().convert("RGB")``) and with ``torchvision.io.decode_image``: images/s per core.

    .venv/bin/python benchmarks/bench_folder_scan.py --count 100000 --format png   # the full figure
    .venv/bin/python benchmarks/bench_folder_scan.py --count 5000 --decode-count 100   # a quick check
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = 10


def _write(job: tuple[str, int, int, str]) -> None:
    folder, start, stop, spec = job
    side, fmt = spec.split(":")
    rng = np.random.default_rng(start)
    for i in range(start, stop):
        pixels = rng.integers(0, 256, (int(side), int(side), 3), dtype=np.uint8)
        path = Path(folder) / f"c{i % CLASSES}" / f"{i:06d}.{fmt}"
        Image.fromarray(pixels).save(path, quality=90) if fmt == "jpg" else Image.fromarray(pixels).save(path)


def make_tree(root: Path, count: int, side: int, fmt: str) -> float:
    for c in range(CLASSES):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
    step = 2000
    jobs = [(str(root), s, min(count, s + step), f"{side}:{fmt}") for s in range(0, count, step)]
    start = time.perf_counter()
    with ProcessPoolExecutor() as pool:
        list(pool.map(_write, jobs))
    return time.perf_counter() - start


def walk_seconds(root: Path) -> tuple[float, int]:
    start = time.perf_counter()
    n = sum(len(files) for _, _, files in os.walk(root))
    return time.perf_counter() - start, n


def scan_seconds(root: Path) -> tuple[float, int]:
    from zoo.data.folders import scan_folder

    start = time.perf_counter()
    scan = scan_folder(root, root)
    return time.perf_counter() - start, len(scan.paths)


def decode_rates(folder: Path) -> dict[str, float]:
    import torch
    from torchvision.io import ImageReadMode, decode_image, read_file

    torch.set_num_threads(1)
    files = sorted(folder.rglob("*.jpg"))
    rates = {}
    for name in ("PIL", "torchvision.io", "PIL", "torchvision.io"):  # twice each, interleaved; best kept
        start = time.perf_counter()
        for path in files:
            if name == "PIL":
                with Image.open(path) as img:
                    np.asarray(img.convert("RGB"))
            else:
                decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
        rate = len(files) / (time.perf_counter() - start)
        rates[name] = max(rate, rates.get(name, 0.0))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--side", type=int, default=32)
    parser.add_argument("--format", choices=("png", "jpg"), default="png")
    parser.add_argument("--decode-count", type=int, default=200)
    parser.add_argument("--decode-side", type=int, default=500)
    parser.add_argument("--dir", type=Path, default=None, help="where to write [a temporary directory]")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tree = Path(tmp) / "tree"
        made = make_tree(tree, args.count, args.side, args.format)
        print(f"wrote {args.count:,} {args.side} px {args.format.upper()} files in {made:.1f}s")
        walk, n = walk_seconds(tree)
        scan, kept = scan_seconds(tree)
        per_100k = 100_000 / max(1, n)
        print(f"directory walk: {walk:.2f}s for {n:,} files ({walk * per_100k:.1f}s per 100k)")
        print(f"zoo scan_folder (decodes every file): {scan:.2f}s for {kept:,} files "
              f"({n / scan:,.0f} files/s; {scan * per_100k:.1f}s per 100k)")
        jpegs = Path(tmp) / "jpeg"
        make_tree(jpegs, args.decode_count, args.decode_side, "jpg")
        rates = decode_rates(jpegs)
        print(f"decode {args.decode_count} JPEGs of {args.decode_side} px on one thread: " + ", ".join(
            f"{name} {rate:,.0f} img/s" for name, rate in rates.items()))
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
