"""One ``Runner`` per backend: what one timed call of that backend does, at the options asked for.

- ``torch``: zoo's network, eager or ``torch.compile``d, at the precision (autocast) and memory
  format asked for; with ``--input host`` the numpy batch is copied in and the probabilities (or
  the loss, in train mode) copied out on every call, with ``--input device`` the batch is on the
  device already. Train mode: forward, cross-entropy, backward, SGD step.
- ``torchvision``: torchvision's same-named network, run exactly like ``torch``.
- ``plain``: the reference a user would write by hand, on a copy of zoo's network: the batch on
  the device, ``inference_mode`` (or the train step) and autocast around the bare forward, no
  softmax, nothing copied out, never compiled.
- ``torchscript``, ``onnxruntime``, ``onnxruntime-int8``: the artefacts ``zoo export`` ships, on
  the CPU.
- ``onnxruntime-cuda``, ``onnxruntime-tensorrt``: the ONNX artefact on onnxruntime's GPU execution
  providers (they need the ``onnxruntime-gpu`` package).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ZooError, ZooUsageError, error_head

TORCH_BACKENDS = ("torch", "torchvision", "plain")
CPU_ARTEFACTS = ("torchscript", "onnxruntime", "onnxruntime-int8")
GPU_PROVIDERS = {"onnxruntime-cuda": "CUDAExecutionProvider",
                 "onnxruntime-tensorrt": "TensorrtExecutionProvider"}
LEARNING_RATE = 1e-4  # train mode: small, so random labels do not drive the weights to inf/NaN


@dataclass(frozen=True)
class BenchOptions:
    """How every backend of one ``zoo bench`` run is set up."""

    device: str = "cpu"
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast for the torch backends)
    channels_last: bool = False
    compile: bool = False
    mode: str = "infer"  # infer | train (forward + backward + optimizer step)
    input: str = "host"  # host: numpy in, results out on each call | device: the batch lives there
    threads: int | None = None


@dataclass
class Runner:
    """One backend, ready: ``run(batch)`` is one timed call on a float32 NCHW numpy batch."""

    run: Callable[[np.ndarray], Any]
    precision: str  # what it actually computes in (fp32 artefacts stay fp32 under --precision bf16)
    input: str
    timer: str = "wall"  # wall: perf_counter around each call | cuda-events: CUDA events around each call
    compiled: bool = False  # its first call at a new batch size compiles (torch.compile, TensorRT)


@dataclass
class Prepared:
    """One model ready to time: its runners, size, cost, and why any backend was skipped."""

    label: str
    image_size: int
    channels: int
    num_classes: int
    macs: int  # per image, forward pass (zoo.analysis)
    runners: dict[str, Runner]
    notes: list[str] = field(default_factory=list)


class _DeviceBatch:
    """The batch (and labels) copied to the device once, on the first call that sees it."""

    def __init__(self, device: str, memory_format: Any, num_classes: int) -> None:
        self.device, self.memory_format, self.num_classes = device, memory_format, num_classes
        self._cached: tuple[np.ndarray, Any, Any] | None = None

    def get(self, batch: np.ndarray) -> tuple[Any, Any]:
        if self._cached is None or self._cached[0] is not batch:
            self._cached = None  # free the old copy before allocating the new one
            x, y = host_tensors(batch, self.num_classes)
            x = x.to(self.device).contiguous(memory_format=self.memory_format)
            self._cached = (batch, x, y.to(self.device))
        return self._cached[1], self._cached[2]


def host_tensors(batch: np.ndarray, num_classes: int) -> tuple[Any, Any]:
    """The batch as a tensor and fixed labels for it (train mode), both on the host."""
    import torch

    return torch.from_numpy(batch), torch.arange(len(batch)) % num_classes


def amp_dtype(precision: str) -> Any:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def _place(model: Any, options: BenchOptions) -> tuple[Any, Any]:
    """The model on the device, in the mode and memory format asked for; and that format."""
    import torch

    memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
    model = model.to(options.device, memory_format=memory_format)
    return model.train(options.mode == "train"), memory_format


def _optimizer_step(model: Any, options: BenchOptions) -> Callable[[Any], None]:
    """backward + SGD step (with a gradient scaler for fp16, as fp16 training needs)."""
    import torch

    opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)
    scaler = torch.amp.GradScaler(options.device, enabled=options.precision == "fp16")

    def step(loss: Any) -> None:
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    return step


def torch_runner(model: Any, options: BenchOptions, num_classes: int) -> Runner:
    """zoo's (or torchvision's) network as ``zoo bench`` runs it."""
    import torch

    device, dtype = options.device, amp_dtype(options.precision)
    model, memory_format = _place(model, options)
    if options.compile:
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # 'no CUDA runtime' on CPUs
    net = torch.compile(model, dynamic=False) if options.compile else model
    on_device = _DeviceBatch(device, memory_format, num_classes)
    host = options.input == "host"

    def inputs(batch: np.ndarray) -> tuple[Any, Any]:
        """(x, labels) on the device: copied in now (host) or resident (device)."""
        if not host:
            return on_device.get(batch)
        x, y = host_tensors(batch, num_classes)
        x = x.to(device).contiguous(memory_format=memory_format)
        return x, (y.to(device) if options.mode == "train" else None)

    if options.mode == "infer":
        def run(batch: np.ndarray) -> Any:
            with torch.inference_mode(), torch.autocast(device, dtype=dtype, enabled=dtype is not None):
                probs = torch.softmax(net(inputs(batch)[0]).float(), dim=1)
            return probs.cpu().numpy() if host else probs
    else:
        step = _optimizer_step(model, options)

        def run(batch: np.ndarray) -> Any:
            x, y = inputs(batch)
            with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
                loss = torch.nn.functional.cross_entropy(net(x), y)
            step(loss)
            return loss.item() if host else loss

    timer = "cuda-events" if device == "cuda" else "wall"
    return Runner(run, options.precision, options.input, timer, compiled=options.compile)


def plain_runner(model: Any, options: BenchOptions, num_classes: int) -> Runner:
    """One iteration of the loop a user writes by hand, on a copy of the same network (same
    weights): the batch already on the device, no softmax, no copies out, never compiled. It is
    timed per call like every other backend, so the ratio compares work, not statistics."""
    import torch
    import torch.nn.functional as F

    device, dtype = options.device, amp_dtype(options.precision)
    model, memory_format = _place(copy.deepcopy(model), options)
    on_device = _DeviceBatch(device, memory_format, num_classes)

    if options.mode == "infer":
        def run(batch: np.ndarray) -> None:
            x, _ = on_device.get(batch)
            with torch.inference_mode(), torch.autocast(device, dtype=dtype, enabled=dtype is not None):
                model(x)
    else:
        step = _optimizer_step(model, options)

        def run(batch: np.ndarray) -> None:
            x, y = on_device.get(batch)
            with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
                loss = F.cross_entropy(model(x), y)
            step(loss)

    return Runner(run, options.precision, "device", "cuda-events" if device == "cuda" else "wall")


def torchvision_model(arch: str, num_classes: int) -> Any | None:
    """torchvision's network of the same name, or None where it has none."""
    import torchvision

    if arch not in torchvision.models.list_models(module=torchvision.models):
        return None
    return torchvision.models.get_model(arch, weights=None, num_classes=num_classes).eval()


