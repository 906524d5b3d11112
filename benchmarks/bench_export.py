"""Export and inference on this CPU: PyTorch eager vs TorchScript vs ONNX fp32 vs ONNX int8.

For each architecture, one model trained by ``zoo train ARCH --data digits --image-size 224``
(the demo data, at 224 px) is exported exactly as a user would (``zoo export --format all
--quantize int8``, both int8 schemes, calibrated on 128 training images). Every runtime is then
timed on real test images at batch 1 and 8 with ``--threads`` threads, in rotating blocks
(``zoo.bench.time_interleaved``), and scored on the whole digits test split.

The roofline columns say how close each runtime is to what this CPU can do: achieved GFLOP/s
(2 x the network's MACs x img/s) against a large fp32 matrix multiply timed in the same process
with the same threads. An fp32 runtime already near that rate cannot be sped up much.

    .venv/bin/python benchmarks/bench_export.py --workdir runs/bench224     # train (or reuse), print
    .venv/bin/python benchmarks/bench_export.py --workdir runs/bench224 --write   # and update RESULTS.md
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from results_md import RESULTS, cpu_description, write_section

from zoo.bench import time_interleaved

SECTION = "## Export and inference"


def trained_run(workdir: Path, arch: str, size: int, epochs: int, threads: int) -> Path:
    """``zoo train ARCH --data digits --image-size SIZE --epochs E``, reused when already there."""
    import zoo

    run_dir = workdir / f"digits{size}-{arch}"
    if not (run_dir / "best.pt").is_file():
        zoo.train(arch, "digits", out=run_dir, epochs=epochs, image_size=size, threads=threads,
                  quiet=True)
    return run_dir


def export_all(run_dir: Path) -> None:
    """``zoo export --format all --quantize int8 --int8-scheme s8s8 --force``, plus U8S8 beside it."""
    import zoo
    from exporters.quantize import quantize_file
    from exporters.validate import calibration_images
    from zoo.run import load_config

    zoo.export(run_dir, formats="all", quantize="int8", int8_scheme="s8s8", force=True)
    out = run_dir / "export"
    calib = calibration_images(run_dir, load_config(run_dir), None, 128)
    quantize_file(out / "model.onnx", out / "model.u8s8.onnx", calib, per_channel=True, scheme="u8s8")


def runners(run_dir: Path, threads: int) -> dict[str, Callable[[np.ndarray], Any]]:
    """name -> run(preprocessed NCHW batch) -> probabilities, each in its own runtime."""
    import torch

    from exporters.predictor import TorchScriptPredictor, build_predictor
    from zoo.run import load_model
    from zoo.runtime.onnx_predictor import OnnxPredictor

    model, config = load_model(run_dir)
    eager = build_predictor(model, config, config["preprocessing"]).eval()
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


def test_arrays(run_dir: Path, config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The run's digits test split, preprocessed by the runtime's own eval pipeline."""
    from exporters.validate import split_images
    from zoo.runtime.preprocess import preprocess

    test = split_images(run_dir, config, ("test",), None, need_labels=True)
    arrays = np.stack([preprocess(im, config["preprocessing"]) for im in test.images])
    return arrays, np.asarray(test.labels)


