"""``--space``: the search space of ``zoo tune`` as readable text.

``lr=1e-4..1e-1:log wd=1e-5..1e-2:log batch=64,128,256 optimizer=sgd,adamw augment=none,light``:
space-separated ``name=values``; a range ``low..high`` (``:log`` samples it on a log scale; integer
bounds on an integer option give integers), or a comma list of choices. A single value fixes that
option for every trial. Names are ``zoo train`` options (short forms: lr, wd, batch, ls) or options of
the architecture's builder (``se``, ``width_mult``, ``dropout``...). Parsing and checking need
neither torch nor Optuna; :meth:`Param.suggest` asks an Optuna trial for a value.
"""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass, fields
from typing import Any

from zoo.errors import ZooUsageError
from zoo.registry import ArchSpec, resolve
from zoo.training.config import TrainConfig, family_defaults

ALIASES = {"wd": "weight_decay", "batch": "batch_size", "ls": "label_smoothing"}
# Options whose value differs between trials; every other TrainConfig field may only be fixed.
SEARCHABLE = (
    "lr", "weight_decay", "batch_size", "optimizer", "momentum", "nesterov", "scheduler", "warmup_epochs",
    "label_smoothing", "mixup", "mixup_alpha", "augment", "ema", "ema_decay", "clip_grad", "image_size",
    "norm",
)
# Set by zoo tune's own flags (or meaningless per trial): never in --space.
MANAGED = {"epochs": "--epochs", "seed": "--seed", "quiet": "--quiet", "json": "--json", "mlflow": "--mlflow"}
BUILDER_ARGS = ("num_classes", "in_channels")
GRID_POINTS = 3  # a range becomes this many values (log- or evenly spaced) for --sampler grid
_RANGE = re.compile(r"^(?P<low>[^.][^:]*?)\.\.(?P<high>[^:]+)(?P<flags>(:[a-z]+)*)$")


@dataclass(frozen=True)
class Param:
    """One searched (or fixed) option: a range or a tuple of choices."""

    name: str  # a TrainConfig field or a builder option
    model: bool  # True: passed to the architecture's builder (model_kwargs)
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    @property
    def fixed(self) -> bool:
        return len(self.choices) == 1

    def values(self) -> tuple[Any, ...]:
        """Every choice, or a range's two ends: what must each be a valid option."""
        return self.choices if self.choices else (self.low, self.high)

    def grid(self, points: int = GRID_POINTS) -> list[Any]:
        if self.choices:
            return list(self.choices)
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        if self.log:
            grid = [lo * (hi / lo) ** (i / (points - 1)) for i in range(points)]
        else:
            grid = [lo + (hi - lo) * i / (points - 1) for i in range(points)]
        return sorted({round(v) for v in grid}) if self.integer else grid

    def suggest(self, trial: Any) -> Any:
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)  # type: ignore[arg-type]
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)  # type: ignore[arg-type]

    def text(self) -> str:
        if self.choices:
            return f"{self.name}={','.join(_show(c) for c in self.choices)}"
        return f"{self.name}={self.low:g}..{self.high:g}{':log' if self.log else ''}"


def _show(value: Any) -> str:
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


_INT_FIELDS = {f.name for f in fields(TrainConfig) if "int" in str(f.type) and "bool" not in str(f.type)}
_BOOL_FIELDS = {f.name for f in fields(TrainConfig) if "bool" in str(f.type)}
_STR_FIELDS = {f.name for f in fields(TrainConfig) if "str" in str(f.type)}


def _value(name: str, text: str) -> Any:
    """'64' -> 64, '1e-3' -> 0.001, 'true' -> True, 'none' -> None (for mixup), else the string."""
    low = text.lower()
    if name in _STR_FIELDS:
        return None if low == "none" and name == "mixup" else text
    if low in ("true", "false"):
        return low == "true"
    if name in _BOOL_FIELDS:
        raise ZooUsageError(f"--space: {name} takes true or false, got {text!r}")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_space(text: str) -> list[Param]:
    """The parameters of ``--space`` text, in order; one-line usage errors for malformed text."""
    tokens = text.split()
    if not tokens:
        raise ZooUsageError("--space is empty: give name=values pairs, e.g. 'lr=1e-4..1e-1:log batch=64,128'")
    params: dict[str, Param] = {}
    for token in tokens:
        name, eq, spec = token.partition("=")
        if not eq or not name or not spec:
            raise ZooUsageError(f"--space: {token!r} is not name=values (e.g. lr=1e-4..1e-1:log)")
        name = ALIASES.get(name, name).replace("-", "_")
        if name in MANAGED:
            raise ZooUsageError(f"--space: set {name} with {MANAGED[name]}, not in the search space")
        if name in params:
            raise ZooUsageError(f"--space: {name} is given twice ({params[name].text()} and {token})")
        params[name] = _param(name, spec, token)
    return list(params.values())


