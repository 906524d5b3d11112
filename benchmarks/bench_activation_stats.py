"""The cost of ``zoo train --activation-stats``: train steps with and without the recorder, side by side.

One process, one model, real digits batches (32 px, batch 64, SGD, the run's own precision): rounds of
``--block`` steps rotate through "off" (no hook at all: what every run without the flag executes),
"every K" (the default, K=10) and "every 1" (the worst case), so drift and noisy neighbours hit all
three alike. Prints the mean step time of each and the overhead against "off", with the load average.

    .venv/bin/python benchmarks/bench_activation_stats.py --archs resnet20,simple_cnn_bn --threads 1
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import zoo
from zoo.training.activations import ActivationRecorder


def batches(image_size: int, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    from zoo.data import eval_preprocessing, load_splits, make_loaders, norm_stats

    splits = load_splits("digits")
    mean, std = norm_stats("dataset", splits.train, 1, image_size)
    spec = eval_preprocessing(image_size, 1, mean, std, splits.native_size)
    train, _, _ = make_loaders(splits, spec, augment="none", batch_size=batch, workers=0)
    return list(train)


def measure(arch: str, data: list, every: list[int], rounds: int, block: int, bf16: bool) -> dict[str, float]:
    torch.manual_seed(0)
    model = zoo.get_model(arch, num_classes=10, in_channels=1).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    step_no = 0

    def step() -> None:
        nonlocal step_no
        images, labels = data[step_no % len(data)]
        step_no += 1
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model(images).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(10):  # warm-up
        step()
    modes = ["off"] + [f"every {k}" for k in every]
    seconds = {m: 0.0 for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for mode, k in zip(modes, [0, *every], strict=True):
                recorder = (ActivationRecorder(model, Path(tmp), every=k, steps_per_epoch=len(data))
                            if k else None)
                start = time.perf_counter()
                for _ in range(block):
                    step()
                seconds[mode] += time.perf_counter() - start
                if recorder is not None:
                    recorder.detach()
    return {m: s / (rounds * block) for m, s in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="resnet20,simple_cnn_bn")
    parser.add_argument("--every", default="10,1")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--block", type=int, default=20, help="steps per block (a multiple of every K)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (resnet's auto precision here)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = batches(args.image_size, args.batch)
    every = [int(k) for k in args.every.split(",")]
    before = os.getloadavg()
    print(f"{args.image_size} px, batch {args.batch}, {torch.get_num_threads()} thread(s), "
          f"{'bf16' if args.bf16 else 'fp32'}, {args.rounds} rounds of {args.block} steps per mode")
    print("| arch | step, off | " + " | ".join(f"every {k}" for k in every) + " |")
    print("|---|---|" + "---|" * len(every))
    for arch in args.archs.split(","):
        t = measure(arch, data, every, args.rounds, args.block, args.bf16)
        cells = []
        for k in every:
            on = t[f"every {k}"]
            cells.append(f"{1000 * on:.1f} ms ({100 * (on / t['off'] - 1):+.1f}%)")
        print(f"| {arch} | {1000 * t['off']:.1f} ms | " + " | ".join(cells) + " |")
    after = os.getloadavg()
    print(f"load average before {before[0]:.2f} {before[1]:.2f}, after {after[0]:.2f} {after[1]:.2f}")


if __name__ == "__main__":
    main()
