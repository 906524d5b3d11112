"""Export and inference speed on this CPU: PyTorch eager vs TorchScript vs ONNX fp32 vs ONNX int8.

Speed: resnet18 and mobilenet_v2 at 224 px (1000 classes, random weights: speed does not depend
on the values), each exported by ``zoo.export`` exactly as a user would (int8 calibrated on
digits images upscaled to 224 px), timed at batch 1 and 8 with ``--threads`` threads in every
runtime: img/s (median over repeats), p50/p95 latency per batch, ratios to eager and to ONNX fp32.
Accuracy: the same architectures trained by ``zoo.train`` on digits (32 px), exported the same
way, top-1 of each runtime on the digits test split.

    .venv/bin/python benchmarks/bench_export.py                # print the markdown tables
    .venv/bin/python benchmarks/bench_export.py --write        # and replace the section in RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from zoo.bench import time_calls

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Export and inference"


def random_run(root: Path, arch: str, size: int) -> Path:
    """A run directory with random weights and an ImageNet-style head (1000 classes, RGB)."""
    from zoo.data import eval_preprocessing
    from zoo.run import atomic_torch_save, atomic_write_json, build_model

    config: dict[str, Any] = {
        "arch": arch, "num_classes": 1000, "in_channels": 3, "model_kwargs": {},
        "classes": [f"class{i}" for i in range(1000)],
        "preprocessing": eval_preprocessing(size, 3, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], 256),
        "data": {"source": "digits"},  # calibration and validation images (upscaled, converted to RGB)
    }
    run_dir = root / arch
    atomic_write_json(run_dir / "config.json", config)
    atomic_torch_save({"model": build_model(config).state_dict()}, run_dir / "best.pt")
    return run_dir


def runners(run_dir: Path, threads: int) -> dict[str, Callable[[np.ndarray], Any]]:
    """name -> run(normalised NCHW batch), each in its own runtime."""
    import torch

    from exporters.predictor import TorchScriptPredictor, build_predictor
    from zoo.run import load_model
    from zoo.runtime.onnx_predictor import OnnxPredictor

    model, config = load_model(run_dir)
    eager = build_predictor(model, config, config["preprocessing"])
    out = run_dir / "export"

    def run_eager(x: np.ndarray) -> Any:
        with torch.inference_mode():
            return eager(torch.from_numpy(x)).numpy()

    return {
        "PyTorch eager": run_eager,
        "TorchScript": TorchScriptPredictor(out / "model.pt", threads=threads).run,
        "ONNX fp32": OnnxPredictor(out / "model.onnx", threads=threads).run,
        "ONNX int8 S8S8": OnnxPredictor(out / "model.int8.onnx", threads=threads).run,
        "ONNX int8 U8S8": OnnxPredictor(out / "model.u8s8.onnx", threads=threads).run,
    }


def export_all(run_dir: Path, **options: Any) -> None:
    """``zoo export --format all --quantize int8 --force`` (S8S8), plus the U8S8 variant beside it."""
    import zoo
    from exporters.quantize import quantize_file
    from exporters.validate import calibration_images
    from zoo.run import load_config

    zoo.export(run_dir, formats="all", quantize="int8", force=True, **options)
    calib = calibration_images(run_dir, load_config(run_dir), None, options.get("calib_images", 128))
    out = run_dir / "export"
    quantize_file(out / "model.onnx", out / "model.u8s8.onnx", calib, per_channel=True, scheme="u8s8")


def time_runner(
    run: Callable[[np.ndarray], Any], batch: np.ndarray, repeats: int, iters: int
) -> dict[str, float]:
    latencies: list[float] = []
    rates: list[float] = []
    for r in range(repeats):
        chunk = time_calls(run, batch, iters, warmup=3 if r == 0 else 0)
        latencies += chunk
        rates.append(len(batch) / statistics.median(chunk))
    return {"img_s": statistics.median(rates), "p50_ms": 1e3 * float(np.percentile(latencies, 50)),
            "p95_ms": 1e3 * float(np.percentile(latencies, 95))}


def speed(arch: str, root: Path, size: int, threads: int, repeats: int, iters: int) -> list[dict[str, Any]]:
    run_dir = random_run(root, arch, size)
    export_all(run_dir, calib_images=64, val_images=8)
    rows = []
    rng = np.random.default_rng(0)
    for name, run in runners(run_dir, threads).items():
        for b in (1, 8):
            x = rng.standard_normal((b, 3, size, size), dtype=np.float32)
            rows.append({"arch": arch, "runtime": name, "batch": b, **time_runner(run, x, repeats, iters)})
            print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def accuracy(arch: str, root: Path, epochs: int, threads: int) -> dict[str, Any]:
    """top-1 on the digits test split of each runtime, for ``arch`` trained on digits."""
    import zoo
    from exporters.validate import split_images
    from zoo.run import load_config
    from zoo.runtime.preprocess import preprocess

    run_dir = root / f"digits-{arch}"
    zoo.train(arch, "digits", out=run_dir, epochs=epochs, image_size=32, augment="none", quiet=True,
              workers=0)
    export_all(run_dir)
    config = load_config(run_dir)
    test = split_images(run_dir, config, ("test",), None)
    labels = np.asarray(test.labels)
    arrays = np.stack([preprocess(im, config["preprocessing"]) for im in test.images])
    top1 = {}
    for name, run in runners(run_dir, threads).items():
        probs = np.concatenate([run(arrays[i : i + 64]) for i in range(0, len(arrays), 64)])
        top1[name] = float((probs.argmax(1) == labels).mean() * 100)
    return {"arch": arch, "epochs": epochs, "images": len(labels), "top1": top1}


def markdown(rows: list[dict[str, Any]], acc: list[dict[str, Any]], args: argparse.Namespace) -> str:
    import onnxruntime
    import torch

    lines = [SECTION, "",
             f"Command: `.venv/bin/python benchmarks/bench_export.py --threads {args.threads} "
             f"--repeats {args.repeats} --iters {args.iters} --epochs {args.epochs}"
             f"{' --write' if args.write else ''}`  ",
             f"Machine: {platform.processor() or platform.machine()}, {args.threads} threads; torch "
             f"{torch.__version__}, onnxruntime {onnxruntime.__version__}; {args.size} px, 1000 classes, "
             "random weights (speed does not depend on them); img/s is the median over repeats, latency "
             "per batch call. Ratios: to eager, and to ONNX fp32 (the int8 speed-up).",
             *([f"**Note:** {args.note}"] if args.note else []), "",
             "| arch | runtime | batch | img/s | p50 ms | p95 ms | x eager | x ONNX fp32 |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    ref = {(r["arch"], r["batch"], r["runtime"]): r["img_s"] for r in rows}
    for r in rows:
        eager = ref[(r["arch"], r["batch"], "PyTorch eager")]
        fp32 = ref[(r["arch"], r["batch"], "ONNX fp32")]  # int8 rows: the int8 speed-up
        lines.append(f"| {r['arch']} | {r['runtime']} | {r['batch']} | {r['img_s']:.1f} | "
                     f"{r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['img_s'] / eager:.2f} | "
                     f"{r['img_s'] / fp32:.2f} |")
    if acc:
        names = list(acc[0]["top1"])
        lines += ["", "Top-1 (%) on the digits test split of the same architectures trained with "
                  "`zoo train ARCH --data digits --epochs E --image-size 32 --augment none` and "
                  "exported by `zoo export "
                  "--format all --quantize int8 --force` (int8 calibrated on 128 training images; "
                  "U8S8 with the same calibration):", "",
                  "| arch | epochs | images | " + " | ".join(names) + " |",
                  "|---|---:|---:|" + "---:|" * len(names)]
        for a in acc:
            cells = " | ".join(f"{a['top1'][n]:.2f}" for n in names)
            lines.append(f"| {a['arch']} | {a['epochs']} | {a['images']} | {cells} |")
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    """Replace (or append) this benchmark's section of RESULTS.md, leaving the others alone."""
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    start = old.find(SECTION)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = old.find("\n## ", start + len(SECTION))
        new = old[:start] + text + ("" if end < 0 else old[end:])
    RESULTS.write_text(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["resnet18", "mobilenet_v2"])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=10, help="digits training for the accuracy table")
    parser.add_argument("--no-accuracy", action="store_true", help="skip training (speed table only)")
    parser.add_argument("--write", action="store_true", help=f"replace '{SECTION}' in {RESULTS.name}")
    parser.add_argument("--note", default="", help="a caveat printed under the command (e.g. a busy machine)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)  # the benchmark's own process: every runtime gets the same cores
    with tempfile.TemporaryDirectory(prefix="zoo-bench-export-") as tmp:
        rows = [r for arch in args.archs for r in speed(arch, Path(tmp), args.size, args.threads,
                                                          args.repeats, args.iters)]
        acc = [] if args.no_accuracy else [accuracy(arch, Path(tmp), args.epochs, args.threads)
                                            for arch in args.archs]
    text = markdown(rows, acc, args)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
