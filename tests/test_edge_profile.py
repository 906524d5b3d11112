"""benchmarks/bench_edge.py, the edge profile of RESULTS.md and the README: its rows are real
measurements of real exports, and an untrained row (``--epochs 0``) never passes for a trained one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench_simple_cnn(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    """bench_edge on simple_cnn at its default size (few repeats, a small memory probe): the process
    and its one JSON row."""
    rows = tmp_path / "rows.jsonl"
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_edge.py"), "--archs", "simple_cnn", "--sizes",
         "default", "--repeats", "5", "--rss-images", "2", "--workdir", str(tmp_path), "--json", str(rows),
         *args],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    (row,) = [json.loads(line) for line in rows.read_text().splitlines()]
    return out, row


def test_untrained_row_is_measured_and_marked(tmp_path: Path) -> None:
    """``--epochs 0``: the initialised simple_cnn is exported fp32 and int8 (calibrated on digits), timed
    and its memory probed; its agreement is shown as untrained in both tables, never as a figure."""
    out, row = bench_simple_cnn(tmp_path, "--epochs", "0")
    assert (row["arch"], row["size"], row["epochs"], row["test_images"]) == ("simple_cnn", 32, 0, 359)
    export = tmp_path / "untrained32-simple_cnn" / "export"
    assert row["fp32_mb"] == (export / "model.onnx").stat().st_size / 1e6
    assert row["int8_mb"] < row["fp32_mb"] / 3  # int8 weights
    cores = os.cpu_count() or 1
    assert set(row["latency"]) == {"fp32/1", "int8/1", f"fp32/{cores}", f"int8/{cores}"}
    assert all(0 < v["p50_ms"] <= v["p99_ms"] for v in row["latency"].values())
    assert row["rss_int8"]["peak_mb"] > row["rss_int8"]["imports_mb"] > 0
    assert row["cpu"] and f"Machine: {row['cpu']}," in out.stdout  # int8 figures depend on the CPU
    lines = out.stdout.splitlines()
    profile_row, device_row = [line for line in lines if line.startswith("| simple_cnn | 32 |")]
    assert profile_row.endswith("| untrained | - |")  # no agreement or top-1 figure: they would mislead
    assert device_row.endswith("| untrained |")


def test_trained_row_uses_the_batch_size_given(tmp_path: Path) -> None:
    """``--batch-size``: the run bench_edge trains (for the networks whose default batch does not fit in
    memory at 224 px) is trained at that batch, and the row says so beside its epochs."""
    out, row = bench_simple_cnn(tmp_path, "--epochs", "1", "--batch-size", "16", "--threads", "1")
    config = json.loads((tmp_path / "digits32-simple_cnn" / "config.json").read_text())
    assert config["train"]["batch_size"] == 16
    assert (row["epochs"], row["batch_size"]) == (1, 16)
    assert "--batch-size 16" in out.stdout  # the command printed with the table reproduces the row


def test_cpu_description_names_the_int8_instructions(tmp_path: Path) -> None:
    """The machine line of a section names the CPU and whether it has VNNI: int8 latency, and whether
    8-bit weights saturate, depend on it."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from results_md import cpu_description

    cpuinfo = tmp_path / "cpuinfo"
    for flags, isa in [("fpu avx2 avx512f avx512_vnni", "AVX-512 VNNI"), ("avx2 avx_vnni", "AVX-VNNI"),
                       ("sse4_2 avx2 fma", "AVX2, no VNNI")]:
        cpuinfo.write_text(f"processor\t: 0\nmodel name\t: AMD EPYC 9B14\nflags\t\t: {flags}\n")
        assert cpu_description(cpuinfo) == f"AMD EPYC 9B14 ({isa})"
    cpuinfo.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp\n")  # aarch64: no model name
    assert cpu_description(cpuinfo)
    assert cpu_description(tmp_path / "missing")  # not Linux: platform's name


def test_calibration_benchmark_compares_methods_on_one_run(tmp_path: Path) -> None:
    """benchmarks/bench_calibration.py: each method quantises the same trained fp32 file in its own process
    and is scored against it on the whole test split."""
    rows = tmp_path / "rows.jsonl"
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_calibration.py"), "--archs", "simple_cnn", "--size",
         "32", "--epochs", "2", "--methods", "minmax", "percentile", "--workdir", str(tmp_path),
         "--json", str(rows)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    minmax, percentile = [json.loads(line) for line in rows.read_text().splitlines()]
    assert (minmax["method"], percentile["method"]) == ("minmax", "percentile")
    assert minmax["fp32_top1"] == percentile["fp32_top1"] and minmax["images"] == 359
    assert all(r["agreement"] > 80 and r["peak_rss_mb"] > 0 and r["seconds"] > 0
               for r in (minmax, percentile))
    assert "| digits32-simple_cnn | percentile |" in out.stdout


def test_calibration_memory_is_the_quantising_process_own(tmp_path: Path) -> None:
    """A quantisation's peak memory is that process image's own (VmHWM), not the benchmark's: Linux carries
    ru_maxrss over fork and exec, so a parent holding 3 GB more must not make the child's figure 3 GB more."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_calibration import quantise_in_child

    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_calibration.py"), "--archs", "simple_cnn", "--size",
         "32", "--epochs", "1", "--methods", "minmax", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=True)
    run_dir = tmp_path / "digits32-simple_cnn"
    alone = quantise_in_child(run_dir, "minmax", tmp_path / "alone.onnx")["peak_rss_mb"]
    ballast = np.ones(3 * 2**30 // 8)  # 3 GB, every page touched
    beside = quantise_in_child(run_dir, "minmax", tmp_path / "beside.onnx")["peak_rss_mb"]
    del ballast
    assert 0 < alone < 2048 and abs(beside - alone) < 512, (alone, beside)
