"""The edge bundle against zoo itself: bundle size, the size of a venv that runs it, cold start.

For one trained run (``--run``; by default mobilenet_v2 trained on digits at 224 px, made in
``--workdir`` when missing), ``zoo export RUN --quantize int8 --bundle`` is run as a user would,
then:

- the bundle's size on disk (``du -sk``) and its .tar.gz;
- a fresh venv with only the bundle's requirements.txt (``du -sk``, and how long pip took) against
  the zoo training venv this script runs in (``du -sk sys.prefix``);
- cold start, process start to first prediction (the first line on stdout), for
  ``python predict.py IMAGE --json`` in that venv and ``zoo predict model.int8.onnx IMAGE --json``,
  the two alternating, ``--repeats`` times each after one untimed run of each (page cache).

    .venv/bin/python benchmarks/bench_bundle.py --workdir runs/edge                 # print
    .venv/bin/python benchmarks/bench_bundle.py --workdir runs/edge --write         # and update RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_md import RESULTS, write_section

SECTION = "## Edge bundle"


def du_mb(path: Path) -> float:
    """``du -sk`` in MB (10^6 bytes): disk use, as the issue's targets are stated."""
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0]) * 1024 / 1e6


def first_line_seconds(cmd: list[str], cwd: Path) -> float:
    """Seconds from starting ``cmd`` to its first line on stdout (its first prediction)."""
    start = time.perf_counter()
    with subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        line = proc.stdout.readline() if proc.stdout else ""
        elapsed = time.perf_counter() - start
        proc.communicate()
    if proc.returncode != 0 or not line.startswith("{"):
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode})")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a trained run directory [default: mobilenet_v2 on digits]")
    parser.add_argument("--arch", default="mobilenet_v2", help="what to train when --run is not given")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the trained run here")
    parser.add_argument("--repeats", type=int, default=10, help="cold starts of each command")
    parser.add_argument("--write", action="store_true", help=f"replace '{SECTION}' in {RESULTS.name}")
    parser.add_argument("--note", default="")
    args = parser.parse_args()

    import zoo
    from exporters.validate import split_images
    from zoo.run import load_config

    with tempfile.TemporaryDirectory(prefix="zoo-bench-bundle-") as tmp_name:
        tmp = Path(tmp_name)
        run_dir = args.run or (args.workdir or tmp) / f"digits224-{args.arch}"
        if not (run_dir / "best.pt").is_file():
            zoo.train(args.arch, "digits", out=run_dir, epochs=args.epochs, image_size=224, quiet=True)
        report = zoo.export(run_dir, formats="onnx", quantize="int8", bundle=True, out=tmp / "export")
        gate = next(a.gate for a in report.artefacts if a.gate)
        bundle = tmp / "export" / "bundle"
        image = tmp / "image.png"
        split_images(run_dir, load_config(run_dir), ("test",), 1).images[0].save(image)

        start = time.perf_counter()
        venv = tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", "-r", str(bundle / "requirements.txt")],
                       check=True, capture_output=True)
        pip_seconds = time.perf_counter() - start

        load = os.getloadavg()
        edge_cmd = [str(venv / "bin" / "python"), "predict.py", str(image), "--json"]
        zoo_cmd = [str(Path(sys.prefix) / "bin" / "zoo"), "predict", str(bundle / "model.int8.onnx"),
                   str(image), "--json"]
        times: dict[str, list[float]] = {"predict.py": [], "zoo predict": []}
        for cmd in (edge_cmd, zoo_cmd):
            first_line_seconds(cmd, bundle)  # untimed: fills the page cache
        for _ in range(args.repeats):
            times["predict.py"].append(first_line_seconds(edge_cmd, bundle))
            times["zoo predict"].append(first_line_seconds(zoo_cmd, bundle))
        load_after = os.getloadavg()
        sizes = {
            "bundle": du_mb(bundle), "archive": (tmp / "export" / "bundle.tar.gz").stat().st_size / 1e6,
            "model": (bundle / "model.int8.onnx").stat().st_size / 1e6,
            "venv": du_mb(venv), "zoo_venv": du_mb(Path(sys.prefix)),
        }
        files = ", ".join(sorted(p.name for p in bundle.iterdir()))
        shutil.rmtree(venv)

    med = {k: statistics.median(v) for k, v in times.items()}
    config = load_config(run_dir)
    lines = [
        SECTION, "",
        f"Command: `.venv/bin/python benchmarks/bench_bundle.py{' --run RUN' if args.run else ''} "
        f"--repeats {args.repeats}{' --write' if args.write else ''}`  ",
        f"Model: {config['arch']} at {config['preprocessing']['crop']} px, {config['num_classes']} classes "
        f"(trained on digits), `zoo export RUN --quantize int8 --bundle` (int8 top-1 "
        f"{gate['int8_top1']:.2f}% vs fp32 {gate['fp32_top1']:.2f}%). Load average {load[0]:.2f} before "
        f"the cold starts, {load_after[0]:.2f} after.  ",
        *([f"**Note:** {args.note}"] if args.note else []), "",
        "| what | figure |", "|---|---:|",
        f"| bundle on disk (`du -sk`: {files}) | {sizes['bundle']:.2f} MB |",
        f"| of which model.int8.onnx | {sizes['model']:.2f} MB |",
        f"| bundle.tar.gz | {sizes['archive']:.2f} MB |",
        f"| fresh venv with requirements.txt (onnxruntime, numpy, Pillow) | {sizes['venv']:.0f} MB |",
        f"| zoo's training venv (torch, torchvision, onnx, ...) | {sizes['zoo_venv']:.0f} MB |",
        f"| bundle venv / zoo venv | {100 * sizes['venv'] / sizes['zoo_venv']:.1f}% |",
        f"| venv + pip install, from the local pip cache | {pip_seconds:.0f} s |",
        f"| cold start to first prediction, `python predict.py` (median / min of {args.repeats}) | "
        f"{1e3 * med['predict.py']:.0f} / {1e3 * min(times['predict.py']):.0f} ms |",
        f"| cold start to first prediction, `zoo predict` (median / min) | "
        f"{1e3 * med['zoo predict']:.0f} / {1e3 * min(times['zoo predict']):.0f} ms |",
        f"| `zoo predict` / `predict.py` | {med['zoo predict'] / med['predict.py']:.2f}x |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
