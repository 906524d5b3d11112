"""The training input pipeline on CPU: ``--pipeline batched`` vs ``pil``, side by side.

Training images/s of zoo's real training step (the family's optimiser, precision and memory format,
as ``zoo train`` picks them) fed by each pipeline, for ``--steps`` steps after ``--warmup``. Both
pipelines live in one process and take turns every ``--chunk`` steps, so a change in machine load
hits both (the PIL workers may prefetch a few batches during the other's turn: a bias towards
``pil``). ``--baseline-src DIR`` adds a column measured with another checkout's zoo (for example main
before this pipeline existed) in its own process, alternating with ours ``--repeats`` times.

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
import statistics
import subprocess
import sys
import time


def measure(spec: dict) -> dict:
    """One setting, in this process: training img/s of each pipeline in ``spec["pipelines"]``, taking
    turns every ``chunk`` steps (so a change in machine load hits all of them), and the batched
    loader's own img/s. A checkout without ``--pipeline`` (the baseline) measures its one pipeline."""
    import torch

    torch.set_num_threads(spec["threads"])
    from zoo.data import load_splits, make_loaders
    from zoo.registry import get_spec
    from zoo.run import build_model
    from zoo.training.api import _build_parts
    from zoo.training.config import TrainConfig, family_defaults, resolve_options
    from zoo.training.loop import _step
    from zoo.training.new_run import new_run_config
    from zoo.training.precision import resolve_precision

    arch = get_spec(spec["arch"])
    splits = load_splits(spec["data"])
    cfg = TrainConfig(batch_size=spec["batch"], augment=spec["augment"], image_size=spec["image_size"])
    cfg = cfg.validate()
    defaults = family_defaults(arch.family, arch.tags)
    cfg = resolve_options(cfg, defaults, len(splits.train))
    precision = resolve_precision("auto", "cpu", defaults.cpu_bf16)
    config = new_run_config(arch, spec["data"], splits, cfg)
    has_pipeline = "pipeline" in inspect.signature(make_loaders).parameters
    runs = {}
    for pipeline in spec["pipelines"] if has_pipeline else ["baseline"]:
        options = {"augment": cfg.augment, "batch_size": cfg.batch_size, "seed": 0,
                   "workers": 0 if pipeline == "batched" else spec["workers"]}
        if has_pipeline:
            options["pipeline"] = pipeline
        train, _, _ = make_loaders(splits, config["preprocessing"], **options)
        torch.manual_seed(0)
        parts = _build_parts(build_model(config), cfg, "cpu", precision, len(train), None)
        parts.forward.train()
        runs[pipeline] = {"loader": train, "parts": parts, "batches": iter(train), "seconds": 0.0,
                          "loader_seconds": 0.0}

    def steps(run: dict, count: int) -> None:
        parts, clock = run["parts"], getattr(run["loader"], "clock", None)
        before = clock.seconds if clock is not None else 0.0
        start = time.perf_counter()
        for _ in range(count):
            batch = next(run["batches"], None)
            if batch is None:  # a new pass: the loader's clock restarts
                if clock is not None:
                    run["loader_seconds"] += clock.seconds - before
                    before = 0.0
                run["batches"] = iter(run["loader"])
                batch = next(run["batches"])
            images, labels = parts.to_device(*batch)
            with parts.autocast():
                loss = parts.criterion(parts.forward(images).float(), labels)
            float(loss.detach())
            parts.optimizer.zero_grad(set_to_none=True)
            _step(parts, loss, 0.0)
            parts.schedule.after_batch()
        run["seconds"] += time.perf_counter() - start
        if clock is not None:
            run["loader_seconds"] += clock.seconds - before

    order = list(runs)
    for run in runs.values():  # warm-up, not timed
        steps(run, spec["warmup"])
        run["seconds"] = run["loader_seconds"] = 0.0
    for turn in range(max(1, spec["steps"] // spec["chunk"])):
        for name in order if turn % 2 == 0 else order[::-1]:
            steps(runs[name], spec["chunk"])
    import zoo

    images = max(1, spec["steps"] // spec["chunk"]) * spec["chunk"] * spec["batch"]
    return {
        name: {"img_per_s": images / run["seconds"], "precision": precision, "zoo": zoo.__file__,
               "loader_img_per_s": images / max(1e-9, run["loader_seconds"])}
        for name, run in runs.items()
    }


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
    parser.add_argument("--image-size", type=int, help="default: the architecture's and data's, as zoo train")
    parser.add_argument("--chunk", type=int, default=25, help="steps per turn when pipelines alternate")
    parser.add_argument("--repeats", type=int, default=1, help="processes per setting (median shown)")
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
        spec = {"arch": arch, "batch": batch, "threads": threads, "augment": augment, "data": args.data,
                "steps": args.steps, "warmup": args.warmup, "chunk": args.chunk, "workers": args.workers,
                "image_size": args.image_size,
                "pipelines": ["pil", "batched"]}
        samples: dict[str, list[dict]] = {c: [] for c in columns}
        for _ in range(args.repeats):
            for name, result in run_one(spec, None).items():
                samples[name].append(result)
            if args.baseline_src:
                samples["baseline"].append(run_one(spec, args.baseline_src)["baseline"])
        med = {c: statistics.median(r["img_per_s"] for r in samples[c]) for c in columns}
        loader = statistics.median(r["loader_img_per_s"] for r in samples["batched"])
        cells = " | ".join(f"{med[c]:.0f}" for c in columns)
        precision = samples["batched"][0]["precision"]
        print(f"| {arch} | {batch} | {threads} | {augment} | {precision} | {cells} | "
              f"{med['batched'] / med['pil']:.2f} | {loader:,.0f} |", flush=True)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.baseline_src:
        print(f"baseline: {samples['baseline'][0]['zoo']}")


if __name__ == "__main__":
    main()
