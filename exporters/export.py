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
from typing import TYPE_CHECKING

from zoo.errors import ZooError, ZooUsageError
from zoo.export_api import (
    CALIBRATION_CHOICES,
    INPUT_DTYPES,
    INPUT_LAYOUTS,
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

if TYPE_CHECKING:
    from exporters.validate import LabelledImages


def _formats(
    formats: str | Sequence[str], quantize: str | None, half: bool, input_dtype: str, bundle: bool
) -> list[str]:
    """The exporters to run, checked before anything is written. ``all`` means every registered
    format that can do what was asked (``--input uint8``, ``--bundle``); a format named
    explicitly that cannot is an error."""
    if formats == "all":
        names = [n for n, e in exporters().items() if input_dtype in e.input_dtypes]
    else:
        names = [formats] if isinstance(formats, str) else list(formats)
    if not names:
        raise ZooUsageError("no export format given")
    able = ", ".join(n for n, e in exporters().items() if input_dtype in e.input_dtypes)
    for name in names:
        exporter = get_exporter(name)  # unknown names suggest the closest
        if input_dtype not in exporter.input_dtypes:
            takes = " or ".join(exporter.input_dtypes)
            raise ZooUsageError(f"--input {input_dtype}: the {name} exporter writes {takes} input only; "
                                f"formats that take it: {able}")
    if bundle:
        others = [n for n in names if get_exporter(n).runtime != "onnxruntime"]
        if formats != "all" and others:
            runtime = get_exporter(others[0]).runtime
            raise ZooUsageError(
                f"--bundle: the {others[0]} format {f'runs on {runtime}' if runtime else 'has no runtime'}, "
                "and the bundle's predict.py has onnxruntime, numpy and Pillow only; bundle formats: "
                + ", ".join(n for n, e in exporters().items() if e.runtime == "onnxruntime"))
    if (quantize or half) and "onnx" not in names:
        names.append("onnx")  # int8 and fp16 are derived from the validated fp32 ONNX file
    # onnx first: formats that convert ONNX files (ort) then convert it instead of exporting again
    return sorted(dict.fromkeys(names), key=lambda n: n != "onnx")


def _input_options(input_dtype: str, input_layout: str | None) -> tuple[str, str]:
    if input_dtype not in INPUT_DTYPES:
        raise ZooUsageError(f"--input must be one of {', '.join(INPUT_DTYPES)}, got '{input_dtype}'")
    if input_layout is None:
        return input_dtype, "NHWC"
    if input_dtype != "uint8":
        raise ZooUsageError("--layout applies to --input uint8 (float32 input is always NCHW)")
    if input_layout.upper() not in INPUT_LAYOUTS:
        raise ZooUsageError(f"--layout must be one of {', '.join(INPUT_LAYOUTS)}, got '{input_layout}'")
    return input_dtype, input_layout.upper()


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
    calibration: str = "auto",
    half: bool = False,
    max_drop: float = 1.0,
    force: bool = False,
    input_dtype: str = "float32",
    input_layout: str | None = None,
    bundle: bool = False,
    log: Callable[[str], None] | None = None,
) -> ExportReport:
    """Export a run directory (or a checkpoint inside one) to validated predictors.

    Writes ``<out or RUN_DIR/export>/model<suffix>`` per format, plus ``model.int8.onnx``
    (``quantize="int8"``) and ``model.fp16.onnx`` (``half=True``), each also converted by the
    formats that convert ONNX files (``model.int8.ort``). ``input_dtype="uint8"`` makes every
    ONNX-family artefact take uint8 frames (``input_layout`` NHWC or NCHW); ``bundle`` adds
    ``bundle/`` and ``bundle.tar.gz`` (exporters/bundle.py). Raises ZooError when an artefact
    fails validation, and ExportRefused when the int8 accuracy gate refuses it."""
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
    if calibration not in CALIBRATION_CHOICES:
        raise ZooUsageError(f"--calibration must be one of {', '.join(CALIBRATION_CHOICES)}, "
                            f"got '{calibration}'")
    if quantize is not None and quantize not in QUANTIZE_CHOICES:
        raise ZooUsageError(f"--quantize must be one of {', '.join(QUANTIZE_CHOICES)}, got '{quantize}'")
    input_dtype, layout = _input_options(input_dtype, input_layout)
    names = _formats(formats, quantize, half, input_dtype, bundle)
    run_dir, ckpt = resolve_checkpoint(target, checkpoint)
    model, config = load_model(ckpt)
    spec = input_spec(config, image_size)
    config = {**config, "preprocessing": spec}
    out_dir = Path(out) if out is not None else run_dir / "export"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from zoo.run import write_error

        raise write_error(out_dir, exc) from None
    options = ExportOptions(image_size=int(spec["crop"]), batch_size=batch_size, opset=opset, dynamo=dynamo,
                            input_dtype=input_dtype, input_layout=layout)
    report = ExportReport(str(run_dir), str(ckpt), config["arch"], options.image_size)
    images = val.split_images(run_dir, config, ("val", "test"), val_images) if validate else None
    kept: dict[str, list[Path]] = {name: [] for name in names}

    for name in names:
        exporter = get_exporter(name)
        final = out_dir / f"model{exporter.suffix}"
        tmp = temp_path(final)
        entry = ArtefactReport(name, str(final), runtime=exporter.runtime, precision="fp32")
        start = time.perf_counter()

        def step(
            exporter: Exporter = exporter, tmp: Path = tmp, final: Path = final, entry: ArtefactReport = entry
        ) -> None:
            try:
                if exporter.derives and kept.get("onnx"):
                    exporter.derive(kept["onnx"][0], tmp)  # the fp32 ONNX file just validated
                else:
                    exporter.export(model, config, tmp, options)
                exporter.check(tmp)
                if images is not None:
                    entry.validation = val.validate(exporter, tmp, model, spec, images, batch_size, tol=tol)
            except ZooError:
                raise
            except OSError as exc:  # a full disk, no permission: name the file and the free space
                from zoo.run import write_error

                raise write_error(final, exc) from None
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
        kept[name].append(final)

    fp32_onnx = out_dir / "model.onnx"
    derived: list[ArtefactReport] = []
    if half:
        from exporters.fp16 import export_fp16

        say(f"converting to fp16 -> {out_dir / 'model.fp16.onnx'}")
        fp16 = export_fp16(fp32_onnx, out_dir / "model.fp16.onnx", model, images, batch_size)
        report.artefacts.append(fp16)
        derived.append(fp16)
    if quantize == "int8":
        from exporters.quantize import quantize_int8

        say(f"quantising to int8 -> {out_dir / 'model.int8.onnx'}")
        calib = val.calibration_images(run_dir, config, calib_data, calib_images)
        gate_images = val.split_images(run_dir, config, ("test", "val"), None, need_labels=True)
        entry = quantize_int8(fp32_onnx, out_dir / "model.int8.onnx", calib, gate_images, per_channel,
                              batch_size, int8_scheme, calibration, max_drop=max_drop, force=force)
        report.artefacts.append(entry)
        if not entry.kept:
            raise ExportRefused(f"{entry.path}: not kept: {entry.note}", report)
        derived.append(entry)

    for name in names:
        exporter = get_exporter(name)
        for source in derived if exporter.derives else ():
            entry = _derive(exporter, Path(source.path), source.precision, images, batch_size, tol, say)
            report.artefacts.append(entry)
            kept[name].append(Path(entry.path))
        report.artefacts += get_exporter(name).finish(kept[name])
    if bundle:
        from exporters.bundle import write_bundle

        say(f"bundling -> {out_dir / 'bundle'}")
        report.artefacts += write_bundle(out_dir, report.artefacts, config, f"{run_dir.name}/{ckpt.name}",
                                         images.images if images is not None else None)
    return report


