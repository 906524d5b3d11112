"""Model analysis without real weights: parameters, MACs, per-layer shapes and receptive fields.

Models are built on the meta device, so analysing VGG16 allocates nothing. MACs come from
``torch.utils.flop_counter`` (MACs = FLOPs / 2). Receptive field and jump come from
``zoo.receptive_field`` (tracked per tensor, so shortcuts and SE gates are right). Every ``Conv2d`` is also
checked against the course formulas (output size, parameter count); a disagreement is a bug and is
reported loudly.

torch is imported inside the functions: ``zoo list`` answered from the cache never imports it.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.catalog import get_spec
from zoo.errors import BuildError, ZooError, ZooUsageError, error_head
from zoo.receptive_field import Tag, mode_class, pair, seed, tag_of, tensors
from zoo.registry import ArchSpec, check_positive

if TYPE_CHECKING:
    from torch import nn

CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")  # exact torch containers are expanded


class FormulaMismatchWarning(UserWarning):
    """A layer's formula-predicted shape or parameter count differs from what torch produced."""


@dataclass(frozen=True)
class Summary:
    """Size of one architecture at one input size."""

    name: str
    image_size: int
    in_channels: int
    num_classes: int
    params: int
    macs: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Row:
    """One layer or block of ``describe``: its output and what it costs."""

    path: str
    type: str
    depth: int
    output_shape: tuple[int, ...] | None
    params: int
    macs: int
    receptive_field: int | None
    jump: int | None
    sees_whole_image: bool = False  # through global pooling or an SE gate, beyond the local RF

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["output_shape"] = list(self.output_shape) if self.output_shape is not None else None
        return d


@dataclass(frozen=True)
class Report:
    """``describe``'s answer: rows, totals, and any formula mismatch found on the way."""

    name: str
    image_size: int
    in_channels: int
    num_classes: int
    params: int
    macs: int
    output_shape: tuple[int, ...]
    receptive_field: int | None  # of the last feature map with more than one pixel
    rows: tuple[Row, ...]
    checked_convs: int
    mismatches: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "rows"}
        d["output_shape"] = list(self.output_shape)
        d["mismatches"] = list(self.mismatches)
        d["rows"] = [r.as_dict() for r in self.rows]
        return d


# ----------------------------------------------------------------------------- formulas