def export_onnx(model: Any, config: dict[str, Any], workdir: Path) -> Path:
    """The fp32 ONNX artefact exactly as ``zoo export`` writes it (once per model)."""
    from zoo.export_api import ExportOptions, get_exporter

    fp32 = workdir / "model.onnx"
    if not fp32.exists():
        size = int(config["preprocessing"]["crop"])
        get_exporter("onnx").export(model, config, fp32, ExportOptions(image_size=size, batch_size=2))
    return fp32


def artefact_runner(backend: str, model: Any, config: dict[str, Any], workdir: Path, options: BenchOptions,
                    calib: np.ndarray) -> Runner:
    """A CPU artefact (TorchScript, ONNX fp32 or int8) in its own runtime."""
    from zoo.export_api import ExportOptions, get_exporter

    if backend == "torchscript":
        exporter = get_exporter("torchscript")
        size = int(config["preprocessing"]["crop"])
        options_ = ExportOptions(image_size=size, batch_size=2)
        path = exporter.export(model, config, workdir / "model.pt", options_)
        return Runner(exporter.load(path, threads=options.threads).run, "fp32", options.input)
    fp32 = export_onnx(model, config, workdir)
    if backend == "onnxruntime":
        return Runner(get_exporter("onnx").load(fp32, threads=options.threads).run, "fp32", options.input)
    from exporters.quantize import quantize_file
    from zoo.export_api import resolve_int8_scheme

    int8 = workdir / "model.int8.onnx"
    quantize_file(fp32, int8, list(calib), per_channel=True, scheme=resolve_int8_scheme("auto"))
    return Runner(get_exporter("onnx").load(int8, threads=options.threads).run, "int8", options.input)


