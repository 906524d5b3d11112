"""``zoo.export(...)`` / ``zoo export``: drive the registered exporters over one trained run.

An exporter writes one artefact; ``export()`` owns everything around it that must hold for
every format, built-in or third-party: the artefact is written to a temporary name, checked,
run in its own runtime against the PyTorch model on the run's real images, and only then
renamed into place. A failed export therefore never leaves a file at the target path.
This module sits above the contract (``zoo.export_api``) and beside the exporters it uses
(fp16, quantize, validate); torch is imported only inside ``export()``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from zoo.errors import ZooError, ZooUsageError
from zoo.export_api import (
    INT8_SCHEMES,
    QUANTIZE_CHOICES,
    ArtefactReport,
    Exporter,
    ExportOptions,
    ExportRefused,
    ExportReport,
    exporters,
    get_exporter,
    keep_if,
    resolve_int8_scheme,
    temp_path,
)


def _formats(formats: str | Sequence[str], quantize: str | None, half: bool) -> list[str]:
    if formats == "all":
        names = list(exporters())
    else:
        names = [formats] if isinstance(formats, str) else list(formats)
    if not names:
        raise ZooUsageError("no export format given")
    for name in names:
        get_exporter(name)  # unknown names suggest the closest
    if (quantize or half) and "onnx" not in names:
        names.append("onnx")  # int8 and fp16 are derived from the validated fp32 ONNX file
    return list(dict.fromkeys(names))



def export(
    target: str | Path,
    formats: str | Sequence[str] = "onnx",
    out: str | Path | None = None,
    checkpoint: str = "best",
    image_size: int | None = None,
    batch_size: int = 2,
    opset: int | None = None,
    dynamo: bool = False,
    validate: bool = True,
    tol: float = 1e-4,
    val_images: int = 64,
    quantize: str | None = None,
    calib_data: str | Path | None = None,
    calib_images: int = 128,
    per_channel: bool = True,
    int8_scheme: str = "auto",
    half: bool = False,
    max_drop: float = 1.0,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> ExportReport:
    """Export a run directory (or a checkpoint inside one) to validated predictors.

    Writes ``<out or RUN_DIR/export>/model<suffix>`` per format, plus ``model.int8.onnx``
    (``quantize="int8"``) and ``model.fp16.onnx`` (``half=True``). Raises ZooError when an
    artefact fails validation, and ExportRefused when the int8 accuracy gate refuses it."""
    from exporters import validate as val
    from exporters.predictor import input_spec
    from zoo.registry import check_positive
    from zoo.run import load_model, resolve_checkpoint

    say = log or (lambda _msg: None)
    if batch_size < 2:
        raise ZooUsageError(f"--batch-size must be >= 2 so the batch axis stays dynamic, got {batch_size}")
    if image_size is not None:
        check_positive("--image-size", image_size)
    if int8_scheme not in INT8_SCHEMES:
        raise ZooUsageError(f"--int8-scheme must be one of {', '.join(INT8_SCHEMES)}, got '{int8_scheme}'")
    int8_scheme = resolve_int8_scheme(int8_scheme)
    if quantize is not None and quantize not in QUANTIZE_CHOICES:
        raise ZooUsageError(f"--quantize must be one of {', '.join(QUANTIZE_CHOICES)}, got '{quantize}'")
    names = _formats(formats, quantize, half)
    run_dir, ckpt = resolve_checkpoint(target, checkpoint)
    model, config = load_model(ckpt)
    spec = input_spec(config, image_size)
    config = {**config, "preprocessing": spec}
    out_dir = Path(out) if out is not None else run_dir / "export"
    out_dir.mkdir(parents=True, exist_ok=True)
    options = ExportOptions(image_size=int(spec["crop"]), batch_size=batch_size, opset=opset, dynamo=dynamo)
    report = ExportReport(str(run_dir), str(ckpt), config["arch"], options.image_size)
    images = val.split_images(run_dir, config, ("val", "test"), val_images) if validate else None

    for name in names:
        exporter = get_exporter(name)
        final = out_dir / f"model{exporter.suffix}"
        tmp = temp_path(final)
        entry = ArtefactReport(name, str(final))
        start = time.perf_counter()

        def step(
            exporter: Exporter = exporter, tmp: Path = tmp, final: Path = final, entry: ArtefactReport = entry
        ) -> None:
            try:
                exporter.export(model, config, tmp, options)
                exporter.check(tmp)
                if images is not None:
                    entry.validation = val.validate(exporter, tmp, model, spec, images, batch_size, tol=tol)
            except ZooError:
                raise
            except Exception as exc:  # a converter's own exception: one line, not a traceback
                raise ZooError(f"{final}: {exporter.name} export of {config['arch']} failed "
                               f"({type(exc).__name__}: {val.first_line(exc)})") from None
            if entry.validation is not None and not entry.validation["passed"]:
                raise ZooError(f"{final}: validation failed: {val.summary(entry.validation)}; "
                               "nothing written")

        say(f"exporting {name} -> {final}")
        keep_if(tmp, final, step)
        entry.seconds = round(time.perf_counter() - start, 3)
        entry.bytes = final.stat().st_size
        report.artefacts.append(entry)

    fp32_onnx = out_dir / "model.onnx"
    if half:
        from exporters.fp16 import export_fp16

        say(f"converting to fp16 -> {out_dir / 'model.fp16.onnx'}")
        fp16 = export_fp16(fp32_onnx, out_dir / "model.fp16.onnx", model, images, batch_size)
        report.artefacts.append(fp16)
    if quantize == "int8":
        from exporters.quantize import quantize_int8

        say(f"quantising to int8 -> {out_dir / 'model.int8.onnx'}")
        calib = val.calibration_images(run_dir, config, calib_data, calib_images)
        gate_images = val.split_images(run_dir, config, ("test", "val"), None, need_labels=True)
        entry = quantize_int8(fp32_onnx, out_dir / "model.int8.onnx", calib, gate_images, per_channel,
                              batch_size, int8_scheme, max_drop=max_drop, force=force)
        report.artefacts.append(entry)
        if not entry.kept:
            raise ExportRefused(f"{entry.path}: not kept: {entry.note}", report)
    return report
