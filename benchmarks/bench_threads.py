"""Intra-op threads on a busy machine: what ``zoo train``'s thread default should be (issue 13).

Each cell is a fresh process (OpenMP reads OMP_WAIT_POLICY once, at start-up) that times SGD steps of
resnet20 (batch 64, 32 px, 1 channel, random data: the step, not the loader) at a given thread count
and wait policy, on a quiet machine and with ``--busy N`` other processes spinning on the CPU (a
stand-in for "another job is running"). Cells are interleaved over ``--rounds``; the table shows
the median img/s.

    .venv/bin/python benchmarks/bench_threads.py --rounds 3 --busy 0,1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time

STEP = r"""
import json, os, sys, time, torch, zoo
torch.set_num_threads(int(sys.argv[1]))
model = zoo.get_model("resnet20", num_classes=10, in_channels=1)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
x, y = torch.randn(64, 1, 32, 32), torch.randint(0, 10, (64,))
def step():
    opt.zero_grad(); torch.nn.functional.cross_entropy(model(x), y).backward(); opt.step()
for _ in range(3): step()
n, start = 0, time.perf_counter()
while time.perf_counter() - start < float(sys.argv[2]): step(); n += 1
print(json.dumps(64 * n / (time.perf_counter() - start)))
"""


def spin() -> None:
    while True:
        pass


def cell(threads: int, policy: str | None, seconds: float) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", STEP, str(threads), str(seconds)], env=env,
                         capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--policies", default="default,PASSIVE,ACTIVE")
    parser.add_argument("--busy", default="0,1", help="comma list of background spinning processes")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    policies = [None if p == "default" else p for p in args.policies.split(",")]
    print(f"load average before: {os.getloadavg()}, cpus: {os.cpu_count()}")
    print("| other busy processes | threads | OMP_WAIT_POLICY | img/s (median) | runs |")
    print("|---:|---:|---|---:|---|")
    for busy in (int(b) for b in args.busy.split(",")):
        spinners = [mp.Process(target=spin, daemon=True) for _ in range(busy)]
        for p in spinners:
            p.start()
        time.sleep(1)
        results: dict[tuple[int, str | None], list[float]] = {(t, p): [] for t in threads for p in policies}
        for _ in range(args.rounds):
            for key in results:
                results[key].append(cell(*key, args.seconds))
        for p in spinners:
            p.terminate()
        for (t, p), values in results.items():
            print(f"| {busy} | {t} | {p or 'unset'} | {statistics.median(values):.0f} | "
                  f"{', '.join(f'{v:.0f}' for v in values)} |", flush=True)


if __name__ == "__main__":
    main()
