"""`zoo export` (validated TorchScript / ONNX / int8 / fp16 predictors) and `zoo predict`.

`zoo predict model.onnx` runs on onnxruntime, numpy and Pillow only: this module imports
nothing heavy at the top, and the .onnx path never imports torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from zoo.errors import ZooError, ZooUsageError
from zoo.output import console, printable

TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts")
ONNXRUNTIME_SUFFIXES = (".onnx", ".ort")


def export(
    target: Path | None = typer.Argument(
        None, help="Run directory, or a checkpoint (.pt) inside one [default: the newest run in ./runs]."),
    formats: list[str] = typer.Option(
        ["onnx"], "--format", "-f",
        help="A registered exporter (onnx, torchscript, ort, or a plugin's: see 'zoo plugins'), or 'all'. "
             "Repeat or comma-separate for several.",
    ),
    out: Path | None = typer.Option(None, "--out", help="Output folder [default: RUN_DIR/export]."),
    checkpoint: str = typer.Option("best", "--checkpoint", help="best or last (for a run directory)."),
    opset: int | None = typer.Option(
        None, "--opset", help="ONNX opset [default: the newest both exporter and onnxruntime support]."),
    image_size: int | None = typer.Option(None, "--image-size", help="Crop size [default: the run's]."),
    batch_size: int = typer.Option(2, "--batch-size", help="Tracing batch (>= 2; batch axis is dynamic)."),
    quantize: str | None = typer.Option(None, "--quantize", help="int8: also write model.int8.onnx."),
    calib_data: Path | None = typer.Option(
        None, "--calib-data", help="Image folder to calibrate int8 on [default: the run's training split]."),
    calib_images: int = typer.Option(128, "--calib-images", help="Calibration images to use."),
    per_channel: bool = typer.Option(True, "--per-channel/--per-tensor", help="int8 weight scales."),
    int8_scheme: str = typer.Option(
        "auto", "--int8-scheme", help="int8 activations/weights: auto (u8s8 on x86-64), s8s8, u8s8."),
    calibration: str = typer.Option(
        "auto", "--calibration",
        help="int8 activation ranges: minmax (extremes), percentile (clips the top 0.001% of "
             "magnitudes), entropy, or auto: minmax, then the others while the accuracy gate refuses."),
    half: bool = typer.Option(False, "--half", help="Also write model.fp16.onnx (for GPU providers)."),
    dynamo: bool = typer.Option(False, "--dynamo", help="Use the torch.export-based ONNX exporter."),
    input_dtype: str = typer.Option(
        "float32", "--input",
        help="Model input: float32 (normalised NCHW) or uint8 (camera frames at the crop size; "
             "scaling, mean/std, layout and grayscale conversion inside the graph). onnx and ort only."),
    layout: str | None = typer.Option(None, "--layout", help="uint8 input layout: NHWC [default] or NCHW."),
    bundle: bool = typer.Option(
        False, "--bundle",
        help="Also write export/bundle/ (+ bundle.tar.gz): model, standalone predict.py "
             "(onnxruntime + numpy + Pillow), requirements.txt, README."),
    no_validate: bool = typer.Option(False, "--no-validate", help="Skip the comparison with PyTorch."),
    tol: float = typer.Option(1e-4, "--tol", help="Max abs difference of probabilities allowed."),
    max_drop: float = typer.Option(1.0, "--max-drop", help="int8: max top-1 drop (points) to keep it."),
    force: bool = typer.Option(False, "--force", help="int8: keep it even beyond --max-drop."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Export a trained run to validated predictors (softmax, class names, preprocessing metadata)."""
    from exporters.export import export as run_export
    from zoo.cli import most_recent_run
    from zoo.export_api import ExportRefused
    from zoo.registry import check_positive

    check_positive("--calib-images", calib_images)
    target = target if target is not None else most_recent_run("exporting")
    names = [n.strip() for item in formats for n in item.split(",") if n.strip()]
    chosen: str | list[str] = "all" if "all" in names else names
    log = None if as_json else (lambda msg: typer.echo(msg, err=True))
    try:
        report = run_export(
            target, formats=chosen, out=out, checkpoint=checkpoint, image_size=image_size,
            batch_size=batch_size, opset=opset, dynamo=dynamo, validate=not no_validate, tol=tol,
            quantize=quantize, calib_data=calib_data, calib_images=calib_images, per_channel=per_channel,
            int8_scheme=int8_scheme, calibration=calibration, half=half, max_drop=max_drop, force=force,
            input_dtype=input_dtype, input_layout=layout, bundle=bundle, log=log,
        )
    except ExportRefused as exc:
        _show(exc.report.as_dict(), as_json)
        raise
    _show(report.as_dict(), as_json)


