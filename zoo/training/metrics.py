"""Classification metrics accumulated batch by batch: loss, top-1, top-5, confusion matrix.

Top-5 is only meaningful with at least 10 classes (with 5 classes it is always 100%), so it is
reported as ``None`` below that.
"""

from __future__ import annotations

from typing import Any

import torch

TOP5_MIN_CLASSES = 10


class Meter:
    """Running sums over one pass; ``confusion`` is kept only when asked (eval passes)."""

    def __init__(self, num_classes: int, confusion: bool = False):
        self.num_classes = num_classes
        self.n = 0
        self.loss_sum = 0.0
        self.correct1 = 0
        self.correct5 = 0
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64) if confusion else None

    def update(self, logits: torch.Tensor, targets: torch.Tensor, loss: float) -> None:
        """``targets`` are class indices, or soft labels (mixup) whose argmax counts as the class."""
        logits = logits.detach().float()
        if targets.ndim == 2:
            targets = targets.argmax(1)
        n = targets.numel()
        self.n += n
        self.loss_sum += loss * n
        k = min(5, self.num_classes)
        topk = logits.topk(k, dim=1).indices
        hits = topk == targets[:, None]
        self.correct1 += int(hits[:, 0].sum())
        self.correct5 += int(hits.any(1).sum())
        if self.confusion is not None:
            idx = targets.cpu() * self.num_classes + topk[:, 0].cpu()
            self.confusion += torch.bincount(idx, minlength=self.num_classes**2).view_as(self.confusion)

    @property
    def loss(self) -> float:
        return self.loss_sum / max(1, self.n)

    @property
    def top1(self) -> float:
        return self.correct1 / max(1, self.n)

    @property
    def top5(self) -> float | None:
        return self.correct5 / max(1, self.n) if self.num_classes >= TOP5_MIN_CLASSES else None

    def per_class(self) -> list[float | None]:
        """Recall per true class (``None`` for a class with no samples in this split)."""
        assert self.confusion is not None
        totals = self.confusion.sum(1)
        diag = self.confusion.diag()
        return [
            float(d) / float(t) if t else None for d, t in zip(diag.tolist(), totals.tolist(), strict=True)
        ]

    def summary(self, classes: list[str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.n, "loss": self.loss, "top1": self.top1, "top5": self.top5}
        if self.confusion is not None:
            names = classes or [str(i) for i in range(self.num_classes)]
            out["per_class"] = dict(zip(names, self.per_class(), strict=True))
            out["confusion"] = self.confusion.tolist()
        return out
