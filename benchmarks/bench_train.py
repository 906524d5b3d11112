"""Training benchmarks behind the "## Training" table of benchmarks/RESULTS.md.

Parts (each prints a markdown table; run them on a quiet machine, one at a time):

- ``accuracy``: ``zoo train ARCH --data D`` with default flags from a clean run directory: test top-1,
  epochs and wall time (digits: simple_cnn_bn, resnet20; fashion-mnist: resnet20, mobilenet_v2).
- ``overhead``: zoo train vs the course's plain loop (DataLoader over pre-processed tensors, Adam,
  fixed lr, fp32) on the same model, data and batch: training images/s, and the time the plain loop
  needs to reach zoo's final test accuracy.
- ``bf16``: the same zoo run with ``--precision fp32`` and ``--precision bf16`` (CPUs with AVX-512-BF16).
- ``speed``: train-step images/s per precision/memory format at 32 px, batch 64 (what ``auto`` picks from).

    .venv/bin/python benchmarks/bench_train.py --parts speed,accuracy,overhead,bf16 --data digits
    .venv/bin/python benchmarks/bench_train.py --parts accuracy,overhead,bf16 --data fashion-mnist
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from results_md import cpu_description

ACCURACY_RUNS = {"digits": ["simple_cnn_bn", "resnet20"], "fashion-mnist": ["resnet20", "mobilenet_v2"]}
OVERHEAD_ARCH = "resnet20"
SPEED_ARCHS = ["simple_cnn_bn", "resnet20", "vgg11_bn", "mobilenet_v2", "resnet18"]
ZOO = str(Path(sys.executable).parent / "zoo")
EXTRA: list[str] = []  # flags every zoo train gets (--threads N when given)


def zoo_train(arch: str, data: str, out: Path, *extra: str) -> tuple[dict, float]:
    """A clean ``zoo train`` in a subprocess: (result JSON, wall seconds including start-up)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [ZOO, "train", arch, "--data", data, "--out", str(out), "--json", *EXTRA, *extra],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"zoo train failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout), wall


def metrics_rows(run_dir: Path) -> list[dict[str, float]]:
    import csv

    return [
        {k: float(v) for k, v in r.items() if v} for r in csv.DictReader((run_dir / "metrics.csv").open())
    ]


def part_accuracy(data: str, tmp: Path) -> None:
    print(f"\n### Accuracy with default flags ({data})\n")
    print("| command | test top-1 | epochs | wall time |")
    print("|---|---|---|---|")
    for arch in ACCURACY_RUNS[data]:
        result, wall = zoo_train(arch, data, tmp / f"acc-{arch}")
        print(
            f"| `zoo train {arch} --data {data}` | {100 * result['test']['top1']:.2f}% | "
            f"{result['epochs_run']} | {wall:.0f} s |",
            flush=True,
        )


def _tensors(samples, spec) -> tuple[torch.Tensor, torch.Tensor]:
    from zoo.runtime.preprocess import preprocess

    if samples.images is not None:
        images = [Image.fromarray(a) for a in samples.images]
    else:
        images = [Image.open(p) for p in samples.paths]
    x = np.stack([preprocess(img, spec) for img in images])
    return torch.from_numpy(x), torch.tensor(samples.labels)


def plain_loop(
    arch: str,
    data: str,
    config: dict,
    split: dict,
    batch: int,
    target: float,
    max_epochs: int,
    max_seconds: float,
) -> dict:
    """The course's loop: Adam(lr=1e-3), fixed lr, no augmentation, fp32; test accuracy every epoch.

    Stops at ``target`` accuracy, after ``max_epochs``, or once it has trained ``max_seconds`` (2x zoo's
    time: enough to tell whether zoo is >= 2x faster to the same accuracy)."""
    from torch.utils.data import DataLoader, TensorDataset

    from zoo.data import load_splits
    from zoo.run import build_model

    splits = load_splits(data, split_record=split)
    train_x, train_y = _tensors(splits.train, config["preprocessing"])
    test_x, test_y = _tensors(splits.test, config["preprocessing"])
    torch.manual_seed(0)
    model = build_model(config)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(train_x, train_y), batch_size=batch, shuffle=True)
    train_time, images, reached, best = 0.0, 0, None, 0.0
    for epoch in range(1, max_epochs + 1):
        model.train()
        start = time.perf_counter()
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            images += len(y)
        train_time += time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            acc = float(torch.cat([model(x).argmax(1) for x in test_x.split(512)]).eq(test_y).float().mean())
        best = max(best, acc)
        if acc >= target:
            reached = (epoch, train_time)
            break
        if train_time > max_seconds:
            break
    return {
        "img_per_s": images / train_time,
        "reached": reached,
        "best": best,
        "epochs": epoch,
        "train_time": train_time,
    }


def default_run(data: str, tmp: Path, reuse: Path | None) -> tuple[Path, dict, float | None]:
    """``zoo train resnet20 --data D`` with defaults: (run dir, result, wall s), or the finished run
    ``reuse`` (``--zoo-run``; wall unknown) so a long Fashion-MNIST run is not trained twice."""
    if reuse is None:
        out = tmp / "overhead-zoo"
        result, wall = zoo_train(OVERHEAD_ARCH, data, out)
        return out, result, wall
    result = json.loads((reuse / "results.json").read_text())
    if (result["arch"], result["data"]) != (OVERHEAD_ARCH, data):
        found = f"{result['arch']} on {result['data']}"
        raise SystemExit(f"--zoo-run {reuse}: {found}, not {OVERHEAD_ARCH} on {data}")
    return reuse, result, None


