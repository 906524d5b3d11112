"""Training on several processes: torch.distributed (DDP) when ``zoo train`` runs under torchrun.

torchrun starts one process per device and sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT; :func:`start` joins the process group (NCCL on CUDA, gloo on CPU) with a timeout, so a
rank that dies or hangs ends the others with an error instead of a wait forever. The rules:

- ``--batch-size`` is the global batch: each of the N processes steps on ``batch_size / N`` images
  and DDP averages the gradients, so ``--lr`` applies unchanged (N processes train like one process at
  the same ``--batch-size``). A world size that does not divide the batch is a usage error.
- Each rank holds and augments only its shard of the training set: a seeded permutation of the whole
  set cut into N equal parts (the last padded from the start, as DistributedSampler pads), shuffled
  within the shard every epoch by the loader's epoch seed. Validation and test are cut into N disjoint
  parts, unpadded, so no image counts twice.
- Loss, accuracy and confusion counts are all-reduced (summed), so every rank reports the same
  numbers and takes the same early-stopping and plateau decisions.
- Rank 0 alone writes the run directory, checkpoints, plots and progress; checkpoints hold the bare
  model (``Parts.model``, never the DDP wrapper), so they load in one process and resume on any N.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from zoo.errors import ZooError, ZooUsageError, error_head

TIMEOUT_ENV = "ZOO_DIST_TIMEOUT"  # seconds a collective may wait for the other ranks
DEFAULT_TIMEOUT_S = 600


def launched() -> bool:
    """True in a process that torchrun started as one of several (WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def env_rank() -> int:
    """This process's global rank (0 outside torchrun); the CLI prints results on rank 0 only."""
    return int(os.environ.get("RANK", "0"))


def timeout_s() -> float:
    raw = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ZooUsageError(f"{TIMEOUT_ENV} must be a positive number of seconds, got {raw!r}")
    return value


@dataclass(frozen=True)
class Dist:
    """This process's place in the group, and the collectives training needs."""

    rank: int
    world: int
    local_rank: int
    device: str
    owns_group: bool  # this module initialised the process group, so it destroys it

    @property
    def writer(self) -> bool:
        return self.rank == 0

    @property
    def seed_offset(self) -> int:
        """Added to the loader's epoch seed so that ranks draw different augmentations (rank 0: 0)."""
        return self.rank * 1_000_003

    def per_rank_batch(self, batch_size: int) -> int:
        if batch_size % self.world:
            raise ZooUsageError(
                f"--batch-size {batch_size} is the global batch and must be divisible by the "
                f"{self.world} processes (try --batch-size {max(1, batch_size // self.world) * self.world})"
            )
        return batch_size // self.world

    def from_rank0(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (the run directory rank 0 chose, ...)."""
        box = [value]
        with lost_peers(self):
            dist.broadcast_object_list(box, src=0)
        return box[0]

    def agree(self, value: Any, what: str) -> None:
        """Every rank must see the same ``value`` (the class list, the split sizes): a data directory
        that differs between nodes is an error on every rank, not a silently mixed run."""
        values: list[Any] = [None] * self.world
        with lost_peers(self):
            dist.all_gather_object(values, value)
        differ = [r for r, v in enumerate(values) if v != values[0]]
        if differ:
            raise ZooUsageError(
                f"rank {differ[0]} sees different {what} than rank 0 ({_short(values[differ[0]])} vs "
                f"{_short(values[0])}): every node must see the same data at the same --data path"
            )

    def reduce_meter(self, meter: Any) -> Any:
        """Sum a zoo.training.metrics.Meter over the ranks, in place."""
        sums = torch.tensor([meter.n, meter.loss_sum, meter.correct1, meter.correct5],
                            dtype=torch.float64, device=self._comm_device)
        with lost_peers(self):
            dist.all_reduce(sums)
            if meter.confusion is not None:
                confusion = meter.confusion.to(self._comm_device)
                dist.all_reduce(confusion)
                meter.confusion = confusion.cpu()
        n, loss_sum, c1, c5 = sums.tolist()
        meter.n, meter.loss_sum, meter.correct1, meter.correct5 = round(n), loss_sum, round(c1), round(c5)
        return meter

    def sync_state(self, model: nn.Module, *, buffers_only: bool = False) -> None:
        """Rank 0's buffers (and parameters) on every rank: BatchNorm statistics drift apart per rank
        (each sees its own batches), and the weights rank 0 validates and saves are the ones that count."""
        tensors = list(model.buffers()) if buffers_only else list(model.state_dict().values())
        with lost_peers(self), torch.no_grad():
            for tensor in tensors:
                dist.broadcast(tensor, src=0)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The DDP wrapper that training steps through (``Parts.forward``)."""
        ids = [self.local_rank] if self.device.startswith("cuda") else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def finish(self) -> None:
        """Wait for every rank at the end of a run: a rank that tears its connections down while
        another is still closing the group can abort (gloo)."""
        with lost_peers(self):
            dist.barrier()

    def stop(self) -> None:
        if self.owns_group:
            _destroy()

    @property
    def _comm_device(self) -> str:
        return self.device if self.device.startswith("cuda") else "cpu"


def start(device: str) -> Dist | None:
    """Join the process group when launched by torchrun with several processes; None otherwise.

    On CUDA each process takes GPU LOCAL_RANK and NCCL; on CPU, gloo."""
    if not launched():
        return None
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda")
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise ZooUsageError(f"rank {rank}: LOCAL_RANK {local_rank} but this machine has "
                                f"{torch.cuda.device_count()} CUDA device(s); use --nproc-per-node <= that")
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    owns = not dist.is_initialized()
    if owns:
        try:
            dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout_s()))
        except (RuntimeError, ValueError) as exc:
            raise ZooError(f"rank {rank}: cannot join the {world} training processes "
                           f"({error_head(exc, 200)})") from None
        atexit.register(_destroy)  # also when a usage error ends the command before training starts
    return Dist(rank, world, local_rank, device, owns)