def conv_output_size(i: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """floor((i + 2p - d(k-1) - 1) / s) + 1, the course formula with dilation."""
    return (i + 2 * p - d * (k - 1) - 1) // s + 1


def conv_params(c: int, n_k: int, kh: int, kw: int, groups: int = 1, bias: bool = True) -> int:
    """n_k (c k^2 / groups + 1), without the +1 when there is no bias."""
    return n_k * (c // groups * kh * kw + (1 if bias else 0))


def pool_output_size(i: int, k: int, s: int, p: int = 0, d: int = 1, ceil_mode: bool = False) -> int:
    """Pooling output size; ceil mode drops a last window that would start in the right padding."""
    span = i + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= i + p:
        out -= 1
    return out


# ----------------------------------------------------------------------------- validation


def resolve_spec(name_or_spec: str | ArchSpec) -> ArchSpec:
    return name_or_spec if isinstance(name_or_spec, ArchSpec) else get_spec(name_or_spec)


def check_sizes(spec: ArchSpec, image_size: int, in_channels: int, num_classes: int) -> None:
    """One-line usage errors for sizes the network cannot take."""
    check_positive("image size", image_size)
    check_positive("in_channels", in_channels)
    check_positive("num_classes", num_classes)
    if image_size < spec.min_image_size:
        raise ZooUsageError(
            f"image size {image_size} is too small for {spec.name}: it downsamples "
            f"{spec.min_image_size}x, use --image-size >= {spec.min_image_size}"
        )


def _build_meta(spec: ArchSpec, num_classes: int, in_channels: int, **model_kwargs: Any) -> nn.Module:
    import torch

    with torch.device("meta"):
        return spec.build(num_classes=num_classes, in_channels=in_channels, **model_kwargs).eval()


def _forward_error(name: str, image_size: int, exc: Exception) -> ZooError:
    return ZooUsageError(f"{name} cannot run at image size {image_size}: {error_head(exc)}")


# ----------------------------------------------------------------------------- summarize


def summarize(
    name_or_spec: str | ArchSpec,
    image_size: int | None = None,
    in_channels: int | None = None,
    num_classes: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> Summary:
    """Parameters and MACs (batch 1) of an architecture (built with ``model_kwargs``, a run
    config's options such as ``small_input``), computed on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    spec = resolve_spec(name_or_spec)
    size = spec.image_size if image_size is None else image_size
    channels = spec.in_channels if in_channels is None else in_channels
    num_classes = spec.num_classes if num_classes is None else num_classes
    check_sizes(spec, size, channels, num_classes)
    model = _build_meta(spec, num_classes, channels, **(model_kwargs or {}))
    params = sum(p.numel() for p in model.parameters())
    x = torch.empty(1, channels, size, size, device="meta")
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.no_grad():
            model(x)
    except (RuntimeError, ValueError) as exc:
        raise _forward_error(spec.name, size, exc) from None
    return Summary(spec.name, size, channels, num_classes, params, counter.get_total_flops() // 2)


def failure_reason(exc: BaseException) -> str:
    """One line saying why an architecture failed, without repeating its name where possible."""
    if isinstance(exc, BuildError):
        return exc.reason
    return error_head(exc) if isinstance(exc, ZooError) else f"{type(exc).__name__}: {error_head(exc)}"


def cache_path() -> Path:
    """$XDG_CACHE_HOME/zoo/summaries.json (or ~/.cache/zoo/...): safe to delete at any time."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "zoo" / "summaries.json"


def _source_stamp(builder: object) -> str:
    """Newest mtime of the .py files beside the builder's module, found without importing it,
    so an edited model (editable install, same version) is not served from a stale cache."""
    import importlib.util
    import sys

    module = builder.partition(":")[0] if isinstance(builder, str) else getattr(builder, "__module__", "")
    if not module:
        return ""
    parts = module.split(".")
    loaded = sys.modules.get(module)
    if getattr(loaded, "__file__", None):
        folders = [Path(loaded.__file__).parent]  # type: ignore[union-attr]
    else:
        top = sys.modules.get(parts[0])
        roots = list(getattr(top, "__path__", []))
        if top is None:
            found = importlib.util.find_spec(parts[0])
            roots = list(found.submodule_search_locations or []) if found else []
        folders = [Path(root).joinpath(*parts[1:-1]) for root in roots]
    for folder in folders:
        if folder.is_dir():
            return str(max((f.stat().st_mtime_ns for f in folder.glob("*.py")), default=0))
    return ""


def _fingerprint(spec: ArchSpec) -> str:
    from zoo import __version__
    from zoo.plugins import get_host

    record = get_host().records.get(spec.plugin)
    plugin_version = record.version if record is not None else "?"
    b = spec.builder
    builder = b if isinstance(b, str) else f"{b.__module__}:{getattr(b, '__qualname__', type(b).__name__)}"
    return "|".join(
        [__version__, f"{spec.plugin}={plugin_version}", builder, repr(spec.default_kwargs),
         _source_stamp(spec.builder)]
    )


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def default_summaries(
    specs: Iterable[ArchSpec], use_cache: bool = True, progress: bool = False,
    failures: dict[str, str] | None = None,
) -> list[Summary | None]:
    """Summaries at each spec's default size (what ``zoo list`` shows), from the on-disk cache
    where the name, size, zoo version, owning plugin's version and model source still match.
    ``progress``: a bar on a terminal's stderr while the missing ones are computed (seconds each).

    With ``failures``, an architecture that cannot be built or run is recorded there (name ->
    one-line reason) and gets None, so one broken plugin never hides the rest of the zoo."""
    from zoo.output import progress_bar

    specs = list(specs)
    path = cache_path()
    cache = _read_cache(path) if use_cache else {}
    found: dict[str, Summary | None] = {}
    missing: list[tuple[str, str, ArchSpec]] = []
    for spec in specs:
        key = f"{spec.name}@{spec.in_channels}x{spec.image_size}/{spec.num_classes}"
        stamp = _fingerprint(spec) if use_cache else ""
        hit = cache.get(key)
        if isinstance(hit, dict) and hit.get("fingerprint") == stamp:
            try:
                found[spec.name] = Summary(**hit["summary"])
                continue
            except (KeyError, TypeError):
                pass
        missing.append((key, stamp, spec))
    what = f"sizing {len(missing)} architectures (cached afterwards)"
    dirty = False
    with progress_bar(what, len(missing), progress and bool(missing)) as advance:
        for key, stamp, spec in missing:
            advance()
            try:
                summary = summarize(spec)
            except Exception as exc:
                if failures is None:
                    raise
                failures[spec.name] = failure_reason(exc)
                found[spec.name] = None
                continue
            found[spec.name] = summary
            cache[key] = {"fingerprint": stamp, "summary": summary.as_dict()}
            dirty = True
    if use_cache and dirty:
        from zoo.run import atomic_write_json

        try:
            atomic_write_json(path, cache)
        except (OSError, ZooError) as exc:  # a read-only home must not break `zoo list`
            warnings.warn(f"cannot write the summary cache {path}: {exc}", stacklevel=2)
    return [found[spec.name] for spec in specs]


# ----------------------------------------------------------------------------- describe


def row_modules(model: nn.Module, depth: int) -> list[tuple[str, nn.Module, int]]:
    """Rows: plain containers are see-through; a custom block is one row unless ``depth`` opens
    it (then the block, then its children, indented); leaves are rows."""
    rows: list[tuple[str, nn.Module, int]] = []

    def walk(module: nn.Module, prefix: str, level: int) -> None:
        for name, child in module.named_children():
            path = f"{prefix}.{name}" if prefix else name
            kind = type(child)
            if kind.__module__.startswith("torch.nn") and kind.__name__ in CONTAINERS:
                walk(child, path, level)
            else:
                rows.append((path, child, level))
                if level < depth:
                    walk(child, path, level + 1)

    walk(model, "", 0)
    return rows


def _check_conv(path: str, conv: Any, x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> list[str]:
    """Formula vs torch for one Conv2d call."""
    problems = []
    kh, kw = conv.kernel_size
    pad = conv.padding if not isinstance(conv.padding, str) else (0, 0) if conv.padding == "valid" else None
    for axis in (0, 1):
        i = x_shape[2 + axis]
        if pad is None:  # "same": the output keeps the input size (stride 1 only)
            want = i
        else:
            k, s, d = conv.kernel_size[axis], conv.stride[axis], conv.dilation[axis]
            want = conv_output_size(i, k, s, pad[axis], d)
        if want != y_shape[2 + axis]:
            problems.append(
                f"{path}: formula predicts output {'HW'[axis]}={want}, torch produced {y_shape[2 + axis]}"
            )
    want_params = conv_params(conv.in_channels, conv.out_channels, kh, kw, conv.groups, conv.bias is not None)
    real = sum(p.numel() for p in conv.parameters(recurse=False))
    if want_params != real:
        problems.append(f"{path}: formula predicts {want_params} parameters, torch has {real}")
    if y_shape[1] != conv.out_channels:
        problems.append(f"{path}: {conv.out_channels} kernels but {y_shape[1]} output channels")
    return problems


def _check_pool(path: str, pool: Any, x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> list[str]:
    """Formula vs torch for one MaxPool2d/AvgPool2d call."""
    k, st = pair(pool.kernel_size), pair(pool.stride if pool.stride is not None else pool.kernel_size)
    p, d = pair(pool.padding), pair(getattr(pool, "dilation", 1))
    problems = []
    for axis in (0, 1):
        want = pool_output_size(x_shape[2 + axis], k[axis], st[axis], p[axis], d[axis], pool.ceil_mode)
        if want != y_shape[2 + axis]:
            problems.append(
                f"{path}: formula predicts output {'HW'[axis]}={want}, torch produced {y_shape[2 + axis]}"
            )
    return problems


def describe(
    name: str | ArchSpec | nn.Module,
    image_size: int | None = None,
    in_channels: int | None = None,
    num_classes: int | None = None,
    depth: int = 0,
) -> Report:
    """Per-row output shape, parameters, MACs, receptive field and jump, plus totals.

    ``name`` may also be an ``nn.Module`` (analysed as given; ``image_size`` then required).
    ``depth`` opens custom blocks that many levels (0: a residual block is one row).
    """
    if depth < 0:
        raise ZooUsageError(f"depth must be >= 0, got {depth}")
    if isinstance(name, (str, ArchSpec)):  # sizes are checked before torch is imported (it takes seconds)
        spec = resolve_spec(name)
        check_sizes(
            spec,
            spec.image_size if image_size is None else image_size,
            spec.in_channels if in_channels is None else in_channels,
            spec.num_classes if num_classes is None else num_classes,
        )
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    if isinstance(name, nn.Module):
        model, label = name, type(name).__name__
        if image_size is None:
            raise ZooUsageError("describe(module) needs image_size")
        check_positive("image size", image_size)
        size = image_size
        if in_channels is None:
            first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
            in_channels = first.in_channels if first is not None else 3
        channels = in_channels
        check_positive("in_channels", channels)
    else:
        spec = resolve_spec(name)
        label = spec.name
        size = spec.image_size if image_size is None else image_size
        channels = spec.in_channels if in_channels is None else in_channels
        num_classes = spec.num_classes if num_classes is None else num_classes
        check_sizes(spec, size, channels, num_classes)
        model = _build_meta(spec, num_classes, channels)
    device = next((p.device for p in model.parameters()), torch.device("meta"))

    seen: dict[nn.Module, tuple[tuple[int, ...], tuple[int, ...] | None, Tag | None]] = {}
    problems: list[str] = []
    paths = {m: p for p, m in model.named_modules()}
    checked = 0

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        nonlocal checked
        x = next(tensors(args), None)
        y = next(tensors(output), None)
        x_shape = tuple(x.shape) if x is not None else ()
        y_shape = tuple(y.shape) if y is not None else None
        seen[module] = (x_shape, y_shape, tag_of(y))
        if x is None or y_shape is None:
            return
        if isinstance(module, nn.Conv2d):
            checked += 1
            problems.extend(_check_conv(paths[module] or label, module, x_shape, y_shape))
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            problems.extend(_check_pool(paths[module] or label, module, x_shape, y_shape))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    x = torch.empty(1, channels, size, size, device=device)
    seed(x)
    counter = FlopCounterMode(display=False)
    try:
        with counter, mode_class()(), torch.no_grad():
            out = model(x)
    except (RuntimeError, ValueError) as exc:
        raise _forward_error(label, size, exc) from None
    finally:
        for h in handles:
            h.remove()
    flops = counter.get_flop_counts()
    prefix = type(model).__name__

    rows = []
    last_rf: int | None = None
    for path, module, level in row_modules(model, depth):
        x_shape, y_shape, tag = seen.get(module, ((), None, None))
        own_params = sum(p.numel() for p in module.parameters())
        is_leaf = not any(True for _ in module.children())
        plain_leaf = is_leaf and type(module).__module__.startswith("torch.nn")
        if plain_leaf and own_params == 0 and y_shape == x_shape:
            continue  # torch's activations, dropout, identity: nothing to show
        macs = sum(flops.get(f"{prefix}.{path}", {}).values()) // 2
        rf = max(tag.rf) if tag else None
        jump = max(tag.jump) if tag else None
        whole = tag.whole if tag else False
        rows.append(Row(path, type(module).__name__, level, y_shape, own_params, macs, rf, jump, whole))
        if y_shape is not None and len(y_shape) == 4 and y_shape[2] * y_shape[3] > 1 and rf is not None:
            last_rf = rf
    for problem in problems:
        warnings.warn(f"{label}: {problem}", FormulaMismatchWarning, stacklevel=2)
    y = next(tensors(out))
    return Report(
        name=label,
        image_size=size,
        in_channels=channels,
        num_classes=int(y.shape[-1]),
        params=sum(p.numel() for p in model.parameters()),
        macs=counter.get_total_flops() // 2,
        output_shape=tuple(y.shape),
        receptive_field=last_rf,
        rows=tuple(rows),
        checked_convs=checked,
        mismatches=tuple(problems),
    )


def human(n: float) -> str:
    """11689512 -> '11.7M', 1814073344 -> '1.81G', 3504872 -> '3.50M' (three significant digits)."""
    units = ("", "K", "M", "G", "T")
    value, i = float(n), 0
    while abs(value) >= 999.5 and i < len(units) - 1:
        value, i = value / 1000, i + 1
    if i == 0:
        return str(int(n))
    decimals = 2 if abs(value) < 9.995 else 1 if abs(value) < 99.95 else 0
    return f"{value:.{decimals}f}{units[i]}"
