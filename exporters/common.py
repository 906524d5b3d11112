"""What every built-in exporter shares without importing torch: the metadata an artefact
carries, and silence for torch's deprecation warnings about the export paths we choose."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from typing import Any


def metadata(config: dict[str, Any], **extra: Any) -> dict[str, str]:
    """The metadata every zoo artefact carries, as strings (lists and dicts in JSON)."""
    from zoo import __version__

    spec = config["preprocessing"]
    values: dict[str, Any] = {
        "classes": json.dumps(list(config["classes"])),
        "preprocessing": json.dumps(spec, sort_keys=True),
        "mean": json.dumps(list(spec["mean"])),
        "std": json.dumps(list(spec["std"])),
        "input_size": str(spec["crop"]),
        "channels": str(spec["channels"]),
        "input": json.dumps({"dtype": "float32", "layout": "NCHW", "channels": int(spec["channels"])}),
        "arch": str(config["arch"]),
        "zoo_version": __version__,
        **extra,
    }
    return {k: str(v) for k, v in values.items()}


@contextlib.contextmanager
def quiet_torch() -> Iterator[None]:
    """torch 2.x flags torch.jit and the TorchScript-based ONNX exporter as deprecated on every
    call; they are still the mature path for CNNs (and what libtorch loads), so no noise."""
    with warnings.catch_warnings():
        for category in (FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", r".*(torch\.jit|legacy TorchScript-based ONNX|will be removed)",
                                    category)
        warnings.filterwarnings("ignore", "Constant folding", UserWarning)  # strided slices stay as they are
        yield
