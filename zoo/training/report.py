"""What a person (or a script) sees: progress bar, per-epoch lines, summary table, CSV and plots.

Progress goes to stderr so ``--json`` leaves stdout to the one JSON document. Plots use
matplotlib's Agg backend: no display needed, and importing it does not open a window.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from zoo.output import console, printable
from zoo.run import atomic_write, atomic_write_text

CSV_COLUMNS = (
    "epoch",
    "lr",
    "train_loss",
    "train_top1",
    "val_loss",
    "val_top1",
    "val_top5",
    "img_per_s",
    "epoch_s",
    "loader_img_per_s",
    "model_img_per_s",
)


def write_metrics_csv(path: Path, history: Sequence[dict[str, Any]]) -> None:
    """Rewrite metrics.csv from the history (kept in last.pt, so the two never disagree)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in CSV_COLUMNS})
    atomic_write_text(path, buf.getvalue())


def save_figure(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)


def plot_curves(path: Path, history: Sequence[dict[str, Any]]) -> None:
    """curves.png: loss and top-1 per epoch, train vs val."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train_loss", "train"), ("val_loss", "val")):
        ax_loss.plot(epochs, [r[key] for r in history], marker=".", label=label)
    for key, label in (("train_top1", "train"), ("val_top1", "val")):
        ax_acc.plot(epochs, [r[key] for r in history], marker=".", label=label)
    losses = [r[k] for r in history for k in ("train_loss", "val_loss") if r.get(k) and r[k] > 0]
    spread = max(losses) / min(losses) if losses else 1.0
    # one diverging epoch (val loss 100 next to 0.1) would flatten a linear axis into a line at zero
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss" + (" (log scale)" if spread > 20 else ""),
                yscale="log" if spread > 20 else "linear")
    ax_acc.set(xlabel="epoch", ylabel="top-1 accuracy", title="accuracy")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.5 on short runs
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def plot_confusion(
    path: Path, confusion: Sequence[Sequence[int]], classes: Sequence[str], title: str
) -> None:
    """confusion.png: rows are true classes, columns predictions; counts written when legible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = [printable(c) for c in classes]  # folder names that are not UTF-8 cannot be drawn
    n = len(classes)
    size = min(16.0, 3.0 + 0.45 * n)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(confusion, cmap="Blues")
    if n <= 30:
        ax.set_xticks(range(n), labels=classes, rotation=90)
        ax.set_yticks(range(n), labels=classes)
    if n <= 20:
        peak = max(max(row) for row in confusion) or 1
        for i, row in enumerate(confusion):
            for j, v in enumerate(row):
                ax.text(
                    j,
                    i,
                    str(v),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if v > peak / 2 else "black",
                )
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    save_figure(fig, path)


def plural(n: int, noun: str) -> str:
    """``1 epoch``, ``3 epochs``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def speed_text(row: dict[str, Any]) -> str:
    """``449 img/s (loader 25,000, model 457)``: the loader and the model alone, so the one that
    bounds training shows (rows without a loader clock print the total only)."""
    text = f"{row['img_per_s']:,.0f} img/s"
    if row.get("loader_img_per_s") is not None and row.get("model_img_per_s") is not None:
        text += f" (loader {row['loader_img_per_s']:,.0f}, model {row['model_img_per_s']:,.0f})"
    return text


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.2f}%" if pct else f"{value:.4f}"


class Reporter:
    """Console output of a run; silent when ``quiet`` (``--quiet`` and ``--json``)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.err = Console(stderr=True, highlight=False)
        self.out = console()
        self._progress: Progress | None = None
        self._task: Any = None

    def info(self, message: str) -> None:
        if not self.quiet:
            self.err.print(message, soft_wrap=True)

    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None:
        if self.quiet or not self.err.is_terminal:  # a log gets the epoch lines only, no bar residue
            return
        self._progress = Progress(
            TextColumn(f"epoch {epoch}/{epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.2%}  {task.fields[speed]}"),
            TimeRemainingColumn(),
            console=self.err,
            transient=True,
        )
        self._task = self._progress.add_task("train", total=batches, loss=0.0, acc=0.0, speed="")
        self._progress.start()

    def batch(self, loss: float, acc: float, img_per_s: float, loader_img_per_s: float | None = None,
              model_img_per_s: float | None = None) -> None:
        if self._progress is not None:
            speed = speed_text({"img_per_s": img_per_s, "loader_img_per_s": loader_img_per_s,
                                "model_img_per_s": model_img_per_s})
            self._progress.update(self._task, advance=1, loss=loss, acc=acc, speed=speed)

    def end_epoch(self, row: dict[str, Any], epochs: int, best: bool) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        self.info(
            f"epoch {row['epoch']:>3}/{epochs}  lr {row['lr']:.2e}  "
            f"train loss {row['train_loss']:.4f} acc {_fmt(row['train_top1'], True)}  "
            f"val loss {row['val_loss']:.4f} acc {_fmt(row['val_top1'], True)}  "
            f"{speed_text(row)}  {row['epoch_s']:.1f}s{'  *best' if best else ''}"
        )

    def summary(self, result: dict[str, Any]) -> None:
        if self.quiet:
            return
        table = Table(title=f"{result['arch']} on {result['data']}", show_header=True)
        table.add_column("split")
        table.add_column("checkpoint")
        table.add_column("loss", justify="right")
        table.add_column("top-1", justify="right")
        table.add_column("top-5", justify="right")
        for split in ("val", "test"):
            m = result.get(split)
            if m:
                table.add_row(
                    split,
                    f"best (epoch {result['best_epoch']})",
                    _fmt(m["loss"]),
                    _fmt(m["top1"], True),
                    _fmt(m["top5"], True),
                )
        self.out.print(table)
        self.out.print(
            f"{plural(result['epochs_run'], 'epoch')} in {result['train_seconds']:.1f}s"
            f"{' (stopped early)' if result['stopped_early'] else ''}; run directory: {result['run_dir']}"
        )

    def eval_table(self, result: dict[str, Any]) -> None:
        if self.quiet:
            return
        self.out.print(
            f"{result['run_dir']} ({result['checkpoint']}.pt) on {result['split']}: "
            f"top-1 {_fmt(result['top1'], True)}, top-5 {_fmt(result['top5'], True)}, "
            f"loss {_fmt(result['loss'])}, n={result['n']}"
        )
        table = Table()
        table.add_column("class")
        table.add_column("accuracy", justify="right")
        table.add_column("n", justify="right")
        for i, (name, acc) in enumerate(result["per_class"].items()):
            table.add_row(printable(name), _fmt(acc, True), str(sum(result["confusion"][i])))
        self.out.print(table)
