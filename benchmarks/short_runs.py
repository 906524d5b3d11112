"""Short training runs with the defaults (or given overrides), one row per (architecture, option set).

What a new user sees from ``zoo train ARCH --data DIR`` in a few epochs: val/test top-1 and speed. Used
to choose each family's defaults (issue 13: VGG stayed at chance with its old defaults) and to keep the
README's promise that ``zoo train ARCH --data DIR`` works untuned.

    .venv/bin/python benchmarks/short_runs.py --arch vgg,resnet,mobilenet,simple,se,squeezenet \
        --data digits --epochs 3 --threads 1
    .venv/bin/python benchmarks/short_runs.py --arch vgg11_bn --set lr=0.01 --set optimizer=adamw,lr=1e-3
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any


def parse_set(text: str) -> dict[str, Any]:
    """``lr=0.01,optimizer=adamw`` -> {"lr": 0.01, "optimizer": "adamw"} (numbers parsed as JSON)."""
    out: dict[str, Any] = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        try:
            out[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip().replace("-", "_")] = value.strip()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="simple,vgg,resnet,mobilenet,se",
                        help="names or families, comma list")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", action="append", default=[],
                        help="option overrides; repeat for several rows")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()

    import zoo

    option_sets = [parse_set(s) for s in args.set] or [{}]
    rows = []
    print("| arch | options | epochs | val top-1 | test top-1 | train img/s | wall s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for arch in args.arch.split(","):
        for options in option_sets:
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                run = zoo.train(arch, args.data, out=Path(tmp) / "run", epochs=args.epochs, quiet=True,
                                threads=args.threads, **options)
                wall = time.perf_counter() - start
            ips = sum(r["img_per_s"] for r in run.history) / len(run.history)
            test = run.result.get("test", {}).get("top1")
            row = {"arch": run.config["arch"], "options": options or "defaults", "epochs": args.epochs,
                   "val_top1": run.result["val"]["top1"], "test_top1": test, "img_per_s": ips, "wall_s": wall,
                   "lr": run.config["train"]["lr"], "optimizer": run.config["train"]["optimizer"]}
            rows.append(row)
            shown = ", ".join(f"{k}={v}" for k, v in options.items()) or "defaults"
            print(f"| {row['arch']} | {shown} | {args.epochs} | {100 * row['val_top1']:.2f}% | "
                  f"{'-' if test is None else f'{100 * test:.2f}%'} | {ips:.0f} | {wall:.0f} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
