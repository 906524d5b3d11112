"""The markdown report of benchmarks/gpu_check.sh: reads what the check wrote into its work
directory and prints (or writes) one table per part, every zoo figure beside its reference.

Files it reads (any may be missing when a step failed; the table then says so):
``commands.tsv`` (part, seconds, exit code, command), ``a-infer.jsonl`` / ``a-train.jsonl`` (``zoo
bench --json`` rows), ``b-zoo/`` (a ``zoo train`` run directory) and ``b-plain.json``
(benchmarks/reference.py), ``c-zoo/``, ``c-plain.json``, ``c-timm.json`` and ``c-step.jsonl``.

    python benchmarks/gpu_table.py WORKDIR --device cuda --out gpu_check.md
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

TARGETS = {  # issue 8's targets on one H100 (ratios measured in the same run)
    "a": "zoo bench >= 0.9x the plain loop (bf16 infer and train)",
    "b": ">= 25,000 img/s",
    "c": "ahead of timm's loader, and >= 0.8x the train step alone",
}


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _ratio(num: float | None, den: float | None) -> str:
    return "-" if not num or not den else f"{num / den:.2f}x"


def _versions() -> list[str]:
    import importlib.metadata as md

    import torch

    def version(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "not installed"

    parts = [f"Python {platform.python_version()}", f"torch {torch.__version__}"]
    if torch.cuda.is_available():
        parts.append(f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    for name in ("torchvision", "onnxruntime", "onnxruntime-gpu", "timm"):
        parts.append(f"{name} {version(name)}")
    try:
        import onnxruntime

        parts.append("onnxruntime providers: " + ", ".join(onnxruntime.get_available_providers()))
    except ImportError:
        pass
    return parts


def _commit() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        if out.returncode != 0:
            return "?"
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


def _commands(work: Path) -> list[dict[str, str]]:
    rows = []
    try:
        for line in (work / "commands.tsv").read_text().splitlines():
            part, seconds, code, command = line.split("\t", 3)
            rows.append({"part": part, "seconds": seconds, "code": code, "command": command})
    except OSError:
        pass
    return rows


def _failed(commands: list[dict[str, str]], part: str) -> list[str]:
    return [f"`{c['command']}` failed (exit {c['code']}; its log is `{c['part']}.log` in the work directory)"
            for c in commands if c["part"].startswith(part) and c["code"] != "0"]


def part_a(work: Path, device: str) -> list[str]:
    lines = ["### (a) `zoo bench`: resnet50 and mobilenet_v2, bf16 + channels_last, input on the device", "",
             "| model | mode | batch | backend | img/s | p95 ms | peak MiB | TFLOP/s | % of peak | x plain |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    rows = _jsonl(work / "a-infer.jsonl") + _jsonl(work / "a-train.jsonl")
    peaks = {}
    for r in rows:
        peaks[r["precision"]] = r.get("peak_tflops")
        fraction = None if r.get("peak_fraction") is None else 100 * r["peak_fraction"]
        lines.append(_row(r["model"], r["mode"], r["batch"], r["backend"], _num(r["images_per_s"]),
                          _num(r["p95_ms"], 2), _num(r["peak_mem_mib"]), _num(r["tflops"], 3),
                          _num(fraction, 1), f"{r['speedup']:.2f}x"))
    if rows:
        rule = ", ".join(f"{p} {v:.4g} TFLOP/s" for p, v in peaks.items() if v)
        memory = "`torch.cuda.max_memory_allocated`." if device == "cuda" else "the process's peak RSS."
        lines += ["", "x plain: images/s over the `plain` backend (one iteration of a hand-written loop, on "
                      "a copy of the same network) in the same process. TFLOP/s = 2 (infer) or 6 (train) x "
                      "MACs x img/s; % of peak against the best large matmul measured in the same process "
                      f"({rule}). "
                      f"Peak MiB: {memory}"]
    return lines


def _epochs_zoo(run: Path) -> list[dict[str, float]]:
    try:
        with (run / "metrics.csv").open() as f:
            return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
    except (OSError, ValueError):
        return []


def _per_epoch(values: list[float]) -> str:
    return " / ".join(_num(v) for v in values) or "-"


def _loader_columns(epochs: list[dict[str, float]]) -> str:
    """The training log's loader and model images/s (when zoo writes them), so a reader sees which
    side bounds training."""
    keys = [k for k in (epochs[0] if epochs else {}) if k.endswith("_img_per_s")]
    return "; ".join(f"{k} " + _per_epoch([e[k] for e in epochs if k in e]) for k in keys)


def part_b(work: Path, data: str) -> list[str]:
    zoo_epochs = _epochs_zoo(work / "b-zoo")
    zoo_result = _json(work / "b-zoo" / "results.json") or {}
    config = _json(work / "b-zoo" / "config.json") or {}
    plain = _json(work / "b-plain.json") or {}
    plain_epochs = [e["img_per_s"] for e in plain.get("epochs", [])]
    zoo_last = zoo_epochs[-1]["img_per_s"] if zoo_epochs else None
    plain_last = plain_epochs[-1] if plain_epochs else None
    test = (zoo_result.get("test") or {}).get("top1")
    train = config.get("train", {})
    runtime = config.get("runtime", {})
    settings = ", ".join(f"{k} {v}" for k, v in (("batch", train.get("batch_size")), ("precision",
                         runtime.get("precision")), ("augment", train.get("augment"))) if v is not None)
    plain_top1 = None if plain.get("test_top1") is None else 100 * plain["test_top1"]
    plain_settings = f"{plain.get('precision', '?')}{', channels_last' if plain.get('channels_last') else ''}"
    lines = [f"### (b) `zoo train resnet20 --data {data}` with defaults, against a plain loop", "",
             "| run | img/s per epoch | test top-1 | zoo / plain (last epoch) |", "|---|---|---:|---:|",
             _row(f"zoo train (defaults: {settings or '?'})",
                  _per_epoch([e["img_per_s"] for e in zoo_epochs]),
                  f"{_num(None if test is None else 100 * test, 2)}%", _ratio(zoo_last, plain_last)),
             _row(f"plain loop (uint8 data on the device, batched crop + flip there, {plain_settings}, batch "
                  f"{plain.get('batch_size', '?')})", _per_epoch(plain_epochs), f"{_num(plain_top1, 2)}%",
                  "1.00x")]
    loaders = _loader_columns(zoo_epochs)
    if loaders:
        lines += ["", f"zoo's training log, images/s of its parts per epoch: {loaders}."]
    return lines


def part_c(work: Path, folder: str) -> list[str]:
    zoo_epochs = [e["img_per_s"] for e in _epochs_zoo(work / "c-zoo")]
    zoo_last = zoo_epochs[-1] if zoo_epochs else None
    config = _json(work / "c-zoo" / "config.json") or {}
    lines = [f"### (c) `zoo train resnet50` on a generated folder of JPEGs ({folder})", "",
             "| run | img/s per epoch | zoo / this (last epoch) |", "|---|---|---:|",
             f"| zoo train (batch {config.get('train', {}).get('batch_size', '?')}, "
             f"{config.get('runtime', {}).get('precision', '?')}) | {_per_epoch(zoo_epochs)} | 1.00x |"]
    for name, label in (("c-plain.json", "plain loop, torchvision ImageFolder + DataLoader"),
                        ("c-timm.json", "plain loop, timm's loader")):
        ref = _json(work / name)
        if ref is None:
            continue
        epochs = [e["img_per_s"] for e in ref["epochs"]]
        lines.append(_row(f"{label} ({ref.get('workers')} workers, {ref.get('precision')})",
                          _per_epoch(epochs), _ratio(zoo_last, epochs[-1] if epochs else None)))
    if (work / "c-timm.skipped").exists():
        lines.append("| timm's loader | not run: timm is not installed | - |")
    step = [r for r in _jsonl(work / "c-step.jsonl") if r["backend"] == "plain"]
    if step:
        s = step[0]
        lines.append(f"| train step alone (batch already on the device; `zoo bench --mode train`, plain, "
                     f"{s['precision']}) | {_num(s['images_per_s'])} "
                     f"| {_ratio(zoo_last, s['images_per_s'])} |")
    loaders = _loader_columns(_epochs_zoo(work / "c-zoo"))
    if loaders:
        lines += ["", f"zoo's training log, images/s of its parts per epoch: {loaders}."]
    return lines


def report(work: Path, device: str, data: str, folder: str, wall: float | None) -> str:
    from zoo.bench.hardware import device_name

    commands = _commands(work)
    cores = os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    head = [
        f"## GPU check: {device_name(device)} ({device})",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `benchmarks/gpu_check.sh --device "
        f"{device}` from zoo {_commit()}; {cores} CPU cores"
        + (f", load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the end" if load else "")
        + (f"; the whole check took {wall:.0f} s." if wall else "."),
        "",
        "Versions: " + "; ".join(_versions()) + ".",
        "",
    ]
    if device == "cuda":
        head += ["Targets (issue 8): " + "; ".join(f"({k}) {v}" for k, v in TARGETS.items()) + ".", ""]
    body: list[str] = []
    for part, lines in (("a", part_a(work, device)), ("b", part_b(work, data)), ("c", part_c(work, folder))):
        body += [*lines, *(f"\n**{f}**" for f in _failed(commands, part)), ""]
    tail = ["### Commands", "", "```"]
    tail += [f"{c['command']}    # {c['seconds']} s" + ("" if c["code"] == "0" else f", exit {c['code']}")
             for c in commands]
    tail += ["```", ""]
    return "\n".join(head + body + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--data", default="fashion-mnist", help="the data set of part (b)")
    parser.add_argument("--folder", default="", help="how part (c)'s folder was made, in words")
    parser.add_argument("--wall", type=float, default=None, help="seconds the whole check took")
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    text = report(args.work, args.device, args.data, args.folder, args.wall)
    if args.out is not None:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
