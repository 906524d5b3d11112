"""int8 calibration methods side by side (``zoo export --quantize int8 --calibration METHOD``).

For each trained digits run in ``--workdir`` (bench_edge.py's, trained there if missing: ``--epochs``),
the run's fp32 model.onnx is quantised with each method exactly as ``zoo export`` does it
(``exporters.quantize.quantize_file``: U8S8 on x86-64, per-channel, 128 calibration images from the
training split), each in a fresh process, which gives its wall time and peak resident memory. Then
every int8 file and the fp32 one predict the whole digits test split (359 images) on onnxruntime:
top-1 of each and the int8 file's top-1 agreement with fp32.

    .venv/bin/python benchmarks/bench_calibration.py --archs resnet18 mobilenet_v2 --workdir runs/edge
    .venv/bin/python benchmarks/bench_calibration.py --archs simple_cnn --size 32 --epochs 1   # smoke

``--write`` replaces the "int8 calibration methods" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_edge import test_split, trained_export
from results_md import cpu_description, write_section

SECTION = "## int8 calibration methods"


def quantise(run_dir: Path, method: str, out: Path) -> None:
    """In this (child) process: ``zoo export``'s quantisation of the run's fp32 file with ``method``; prints
    this process image's peak RSS (VmHWM) as JSON."""
    from exporters.quantize import quantize_file
    from exporters.validate import calibration_images
    from zoo.bench.hardware import ProcessRss
    from zoo.export_api import resolve_int8_scheme
    from zoo.run import load_config

    config = load_config(run_dir)
    calib = calibration_images(run_dir, config, None, 128)
    quantize_file(run_dir / "export" / "model.onnx", out, calib, per_channel=True,
                  scheme=resolve_int8_scheme("auto"), calibration=method)
    print(json.dumps({"peak_rss_mb": ProcessRss().peak_bytes() / 2**20}))


def quantise_in_child(run_dir: Path, method: str, out: Path) -> dict[str, float]:
    """Seconds and peak RSS (MB) of one quantisation in a fresh process. The child reads its own VmHWM:
    ``ru_maxrss`` (``os.wait4``'s) would be at least this process's size, which Linux carries over the
    fork and the exec."""
    start = time.perf_counter()
    child = subprocess.run([sys.executable, __file__, "--child", str(run_dir), method, str(out)],
                           stdout=subprocess.PIPE, text=True)
    if child.returncode != 0:
        raise SystemExit(f"quantising {run_dir.name} with {method} failed")
    return {"seconds": time.perf_counter() - start, **json.loads(child.stdout.splitlines()[-1])}


def predictions(model: Path, arrays: np.ndarray) -> np.ndarray:
    from zoo.runtime.onnx_predictor import OnnxPredictor

    predictor = OnnxPredictor(model)
    return np.concatenate([predictor.run(arrays[i : i + 32]) for i in range(0, len(arrays), 32)]).argmax(1)


def measure(run_dir: Path, methods: list[str], folder: Path) -> list[dict[str, Any]]:
    from zoo.run import load_config
    from zoo.runtime.onnx_predictor import OnnxPredictor

    config = load_config(run_dir)
    fp32 = run_dir / "export" / "model.onnx"
    images, labels = test_split(run_dir, config)
    arrays = np.stack([OnnxPredictor(fp32).load(image) for image in images])
    reference = predictions(fp32, arrays)
    rows = []
    for method in methods:
        out = folder / f"{run_dir.name}.{method}.int8.onnx"
        cost = quantise_in_child(run_dir, method, out)
        int8 = predictions(out, arrays)
        rows.append({"run": run_dir.name, "arch": config["arch"], "method": method, **cost,
                     "fp32_top1": float((reference == labels).mean() * 100),
                     "int8_top1": float((int8 == labels).mean() * 100),
                     "agreement": float((int8 == reference).mean() * 100), "images": len(labels)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(rows: list[dict[str, Any]], command: str) -> str:
    import onnxruntime

    lines = [SECTION, "",
             f"Machine: {cpu_description()}, {os.cpu_count()} threads; "
             f"onnxruntime {onnxruntime.__version__}. "
             f"Command: `{command}`.", "",
             "| model | method | fp32 top-1 | int8 top-1 | agreement | quantise s | peak RSS MB |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['run']} | {r['method']} | {r['fp32_top1']:.1f}% | {r['int8_top1']:.1f}% | "
                     f"{r['agreement']:.1f}% | {r['seconds']:.0f} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        quantise(Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", required=True, help="architectures (digits runs in --workdir)")
    parser.add_argument("--size", type=int, default=224, help="input size of the runs")
    parser.add_argument("--methods", nargs="+", default=["minmax", "percentile", "entropy"])
    parser.add_argument("--epochs", type=int, default=6, help="training epochs for a run not in --workdir")
    parser.add_argument("--workdir", type=Path, help="bench_edge.py's workdir [default: a temporary one]")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON lines to this file")
    parser.add_argument("--write", action="store_true", help=f"replace '{SECTION}' in RESULTS.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="zoo-calib-") as tmp:
        workdir = args.workdir or Path(tmp)
        rows = []
        for arch in args.archs:
            run_dir = trained_export(workdir, arch, args.size, args.epochs, os.cpu_count() or 1)
            rows += measure(run_dir, args.methods, Path(tmp))
    command = "python benchmarks/bench_calibration.py " + " ".join(sys.argv[1:])
    text = markdown(rows, command)
    print(text)
    if args.json:
        args.json.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
