"""ORT format exporter (``--format ort``): onnxruntime's mobile/minimal-build model format.

The conversion is onnxruntime's own tool (``onnxruntime.tools.convert_onnx_models_to_ort``,
"Fixed" optimisation style, no platform-specific NCHWc layout so the file runs on ARM too);
zoo writes the ONNX model first, exactly as ``--format onnx`` does (float32 or uint8 input), and
converts it. The int8 and fp16 ONNX files are converted too (``model.int8.ort``), and one
``model.required_operators.config`` lists every operator the .ort files use, the input to an
onnxruntime reduced build (``build.sh --minimal_build --include_ops_by_config FILE``).

The metadata (class names, preprocessing, input contract) travels inside the .ort file, so
``zoo predict model.ort`` and the bundle's predict.py run it like an .onnx file. An .ort file is
tied to the onnxruntime that wrote it: an older onnxruntime refuses a newer format version (one
error line naming both).
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import ZooError, error_head
from zoo.export_api import ArtefactReport, Exporter, ExportOptions

if TYPE_CHECKING:
    from torch import nn

    from zoo.runtime.onnx_predictor import RuntimePredictor

CONFIG_NAME = "model.required_operators.config"


@contextlib.contextmanager
def _quiet_converter() -> Any:
    """The converter prints progress on stdout and logs INFO through its own logger."""
    logger = logging.getLogger("ort_format_model.utils")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def convert(onnx_path: Path, out_path: Path) -> Path:
    """``onnx_path`` (.onnx) -> ``out_path`` (.ort) with onnxruntime's converter."""
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    with tempfile.TemporaryDirectory(prefix="zoo-ort-") as work:
        source = Path(work) / "model.onnx"
        shutil.copyfile(onnx_path, source)
        try:
            with _quiet_converter():
                convert_onnx_models_to_ort(source, output_dir=Path(work) / "out",
                                           optimization_styles=[OptimizationStyle.Fixed])
        except Exception as exc:
            raise ZooError(f"{onnx_path}: the ORT converter failed ({error_head(exc, 200)})") from None
        shutil.move(Path(work) / "out" / "model.ort", out_path)
    return out_path


def write_operator_config(ort_files: list[Path], out: Path) -> None:
    """The operators (by domain and opset) the ``ort_files`` need, in onnxruntime's reduced-build format."""
    from onnxruntime.tools.ort_format_model import create_config_from_models

    with _quiet_converter():
        create_config_from_models(ort_files, out, enable_type_reduction=False)
    # the header names each model by the path it was read from: keep only the file names
    lines = out.read_text().splitlines()
    names = {f"# - {p}": f"# - {p.name}" for p in ort_files}
    out.write_text("\n".join(names.get(line, line) for line in lines) + "\n")


class OrtExporter(Exporter):
    name = "ort"
    suffix = ".ort"
    description = "onnxruntime's ORT format (mobile, reduced builds) + operator config, by its own converter"
    input_dtypes = ("float32", "uint8")
    runtime = "onnxruntime"

    def export(
        self, model: nn.Module, config: dict[str, Any], out_path: Path, options: ExportOptions
    ) -> Path:
        from exporters.onnx import OnnxExporter

        with tempfile.TemporaryDirectory(prefix="zoo-ort-") as work:
            onnx_path = OnnxExporter().export(model, config, Path(work) / "model.onnx", options)
            return convert(onnx_path, out_path)

    def derive(self, onnx_path: Path, out_path: Path) -> Path:
        return convert(onnx_path, out_path)

    def check(self, path: Path) -> None:
        self.load(path)

    def load(self, path: Path, threads: int | None = None) -> RuntimePredictor:
        from zoo.runtime.onnx_predictor import OnnxPredictor

        return OnnxPredictor(path, threads=threads)

    def finish(self, kept: list[Path]) -> list[ArtefactReport]:
        if not kept:
            return []
        out = kept[0].with_name(CONFIG_NAME)
        tmp = out.with_name(f".{out.name}.tmp")
        try:
            write_operator_config(kept, tmp)
            tmp.replace(out)
        finally:
            tmp.unlink(missing_ok=True)
        return [ArtefactReport("ort-operators", str(out), bytes=out.stat().st_size,
                               note=f"operators of {', '.join(p.name for p in kept)} for an onnxruntime "
                                    "reduced build (--include_ops_by_config)")]
