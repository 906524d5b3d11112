"""What every layer does while the network trains (``zoo train --activation-stats``).

Forward hooks on the rows ``zoo info`` shows (``zoo.analysis.row_modules``: a residual block, a
conv-BN-act unit, or a conv/linear/norm layer outside any block), restricted to rows that own
parameters, record every K training steps each row's output mean, standard deviation, fraction
near zero and a histogram of log10|activation|. From those, :func:`diagnose` names the layers
that end training dead (almost all outputs near zero), collapsed (std near zero) or exploded.

Cost: nothing when off (no hook exists). When on, one pre-hook on the whole model counts training
steps and attaches the row hooks only for the recorded step, so K-1 of every K steps run unhooked;
the recorder times its own work so every run reports its overhead.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.analysis import row_modules
from zoo.run import atomic_write_text

CSV_FILE = "activations.csv"
PLOT_FILE = "activations.png"
NEAR_ZERO = 1e-3  # |x| below this counts as "near zero"
HIST_LO, HIST_HI, HIST_BINS = -7.0, 3.0, 40  # log10|x| bins of 0.25 decades; the end bins take the rest
MAX_ELEMENTS = 1 << 16  # per row and record: the cost stays ~2 ms however large the output
DEAD_FRACTION = 0.95  # a row is "dead" when more of its outputs than this are near zero
STD_COLLAPSED, STD_EXPLODED = 1e-3, 1e3  # input is normalised to std 1; healthy rows stay within
STAT_COLUMNS = ("step", "epoch", "layer", "type", "mean", "std", "near_zero")
HIST_COLUMNS = tuple(f"h{i:02d}" for i in range(HIST_BINS))


@dataclass
class Record:
    """One row's output statistics at one training step."""

    step: int
    epoch: int
    layer: str
    type: str
    mean: float
    std: float
    near_zero: float
    hist: list[float]  # fraction of outputs per log10|x| bin, sums to 1

    def as_row(self) -> dict[str, Any]:
        row = {k: getattr(self, k) for k in STAT_COLUMNS}
        row.update(zip(HIST_COLUMNS, self.hist, strict=True))
        return row

    @classmethod
    def from_row(cls, row: dict[str, str]) -> Record:
        return cls(int(row["step"]), int(row["epoch"]), row["layer"], row["type"], float(row["mean"]),
                   float(row["std"]), float(row["near_zero"]), [float(row[c]) for c in HIST_COLUMNS])


@dataclass
class Finding:
    """A row that ends training unhealthy, and the epoch from which it stayed so."""

    layer: str
    type: str
    problem: str  # "exploded", "collapsed" or "dead"
    since_epoch: int
    std: float
    near_zero: float

    def describe(self) -> str:
        what = (f"std {self.problem} ({self.std:.2g})" if self.problem != "dead"
                else f"{100 * self.near_zero:.0f}% of outputs near zero")
        return f"{self.layer} ({self.type}) {what} since epoch {self.since_epoch}"


