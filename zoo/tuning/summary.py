"""The summary of a study: what ``zoo.tune`` returns, prints and writes as summary.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# --metric: (key in results.json's val figures, direction)
METRICS = {"val_loss": ("loss", "minimize"), "val_top1": ("top1", "maximize")}


@dataclass
class TrialRow:
    """One trial as the summary table shows it."""

    number: int
    state: str  # complete, pruned, fail, running
    params: dict[str, Any]
    value: float | None
    epochs: int  # epochs trained
    planned: int  # epochs it would have trained unpruned
    seconds: float | None
    run_dir: str | None
    error: str | None = None


@dataclass
class StudySummary:
    """What ``zoo tune`` prints and writes as summary.json."""

    study_dir: str
    study_name: str
    storage: str
    arch: str
    data: str
    metric: str
    direction: str
    sampler: str
    pruner: str
    space: str
    trials: list[TrialRow]
    best: TrialRow | None
    best_config: str | None
    plots: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    def count(self, state: str) -> int:
        return sum(t.state == state for t in self.trials)

    @property
    def epochs_run(self) -> int:
        return sum(t.epochs for t in self.trials if t.state in ("complete", "pruned"))

    @property
    def epochs_planned(self) -> int:
        return sum(t.planned for t in self.trials if t.state in ("complete", "pruned"))

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(complete=self.count("complete"), pruned=self.count("pruned"), failed=self.count("fail"),
                 epochs_run=self.epochs_run, epochs_planned=self.epochs_planned)
        return d
