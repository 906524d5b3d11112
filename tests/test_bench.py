"""`zoo bench`: every backend runs the same model and reports sane figures (no timing asserts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from zoo.analysis import summarize
from zoo.bench import BenchOptions, bench, bench_report, parse_backends, plan_backends
from zoo.bench.hardware import ProcessRss, is_out_of_memory, matmul_peak
from zoo.bench.harness import measure_batch
from zoo.bench.runners import Prepared, Runner, plain_runner, torch_runner
from zoo.catalog import get_model
from zoo.cli import app
from zoo.errors import ZooUsageError

runner = CliRunner()
CPU_BACKENDS = ["torch", "plain", "torchvision", "torchscript", "onnxruntime", "onnxruntime-int8"]


def test_all_backends_side_by_side() -> None:
    results, notes = bench(["resnet20"], backends=CPU_BACKENDS, batch_sizes=(1, 3), image_size=16,
                           threads=1, repeats=2, warmup=1)
    assert {r.backend for r in results} == set(CPU_BACKENDS) - {"torchvision"}
    assert any("torchvision has no 'resnet20'" in n for n in notes)
    assert {r.batch for r in results} == {1, 3}
    macs = summarize("resnet20", 16, 3, 1000).macs
    for r in results:
        assert r.p50_ms > 0 and r.images_per_s > 0 and r.image_size == 16
        assert r.tflops == pytest.approx(2 * macs * r.images_per_s / 1e12)  # the documented infer rule
        assert r.peak_mem_mib is None or r.peak_mem_mib > 10  # the whole process's peak RSS
        assert r.p95_ms >= r.p50_ms and r.timer == "wall"
        assert r.input == ("device" if r.backend == "plain" else "host")  # plain: the batch is already there
        if r.precision == "fp32":
            assert r.peak_tflops and r.peak_fraction == pytest.approx(r.tflops / r.peak_tflops)
    assert {r.precision for r in results if r.backend == "onnxruntime-int8"} == {"int8"}
    assert all(r.peak_fraction is None for r in results if r.precision == "int8")  # no int8 peak measured
    first = [r for r in results if r.backend == "torch"]
    assert all(r.speedup == 1.0 for r in first)


def test_cli_json_against_torchvision() -> None:
    result = runner.invoke(app, ["bench", "resnet18", "--backend", "torch,torchvision", "--batch-size", "2",
                                 "--image-size", "32", "--repeats", "2", "--warmup", "0", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["backend"] for r in rows] == ["torch", "torchvision"]
    assert all(r["batch"] == 2 and r["model"] == "resnet18" for r in rows)
    assert all(r["mode"] == "infer" and r["precision"] == "fp32" and r["input"] == "host" for r in rows)


def test_cli_table_says_what_it_measured() -> None:
    result = runner.invoke(app, ["bench", "simple_cnn", "--backend", "plain,torch", "--batch-size", "2",
                                 "--repeats", "2", "--mode", "train", "--input", "device", "--threads", "1"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "train, input on device" in out and "x plain" in out
    assert "6 x MACs x img/s" in out and "measured in this process: fp32 1024x1024 matmul" in out
    assert "peak MiB: process peak RSS" in out


def test_bf16_channels_last_rows_say_so() -> None:
    results, _ = bench(["resnet20"], backends=["torch", "onnxruntime"], batch_sizes=(2,), image_size=16,
                       threads=1, repeats=2, warmup=0, channels_last=True, precision="bf16")
    by = {r.backend: r for r in results}
    assert (by["torch"].precision, by["torch"].channels_last) == ("bf16", True)
    assert (by["onnxruntime"].precision, by["onnxruntime"].channels_last) == ("fp32", False)  # the artefact
    assert by["torch"].peak_tflops != by["onnxruntime"].peak_tflops  # each against its own precision's peak


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return get_model("resnet20", num_classes=10).eval()


@pytest.mark.parametrize("where", ["host", "device"])
def test_infer_runner_computes_the_models_probabilities(where: str) -> None:
    model = _model()
    batches = [np.random.default_rng(s).standard_normal((3, 3, 16, 16), dtype=np.float32) for s in (1, 2)]
    with torch.no_grad():
        expected = [torch.softmax(model(torch.from_numpy(b)), 1).numpy() for b in batches]
    run = torch_runner(model, BenchOptions(input=where, channels_last=True), num_classes=10).run
    for batch, want in zip(batches + batches, expected + expected, strict=True):  # a new batch is copied anew
        got = run(batch)
        got = got if isinstance(got, np.ndarray) else got.numpy()
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_bf16_runner_stays_close_to_fp32() -> None:
    model = _model()
    batch = np.random.default_rng(0).standard_normal((4, 3, 16, 16), dtype=np.float32)
    fp32 = torch_runner(model, BenchOptions(), 10).run(batch)
    bf16 = torch_runner(model, BenchOptions(precision="bf16"), 10).run(batch)
    assert np.abs(fp32 - bf16).max() < 0.05


@pytest.mark.parametrize("make", [torch_runner, plain_runner])
def test_train_mode_takes_optimizer_steps(make) -> None:
    model = _model()
    batch = np.random.default_rng(0).standard_normal((4, 3, 16, 16), dtype=np.float32)
    r = make(model, BenchOptions(mode="train", input="device"), 10)
    before = [p.detach().clone() for p in model.parameters()]
    r.run(batch)
    r.run(batch)
    changed = any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert changed == (make is torch_runner)  # torch steps the model; plain steps a copy of its own
    assert model.training == (make is torch_runner)


def test_default_backends_per_device_and_mode() -> None:
    cpu_defaults = ["torch", "torchscript", "onnxruntime", "onnxruntime-int8"]
    assert plan_backends(None, BenchOptions()) == (cpu_defaults, [])
    assert plan_backends(None, BenchOptions(mode="train")) == (["torch"], [])
    chosen, notes = plan_backends(None, BenchOptions(device="cuda"))  # this onnxruntime is the CPU build
    assert chosen == ["torch"]
    assert len(notes) == 2 and all("onnxruntime-gpu" in n and "skipped" in n for n in notes)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simple_cnn", "--backend", "tensorrt"], "unknown backend 'tensorrt'"),
        (["simple_cnn", "--batch-size", "0"], "batch sizes must be positive"),
        (["simple_cnn", "--batch-size", "x"], "--batch-size takes comma-separated integers"),
        (["resnt18"], "did you mean resnet18"),
        (["resnet50", "--image-size", "8"], "too small for resnet50"),
        (["simple_cnn", "--device", "cuda"], "--device cuda: no CUDA device is available"),
        (["simple_cnn", "--precision", "fp16"], "--precision fp16 needs --device cuda"),
        (["simple_cnn", "--precision", "int4"], "--precision must be one of fp32, bf16, fp16"),
        (["simple_cnn", "--mode", "eval"], "--mode must be one of infer, train"),
        (["simple_cnn", "--input", "gpu"], "--input must be one of host, device"),
        (["simple_cnn", "--mode", "train", "--backend", "torch,onnxruntime"],
         "onnxruntime runs inference only"),
        (["simple_cnn", "--backend", "onnxruntime-cuda"], "has no CUDAExecutionProvider"),
        (["simple_cnn", "--backend", "onnxruntime-tensorrt"], "has no TensorrtExecutionProvider"),
        (["simple_cnn", "--backend", "torchvision"],
         "simple_cnn: no backend left to run (torchvision has no"),
        (["resnet18", "simple_cnn", "--backend", "torchvision"], "simple_cnn: no backend left to run"),
        (["simple_cnn", "--batch-size", "100000000000"], "batch 100000000000 does not fit in CPU memory"),
    ],
)
def test_bad_input_is_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["bench", *args, "--json"])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_out_of_memory_in_a_backend_names_the_batch_that_ran() -> None:
    def allocate(batch: np.ndarray) -> None:  # what a batch too big for the device does: a failed allocation
        torch.empty(10**15)

    prepared = Prepared("toy", 8, 3, 10, 1000, {"torch": Runner(allocate, "fp32", "host")})
    expected = r"batch 64 does not fit in CPU memory for toy .*batch 32 ran.*smaller"
    with pytest.raises(ZooUsageError, match=expected):
        measure_batch(prepared, 64, BenchOptions(), repeats=1, warmup=0, fitted=[8, 32])


def test_oom_detection() -> None:
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(MemoryError())
    with pytest.raises(RuntimeError) as info:
        torch.empty(10**15)
    assert is_out_of_memory(info.value)
    assert not is_out_of_memory(ValueError("shape mismatch"))


def test_process_rss_probe_sees_a_block_and_resets() -> None:
    probe = ProcessRss()
    probe.reset()
    base = probe.peak_bytes()
    big = np.ones(200 * 2**20 // 8)
    peak = probe.peak_bytes()
    del big
    probe.reset()
    assert base is not None and peak is not None and peak - base > 150 * 2**20
    assert probe.peak_bytes() < peak


def test_matmul_peak_is_measured_here() -> None:
    peak = matmul_peak("cpu", "fp32")
    assert peak.precision == "fp32" and peak.n == 1024 and peak.tflops > 0


def test_parse_backends_dedupes() -> None:
    assert parse_backends("torch, onnxruntime,torch") == ["torch", "onnxruntime"]
    with pytest.raises(ZooUsageError):
        parse_backends(",")


def test_bench_report_lists_its_measurements() -> None:
    report = bench_report(["simple_cnn"], ["torch"], (2,), BenchOptions(threads=1), repeats=2, warmup=0)
    assert report.memory and "RSS" in report.memory
    assert list(report.peaks) == ["fp32"] and "matmul" in report.peaks["fp32"]
    assert report.device_name


@pytest.mark.slow
def test_compile_reports_compile_time_apart() -> None:
    results, _ = bench(["simple_cnn"], backends=["plain", "torch"], batch_sizes=(2,), threads=1, repeats=3,
                       warmup=1, compile=True)
    by = {r.backend: r for r in results}
    assert by["torch"].compiled and by["torch"].compile_s and by["torch"].compile_s > 0
    assert not by["plain"].compiled and by["plain"].compile_s is None  # the reference is never compiled


@pytest.mark.slow
def test_compile_without_a_compiler_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "CXX": str(tmp_path / "no-such-c++"),
           "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache")}  # a cached kernel would need no compiler
    code = "import sys; from zoo.cli import main; sys.argv[0] = 'zoo'; main()"
    args = ["bench", "simple_cnn", "--backend", "torch", "--compile", "--batch-size", "2", "--repeats", "1"]
    proc = subprocess.run([sys.executable, "-c", code, *args, "--json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        line for line in proc.stderr.strip().splitlines() if line.startswith("error: --compile:")]
    assert "no-such-c++" in proc.stderr and proc.stdout == ""
