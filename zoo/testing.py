"""Conformance checks of the plugin contract: what ``zoo plugins --check`` runs, as a library.

A plugin's own test suite needs one line::

    def test_conforms():
        zoo.testing.assert_plugin_conforms("mynet")

Every registered architecture is checked the same way, built-in or not (see ``CHECKS``). The
``QUICK`` checks run on PyTorch's meta device (shapes only, no weights allocated), so they cost
little even for VGG; the others build a real network at a tiny size (``tiny_setup``).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import ZooError, ZooUsageError, error_head
from zoo.registry import ArchSpec, spec_problems

if TYPE_CHECKING:
    import torch
    from torch import nn

CHECKS: dict[str, str] = {
    "spec": "the spec is valid (names, sizes, builder string) and its builder imports",
    "build": "built with its defaults, it maps (2, in_channels, image_size, image_size) to (2, num_classes)",
    "sizes": "built for 5 classes and 1 or 3 channels, it runs at min_image_size and at image_size",
    "options": "unknown options raise ZooUsageError; imagenet-tagged nets take small_input=True at 32 "
               "and 64 px",
    "counts": "zoo.analysis counts parameters and MACs; the meta-device count equals the real network's",
    "formulas": "every conv and pool output size and conv parameter count matches the course formulas",
    "train_step": "forward and backward on a tiny batch: a finite loss and a finite gradient for every "
                  "parameter",
    "state_dict": "weights saved with torch.save load with torch.load(weights_only=True) into a fresh "
                  "build, which then computes the same outputs",
    "onnx": "exported by the registered onnx exporter, the file runs in onnxruntime and agrees with "
            "PyTorch (probabilities within 1e-4) at batch 1 and 3",
    "torch-free": "importing the plugin's hook module imports no torch, torchvision or onnx",
}
QUICK = ("spec", "build", "sizes", "options", "counts", "formulas", "torch-free")
HEAVY_MODULES = ("torch", "torchvision", "onnx", "onnxruntime")
OTHER_CLASSES = 5
ONNX_TOL = 1e-4


@dataclass(frozen=True)
class CheckResult:
    """One check of one architecture: ``status`` is pass, fail or skip."""

    arch: str
    plugin: str
    check: str
    status: str
    detail: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Subject:
    """One architecture under test, and its real tiny network once a check has built it."""

    spec: ArchSpec
    size: int
    kwargs: dict[str, Any]
    channels: int
    quick: bool = False  # meta device only: no real network is built
    _model: nn.Module | None = field(default=None, repr=False)

    def model(self) -> nn.Module:
        """The tiny real network, built once (seeded, so two builds are comparable)."""
        if self._model is None:
            self._model = self.build(seed=0)
        return self._model

    def build(self, seed: int) -> nn.Module:
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.spec.build(num_classes=OTHER_CLASSES, in_channels=self.channels, **self.kwargs)

    def batch(self, n: int) -> torch.Tensor:
        import torch

        generator = torch.Generator().manual_seed(n)
        return torch.randn(n, self.channels, self.size, self.size, generator=generator)


def tiny_setup(spec: ArchSpec) -> tuple[int, dict[str, Any], int]:
    """(image size, options, channels) of the real network the heavy checks build: 32 px with
    ``small_input`` for imagenet-tagged nets (what ``zoo train`` does on small images), else the
    smallest size from ``min_image_size`` up to 32; the channel count the spec does not default to."""
    channels = 1 if spec.in_channels != 1 else 3
    if "imagenet" in spec.tags:
        return 32, {"small_input": True}, channels
    return max(spec.min_image_size, min(spec.image_size, 32)), {}, channels


def _meta_build(spec: ArchSpec, **kwargs: Any) -> nn.Module:
    import torch

    with torch.device("meta"):
        return spec.build(**kwargs).eval()


def _probe(spec: ArchSpec, size: int, channels: int, classes: int, **kwargs: Any) -> None:
    from zoo.model_check import probe_model

    model = _meta_build(spec, num_classes=classes, in_channels=channels, **kwargs)
    probe_model(model, spec.label(), size, channels, classes)


# ----------------------------------------------------------------------------- the checks


def _check_spec(s: _Subject) -> str:
    problems = spec_problems(s.spec)
    if problems:
        raise AssertionError("; ".join(problems))
    s.spec.builder_function()
    return ""


def _check_build(s: _Subject) -> str:
    spec = s.spec
    _probe(spec, spec.image_size, spec.in_channels, spec.num_classes)
    return f"{spec.in_channels}x{spec.image_size}x{spec.image_size} -> {spec.num_classes}"


def _check_sizes(s: _Subject) -> str:
    spec = s.spec
    for channels in (1, 3):
        for size in sorted({spec.min_image_size, spec.image_size}):
            _probe(spec, size, channels, OTHER_CLASSES)
    return f"1 and 3 channels at {spec.min_image_size} and {spec.image_size} px, {OTHER_CLASSES} classes"


def _check_options(s: _Subject) -> str:
    spec = s.spec
    try:
        _meta_build(spec, zoo_check_unknown_option=1)
    except ZooUsageError:
        pass
    else:
        raise AssertionError("an unknown option was accepted silently (raise zoo.ZooUsageError)")
    if "imagenet" not in spec.tags:
        return "unknown option refused"
    for size in (32, 64):
        _probe(spec, size, s.channels, OTHER_CLASSES, small_input=True)
    return "unknown option refused; small_input=True at 32 and 64 px"


def _check_counts(s: _Subject) -> str:
    from zoo.analysis import summarize

    summary = summarize(s.spec)
    if summary.params <= 0 or summary.macs <= 0:
        raise AssertionError(f"counted {summary.params} parameters and {summary.macs} MACs")
    if s.quick:
        return f"{summary.params:,} parameters, {summary.macs:,} MACs"
    meta = _meta_build(s.spec, num_classes=OTHER_CLASSES, in_channels=s.channels, **s.kwargs)
    on_meta = sum(p.numel() for p in meta.parameters())
    real = sum(p.numel() for p in s.model().parameters())
    if on_meta != real:
        raise AssertionError(f"{on_meta:,} parameters on the meta device but {real:,} when built for real")
    return f"{summary.params:,} parameters, {summary.macs:,} MACs"


def _check_formulas(s: _Subject) -> str:
    from zoo.analysis import FormulaMismatchWarning, describe

    spec, convs = s.spec, 0
    for size in sorted({spec.min_image_size, spec.image_size}):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FormulaMismatchWarning)
            report = describe(spec, image_size=size)
        if report.mismatches:
            raise AssertionError(f"at {size} px: {report.mismatches[0]}")
        convs = max(convs, report.checked_convs)
    return f"{convs} conv layers"


def _check_train_step(s: _Subject) -> str:
    import torch
    import torch.nn.functional as F

    model = s.model().train()
    x, y = s.batch(4), torch.arange(4) % OTHER_CLASSES
    loss = F.cross_entropy(model(x), y)
    if not torch.isfinite(loss):
        raise AssertionError(f"loss is {float(loss)}")
    model.zero_grad(set_to_none=True)
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if p.grad is None]
    if missing:
        raise AssertionError(f"{len(missing)} parameter(s) get no gradient, e.g. {missing[0]}")
    bad = [n for n, p in trainable if not torch.isfinite(p.grad).all()]
    if bad:
        raise AssertionError(f"non-finite gradient in {bad[0]}")
    model.zero_grad(set_to_none=True)
    return f"batch 4 at {s.size} px, loss {float(loss):.3f}, {len(trainable)} parameter tensors"


def _check_state_dict(s: _Subject) -> str:
    import torch

    model, fresh = s.model().eval(), s.build(seed=1).eval()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    x = s.batch(2)
    with torch.no_grad():
        if not torch.equal(model(x), fresh(x)):
            raise AssertionError("a fresh build with the loaded weights computes other outputs")
    return f"{len(model.state_dict())} entries"


def _check_onnx(s: _Subject) -> str:
    import numpy as np
    import torch

    from zoo.data.stats import eval_preprocessing
    from zoo.export_api import ExportOptions
    from zoo.plugins import get_host

    exporter = get_host().exporters.get("onnx")
    model = s.model().eval()
    config = {"arch": s.spec.name, "num_classes": OTHER_CLASSES, "in_channels": s.channels,
              "classes": [f"class{i}" for i in range(OTHER_CLASSES)],
              "preprocessing": eval_preprocessing(s.size, s.channels, [0.5] * s.channels,
                                                  [0.25] * s.channels, s.size)}
    with tempfile.TemporaryDirectory(prefix="zoo-check-") as folder:
        path = Path(folder) / "model.onnx"
        exporter.export(model, config, path, ExportOptions(image_size=s.size, batch_size=2))
        exporter.check(path)
        predictor = exporter.load(path)
        if predictor is None:
            raise AssertionError("the onnx exporter's load() returned None")
        worst = 0.0
        for n in (1, 3):
            x = s.batch(n)
            with torch.no_grad():
                expected = torch.softmax(model(x), dim=1).numpy()
            got = predictor.run(x.numpy())
            if got.shape != expected.shape:
                raise AssertionError(f"onnxruntime output {got.shape} at batch {n}, PyTorch {expected.shape}")
            worst = max(worst, float(np.abs(got - expected).max()))
    if worst > ONNX_TOL:
        raise AssertionError(f"max |dp| {worst:.2e} between onnxruntime and PyTorch (tol {ONNX_TOL:g})")
    return f"max |dp| {worst:.1e} at batch 1 and 3, {s.size} px"


def _check_torch_free(s: _Subject) -> str:
    return _plugin_import(s.spec.plugin)


_RUNNERS: dict[str, Callable[[_Subject], str]] = {
    "spec": _check_spec, "build": _check_build, "sizes": _check_sizes, "options": _check_options,
    "counts": _check_counts, "formulas": _check_formulas, "train_step": _check_train_step,
    "state_dict": _check_state_dict, "onnx": _check_onnx, "torch-free": _check_torch_free,
}
_import_results: dict[str, str | AssertionError] = {}


def _plugin_import(plugin: str) -> str:
    """Import the plugin's hook module in a fresh interpreter; torch there is a failure."""
    from zoo.plugins import get_host

    record = get_host().records.get(plugin)
    module = record.module.split(":")[0] if record is not None else ""
    if not module:
        return "no hook module to import"
    if module not in _import_results:
        _import_results[module] = _run_import(module)
    result = _import_results[module]
    if isinstance(result, AssertionError):
        raise result
    return result


