"""``zoo export --bundle``: a folder (and a .tar.gz of it) that classifies images where zoo is not.

export/bundle/ holds the model file(s), ``predict.py`` (a verbatim copy of
``zoo.runtime.predict``: onnxruntime, numpy and Pillow only), ``requirements.txt`` naming exactly
those three at the versions the bundle was validated with, and a README with the input/output
contract, the classes and a C++ example. The bundle carries one precision: int8 when the export
kept an int8 model, else fp32 (fp16 is for GPU providers and stays in export/).

Like every artefact it is checked before it is kept: the copied predict.py is loaded as a module
and must give the very probabilities zoo's runtime gives on the run's validation images. The
folder is built under a hidden name and swapped in, the archive renamed into place; a failure
leaves neither.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ZooError
from zoo.export_api import ArtefactReport, keep_if, temp_path

BUNDLE, ARCHIVE = "bundle", "bundle.tar.gz"


def runtime_source() -> Path:
    """The one file that is both zoo's edge runtime and the bundle's predict.py."""
    import zoo.runtime.predict

    return Path(zoo.runtime.predict.__file__)


def requirements() -> str:
    """Exactly the three packages predict.py imports, at the versions validated here."""
    import onnxruntime
    import PIL

    return f"onnxruntime=={onnxruntime.__version__}\nnumpy=={np.__version__}\npillow=={PIL.__version__}\n"


def pick(artefacts: Sequence[ArtefactReport]) -> list[ArtefactReport]:
    """The kept onnxruntime artefacts of the bundle's precision (int8 when there is one)."""
    from zoo.runtime.predict import DEFAULT_MODELS

    runnable = [a for a in artefacts if a.kept and a.runtime == "onnxruntime"]
    precision = "int8" if any(a.precision == "int8" for a in runnable) else "fp32"
    chosen = [a for a in runnable if a.precision == precision]
    order = {name: i for i, name in enumerate(DEFAULT_MODELS)}  # predict.py's default comes first
    return sorted(chosen, key=lambda a: order.get(Path(a.path).name, len(order)))