def _param(name: str, spec: str, token: str) -> Param:
    model = name not in {f.name for f in fields(TrainConfig)}
    match = _RANGE.match(spec)
    if match is None:
        parts = spec.split(",")
        if any(not p for p in parts):
            raise ZooUsageError(f"--space: {token!r} has an empty choice")
        choices = tuple(_value(name, p) for p in parts)
        if len(set(map(repr, choices))) != len(choices):
            raise ZooUsageError(f"--space: {token!r} repeats a choice")
        return Param(name, model, choices=choices)
    flags = [f for f in match["flags"].split(":") if f]
    unknown = [f for f in flags if f not in ("log", "int")]
    if unknown:
        raise ZooUsageError(f"--space: {token!r}: unknown flag ':{unknown[0]}' (use :log or :int)")
    low, high = _value(name, match["low"]), _value(name, match["high"])
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
    if not numbers or not all(math.isfinite(v) for v in (low, high)):
        raise ZooUsageError(f"--space: {token!r}: a range needs two numbers, low..high")
    if low >= high:
        raise ZooUsageError(f"--space: {token!r}: low must be below high")
    log = "log" in flags
    if log and low <= 0:
        raise ZooUsageError(f"--space: {token!r}: a :log range must be above 0")
    integer = "int" in flags or (isinstance(low, int) and isinstance(high, int) and name in _INT_FIELDS)
    return Param(name, model, low=low, high=high, log=log, integer=integer)


def default_space(spec: ArchSpec, image_size: int | None = None) -> str:
    """Around the family's own defaults (at ``image_size``, where they depend on it): its optimiser,
    lr /10..x3, weight decay, batch, augmentation."""
    d = family_defaults(spec.family, spec.tags, image_size)
    wd = "1e-5..1e-2" if d.optimizer == "sgd" else "1e-4..1e-1"
    return (f"lr={d.lr / 10:g}..{d.lr * 3:g}:log wd={wd}:log batch=32,64,128 "
            f"optimizer={d.optimizer} augment=none,light,standard")


def builder_options(spec: ArchSpec) -> list[str]:
    """The keyword options the architecture's builder names (``**kwargs`` ones cannot be listed)."""
    try:
        params = inspect.signature(resolve(spec.builder)).parameters.values()
    except (TypeError, ValueError, ImportError, AttributeError):
        return []
    named = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [n for n in named if n not in BUILDER_ARGS] + [k for k, _ in spec.default_kwargs if k not in named]


def check_space(params: list[Param], spec: ArchSpec, fixed: dict[str, Any]) -> None:
    """Every value a valid option, every builder option one the architecture takes, no contradiction."""
    for p in params:
        if not p.model and not p.fixed and p.name not in SEARCHABLE:
            raise ZooUsageError(f"--space: {p.name} can only be fixed (one value), not searched; "
                                f"searchable: {', '.join(SEARCHABLE)}")
    train = {p.name: p for p in params if not p.model}
    for p in train.values():
        for value in p.values():
            try:
                TrainConfig.from_dict({**fixed, p.name: value}).validate()
            except ZooUsageError as exc:
                raise ZooUsageError(f"--space: {p.text()}: {exc}") from None
    _check_contradictions(train, fixed, spec)
    model = [p for p in params if p.model]
    if model:
        _check_model_options(model, spec)


def _possible(name: str, train: dict[str, Param], fixed: dict[str, Any], default: Any) -> set[Any]:
    if name in train:
        return set(train[name].values())
    return {fixed.get(name, default)}


def _check_contradictions(train: dict[str, Param], fixed: dict[str, Any], spec: ArchSpec) -> None:
    family_opt = family_defaults(spec.family, spec.tags).optimizer
    rules = (
        (("momentum", "nesterov"), "optimizer", {"sgd"}, family_opt, "only SGD uses it"),
        (("mixup_alpha",), "mixup", {"mixup", "cutmix", "mixup,cutmix"}, None, "it needs mixup"),
        (("ema_decay",), "ema", {True}, False, "it needs ema=true"),
        (("warmup_epochs",), "scheduler", {"cosine"}, "onecycle", "only the cosine scheduler warms up"),
    )
    for names, gate, wanted, default, why in rules:
        for name in names:
            searched = name in train and not train[name].fixed
            if searched and not _possible(gate, train, fixed, default) & wanted:
                raise ZooUsageError(
                    f"--space: searching {name} while {gate} is never {'/'.join(map(_show, wanted))} "
                    f"is a contradiction ({why})"
                )


def _check_model_options(model: list[Param], spec: ArchSpec) -> None:
    """Build the network on the meta device with each value: the builder itself says what it takes."""
    import torch

    known = builder_options(spec)
    for p in model:
        for value in p.values():
            try:
                with torch.device("meta"):
                    spec.build(num_classes=10, in_channels=spec.in_channels, **{p.name: value})
            except ZooUsageError as exc:
                listed = f"; {spec.name}'s builder takes {', '.join(known)}" if known else ""
                if "does not take" in str(exc) or "unexpected" in str(exc):
                    raise ZooUsageError(
                        f"--space: {p.name} is neither a zoo train option nor an option of {spec.name}"
                        f"{listed}"
                    ) from None
                raise ZooUsageError(f"--space: {p.text()}: {exc}") from None
            except (TypeError, ValueError, RuntimeError) as exc:
                raise ZooUsageError(f"--space: {p.text()}: {spec.name} rejects {value!r} ({exc})") from None


def split_values(params: list[Param], values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(training options, builder options) of one trial's values."""
    model = {p.name for p in params if p.model}
    train = {k: v for k, v in values.items() if k not in model}
    return train, {k: v for k, v in values.items() if k in model}