def check_sync_bn(sync_bn: bool, device: str) -> None:
    if sync_bn and not device.startswith("cuda"):
        raise ZooUsageError("--sync-bn needs CUDA (torch's SyncBatchNorm only runs on GPUs); leave it "
                            "out on CPU")


def convert_sync_bn(model: nn.Module, sync_bn: bool) -> nn.Module:
    """BatchNorm statistics over the global batch instead of each rank's part (``--sync-bn``); the
    state_dict keys are BatchNorm's, so checkpoints still load into the plain model."""
    return nn.SyncBatchNorm.convert_sync_batchnorm(model) if sync_bn else model


def shard_splits(splits: Any, d: Dist, seed: int) -> Any:
    """This rank's part of a zoo.data.DataSplits: an equal, padded share of train, a disjoint share
    of val and test (see the module docstring)."""
    n = len(splits.train)
    order = np.random.default_rng(seed).permutation(n)
    per_rank = -(-n // d.world)
    padded = np.concatenate([order, order[: per_rank * d.world - n]]) if n else order
    train = splits.train.subset(padded[d.rank :: d.world].tolist())
    val = splits.val.subset(range(d.rank, len(splits.val), d.world))
    test = None if splits.test is None else splits.test.subset(range(d.rank, len(splits.test), d.world))
    return replace(splits, train=train, val=val, test=test)


@contextmanager
def lost_peers(d: Dist | None) -> Iterator[None]:
    """A collective that fails because another rank died, or waited past the timeout, becomes one
    line naming this rank (torchrun ends the other local processes itself)."""
    if d is None:
        yield
        return
    try:
        yield
    except (RuntimeError, dist.DistError) as exc:
        text = str(exc)
        if not isinstance(exc, dist.DistError) and not any(
                key in text for key in ("gloo", "NCCL", "c10d", "Connection closed", "Timed out", "timeout")):
            raise
        raise ZooError(f"rank {d.rank}: lost the other training processes ({error_head(exc, 160)}); "
                       f"another rank died or stalled past {TIMEOUT_ENV}={timeout_s():g}s") from None


def _destroy() -> None:
    if dist.is_initialized():
        gc.collect()  # DDP reducers still referring to the group go first, while Python is whole
        dist.destroy_process_group()


def exit_now(code: int = 0) -> None:
    """End a finished torchrun process without interpreter finalisation: gloo's worker threads can
    abort the process ("terminate called without an active exception", SIGABRT) when torch's objects
    are torn down during finalisation, which made torchrun report a run that had completed as failed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