def _show(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.table import Table

    from exporters.validate import summary

    folder = Path(report["artefacts"][0]["path"]).parent if report["artefacts"] else "-"
    table = Table(title=f"{report['arch']} ({report['checkpoint']}) at {report['image_size']} px -> {folder}")
    for column in ("artefact", "size", "status", "check"):
        table.add_column(column)
    for a in report["artefacts"]:
        if a["gate"]:
            g = a["gate"]
            check = (f"accuracy gate: top-1 fp32 {g['fp32_top1']:.2f}% -> int8 {g['int8_top1']:.2f}% "
                     f"(drop {g['drop']:.2f}, max {g['max_drop']}) on {g['images']} images of {g['source']}; "
                     f"{g['speedup_batch8']:.2f}x fp32 speed at batch 8")
        elif a["validation"] and "summary" in a["validation"]:
            check = a["validation"]["summary"]
        elif a["validation"]:
            v = a["validation"]
            check = summary(v) + (f"; top-1 on those {v['images']} images {v['runtime_top1']:.2f}% "
                                  f"(torch {v['torch_top1']:.2f}%)" if "runtime_top1" in v else "")
        elif not a["runtime"]:
            check = ""  # a companion file (a build config, the bundle): its note says what it is
        else:
            check = "not validated (--no-validate)"
        status = "[green]kept[/green]" if a["kept"] else "[red]refused[/red]"
        if a["note"]:
            check += f"; {a['note']}" if check else a["note"]
        table.add_row(Path(a["path"]).name, f"{a['bytes'] / 1e6:.2f} MB" if a["kept"] else "-", status, check)
    console().print(table)


def _load_predictor(model: Path, threads: int | None) -> Any:
    if model.suffix.lower() in ONNXRUNTIME_SUFFIXES:
        from zoo.runtime.onnx_predictor import OnnxPredictor

        return OnnxPredictor(model, threads=threads)
    if model.suffix.lower() in TORCHSCRIPT_SUFFIXES:
        from exporters.predictor import TorchScriptPredictor

        return TorchScriptPredictor(model, threads=threads)
    raise ZooUsageError(f"{model}: unknown model format (expected .onnx or .ort, or .pt for TorchScript)")


def _split_model(paths: list[Path]) -> tuple[Path, list[Path]]:
    """``[MODEL] INPUT...``: the first path is the model when it is a model file or a run directory;
    otherwise the most recent run's exported model.onnx is used."""
    from zoo.cli import most_recent_run
    from zoo.runtime.onnx_predictor import IMAGE_SUFFIXES

    first = paths[0]
    if first.is_dir() and (first / "config.json").is_file():
        return _exported_model(first), paths[1:]
    if first.is_dir() or first.suffix.lower() in IMAGE_SUFFIXES:
        return _exported_model(most_recent_run("predicting with")), paths
    if len(paths) == 1:
        raise ZooUsageError(f"{first}: give one or more images or folders to classify after the model")
    return first, paths[1:]


def _exported_model(run: Path) -> Path:
    model = run / "export" / "model.onnx"
    if not model.is_file():
        raise ZooUsageError(f"{run} has no export/model.onnx yet; run 'zoo export {run}' first")
    return model


def predict(
    paths: list[Path] = typer.Argument(
        ..., metavar="[MODEL] INPUT...",
        help="An exported predictor (model.onnx or model.ort: torch-free, or model.pt) or a run "
             "directory (its export/model.onnx), then image files and/or folders. Without a model: the "
             "most recent run's export/model.onnx."),
    top_k: int = typer.Option(3, "--top-k", "-k", help="Classes to show per image."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    batch_size: int = typer.Option(8, "--batch-size", help="Images per inference call."),
    threads: int | None = typer.Option(None, "--threads", help="Intra-op threads [default: all cores]."),
) -> None:
    """Classify images with an exported model; bad images are reported and skipped (exit 1 at the end)."""
    from zoo.registry import check_positive
    from zoo.runtime.onnx_predictor import Prediction, expand_inputs

    check_positive("--top-k", top_k)
    check_positive("--batch-size", batch_size)
    model, inputs = _split_model(paths)
    predictor = _load_predictor(model, threads)
    paths = expand_inputs(inputs)
    if not paths:
        raise ZooUsageError(f"no images found in {', '.join(map(str, inputs))}")
    rows: list[Prediction] = []
    failed = 0
    for result in predictor.predict_files(paths, top_k=top_k, batch_size=batch_size):
        if isinstance(result, Prediction):
            if as_json:
                typer.echo(json.dumps(result.as_dict()))
            rows.append(result)
        else:
            failed += 1
            typer.echo(f"error: {result}", err=True)
    if not as_json and rows:
        _table(rows, top_k)
    if failed:
        raise ZooError(f"{failed} of {len(paths)} image(s) could not be read")


def _table(rows: list[Any], top_k: int) -> None:
    from rich.table import Table

    table = Table()
    table.add_column("image")
    for i in range(1, top_k + 1):
        table.add_column(f"top-{i}")
    for row in rows:
        cells = [f"{printable(c)} ({p:.1%})" for c, p in row.top]
        table.add_row(printable(row.source), *cells, *[""] * (top_k - len(cells)))
    console().print(table)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("predict")(predict)
