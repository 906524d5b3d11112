"""The training input pipeline on CPU: ``--pipeline batched`` vs ``pil``, side by side.

Training images/s of zoo's real training step (the family's optimiser, precision and memory format,
as ``zoo train`` picks them) fed by each pipeline, for ``--steps`` steps after ``--warmup``; each
measurement runs in its own process, and the pipelines alternate within every setting so that a
change in machine load hits both. ``--baseline-src DIR`` adds a column measured with another
checkout's zoo (for example main before this pipeline existed), in the same alternation.

    .venv/bin/python benchmarks/bench_pipeline.py --data fashion-mnist --steps 200
    .venv/bin/python benchmarks/bench_pipeline.py --archs resnet20 --batches 64 --threads 1 \\
        --augments standard --steps 300 --baseline-src /tmp/zoo-main

Prints a markdown table and the load average before and after.
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import json
import os
import subprocess
import sys
import time


def measure(spec: dict) -> dict:
    """One setting, in this process: training img/s over ``steps`` steps (and the loader's own img/s
    where the loader has a clock)."""
    import torch

    torch.set_num_threads(spec["threads"])
    from zoo.data import load_splits, make_loaders
    from zoo.registry import get_spec
    from zoo.run import build_model
    from zoo.training.api import _build_parts, new_run_config
    from zoo.training.config import TrainConfig, family_defaults, resolve_options
    from zoo.training.loop import _step
    from zoo.training.precision import resolve_precision

    arch = get_spec(spec["arch"])
    splits = load_splits(spec["data"])
    cfg = TrainConfig(batch_size=spec["batch"], augment=spec["augment"], workers=spec["workers"]).validate()
    defaults = family_defaults(arch.family, arch.tags)
    cfg = resolve_options(cfg, defaults, len(splits.train))
    precision = resolve_precision("auto", "cpu", defaults.cpu_bf16)
    config = new_run_config(arch, spec["data"], splits, cfg)
    torch.manual_seed(0)
    model = build_model(config)
    options = {"augment": cfg.augment, "batch_size": cfg.batch_size, "workers": cfg.workers, "seed": 0}
    if "pipeline" in inspect.signature(make_loaders).parameters:
        options["pipeline"] = spec["pipeline"]
    train, _, _ = make_loaders(splits, config["preprocessing"], **options)
    parts = _build_parts(model, cfg, "cpu", precision, len(train), None)
    parts.forward.train()
    total = spec["warmup"] + spec["steps"]
    done, start, clock_start = 0, None, 0.0
    clock = getattr(train, "clock", None)
    while done < total:
        for images, labels in train:
            if done == spec["warmup"]:
                start = time.perf_counter()
                clock_start = clock.seconds if clock is not None else 0.0
            images, labels = parts.to_device(images, labels)
            with parts.autocast():
                loss = parts.criterion(parts.forward(images).float(), labels)
            float(loss.detach())
            parts.optimizer.zero_grad(set_to_none=True)
            _step(parts, loss, 0.0)
            parts.schedule.after_batch()
            done += 1
            if done == total:
                break
    seconds = time.perf_counter() - start
    images = spec["steps"] * spec["batch"]
    import zoo

    out = {"img_per_s": images / seconds, "precision": precision, "zoo": zoo.__file__}
    if clock is not None:
        out["loader_img_per_s"] = images / max(1e-9, clock.seconds - clock_start)
    return out


def run_one(spec: dict, src: str | None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"])}
    if src:
        env["PYTHONPATH"] = src
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", json.dumps(spec)],
                          capture_output=True, text=True, env=env, cwd=src or None)
    if proc.returncode != 0:
        raise SystemExit(f"measurement failed ({spec}): {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--archs", default="resnet20,simple_cnn_bn")
    parser.add_argument("--batches", default="64,128")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--augments", default="standard,light")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="DataLoader workers for pil")
    parser.add_argument("--baseline-src", help="another checkout's root, measured as a third column")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(json.loads(args.one))))
        return
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs; "
          f"{args.steps} steps after {args.warmup} warm-up; pil with {args.workers} workers; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    columns = ["pil", "batched"] + (["baseline"] if args.baseline_src else [])
    print(f"| arch | batch | threads | augment | precision | {' | '.join(columns)} img/s "
          "| batched/pil | batched loader img/s |")
    print("|---|---|---|---|---|" + "---|" * len(columns) + "---|---|")
    settings = itertools.product(args.archs.split(","), map(int, args.batches.split(",")),
                                 map(int, args.threads.split(",")), args.augments.split(","))
    for arch, batch, threads, augment in settings:
        base = {"arch": arch, "batch": batch, "threads": threads, "augment": augment, "data": args.data,
                "steps": args.steps, "warmup": args.warmup}
        results = {}
        for column in columns:
            pipeline = "pil" if column == "baseline" else column
            workers = 0 if pipeline == "batched" else args.workers
            src = args.baseline_src if column == "baseline" else None
            results[column] = run_one({**base, "pipeline": pipeline, "workers": workers}, src)
        cells = " | ".join(f"{results[c]['img_per_s']:.0f}" for c in columns)
        ratio = results["batched"]["img_per_s"] / results["pil"]["img_per_s"]
        print(f"| {arch} | {batch} | {threads} | {augment} | {results['batched']['precision']} | {cells} | "
              f"{ratio:.2f} | {results['batched'].get('loader_img_per_s', 0):,.0f} |", flush=True)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.baseline_src:
        print(f"baseline: {results['baseline']['zoo']}")


if __name__ == "__main__":
    main()