def _run_import(module: str) -> str | AssertionError:
    code = (f"import importlib, sys; importlib.import_module({module!r}); "
            f"print(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # this process's path
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return AssertionError(f"importing {module} failed: {lines[-1] if lines else done.returncode}")
    heavy = done.stdout.split()
    if heavy:
        return AssertionError(f"importing {module} imports {', '.join(heavy)}")
    return f"{module} imports none of {', '.join(HEAVY_MODULES)}"


# ----------------------------------------------------------------------------- running them


def check_architecture(
    name_or_spec: str | ArchSpec, checks: Sequence[str] = tuple(CHECKS)
) -> list[CheckResult]:
    """Run ``checks`` (names from ``CHECKS``) on one architecture; never raises for a failed check."""
    from zoo.catalog import get_spec

    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise ZooUsageError(f"unknown check(s) {', '.join(unknown)}; known: {', '.join(CHECKS)}")
    spec = name_or_spec if isinstance(name_or_spec, ArchSpec) else get_spec(name_or_spec)
    size, kwargs, channels = tiny_setup(spec)
    subject = _Subject(spec, size, kwargs, channels, quick=set(checks) <= set(QUICK))
    results = []
    with _one_thread():
        for check in CHECKS:
            if check in checks:
                results.append(_run(subject, check))
    return results


def _run(subject: _Subject, check: str) -> CheckResult:
    spec = subject.spec
    start = time.perf_counter()
    try:
        with _quiet():
            detail, status = _RUNNERS[check](subject), "pass"
    except Exception as exc:  # a failed check is a result, whatever the plugin raised
        status = "fail"
        detail = error_head(exc) if isinstance(exc, (AssertionError, ZooError)) else (
            f"{type(exc).__name__}: {error_head(exc)}")
    return CheckResult(spec.name, spec.plugin, check, status, " ".join(detail.split())[:300],
                       round(time.perf_counter() - start, 3))


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Tiny batches: one intra-op thread is plenty, and never fights a busy machine's other jobs."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Exporters' and torch's deprecation chatter is not a check result."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def plugin_architectures(plugin: str) -> list[str]:
    """The architectures a loaded plugin registered; a plugin that failed to load is a ZooError."""
    from zoo.plugins import get_host
    from zoo.registry import unknown_message

    records = get_host().records
    if plugin not in records:
        raise ZooUsageError(unknown_message("plugin", plugin, records, otherwise="see 'zoo plugins'"))
    record = records[plugin]
    if record.error:
        raise ZooError(f"plugin '{plugin}' did not load: {record.error}")
    return list(record.provides.get("architectures", []))


def check_plugin(plugin: str, checks: Sequence[str] = tuple(CHECKS)) -> list[CheckResult]:
    """Every check on every architecture the plugin registers."""
    return [r for name in plugin_architectures(plugin) for r in check_architecture(name, checks)]


def failures(results: Iterable[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.status == "fail"]


def _raise_on_failures(results: list[CheckResult], what: str) -> list[CheckResult]:
    failed = failures(results)
    if failed:
        lines = "\n".join(f"  {r.arch} {r.check}: {r.detail}" for r in failed)
        raise AssertionError(f"{what}: {len(failed)} of {len(results)} checks failed\n{lines}")
    return results


def assert_conforms(name: str, checks: Sequence[str] = tuple(CHECKS)) -> list[CheckResult]:
    """Run the checks on one architecture; an AssertionError lists every failure."""
    return _raise_on_failures(check_architecture(name, checks), f"architecture '{name}'")


def assert_plugin_conforms(plugin: str, checks: Sequence[str] = tuple(CHECKS)) -> list[CheckResult]:
    """Run the checks on every architecture of ``plugin`` (which must have loaded cleanly and
    registered at least one); an AssertionError lists every failure."""
    names = plugin_architectures(plugin)
    if not names:
        raise AssertionError(f"plugin '{plugin}' registers no architecture")
    return _raise_on_failures(check_plugin(plugin, checks), f"plugin '{plugin}'")
