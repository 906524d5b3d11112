"""Training throughput with 1 vs N processes (torchrun + DDP) on one machine (issue 10).

Each cell is one ``torchrun --standalone --nproc-per-node N -m zoo train ... --json`` run; the figure is
the median images/s (all ranks together) over the epochs after the first (the first pays for start-up
and warm-up). The cores are shared: each process gets ``cores // N`` intra-op threads, so the
comparison is "the same machine, used by 1 or N processes". Cells alternate over ``--rounds`` so that
a change in the machine's load hits both alike; the load average is printed beside the table.

    .venv/bin/python benchmarks/bench_ddp.py --nproc 1,2 --rounds 3 --epochs 4
    .venv/bin/python benchmarks/bench_ddp.py --arch resnet20 --image-size 32 --device cuda --nproc 1,2,4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile


def run_once(nproc: int, args: argparse.Namespace, out: str) -> float:
    threads = max(1, (os.cpu_count() or 1) // nproc)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS=str(threads), ZOO_PLUGINS="")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
           "-m", "zoo", "train", args.arch, "--data", args.data, "--device", args.device,
           "--image-size", str(args.image_size), "--epochs", str(args.epochs), "--batch-size",
           str(args.batch_size), "--workers", "0", "--patience", "0", "--out", out, "--json"]
    if args.device == "cpu":
        cmd += ["--threads", str(threads)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    speeds = result["speed"]["img_per_s"][1:] or result["speed"]["img_per_s"]
    return statistics.median(speeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="simple_cnn_bn")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--nproc", default="1,2")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    counts = [int(n) for n in args.nproc.split(",")]
    figures: dict[int, list[float]] = {n: [] for n in counts}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for n in counts:
                figures[n].append(run_once(n, args, os.path.join(tmp, f"n{n}-r{r}")))
                print(f"round {r + 1}: {n} process(es): {figures[n][-1]:,.0f} img/s", file=sys.stderr)
    load_after = os.getloadavg()
    base = statistics.median(figures[counts[0]])
    print(f"{args.arch}, {args.data}, {args.image_size} px, global batch {args.batch_size}, {args.device}, "
          f"{os.cpu_count()} cores; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print("\n| processes | threads each | img/s (median of rounds) | vs first |\n|---|---|---|---|")
    for n in counts:
        med = statistics.median(figures[n])
        print(f"| {n} | {max(1, (os.cpu_count() or 1) // n)} | {med:,.0f} | {med / base:.2f}x |")


if __name__ == "__main__":
    main()