def part_overhead(data: str, tmp: Path, max_epochs: int, reuse: Path | None) -> None:
    out, result, _wall = default_run(data, tmp, reuse)
    config = json.loads((out / "config.json").read_text())
    split = json.loads((out / "split.json").read_text())
    rows = metrics_rows(out)
    zoo_ips = float(np.mean([r["img_per_s"] for r in rows]))
    zoo_train_time = sum(r["epoch_s"] for r in rows)
    target = result["test"]["top1"]
    plain = plain_loop(
        OVERHEAD_ARCH,
        data,
        config,
        split,
        int(config["train"]["batch_size"]),
        target,
        max_epochs,
        2 * zoo_train_time,
    )
    print(
        f"\n### zoo train vs the plain loop ({OVERHEAD_ARCH}, {data}, batch {config['train']['batch_size']}, "
        f"{config['image_size']} px)\n"
    )
    print("| | train img/s | test top-1 | time to zoo's accuracy |")
    print("|---|---|---|---|")
    print(
        f"| zoo train (defaults: {config['train']['optimizer']} {config['train']['scheduler']}, "
        f"{config['runtime']['precision']}, augment {config['train']['augment']}) | {zoo_ips:.0f} | "
        f"{100 * target:.2f}% | {zoo_train_time:.0f} s ({len(rows)} epochs, incl. validation) |"
    )
    reached = (
        f"{plain['reached'][1]:.0f} s (epoch {plain['reached'][0]})"
        if plain["reached"]
        else f"not reached in {plain['epochs']} epochs ({plain['train_time']:.0f} s of training)"
    )
    print(
        f"| plain loop (Adam 1e-3, fixed lr, fp32, no augmentation) | {plain['img_per_s']:.0f} | "
        f"{100 * plain['best']:.2f}% (best) | {reached} |"
    )
    print(f"\nimages/s ratio zoo/plain: {zoo_ips / plain['img_per_s']:.2f}", flush=True)


def part_bf16(data: str, tmp: Path, reuse: Path | None) -> None:
    from zoo.training.precision import cpu_has_bf16

    if not cpu_has_bf16():
        print("\n(bf16: this CPU has no AVX-512-BF16; skipped)")
        return
    print(f"\n### bf16 vs fp32 ({OVERHEAD_ARCH}, {data}, defaults otherwise)\n")
    print("| precision | train img/s | test top-1 | epochs | wall |")
    print("|---|---|---|---|---|")
    reused = json.loads((reuse / "config.json").read_text())["runtime"]["precision"] if reuse else None
    for precision in ("fp32", "bf16"):
        out = tmp / f"prec-{precision}"
        if precision == reused:
            out, result, _ = default_run(data, tmp, reuse)
            wall_s = f"{result['train_seconds']:.0f} s training"
        else:
            result, wall = zoo_train(OVERHEAD_ARCH, data, out, "--precision", precision)
            wall_s = f"{wall:.0f} s"
        ips = float(np.mean([r["img_per_s"] for r in metrics_rows(out)]))
        print(
            f"| {precision} | {ips:.0f} | {100 * result['test']['top1']:.2f}% | {result['epochs_run']} | "
            f"{wall_s} |",
            flush=True,
        )


def part_speed(steps: int) -> None:
    """Train-step images/s on random 32 px batches: the measurement behind the per-family ``auto``."""
    from zoo.catalog import get_model, get_spec
    from zoo.training.precision import cpu_has_bf16

    settings = [("fp32", False), ("fp32", True)] + (
        [("bf16", False), ("bf16", True)] if cpu_has_bf16() else []
    )
    print("\n### Train-step images/s, 32 px, batch 64, 1 input channel\n")
    print("| arch | " + " | ".join(f"{p}{' + channels_last' if cl else ''}" for p, cl in settings) + " |")
    print("|---|" + "---|" * len(settings))
    for arch in SPEED_ARCHS:
        kwargs = {"small_input": True} if "imagenet" in get_spec(arch).tags else {}
        cells = []
        for precision, cl in settings:
            torch.manual_seed(0)
            model = get_model(arch, num_classes=10, in_channels=1, **kwargs).train()
            x, y = torch.randn(64, 1, 32, 32), torch.randint(0, 10, (64,))
            if cl:
                model, x = (
                    model.to(memory_format=torch.channels_last),
                    x.contiguous(memory_format=torch.channels_last),
                )
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            best = 0.0
            for rep in range(steps + 2):
                start = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                    loss = torch.nn.functional.cross_entropy(model(x).float(), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if rep >= 2:
                    best = max(best, 64 / (time.perf_counter() - start))
            cells.append(f"{best:.0f}")
        print(f"| {arch} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", default="speed,accuracy,overhead,bf16")
    parser.add_argument("--data", default="digits", choices=sorted(ACCURACY_RUNS))
    parser.add_argument("--max-plain-epochs", type=int, default=60)
    parser.add_argument("--speed-steps", type=int, default=10)
    parser.add_argument("--zoo-run", type=Path, help="a finished default `zoo train resnet20` run on --data "
                        "to reuse as the zoo (and bf16) row instead of training it again")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="Intra-op threads for every run (default torch's); 1 is steadier on a shared machine.",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        EXTRA.extend(["--threads", str(args.threads)])
    print(
        f"machine: {cpu_description()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.parts.split(","):
            if part == "speed":
                part_speed(args.speed_steps)
            elif part == "accuracy":
                part_accuracy(args.data, Path(tmp))
            elif part == "overhead":
                part_overhead(args.data, Path(tmp), args.max_plain_epochs, args.zoo_run)
            elif part == "bf16":
                part_bf16(args.data, Path(tmp), args.zoo_run)
            else:
                raise SystemExit(f"unknown part {part!r}")


if __name__ == "__main__":
    main()
