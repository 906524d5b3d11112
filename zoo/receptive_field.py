"""Receptive field and jump, tracked per tensor rather than per module order.

A ``TorchFunctionMode`` tags every tensor an op produces with ``(rf, jump)`` per axis, so residual
shortcuts, SE gates and concatenations get the right value whatever order the modules run in:
conv/pool apply ``r_out = r_in + (k-1) d j_in``, ``j_out = j_in s``; any other op takes the largest
field among its inputs on the output's pixel grid. torch is imported only on first use.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

RF_ATTR = "_zoo_rf"  # a Tag, set on every tensor while describe() runs
CONV_OPS = {"conv2d"}
POOL_OPS = {"max_pool2d", "max_pool2d_with_indices", "avg_pool2d", "lp_pool2d"}
ADAPTIVE_OPS = {"adaptive_avg_pool2d", "adaptive_max_pool2d", "adaptive_max_pool2d_with_indices"}


def grow(rf: int, jump: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """r_out = r_in + (k-1) d j_in, j_out = j_in s."""
    return rf + (k - 1) * d * jump, jump * s


@dataclass(frozen=True)
class Tag:
    """What one tensor's pixels see, per axis (H, W), in input pixels.

    ``rf`` and ``jump`` follow the conv/pool path; ``whole`` says the tensor also depends on
    every input pixel through a global op (global pooling, an SE gate, a flatten into a linear
    layer), which the local receptive field does not show.
    """

    rf: tuple[int, int]
    jump: tuple[int, int]
    whole: bool = False

    def grow(self, k: tuple[int, int], s: tuple[int, int], d: tuple[int, int]) -> Tag:
        (rh, jh), (rw, jw) = (grow(self.rf[a], self.jump[a], k[a], s[a], d[a]) for a in (0, 1))
        return Tag((rh, rw), (jh, jw), self.whole)

    def covering(self, size: tuple[int, int]) -> Tag:
        """A window as large as the whole ``size`` map (kernel = stride = map size)."""
        return Tag(self.rf, self.jump, True).grow(size, size, (1, 1))


def pair(v: Any) -> tuple[int, int]:
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[-1])) if len(v) else (0, 0)
    return (int(v), int(v))


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def tensors(obj: Any) -> Iterator[Any]:
    import torch

    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from tensors(item)


def spatial(t: Any) -> tuple[int, int] | None:
    return (int(t.shape[-2]), int(t.shape[-1])) if t is not None and t.dim() == 4 else None


def tag_of(t: Any) -> Tag | None:
    return t.__dict__.get(RF_ATTR) if hasattr(t, "__dict__") else None


def _propagate(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Tag | None:
    """The tag of an op's output from the tags of its inputs."""
    inputs = [t for t in tensors((args, kwargs)) if tag_of(t) is not None]
    if not inputs:
        return None
    x_tag = tag_of(args[0]) if args else None
    if x_tag is not None and name in CONV_OPS:
        weight = _arg(args, kwargs, 1, "weight", None)
        k = (int(weight.shape[-2]), int(weight.shape[-1]))
        s, d = pair(_arg(args, kwargs, 3, "stride", 1)), pair(_arg(args, kwargs, 5, "dilation", 1))
        return x_tag.grow(k, s, d)
    if x_tag is not None and name in POOL_OPS:
        k = pair(_arg(args, kwargs, 1, "kernel_size", 1))
        stride = _arg(args, kwargs, 2, "stride", None)
        s = k if stride is None or stride in ([], ()) else pair(stride)
        d = pair(_arg(args, kwargs, 4, "dilation", 1)) if name.startswith("max") else (1, 1)
        return x_tag.grow(k, s, d)
    out_size = spatial(next(tensors(out), None))
    if x_tag is not None and name in ADAPTIVE_OPS and out_size is not None:
        i, o = spatial(args[0]), out_size
        assert i is not None
        if o == (1, 1):
            return x_tag.covering(i)
        s = (max(1, i[0] // o[0]), max(1, i[1] // o[1]))
        k = (max(1, i[0] - (o[0] - 1) * s[0]), max(1, i[1] - (o[1] - 1) * s[1]))
        return x_tag.grow(k, s, (1, 1))
    # Any other op: inputs on the output's pixel grid set rf and jump (a residual add, a concat);
    # an input whose map the op collapses (mean over H and W, a flatten before a linear layer)
    # is seen whole; a broadcast 1x1 gate (SE) passes on only that it saw the whole image.
    candidates = []
    for t in inputs:
        size = spatial(t)
        if size is not None and size != (1, 1) and out_size in (None, (1, 1)):
            candidates.append(tag_of(t).covering(size))
        elif size == out_size or out_size is None:
            candidates.append(tag_of(t))
    whole = any(tag_of(t).whole for t in inputs)
    if not candidates:  # e.g. upsampling: keep the finest input's geometry
        candidates = [tag_of(t) for t in inputs]
    return Tag(
        (max(c.rf[0] for c in candidates), max(c.rf[1] for c in candidates)),
        (max(c.jump[0] for c in candidates), max(c.jump[1] for c in candidates)),
        whole or any(c.whole for c in candidates),
    )


@functools.cache
def mode_class() -> type:
    """Defined on first use so that importing this module does not import torch."""
    from torch.overrides import TorchFunctionMode

    class ReceptiveFieldMode(TorchFunctionMode):
        """Tags every tensor an op produces with the receptive field and jump of its pixels."""

        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            name = getattr(func, "__name__", "")
            if name.startswith("__get") or name in {"dim", "size", "numel"}:
                return out
            tag = _propagate(name, tuple(args), kwargs, out)
            if tag is not None:
                for t in tensors(out):
                    t.__dict__[RF_ATTR] = tag
            return out

    return ReceptiveFieldMode


def seed(x: Any) -> None:
    """Mark the network's input: every pixel sees itself, one pixel apart."""
    x.__dict__[RF_ATTR] = Tag((1, 1), (1, 1))
