"""Edge profile: which network for my device? Batch-1 latency, file size, memory, int8 agreement.

For every built-in architecture at its default input size, and at 224 px where that differs, a
model is trained on the digits data set at that size (``zoo train ARCH --data digits
--image-size SIZE --epochs E``, reused from ``--workdir``) and exported as a user would
(``zoo export RUN --quantize int8 --force``: U8S8 on x86-64, calibrated on the training split;
``--force`` so a refused int8 file is still measured). Then, per model:

- file size of model.onnx (fp32) and model.int8.onnx;
- batch-1 latency, p50 and p99, on 1 thread and on all cores, for onnxruntime fp32 and int8:
  the four sessions in one process, timed in rotating blocks (``zoo.bench.time_interleaved``)
  on one real test image;
- peak resident memory (RSS) of a fresh process that loads the model with the torch-free runtime
  and predicts real images one at a time, and how much of it the model adds over the imports;
- top-1 agreement int8 vs fp32 (and each top-1) on the whole digits test split (359 images).

    .venv/bin/python benchmarks/bench_edge.py --workdir runs/edge             # everything (hours)
    .venv/bin/python benchmarks/bench_edge.py --archs resnet18 mobilenet_v2 --workdir runs/edge --write
    .venv/bin/python benchmarks/bench_edge.py --archs resnet101 --epochs 12 --batch-size 32 --workdir DIR
    .venv/bin/python benchmarks/bench_edge.py --archs simple_cnn --epochs 1 --repeats 20   # a smoke run

``--write`` replaces the "Edge profile" section of RESULTS.md. Run it on a quiet machine. The runs
are named as bench_export.py names its own (``digits224-resnet18``), so one ``--workdir`` serves
both. The deep networks at 224 px need a smaller ``--batch-size`` on a 24 GB machine (32, or 16 for
resnet56 and resnet152): at the family's batch of 64, zoo train's memory check refuses them.
Fewer epochs leave some networks untrained (top-1 near 10%), and an untrained model's int8
agreement means nothing: such rows are marked.

``--epochs 0`` trains nothing: the initialised network is exported as ``zoo bench`` exports it (fp32,
then int8 calibrated on 128 digits training images). File size, latency and memory do not depend on the
weights, so those columns stand; the agreement column is marked. It is how the networks too slow to
train on this machine (the VGGs, resnet101/152) get their rows.
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
from results_md import RESULTS, cpu_description, write_section

SECTION = "## Edge profile"
TARGETS = {"resnet18": 2.5, "mobilenet_v2": 1.5}  # int8 1-thread speed-up wanted (issue 11), agreement >= 99%

# A fresh process: import the torch-free runtime, load the model, predict real images at batch 1.
# VmHWM (peak RSS of this process image) rather than ru_maxrss, which Linux carries over an exec
# from the parent (the benchmark itself, after training, is gigabytes).
RSS_CHILD = r"""
import json, re, sys
def peak_mb():
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) / 1024
from zoo.runtime.predict import OnnxPredictor
before = peak_mb()
predictor = OnnxPredictor(sys.argv[1])
for path in sys.argv[2:]:
    predictor.predict([path], batch_size=1)