def _derive(
    exporter: Exporter, source: Path, precision: str, images: LabelledImages | None, batch_size: int,
    tol: float, say: Callable[[str], None],
) -> ArtefactReport:
    """``exporter``'s conversion of a derived ONNX file (int8, fp16), validated against that file."""
    from exporters import validate as val
    from zoo.runtime.onnx_predictor import OnnxPredictor

    final = source.with_suffix(exporter.suffix)
    tmp = temp_path(final)
    entry = ArtefactReport(f"{exporter.name}-{precision}", str(final), runtime=exporter.runtime,
                           precision=precision)
    start = time.perf_counter()

    def step() -> None:
        try:
            exporter.derive(source, tmp)
            exporter.check(tmp)
            predictor = exporter.load(tmp)
            if images is not None and predictor is not None:
                reference = OnnxPredictor(source).predict(images.images, batch_size=batch_size)
                unlabelled = val.LabelledImages(images.images, None, images.source)  # vs the file, not torch
                entry.validation = val.compare(predictor, unlabelled, reference, batch_size, tol)
        except ZooError:
            raise
        except OSError as exc:
            from zoo.run import write_error

            raise write_error(final, exc) from None
        except Exception as exc:
            raise ZooError(f"{final}: {exporter.name} conversion of {source.name} failed "
                           f"({type(exc).__name__}: {val.first_line(exc)})") from None
        if entry.validation is not None and not entry.validation["passed"]:
            raise ZooError(f"{final}: validation against {source.name} failed: "
                           f"{val.summary(entry.validation)}; nothing written")

    say(f"converting {source.name} ({exporter.name}) -> {final}")
    keep_if(tmp, final, step)
    entry.seconds = round(time.perf_counter() - start, 3)
    entry.bytes = final.stat().st_size
    return entry
