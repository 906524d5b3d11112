"""The exporter contract: what an export format plugin implements and what an export reports.

Exporters (built-in and third-party) import this module; the orchestration that drives them
(``exporters.export.export``, also ``zoo.export(...)``) lives above, beside the built-in
exporters, so this module imports nothing but ``zoo.errors`` (and the plugin host, lazily, to
look exporters up). Nothing here imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import ZooError

if TYPE_CHECKING:
    from torch import nn

    from zoo.runtime.onnx_predictor import RuntimePredictor

QUANTIZE_CHOICES = ("int8",)
INPUT_DTYPES = ("float32", "uint8")  # what an artefact's input is (see ExportOptions.input_dtype)
INPUT_LAYOUTS = ("NHWC", "NCHW")  # of a uint8 input; float32 input is always NCHW
INT8_SCHEMES = ("auto", "s8s8", "u8s8")  # activations/weights signedness (see exporters/quantize.py)
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")  # onnxruntime's int8 activation range methods
CALIBRATION_CHOICES = ("auto", *CALIBRATION_METHODS)  # auto: minmax, then the others while the gate refuses


def resolve_int8_scheme(scheme: str) -> str:
    """``auto``: u8s8 on x86-64, where onnxruntime's VNNI/AVX kernels fuse every QDQ Conv and Add
    only for unsigned activations (resnet18: 3.4x fp32 vs 1.2x for s8s8, benchmarks/RESULTS.md);
    s8s8, onnxruntime's general recommendation, on every other processor."""
    import platform

    if scheme != "auto":
        return scheme
    return "u8s8" if platform.machine().lower() in {"x86_64", "amd64"} else "s8s8"


@dataclass(frozen=True)
class ExportOptions:
    """What an exporter needs besides the model: shapes and format-specific switches."""

    image_size: int  # the crop the artefact is traced at (and validated at)
    batch_size: int = 2  # tracing batch; >= 2 so a dynamic batch axis cannot freeze to 1
    opset: int | None = None
    dynamo: bool = False
    # float32: normalised NCHW, preprocessed outside the graph (zoo.runtime.predict). uint8: frames
    # as a camera or decoder gives them, at the crop size, in ``input_layout``; scaling,
    # normalisation, layout and channel conversion happen inside the graph.
    input_dtype: str = "float32"
    input_layout: str = "NHWC"


class Exporter:
    """Base class (and protocol) of an export format. Subclass it in a plugin and register
    an instance from ``zoo_register_exporters``; ``zoo export --format NAME`` then offers it.

    ``load`` returns the artefact in its own runtime with the same ``run``/``predict`` API as
    ``zoo.runtime.OnnxPredictor``; ``export()`` validates through it. Without ``load`` (None)
    zoo cannot validate the artefact: it is kept with a note saying so (README, "Exporters").

    ``input_dtypes`` says which ``ExportOptions.input_dtype`` values the format can write (others
    are refused before anything is exported). ``runtime`` names what runs the artefact; only
    "onnxruntime" artefacts go into a ``--bundle`` (its predict.py is onnxruntime, numpy, Pillow)."""

    name: str = ""
    suffix: str = ""
    description: str = ""
    input_dtypes: tuple[str, ...] = ("float32",)
    runtime: str = ""

    def export(
        self, model: nn.Module, config: dict[str, Any], out_path: Path, options: ExportOptions
    ) -> Path:
        """Write the predictor for ``model`` (eval mode, PyTorch) to ``out_path``."""
        raise NotImplementedError

    def check(self, path: Path) -> None:
        """Structural check of a written artefact (raise ZooError when it is broken)."""

    def load(self, path: Path, threads: int | None = None) -> RuntimePredictor | None:
        """The artefact in its own runtime, for validation and ``zoo predict``."""
        return None

    def derive(self, onnx_path: Path, out_path: Path) -> Path:
        """Convert an already validated ONNX file (the int8 or fp16 one) into this format.
        Formats that convert from ONNX override it (see ``derives``); the others are written
        from the PyTorch model only."""
        raise NotImplementedError

    @property
    def derives(self) -> bool:
        """Whether this format also converts the int8 and fp16 ONNX files (overrides ``derive``)."""
        return type(self).derive is not Exporter.derive

    def finish(self, kept: list[Path]) -> list[ArtefactReport]:
        """Called once after every artefact of this format was kept (``kept``, in order); may write
        companion files (say, a build configuration) and report them."""
        return []


@dataclass
class ArtefactReport:
    """One file ``export()`` kept (or refused), with how it was validated."""

    format: str
    path: str
    bytes: int = 0
    seconds: float = 0.0
    validation: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    kept: bool = True
    note: str = ""
    runtime: str = ""  # what runs it ("onnxruntime", "torch"); "" for companion files
    precision: str = ""  # fp32, int8, fp16 ("" for companion files)


@dataclass
class ExportReport:
    run_dir: str
    checkpoint: str
    arch: str
    image_size: int
    artefacts: list[ArtefactReport] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ExportRefused(ZooError):
    """An artefact failed its gate; ``report`` still says what was measured."""

    def __init__(self, message: str, report: ExportReport):
        super().__init__(message)
        self.report = report


def exporters() -> dict[str, Exporter]:
    """Registered exporters by name (built-ins and plugins)."""
    from zoo.plugins import get_host

    return {e.name: e for e in get_host().exporters}


def get_exporter(name: str) -> Exporter:
    from zoo.plugins import get_host

    return get_host().exporters.get(name)


def temp_path(final: Path) -> Path:
    """A hidden sibling of ``final`` that keeps its suffix (runtimes look at it)."""
    return final.with_name(f".{final.stem}.{os.getpid()}.tmp{final.suffix}")


def keep_if(tmp: Path, final: Path, step: Callable[[], None]) -> None:
    """Run ``step`` (check, validate) on ``tmp``; rename it to ``final`` only if it passes."""
    try:
        step()
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
