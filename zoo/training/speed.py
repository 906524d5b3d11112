"""Training throughput split into its two parts, the loader and the model, so the bound shows."""

from __future__ import annotations

from typing import Any

SPEED_KEYS = ("img_per_s", "loader_img_per_s", "model_img_per_s")


def loader_speeds(loader: Any, images: int, seconds: float) -> dict[str, float]:
    """Images/s of the epoch so far, and of its two parts: the loader alone (the seconds its clock
    counted: waiting for, copying, augmenting and normalising batches) and the model alone (the
    rest: forward, backward, optimiser step, metrics). The smaller of the two bounds training."""
    seconds = max(1e-9, seconds)
    speeds = {"img_per_s": images / seconds}
    clock = getattr(loader, "clock", None)
    if clock is not None:
        loader_s = min(clock.seconds, seconds)
        speeds["loader_img_per_s"] = images / max(1e-9, loader_s)
        speeds["model_img_per_s"] = images / max(1e-9, seconds - loader_s)
    return speeds


def speed_summary(history: list[dict[str, Any]], pipeline: str, resident: bool) -> dict[str, Any]:
    """The run's throughput per epoch for results.json and ``--json`` (epochs of a resumed run that
    predate the loader clock have None for the loader and model figures)."""
    per_epoch = {key: [row.get(key) for row in history] for key in SPEED_KEYS}
    return {"pipeline": pipeline, "data_on_device": resident, **per_epoch}