class ProviderUnavailable(ZooError):
    """An onnxruntime execution provider that is not installed or failed to load."""


def gpu_provider_problem(backend: str) -> str | None:
    """Why ``backend``'s execution provider cannot be used here, or None when it is installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return "onnxruntime is not installed"
    if GPU_PROVIDERS[backend] not in ort.get_available_providers():
        return (f"onnxruntime {ort.__version__} here has no {GPU_PROVIDERS[backend]} (install "
                "onnxruntime-gpu in its place: pip uninstall onnxruntime && pip install onnxruntime-gpu)")
    return None


def ort_gpu_runner(backend: str, model: Any, config: dict[str, Any], workdir: Path,
                   options: BenchOptions) -> tuple[Runner, list[str]]:
    """The ONNX artefact on onnxruntime's CUDA or TensorRT execution provider. bf16 has no ONNX
    export, so bf16 and fp16 both run half precision: the fp16 artefact on CUDA, TensorRT's fp16
    mode on TensorRT (the row says fp16)."""
    import onnxruntime as ort
    import torch

    notes: list[str] = []
    provider = GPU_PROVIDERS[backend]
    half = options.precision != "fp32"
    if options.precision == "bf16":
        notes.append(f"{backend}: no bf16 in ONNX here; it runs fp16")
    path = export_onnx(model, config, workdir)
    device_id = torch.cuda.current_device()
    providers: list[Any] = [("CUDAExecutionProvider", {"device_id": device_id})]
    if backend == "onnxruntime-cuda" and half:
        from exporters.fp16 import convert_fp16

        half_path = workdir / "model.fp16.onnx"
        if not half_path.exists():
            convert_fp16(path, half_path)
        path = half_path
    elif backend == "onnxruntime-tensorrt":
        cache = workdir / "tensorrt"
        cache.mkdir(exist_ok=True)
        trt = {"device_id": device_id, "trt_fp16_enable": half, "trt_engine_cache_enable": True,
               "trt_engine_cache_path": str(cache)}
        providers.insert(0, (provider, trt))
    session_options = ort.SessionOptions()
    session_options.log_severity_level = 3  # errors only: a provider that fails is reported below
    try:
        session = ort.InferenceSession(str(path), session_options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ProviderUnavailable(f"{backend}: {provider} failed to start: {error_head(exc, 300)}") from None
    if session.get_providers()[0] != provider:
        raise ProviderUnavailable(f"{backend}: {provider} did not load (missing CUDA/cuDNN/TensorRT "
                                  "libraries?); onnxruntime fell back to the CPU")
    in_name, out_name = session.get_inputs()[0].name, session.get_outputs()[0].name
    precision = "fp16" if half else "fp32"
    if options.input == "host":
        return Runner(lambda batch: session.run([out_name], {in_name: batch})[0], precision, "host",
                      compiled=backend == "onnxruntime-tensorrt"), notes

    bound: dict[str, Any] = {}

    def run(batch: np.ndarray) -> Any:
        if bound.get("batch") is not batch:  # bind the batch's device copy once
            x = torch.from_numpy(batch).to(f"cuda:{device_id}").contiguous()
            torch.cuda.synchronize()  # onnxruntime reads it on its own stream
            binding = session.io_binding()
            binding.bind_input(name=in_name, device_type="cuda", device_id=device_id, element_type=np.float32,
                               shape=tuple(x.shape), buffer_ptr=x.data_ptr())
            binding.bind_output(out_name, "cuda", device_id)
            bound.update(batch=batch, x=x, binding=binding)
        session.run_with_iobinding(bound["binding"])  # returns once the outputs are ready

    return Runner(run, precision, "device", compiled=backend == "onnxruntime-tensorrt"), notes


def check_backend_use(backend: str, options: BenchOptions) -> str | None:
    """Why ``backend`` cannot run under ``options`` at all (a usage error if asked for by name)."""
    if backend in GPU_PROVIDERS:
        problem = gpu_provider_problem(backend)
        if problem:
            return f"{backend}: {problem}"
        if options.device != "cuda":
            return f"{backend} runs on the GPU: add --device cuda"
    if options.mode == "train" and backend not in TORCH_BACKENDS:
        return f"{backend} runs inference only; --mode train takes {', '.join(TORCH_BACKENDS)}"
    return None


def skip_reason(backend: str, arch: str, channels: int, options: BenchOptions) -> str | None:
    """Why ``backend`` has nothing to run for this model here (a note, not an error)."""
    if backend in CPU_ARTEFACTS and options.device != "cpu":
        return f"{backend} is benchmarked on the CPU only"
    if backend == "torchvision" and (channels != 3 or torchvision_model(arch, 1) is None):
        return f"torchvision has no '{arch}' (3-channel) to compare with"
    return None


def prepare(label: str, model: Any, config: dict[str, Any], macs: int, backends: list[str],
            options: BenchOptions, workdir: Path) -> Prepared:
    """Build each backend's runner for one model (artefacts are written to ``workdir``)."""
    spec = config["preprocessing"]
    size, channels, num_classes = int(spec["crop"]), int(spec["channels"]), int(config["num_classes"])
    prepared = Prepared(label, size, channels, num_classes, macs, {})
    cpu_model = model.cpu().eval()
    exports = {b for b in backends if b not in TORCH_BACKENDS}
    pristine = copy.deepcopy(cpu_model) if exports and options.device != "cpu" else cpu_model
    calib = np.random.default_rng(0).standard_normal((32, channels, size, size), dtype=np.float32)
    arch = str(config["arch"])
    skipped = {b: why for b in backends if (why := skip_reason(b, arch, channels, options))}
    prepared.notes += [f"{label}: {why}" for why in skipped.values()]
    backends = [b for b in backends if b not in skipped]
    for backend in backends:  # artefacts first: they need the model on the CPU, before it moves
        if backend in CPU_ARTEFACTS:
            prepared.runners[backend] = artefact_runner(backend, pristine, config, workdir, options, calib)
        elif backend in GPU_PROVIDERS:
            try:
                runner, notes = ort_gpu_runner(backend, pristine, config, workdir, options)
            except ProviderUnavailable as exc:
                prepared.notes.append(f"{label}: {exc}")
                continue
            prepared.runners[backend], prepared.notes = runner, prepared.notes + notes
    for backend in backends:
        if backend == "torch":
            prepared.runners[backend] = torch_runner(cpu_model, options, num_classes)
        elif backend == "plain":
            prepared.runners[backend] = plain_runner(cpu_model, options, num_classes)
        elif backend == "torchvision":
            reference = torchvision_model(arch, num_classes)
            prepared.runners[backend] = torch_runner(reference, options, num_classes)
    prepared.runners = {b: prepared.runners[b] for b in backends if b in prepared.runners}  # the order asked
    if not prepared.runners:
        raise ZooUsageError(f"{label}: no backend left to run ({'; '.join(prepared.notes) or 'none given'})")
    return prepared