def tensor_stats(y: torch.Tensor) -> tuple[float, float, float, list[float]]:
    """(mean, std, fraction with |x| < NEAR_ZERO, log10|x| histogram) of one output tensor (batch first),
    from at most MAX_ELEMENTS of its values."""
    x = y.detach()
    if x.dim() > 1 and x.shape[0] > 1:  # the first images of the (shuffled) batch, up to MAX_ELEMENTS values
        x = x[: max(1, MAX_ELEMENTS // max(1, x[0].numel()))]
    x = x.reshape(-1)
    if x.numel() > MAX_ELEMENTS:  # one image is more: an evenly strided sample of it
        x = x[:: -(-x.numel() // MAX_ELEMENTS)]
    x = x.float()
    a = x.abs()
    logs = torch.log10(a.clamp_min(10.0**HIST_LO)).clamp_max(HIST_HI)
    hist = torch.histc(logs, bins=HIST_BINS, min=HIST_LO, max=HIST_HI) / x.numel()
    std = x.std() if x.numel() > 1 else x.new_zeros(())
    head = torch.stack([x.mean(), std, (a < NEAR_ZERO).float().mean()])
    mean, std, near = head.tolist()
    return mean, std, near, hist.tolist()


class ActivationRecorder:
    """Hooks on ``model``'s rows; call :meth:`end_epoch` after each epoch and :meth:`close` at the end."""

    def __init__(
        self,
        model: nn.Module,
        run_dir: Path,
        *,
        every: int,
        steps_per_epoch: int,
        start_step: int = 0,
    ) -> None:
        self.rows = [(path, m) for path, m, _ in row_modules(model, 0) if any(True for _ in m.parameters())]
        self.every, self.steps_per_epoch = every, max(1, steps_per_epoch)
        self.step = start_step
        self.run_dir = run_dir
        self.records = [r for r in read_records(run_dir / CSV_FILE) if r.step <= start_step]
        self.seconds = 0.0  # time spent computing statistics (the recorder's own cost)
        self._row_handles: list[Any] = []
        self._handles = [model.register_forward_pre_hook(self._before),
                         model.register_forward_hook(self._after)]

    def _before(self, model: nn.Module, args: Any) -> None:
        if not model.training:  # validation passes are not training steps
            return
        self.step += 1
        if (self.step - 1) % self.every == 0:  # steps 1, K+1, 2K+1, ...: the initial state is recorded
            self._row_handles = [m.register_forward_hook(self._hook(path)) for path, m in self.rows]

    def _after(self, model: nn.Module, args: Any, output: Any) -> None:
        for handle in self._row_handles:
            handle.remove()
        self._row_handles = []

    def _hook(self, path: str) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor):
                return
            start = time.perf_counter()
            with torch.no_grad():
                mean, std, near, hist = tensor_stats(output)
            epoch = (self.step - 1) // self.steps_per_epoch + 1
            self.records.append(Record(self.step, epoch, path, type(module).__name__, mean, std, near, hist))
            self.seconds += time.perf_counter() - start

        return hook

    def end_epoch(self, row: dict[str, Any]) -> None:
        """An ``on_epoch`` callback: activations.csv is rewritten with everything so far."""
        write_records(self.run_dir / CSV_FILE, self.records)

    def detach(self) -> None:
        """Remove every hook (the model runs as if the recorder had never been there)."""
        for handle in self._handles + self._row_handles:
            handle.remove()
        self._handles, self._row_handles = [], []

    def close(self) -> list[Finding]:
        """Remove every hook, write activations.csv and .png; the unhealthy rows."""
        self.detach()
        if not self.records:
            return []
        write_records(self.run_dir / CSV_FILE, self.records)
        plot_records(self.run_dir / PLOT_FILE, self.records)
        return diagnose(self.records)


def _problem(r: Record) -> str | None:
    if not math.isfinite(r.std) or r.std > STD_EXPLODED:
        return "exploded"
    if r.std < STD_COLLAPSED:
        return "collapsed"
    if r.near_zero > DEAD_FRACTION:
        return "dead"
    return None


def diagnose(records: Sequence[Record]) -> list[Finding]:
    """Rows whose last record is unhealthy; ``since_epoch`` starts their final unbroken unhealthy streak."""
    by_layer: dict[str, list[Record]] = {}
    for r in records:
        by_layer.setdefault(r.layer, []).append(r)
    findings = []
    for layer, rows in by_layer.items():
        last = rows[-1]
        problem = _problem(last)
        if problem is None:
            continue
        first = last
        for r in reversed(rows):
            if _problem(r) is None:
                break
            first = r
        findings.append(Finding(layer, last.type, problem, first.epoch, last.std, last.near_zero))
    return findings


def warning_text(findings: Sequence[Finding]) -> str:
    """The one-line warning that names every unhealthy row."""
    return (f"activation stats: {len(findings)} layer(s) unhealthy at the end of training: "
            + "; ".join(f.describe() for f in findings) + f" (see {PLOT_FILE})")


def read_records(path: Path) -> list[Record]:
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return [Record.from_row(row) for row in csv.DictReader(fh)]


def write_records(path: Path, records: Sequence[Record]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=STAT_COLUMNS + HIST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow(r.as_row())
    atomic_write_text(path, buf.getvalue())


def plot_records(path: Path, records: Sequence[Record], columns: int = 4) -> None:
    """Mean, std and near-zero fraction per layer over steps, then one log10|x|-histogram-over-time
    heat map per layer (colour: log of the fraction of outputs in the bin)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from zoo.training.report import save_figure

    layers = list(dict.fromkeys(r.layer for r in records))
    series = {name: [r for r in records if r.layer == name] for name in layers}
    grid_rows = 1 + -(-len(layers) // columns)
    fig = plt.figure(figsize=(4.2 * columns, 3.2 + 2.4 * (grid_rows - 1)))
    spec = fig.add_gridspec(grid_rows, columns, height_ratios=[1.4] + [1] * (grid_rows - 1))
    panels = (("mean", "mean", "linear"), ("std", "std", "log"),
              ("near_zero", f"fraction |x| < {NEAR_ZERO:g}", "linear"))
    span = columns // 3 or 1
    for i, (key, title, scale) in enumerate(panels):
        ax = fig.add_subplot(spec[0, i * span : (i + 1) * span] if columns >= 3 else spec[0, i % columns])
        for name in layers:
            ax.plot([r.step for r in series[name]], [getattr(r, key) for r in series[name]], lw=1, label=name)
        ax.set(title=title, xlabel="step", yscale=scale)
        ax.grid(alpha=0.3)
    if len(layers) <= 16:
        fig.axes[0].legend(fontsize=6, ncol=2)
    for i, name in enumerate(layers):
        rows = series[name]
        ax = fig.add_subplot(spec[1 + i // columns, i % columns])
        heat = np.log1p(1000 * np.asarray([r.hist for r in rows]).T)
        ax.imshow(heat, aspect="auto", origin="lower", cmap="viridis",
                  extent=(rows[0].step, max(rows[-1].step, rows[0].step + 1), HIST_LO, HIST_HI))
        ax.set_title(f"{name} ({rows[0].type})", fontsize=8)
        ax.set_ylabel("log10|x|", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    save_figure(fig, path)


def summary_table(records: Sequence[Record], findings: Sequence[Finding]) -> Any:
    """A ``zoo info``-style table: each row's last recorded statistics and its status."""
    from rich.table import Table

    last: dict[str, Record] = {}
    for r in records:
        last[r.layer] = r
    status = {f.layer: f"{f.problem} since epoch {f.since_epoch}" for f in findings}
    table = Table(title=f"activations at step {max(r.step for r in records)} ({CSV_FILE}, {PLOT_FILE})")
    for name, justify in (("layer", "left"), ("type", "left"), ("mean", "right"), ("std", "right"),
                          ("near zero", "right"), ("status", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for name, r in last.items():
        table.add_row(name, r.type, f"{r.mean:.3g}", f"{r.std:.3g}", f"{100 * r.near_zero:.1f}%",
                      status.get(name, "ok"))
    return table