print(json.dumps({"imports_mb": before, "peak_mb": peak_mb(), "torch": "torch" in sys.modules}))
"""


def builtin_targets(archs: list[str] | None, sizes: str = "both") -> list[tuple[str, int]]:
    """(arch, size) pairs: each built-in architecture at its default size (``sizes`` default), at 224
    px (``224``), or both (one row where the default is 224)."""
    import zoo

    names = archs or [n for n in zoo.list_models() if zoo.get_spec(n).plugin.startswith("zoo.")]
    pairs = []
    for name in names:
        size = zoo.get_spec(name).image_size
        pairs += [(name, size)] if sizes != "224" else []
        pairs += [(name, 224)] if sizes == "224" or (size != 224 and sizes == "both") else []
    return pairs


def trained_export(
    workdir: Path, arch: str, size: int, epochs: int, threads: int, batch_size: int | None = None
) -> Path:
    """A digits run of ``arch`` at ``size`` with model.onnx and model.int8.onnx (reused when there).
    ``batch_size`` None is the family's default; a smaller one is how the deep networks at 224 px fit
    in memory (zoo train refuses a batch its memory estimate says will not fit)."""
    import zoo

    run_dir = workdir / f"digits{size}-{arch}"
    if not (run_dir / "best.pt").is_file():
        zoo.train(arch, "digits", out=run_dir, epochs=epochs, image_size=size, threads=threads,
                  batch_size=batch_size, quiet=True)
    if not (run_dir / "export" / "model.int8.onnx").is_file():
        zoo.export(run_dir, formats="onnx", quantize="int8", force=True, val_images=32)
    return run_dir


def untrained_export(workdir: Path, arch: str, size: int) -> Path:
    """The initialised ``arch`` for digits at ``size`` (no training), written as export/model.onnx and
    model.int8.onnx with the same exporter and quantiser as ``zoo export`` (reused when there)."""
    from exporters.quantize import quantize_file
    from exporters.validate import calibration_images
    from zoo.bench.runners import export_onnx
    from zoo.catalog import get_model
    from zoo.export_api import resolve_int8_scheme
    from zoo.run import atomic_write_json

    run_dir = workdir / f"untrained{size}-{arch}"
    export = run_dir / "export"
    if (export / "model.int8.onnx").is_file():
        return run_dir
    export.mkdir(parents=True, exist_ok=True)
    config = {"arch": arch, "num_classes": 10, "in_channels": 1, "classes": [str(i) for i in range(10)],
              "data": {"source": "digits"}, "train": {"val_split": 0.2, "seed": 0, "epochs": 0},
              "preprocessing": {"resize": size, "crop": size, "channels": 1, "mean": [0.5], "std": [0.5]}}
    model = get_model(arch, num_classes=10, in_channels=1).eval()
    fp32 = export_onnx(model, config, export)
    calib = calibration_images(run_dir, config, None, 128)
    scheme = resolve_int8_scheme("auto")
    quantize_file(fp32, export / "model.int8.onnx", calib, per_channel=True, scheme=scheme)
    atomic_write_json(run_dir / "config.json", config)
    return run_dir


def test_split(run_dir: Path, config: dict[str, Any]) -> tuple[list[Any], np.ndarray]:
    from exporters.validate import split_images

    test = split_images(run_dir, config, ("test",), None, need_labels=True)
    return test.images, np.asarray(test.labels)


def latencies(fp32: Path, int8: Path, image: Any, repeats: int, cores: int) -> dict[str, dict[str, float]]:
    """p50/p99 ms at batch 1 for fp32 and int8 on 1 thread and on ``cores`` threads."""
    from zoo.bench import time_interleaved
    from zoo.runtime.predict import OnnxPredictor

    runners = {}
    for precision, path in (("fp32", fp32), ("int8", int8)):
        for threads in (1, cores):
            predictor = OnnxPredictor(path, threads=threads)
            runners[f"{precision}/{threads}"] = (predictor.run, predictor.load(image)[None])
    batch = next(iter(runners.values()))[1]  # fp32 and int8 take the same input
    times = time_interleaved({k: fn for k, (fn, _) in runners.items()}, batch, repeats, warmup=5,
                             sync=lambda: None)
    return {k: {"p50_ms": 1e3 * float(np.percentile(v, 50)), "p99_ms": 1e3 * float(np.percentile(v, 99))}
            for k, v in times.items()}


def peak_rss(model: Path, images: list[Any], folder: Path) -> dict[str, Any]:
    """Peak RSS (MB) of a fresh torch-free process predicting ``images`` one by one with ``model``."""
    paths = []
    for i, image in enumerate(images):
        paths.append(folder / f"{i}.png")
        image.save(paths[-1])
    out = subprocess.run([sys.executable, "-c", RSS_CHILD, str(model), *map(str, paths)],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert not result["torch"], "the runtime imported torch"
    return result


def measure(run_dir: Path, repeats: int, cores: int, rss_images: int) -> dict[str, Any]:
    from zoo.run import load_config
    from zoo.runtime.predict import OnnxPredictor

    config = load_config(run_dir)
    fp32, int8 = run_dir / "export" / "model.onnx", run_dir / "export" / "model.int8.onnx"
    images, labels = test_split(run_dir, config)
    p32 = OnnxPredictor(fp32).predict(images, batch_size=32)
    p8 = OnnxPredictor(int8).predict(images, batch_size=32)
    row: dict[str, Any] = {
        "arch": config["arch"], "size": int(config["preprocessing"]["crop"]),
        "fp32_mb": fp32.stat().st_size / 1e6, "int8_mb": int8.stat().st_size / 1e6,
        "agreement": float((p32.argmax(1) == p8.argmax(1)).mean() * 100),
        "fp32_top1": float((p32.argmax(1) == labels).mean() * 100),
        "int8_top1": float((p8.argmax(1) == labels).mean() * 100), "test_images": len(labels),
        "epochs": int(config["train"]["epochs"]), "batch_size": config["train"].get("batch_size"),
        "cpu": cpu_description(),
    }
    row["latency"] = latencies(fp32, int8, images[0], repeats, cores)
    with tempfile.TemporaryDirectory(prefix="zoo-edge-rss-") as tmp:
        picked = images[:: max(1, len(images) // rss_images)][:rss_images]
        row["rss_fp32"] = peak_rss(fp32, picked, Path(tmp))
        row["rss_int8"] = peak_rss(int8, picked, Path(tmp))
    return row


def trained(row: dict[str, Any]) -> bool:
    """False for an ``--epochs 0`` row: the initialised network."""
    return row["epochs"] > 0


def learned(row: dict[str, Any]) -> bool:
    """Trained to an fp32 top-1 of at least 50%: below it a model did not learn, and its int8
    agreement says little."""
    return trained(row) and row["fp32_top1"] >= 50


def markdown(
    rows: list[dict[str, Any]], args: argparse.Namespace, cores: int, load: str, hours: float
) -> str:
    import onnxruntime

    lines = [
        SECTION, "",
        f"Command: `.venv/bin/python benchmarks/bench_edge.py --workdir DIR --epochs {args.epochs} "
        f"--repeats {args.repeats}{f' --batch-size {args.batch_size}' if args.batch_size else ''}"
        f"{' --archs ' + ' '.join(args.archs) if args.archs else ''}"
        f"{' --sizes ' + args.sizes if args.sizes != 'both' else ''}"
        f"{' --write' if args.write else ''}`  ",
        f"Machine: {cpu_description()}, {cores} cores, onnxruntime {onnxruntime.__version__}; load "
        f"average before the run {load}; {hours:.1f} h in all. Models trained on digits (1 channel, 10 "
        f"classes) at the size shown for {args.epochs} epoch(s), exported with `zoo export RUN "
        "--quantize int8 --force` (U8S8 on x86-64). Latency: batch 1, one real test image, "
        f"{args.repeats} calls per session in rotating blocks, 1 thread (1T) and all cores. Peak RSS: "
        "a fresh process (python, numpy, Pillow, onnxruntime, the model) predicting "
        f"{args.rss_images} images one at a time; \"+model\" is what the model adds over the imports. "
        "Agreement: int8 top-1 = fp32 top-1, on the 359 test images.  ",
        *([f"**Note:** {args.note}"] if args.note else []), "",
        "| arch | px | fp32 MB | int8 MB | fp32 1T p50/p99 ms | int8 1T p50/p99 ms | int8 x 1T "
        f"| fp32 {cores}T p50/p99 ms | int8 {cores}T p50/p99 ms | RSS fp32 / int8 MB (+model) "
        "| agree % | top-1 fp32 / int8 % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lat = r["latency"]

        def cell(key: str, lat: dict[str, Any] = lat) -> str:
            return f"{lat[key]['p50_ms']:.2f} / {lat[key]['p99_ms']:.2f}"

        speedup = lat["fp32/1"]["p50_ms"] / lat["int8/1"]["p50_ms"]
        rss = (f"{r['rss_fp32']['peak_mb']:.0f} / {r['rss_int8']['peak_mb']:.0f} "
               f"(+{r['rss_fp32']['peak_mb'] - r['rss_fp32']['imports_mb']:.0f} / "
               f"+{r['rss_int8']['peak_mb'] - r['rss_int8']['imports_mb']:.0f})")
        agree = f"{r['agreement']:.1f}{'' if learned(r) else ' *'}"
        top1 = f"{r['fp32_top1']:.1f} / {r['int8_top1']:.1f}"
        if not trained(r):  # an initialised network's figures would only mislead
            agree, top1 = "untrained", "-"
        lines.append(f"| {r['arch']} | {r['size']} | {r['fp32_mb']:.2f} | {r['int8_mb']:.2f} | "
                     f"{cell('fp32/1')} | {cell('int8/1')} | {speedup:.2f} | {cell(f'fp32/{cores}')} | "
                     f"{cell(f'int8/{cores}')} | {rss} | {agree} | {top1} |")
    if any(trained(r) and not learned(r) for r in rows):
        lines += ["", "\\* fp32 top-1 below 50%: the model did not learn in these epochs, so its int8 "
                      "agreement says little (train it longer: --epochs)."]
    if not all(trained(r) for r in rows):
        lines += ["", "untrained: `--epochs 0`, the initialised network; its size, latency and memory "
                      "stand (they do not depend on the weights); its agreement is not measured."]
    lines += ["", *target_lines(rows)]
    return "\n".join(lines) + "\n"


def target_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Issue 11's targets, checked on the rows measured (at 224 px)."""
    out = []
    for r in rows:
        if r["arch"] in TARGETS and r["size"] == 224:
            lat = r["latency"]
            speedup = lat["fp32/1"]["p50_ms"] / lat["int8/1"]["p50_ms"]
            ok = speedup >= TARGETS[r["arch"]] and r["agreement"] >= 99
            out.append(f"- {r['arch']}: int8 is {speedup:.2f}x faster than fp32 on 1 thread (target "
                       f"{TARGETS[r['arch']]}x), agreement {r['agreement']:.1f}% (target 99%): "
                       f"{'met' if ok else 'NOT met'}.")
    return out


