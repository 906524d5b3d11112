"""What zoo checks of a built model before it relies on it: the builder contract, on the meta device.

A builder must return a module mapping ``(N, in_channels, H, W)`` to ``(N, num_classes)``. A plugin
that ignores ``num_classes`` or ``in_channels`` would otherwise train for an epoch and fail in the
metrics, or be reported as an image-size problem; here the cause is named before anything is
written. The forward pass runs on meta tensors (shapes only, no memory, no arithmetic), and the
same pass sums the activations, which is what training at that size will have to hold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zoo.errors import ZooError, ZooUsageError, error_head

if TYPE_CHECKING:
    import torch
    from torch import nn

    from zoo.registry import ArchSpec

MAX_IMAGE_SIZE = 8192  # beyond this no CNN here is meant to run, whatever the memory


@dataclass(frozen=True)
class Probe:
    """What one forward pass of a batch showed: the output shape and the activation elements."""

    output_shape: tuple[int, ...]
    activations: int  # elements of every leaf module's output, for the whole batch


def first_conv_channels(model: nn.Module) -> int | None:
    """Input channels of the first convolution (modules in registration order), if there is one."""
    from torch import nn

    conv = next((m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    return None if conv is None else int(conv.in_channels)


def _meta_forward(model: nn.Module, x: torch.Tensor) -> tuple[object, int]:
    """Run ``model`` on meta copies of its weights (the real ones stay untouched)."""
    import torch
    from torch.func import functional_call

    state = {name: torch.empty_like(t, device="meta")
             for name, t in [*model.named_parameters(), *model.named_buffers()]}
    total = 0

    def count(_module: nn.Module, _args: object, output: object) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            out = functional_call(model, state, (x,))
    finally:
        for handle in handles:
            handle.remove()
    return out, total


def _forward(model: nn.Module, x: torch.Tensor) -> tuple[object, int]:
    """On the meta device; an op without a meta kernel falls back to a real pass on zeros."""
    import torch

    try:
        return _meta_forward(model, x)
    except (NotImplementedError, RuntimeError) as exc:
        if "meta" not in str(exc).lower():
            raise
    with torch.no_grad():
        return model(torch.zeros(x.shape)), 0


def probe_model(
    model: nn.Module, label: str, image_size: int, in_channels: int, num_classes: int, batch: int = 2
) -> Probe:
    """Check that ``model`` maps (batch, in_channels, size, size) to (batch, num_classes).

    A builder that ignored ``in_channels`` or ``num_classes`` is a ZooError naming that cause;
    a network that cannot take ``image_size`` is a ZooUsageError. ``label`` names the architecture."""
    import torch

    training = model.training
    model.eval()
    try:
        x = torch.empty(batch, in_channels, image_size, image_size, device="meta")
        out, activations = _forward(model, x)
    except (RuntimeError, ValueError, NotImplementedError) as exc:
        first = first_conv_channels(model)
        if first is not None and first != in_channels:
            raise ZooError(f"architecture {label} ignores in_channels: built for {in_channels} input "
                           f"channel(s), its first convolution takes {first}") from None
        raise ZooUsageError(f"architecture {label} cannot take {image_size}px images "
                            f"({error_head(exc, 120)}); use a larger --image-size") from None
    finally:
        model.train(training)
    if not isinstance(out, torch.Tensor):
        raise ZooError(f"architecture {label} returns {type(out).__name__}, not one tensor of logits")
    shape = tuple(int(d) for d in out.shape)
    if shape != (batch, num_classes):
        cause = "ignores num_classes" if len(shape) == 2 and shape[0] == batch else "has the wrong output"
        raise ZooError(f"architecture {label} {cause}: built for {num_classes} classes, its output for "
                       f"a batch of {batch} is {shape}")
    return Probe(shape, activations)


def available_memory(device: str) -> tuple[int, str] | None:
    """(bytes free now, where) on the training device, or None where it cannot be told."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info()
        return int(free), "the GPU"
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "this machine"
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "this machine"
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def check_trainable(
    spec: ArchSpec, image_size: int, in_channels: int, num_classes: int, kwargs: dict[str, Any], *,
    batch_size: int, device: str,
) -> Probe:
    """Before any data is decoded at that size or any file written: the builder contract
    (``probe_model``), a sane maximum image size, and a memory estimate for training at
    ``batch_size`` (activations kept for backward and their gradients, 4 bytes each, plus weights,
    gradients and two optimizer buffers) against the memory available on ``device``."""
    import torch

    if image_size > MAX_IMAGE_SIZE:
        raise ZooUsageError(f"--image-size {image_size} is above zoo's maximum of {MAX_IMAGE_SIZE} px")
    with torch.device("meta"):
        model = spec.build(num_classes=num_classes, in_channels=in_channels, **kwargs)
    probe = probe_model(model, spec.label(), image_size, in_channels, num_classes)
    params = sum(p.numel() for p in model.parameters())
    need = batch_size * probe.activations / 2 * 4 * 2 + params * 4 * 4
    available = available_memory(device)
    if available is not None and need > available[0]:
        have, where = available
        raise ZooUsageError(f"--image-size {image_size} at --batch-size {batch_size}: training {spec.name} "
                            f"needs about {_gb(need)} of memory and {where} has {_gb(have)} free; use a "
                            "smaller --image-size or --batch-size")
    return probe