def _load_copy(path: Path) -> Any:
    """Import the bundle's predict.py as a module of its own (not zoo.runtime.predict)."""
    spec = importlib.util.spec_from_file_location(f"zoo_bundle_check_{os.getpid()}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def check_bundle(folder: Path, models: Sequence[str], images: Sequence[Any]) -> dict[str, Any]:
    """The copied predict.py, on each model, against zoo's runtime: the same probabilities."""
    from zoo.runtime.onnx_predictor import OnnxPredictor

    copy = _load_copy(folder / "predict.py")
    worst = 0.0
    for name in models:
        ours = OnnxPredictor(folder / name).predict(images)
        theirs = copy.OnnxPredictor(folder / name).predict(images)
        worst = max(worst, float(np.abs(ours - theirs).max()))
    passed = worst == 0.0
    return {"images": len(images), "max_abs_diff": worst, "passed": passed,
            "summary": f"predict.py gives zoo's probabilities exactly on {len(images)} images "
                       f"({', '.join(models)})" if passed else f"predict.py differs from zoo by {worst:.2e}"}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_bundle(
    out_dir: Path, artefacts: Sequence[ArtefactReport], config: dict[str, Any], run: str,
    images: Sequence[Any] | None,
) -> list[ArtefactReport]:
    """Write out_dir/bundle/ and out_dir/bundle.tar.gz; report both."""
    chosen = pick(artefacts)
    if not chosen:
        raise ZooError("--bundle: no onnxruntime artefact was kept to bundle")
    final, archive = out_dir / BUNDLE, out_dir / ARCHIVE
    work = out_dir / f".{BUNDLE}.{os.getpid()}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    entry = ArtefactReport("bundle", str(final))
    try:
        names = [Path(a.path).name for a in chosen]
        for a in chosen:
            shutil.copyfile(a.path, work / Path(a.path).name)
        shutil.copyfile(runtime_source(), work / "predict.py")
        (work / "requirements.txt").write_text(requirements())
        (work / "README.md").write_text(readme(work, names, config, run))
        if images is not None:
            entry.validation = check_bundle(work, names, images)
            if not entry.validation["passed"]:
                raise ZooError(f"{final}: {entry.validation['summary']}; nothing written")
        _swap_in(work, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    files = sorted(p.name for p in final.iterdir())
    entry.bytes = sum((final / f).stat().st_size for f in files)
    entry.note = f"{len(files)} files: {', '.join(files)}"
    tar_entry = ArtefactReport("bundle-archive", str(archive))
    tmp = temp_path(archive)
    keep_if(tmp, archive, lambda: _tar(final, tmp))
    tar_entry.bytes = archive.stat().st_size
    tar_entry.note = f"{BUNDLE}/ as a gzipped tar"
    return [entry, tar_entry]


def _swap_in(work: Path, final: Path) -> None:
    """Replace ``final`` (a folder, maybe absent) by ``work`` with two renames."""
    old = final.with_name(f".{final.name}.{os.getpid()}.old")
    if final.exists():
        final.rename(old)
    try:
        work.rename(final)
    except BaseException:
        if old.exists():
            old.rename(final)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _tar(folder: Path, out: Path) -> None:
    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o755 if info.isdir() else 0o644
        return info

    with tarfile.open(out, "w:gz") as tar:
        tar.add(folder, arcname=folder.name, filter=clean)


def readme(folder: Path, models: Sequence[str], config: dict[str, Any], run: str) -> str:
    """The bundle's README: usage, the input/output contract, the classes, a C++ example."""
    from exporters.uint8_input import describe
    from zoo import __version__
    from zoo.runtime.predict import OnnxPredictor

    predictor = OnnxPredictor(folder / models[0])
    spec, contract, classes = predictor.preprocessing, predictor.input, predictor.classes
    meta = predictor.metadata
    inp, out = predictor.session.get_inputs()[0], predictor.session.get_outputs()[0]
    files = "\n".join(f"| `{m}` | {(folder / m).stat().st_size / 1e6:.2f} MB | `{_sha256(folder / m)}` |"
                      for m in models)
    class_rows = "\n".join(f"| {i} | {c} |" for i, c in enumerate(classes))
    interp = spec.get("interpolation", "bilinear")
    mode = "grayscale (L)" if spec["channels"] == 1 else "RGB"
    then = ", scale to 0..1 and normalise with mean/std"
    if contract["dtype"] == "uint8":
        then = (", then feed the uint8 pixels" if spec["channels"] == contract["channels"]
                else ", then feed each gray value as an RGB pixel (v, v, v), whose luma is v")
    return f"""# {config['arch']} image classifier ({meta.get('precision', 'fp32')}, {spec['crop']} px, \
{len(classes)} classes)

Exported by zoo {__version__} from `{run}`. Runs with onnxruntime, numpy and Pillow only: no zoo,
no torch.

## Run it

```bash
python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
.venv/bin/python predict.py photo.jpg more_photos/            # top-3 classes per image
.venv/bin/python predict.py more_photos/ --json --top-k 1     # one JSON object per line
.venv/bin/python predict.py photo.jpg --model {models[-1]} --threads 1
```

Folders are searched recursively for image files. A missing, truncated or non-image file is
reported on stderr (`error: FILE: ...`), the other images are still classified, and the exit
status is 1 at the end (2 for a bad option, 0 when every image was read). `--model` defaults to
the first of {', '.join(f'`{m}`' for m in models)} found beside predict.py.
From Python: `from predict import OnnxPredictor; OnnxPredictor("{models[0]}").predict(["a.jpg"])`
returns the probabilities, shape (N, {len(classes)}).

## Files

| file | size | sha256 |
|---|---:|---|
{files}

`predict.py` is zoo's own runtime (`zoo.runtime.predict`), copied verbatim, so it preprocesses
exactly as training evaluated. `requirements.txt` pins the versions this bundle was validated with.
Each model's metadata (`classes`, `preprocessing`, `input`, ...) is checked against its graph when
it loads, and an `.onnx` file's graph against the `graph_sha256` recorded at export.

## Input and output

- Input `{inp.name}`: {describe(contract, spec)}
- Output `{out.name}`: float32 [N, {len(classes)}], softmax probabilities in the class order below.
- Batch size N is free.
- To make the input from an image file (what predict.py does): decode, convert to {mode}, resize
  the shorter side to {spec['resize']} px ({interp}, Pillow), center-crop {spec['crop']}x{spec['crop']}{then}.

## Classes

| index | class |
|---:|---|
{class_rows}

## Calling it from C++

{cpp_example(models[0], inp.name, out.name, contract, spec, len(classes))}
"""


def cpp_example(model: str, input_name: str, output_name: str, contract: dict[str, Any],
                spec: dict[str, Any], num_classes: int) -> str:
    """A minimal onnxruntime C++ program for this model (not built here; the API is onnxruntime's)."""
    crop, channels = int(spec["crop"]), int(contract["channels"])
    if contract["dtype"] == "uint8":
        shape = f"1, {crop}, {crop}, 3" if contract["layout"] == "NHWC" else f"1, 3, {crop}, {crop}"
        layout = contract["layout"]
        prepare = f"""    // One RGB frame, {layout}, resized and center-cropped to {crop}x{crop}: the
    // bytes a camera or decoder gives. The graph converts, scales and normalises them itself.
    std::vector<uint8_t> frame({crop} * {crop} * 3);
    std::array<int64_t, 4> shape{{{shape}}};
    Ort::Value input = Ort::Value::CreateTensor<uint8_t>(memory, frame.data(), frame.size(),
                                                         shape.data(), shape.size());"""
    else:
        mean = ", ".join(f"{m}f" for m in spec["mean"])
        std = ", ".join(f"{s}f" for s in spec["std"])
        kind = "grayscale" if channels == 1 else "RGB"
        prepare = f"""    // Pixels resized and center-cropped to {crop}x{crop} ({kind}, row-major HWC bytes),
    // scaled to 0..1 and normalised per channel into NCHW floats.
    std::vector<uint8_t> pixels({crop} * {crop} * {channels});
    const float mean[] = {{{mean}}}, stdev[] = {{{std}}};
    std::vector<float> x(pixels.size());
    for (int c = 0; c < {channels}; ++c)
        for (int i = 0; i < {crop} * {crop}; ++i)
            x[c * {crop} * {crop} + i] = (pixels[i * {channels} + c] / 255.0f - mean[c]) / stdev[c];
    std::array<int64_t, 4> shape{{1, {channels}, {crop}, {crop}}};
    Ort::Value input = Ort::Value::CreateTensor<float>(memory, x.data(), x.size(),
                                                       shape.data(), shape.size());"""
    return f"""Build against an onnxruntime release (headers and `libonnxruntime`; `model.*.ort` files need
no other code, and a reduced build made with `model.required_operators.config` runs them too):
`g++ -std=c++17 classify.cpp -I$ORT/include -L$ORT/lib -lonnxruntime -o classify`.

```cpp
#include <onnxruntime_cxx_api.h>

#include <array>
#include <cstdint>
#include <iostream>
#include <vector>

int main() {{
    Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "classify");
    Ort::SessionOptions options;
    options.SetIntraOpNumThreads(1);
    Ort::Session session(env, "{model}", options);  // on Windows: L"{model}"
    Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);

{prepare}

    const char* input_names[] = {{"{input_name}"}};
    const char* output_names[] = {{"{output_name}"}};
    std::vector<Ort::Value> outputs =
        session.Run(Ort::RunOptions{{nullptr}}, input_names, &input, 1, output_names, 1);
    const float* probs = outputs[0].GetTensorData<float>();  // {num_classes} softmax probabilities
    int best = 0;
    for (int i = 1; i < {num_classes}; ++i)
        if (probs[i] > probs[best]) best = i;
    std::cout << "class " << best << " (see the class table), p = " << probs[best] << "\\n";
}}
```
"""