def device_table(rows: list[dict[str, Any]]) -> str:
    """The condensed README table at each architecture's default size, fastest first: both precisions'
    1-thread latency (int8 is not faster for every network), sizes, memory, and the agreement where the
    model learned (an untrained model's agreement means nothing)."""
    import zoo

    lines = ["| network | px | MB fp32 / int8 | 1-thread p50 ms fp32 / int8 | peak RSS MB fp32 / int8 "
             "| int8 = fp32 top-1 |",
             "|---|---:|---:|---:|---:|---:|"]
    default = [r for r in rows if r["size"] == zoo.get_spec(r["arch"]).image_size]

    def best(r: dict[str, Any]) -> float:
        return min(r["latency"]["fp32/1"]["p50_ms"], r["latency"]["int8/1"]["p50_ms"])

    for r in sorted(default, key=best):
        lat = r["latency"]
        agree = f"{r['agreement']:.1f}%" if learned(r) else "(not trained)" if trained(r) else "untrained"
        lines.append(f"| {r['arch']} | {r['size']} | {r['fp32_mb']:.1f} / {r['int8_mb']:.1f} | "
                     f"{lat['fp32/1']['p50_ms']:.2f} / {lat['int8/1']['p50_ms']:.2f} | "
                     f"{r['rss_fp32']['peak_mb']:.0f} / {r['rss_int8']['peak_mb']:.0f} | {agree} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", help="architectures [default: every built-in one]")
    parser.add_argument("--sizes", choices=("both", "default", "224"), default="both",
                        help="each architecture's default size, 224 px, or both")
    parser.add_argument("--epochs", type=int, default=6,
                        help="digits training epochs per model (resnet18, mobilenet_v2: ~96%% at 224 px); "
                             "0: none, the initialised network (its agreement is then marked)")
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per session (p99 needs many)")
    parser.add_argument("--rss-images", type=int, default=16, help="images the memory probe predicts")
    parser.add_argument("--batch-size", type=int,
                        help="training batch size [default: the family's]; smaller for the deep networks "
                             "at 224 px (see the docstring)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for training")
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the trained runs and exports here")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON lines to this file")
    parser.add_argument("--write", action="store_true", help=f"replace '{SECTION}' in {RESULTS.name}")
    parser.add_argument("--note", default="", help="a caveat printed under the command (e.g. a busy machine)")
    args = parser.parse_args()

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    cores = os.cpu_count() or 1
    start = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="zoo-bench-edge-") as tmp:
        workdir = args.workdir or Path(tmp)
        for arch, size in builtin_targets(args.archs, args.sizes):
            t0 = time.perf_counter()
            run_dir = (trained_export(workdir, arch, size, args.epochs, args.threads, args.batch_size)
                       if args.epochs else untrained_export(workdir, arch, size))
            rows.append(measure(run_dir, args.repeats, cores, args.rss_images))
            print(f"{arch} at {size} px: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
            if args.json:
                with args.json.open("a") as f:
                    f.write(json.dumps(rows[-1]) + "\n")
    text = markdown(rows, args, cores, load, (time.perf_counter() - start) / 3600)
    print(text)
    print("Which network for my device (default size, fastest first):\n")
    print(device_table(rows))
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