def sgemm_gflops(threads: int, n: int = 2048, repeats: int = 7) -> float:
    """A practical fp32 reference rate: the best of ``repeats`` n x n matrix multiplies in torch."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.set_num_threads(threads)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def measure(run_dir: Path, threads: int, repeats: int) -> list[dict[str, Any]]:
    """Speed at batch 1 and 8 and top-1 on the test split for every runtime of one run."""
    from zoo.analysis import summarize
    from zoo.run import load_config

    config = load_config(run_dir)
    size = int(config["preprocessing"]["crop"])
    macs = summarize(config["arch"], size, int(config["in_channels"]), int(config["num_classes"])).macs
    arrays, labels = test_arrays(run_dir, config)
    run = runners(run_dir, threads)
    top1 = {}
    for name, fn in run.items():
        probs = np.concatenate([fn(arrays[i : i + 64]) for i in range(0, len(arrays), 64)])
        top1[name] = float((probs.argmax(1) == labels).mean() * 100)
    rows = []
    for batch in (1, 8):
        times = time_interleaved(run, arrays[:batch], repeats, warmup=3, sync=lambda: None)
        for name, seconds in times.items():
            p50 = float(np.percentile(seconds, 50))
            rows.append({"arch": config["arch"], "runtime": name, "batch": batch, "img_s": batch / p50,
                         "p50_ms": 1e3 * p50, "p95_ms": 1e3 * float(np.percentile(seconds, 95)),
                         "gflops": 2 * macs * batch / p50 / 1e9, "top1": top1[name],
                         "test_images": len(labels)})
    return rows


def markdown(rows: list[dict[str, Any]], peak: float, args: argparse.Namespace) -> str:
    import onnxruntime
    import torch

    first = rows[0]
    lines = [SECTION, "",
             f"Command: `.venv/bin/python benchmarks/bench_export.py --workdir DIR --threads {args.threads} "
             f"--repeats {args.repeats} --epochs {args.epochs}{' --write' if args.write else ''}`  ",
             f"Machine: {cpu_description()}, {args.threads} threads; torch "
             f"{torch.__version__}, onnxruntime {onnxruntime.__version__}. Models: `zoo train ARCH --data "
             f"digits --image-size {args.size} --epochs {args.epochs}` (1 channel, 10 classes), exported "
             "with `zoo export RUN --format all --quantize int8 --force` (S8S8, and U8S8 beside it; 128 "
             f"calibration images from the training split). Speed on real test images, {args.repeats} "
             "calls per runtime in rotating blocks: img/s = batch / median latency. Top-1 on all "
             f"{first['test_images']} digits test images. GFLOP/s = 2 x MACs x img/s; the reference is a "
             f"2048 x 2048 fp32 matmul (torch) in the same process and threads: **{peak:.0f} GFLOP/s**.",
             *([f"**Note:** {args.note}"] if args.note else []), "",
             "| arch | runtime | batch | img/s | p50 ms | p95 ms | x eager | x ONNX fp32 | GFLOP/s "
             "| % of sgemm | top-1 % |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    ref = {(r["arch"], r["batch"], r["runtime"]): r["img_s"] for r in rows}
    for r in rows:
        eager = ref[(r["arch"], r["batch"], "PyTorch eager")]
        fp32 = ref[(r["arch"], r["batch"], "ONNX fp32")]
        lines.append(f"| {r['arch']} | {r['runtime']} | {r['batch']} | {r['img_s']:.1f} | "
                     f"{r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['img_s'] / eager:.2f} | "
                     f"{r['img_s'] / fp32:.2f} | {r['gflops']:.0f} | {100 * r['gflops'] / peak:.0f} | "
                     f"{r['top1']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["resnet18", "mobilenet_v2"])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per runtime and batch")
    parser.add_argument("--epochs", type=int, default=6, help="digits training epochs per model")
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the trained runs here")
    parser.add_argument("--write", action="store_true", help=f"replace '{SECTION}' in {RESULTS.name}")
    parser.add_argument("--note", default="", help="a caveat printed under the command (e.g. a busy machine)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)  # the benchmark's own process: every runtime gets the same cores
    with tempfile.TemporaryDirectory(prefix="zoo-bench-export-") as tmp:
        workdir = args.workdir or Path(tmp)
        rows = []
        for arch in args.archs:
            run_dir = trained_run(workdir, arch, args.size, args.epochs, args.threads)
            export_all(run_dir)
            rows += measure(run_dir, args.threads, args.repeats)
        peak = statistics.median(sgemm_gflops(args.threads) for _ in range(3))
    text = markdown(rows, peak, args)
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
