"""VGG on small images before and after the small-image head (issue 13), side by side.

Each cell is a fresh process running one code version (``--before-src``: a checkout of the commit
before the change, put first on PYTHONPATH; "after": this tree) that builds
``vgg11_bn(num_classes=10, in_channels=1, small_input=True)`` as ``zoo train`` does at 32 px and times
SGD steps (batch 64, random data: the step, not the loader) for ``--seconds``. The two versions take
turns over ``--rounds``; the table shows parameters, median img/s and the peak RSS of the process.

    git worktree add /tmp/before b57df34
    .venv/bin/python benchmarks/bench_vgg_head.py --before-src /tmp/before --rounds 3 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

STEP = r"""
import json, resource, sys, time, torch, zoo
torch.set_num_threads(int(sys.argv[1]))
model = zoo.get_model("vgg11_bn", num_classes=10, in_channels=1, small_input=True)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
x, y = torch.randn(64, 1, 32, 32), torch.randint(0, 10, (64,))
def step():
    opt.zero_grad(); torch.nn.functional.cross_entropy(model(x), y).backward(); opt.step()
for _ in range(2): step()
n, start = 0, time.perf_counter()
while time.perf_counter() - start < float(sys.argv[2]): step(); n += 1
print(json.dumps({"img_s": 64 * n / (time.perf_counter() - start),
                  "params": sum(p.numel() for p in model.parameters()),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def cell(src: str | None, threads: int, seconds: float) -> dict[str, float]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    # cwd: not this tree, which ``python -c`` would put before PYTHONPATH on sys.path
    out = subprocess.run([sys.executable, "-c", STEP, str(threads), str(seconds)], env=env,
                         capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before-src", required=True, help="a checkout of the code before the change")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cells: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for _ in range(args.rounds):
        for side, src in (("before", args.before_src), ("after", None)):
            cells[side].append(cell(src, args.threads, args.seconds))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("| code | parameters | train img/s (median) | peak RSS MB |")
    print("|---|---:|---:|---:|")
    for side, rows in cells.items():
        print(f"| {side} | {int(rows[0]['params']):,} | {statistics.median(r['img_s'] for r in rows):.1f} | "
              f"{max(r['rss_mb'] for r in rows):,.0f} |")
    before, after = (statistics.median(r["img_s"] for r in cells[s]) for s in ("before", "after"))
    print(f"after / before: {after / before:.2f}x")


if __name__ == "__main__":
    main()
