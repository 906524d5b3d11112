"""``zoo tune`` against the defaults: the "### Hyperparameter search" table of benchmarks/RESULTS.md.

Three arms, same data, architecture, seed and epochs per run, one after the other in this process:

- ``defaults``: one ``zoo.train`` run with the family's defaults (what ``zoo train ARCH --data D`` does);
- ``tpe``: a ``--trials N`` TPE search with the median pruner over the default search space;
- ``random``: a ``--trials N`` random search over the same space, without pruning (``--random-pruner``).

For each: the best run's val and test top-1 (test is never used for the choice), trials pruned, epochs
trained and wall time. A tuned result that does not beat the defaults is printed as it is. Prints a
markdown table (and ``--json`` writes everything). Run it on a quiet machine:

    .venv/bin/python benchmarks/bench_tune.py --data digits --arch resnet20 --epochs 10 --threads 1

Proof at tiny scale (about a minute): ``--trials 3 --epochs 1 --image-size 16``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import zoo


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def defaults_arm(args: argparse.Namespace, out: Path, fixed: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    run = zoo.train(args.arch, args.data, out=out / "defaults", epochs=args.epochs, seed=args.seed,
                    quiet=True, **fixed)
    return {"arm": "defaults", "val_top1": run.result["val"]["top1"],
            "test_top1": (run.result.get("test") or {}).get("top1"), "trials": 1, "pruned": 0,
            "epochs_run": run.result["epochs_run"], "epochs_planned": args.epochs,
            "wall_s": time.perf_counter() - start, "config": "family defaults"}


def search_arm(args: argparse.Namespace, out: Path, fixed: dict[str, Any], sampler: str, pruner: str
               ) -> dict[str, Any]:
    start = time.perf_counter()
    summary = zoo.tune(args.arch, args.data, out=out / sampler, sampler=sampler, pruner=pruner,
                       trials=args.trials, epochs=args.epochs, seed=args.seed, metric=args.metric, quiet=True,
                       **fixed)
    wall = time.perf_counter() - start
    best = summary.best
    results = json.loads((Path(best.run_dir) / "results.json").read_text()) if best else {}
    return {"arm": f"{sampler} ({pruner} pruner)", "val_top1": results.get("val", {}).get("top1"),
            "test_top1": (results.get("test") or {}).get("top1"), "trials": len(summary.trials),
            "pruned": summary.count("pruned"), "epochs_run": summary.epochs_run,
            "epochs_planned": summary.epochs_planned, "wall_s": wall,
            "config": " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in (best.params.items() if best else ()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--arch", default="resnet20")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--metric", default="val_loss")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--random-pruner", default="none", help="median to give random search pruning too")
    parser.add_argument("--out", type=Path, default=None, help="keep the run and study directories here")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()
    fixed = {k: v for k, v in (("threads", args.threads), ("image_size", args.image_size)) if v is not None}
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-tune-"))
    before = load()
    rows = [defaults_arm(args, out, fixed), search_arm(args, out, fixed, "tpe", "median"),
            search_arm(args, out, fixed, "random", args.random_pruner)]
    after = load()
    print(f"{args.arch} on {args.data}, {args.epochs} epochs per run, {args.trials} trials per search, "
          f"seed {args.seed}, search metric {args.metric}; load average before {before}, after {after}; "
          f"runs in {out}", file=sys.stderr)
    print("| arm | best val top-1 | its test top-1 | trials (pruned) | epochs trained | wall time "
          "| best config |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['arm']} | {pct(r['val_top1'])} | {pct(r['test_top1'])} | {r['trials']} ({r['pruned']}) "
              f"| {r['epochs_run']} of {r['epochs_planned']} | {r['wall_s']:.0f} s | {r['config']} |")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"out": str(out), "json": str(args.json)},
                                         "load_before": before, "load_after": after, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
