"""``zoo train --nproc N``: torchrun for one machine, started from zoo (torch.distributed.run).

Each of the N processes runs ``python -m zoo train ...`` with the same arguments and joins the group
through zoo.training.distributed. A process that fails makes torchrun stop the others; its own
``error:`` line is above, and this module adds one line saying which rank failed.
"""

from __future__ import annotations

import logging
import os

from zoo.errors import ZooError, ZooUsageError


def launch_local(nproc: int, args: list[str], *, batch_size: int | None = None, sync_bn: bool = False,
                 device: str | None = None) -> None:
    """Run ``zoo train ARGS`` in ``nproc`` processes on this machine (CPU threads split among them)."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ZooUsageError(f"--nproc must be a positive integer, got {nproc!r}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ZooUsageError("--nproc cannot be used inside torchrun (it already started the processes)")
    if batch_size is not None and batch_size % nproc:
        raise ZooUsageError(f"--batch-size {batch_size} is the global batch and must be divisible by "
                            f"--nproc {nproc} (try --batch-size {max(1, batch_size // nproc) * nproc})")
    if sync_bn:
        from zoo.training.distributed import check_sync_bn

        check_sync_bn(sync_bn, "cuda" if device != "cpu" and _cuda() else "cpu")
    # torchrun sets OMP_NUM_THREADS=1 (and warns) unless it is set: share the cores instead
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    options = get_args_parser().parse_args(
        ["--standalone", "--nproc-per-node", str(nproc), "--module", "zoo", "train", *args]
    )
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # the line below says it
    try:
        run(options)
    except SignalException as exc:  # Ctrl-C reached every process: each stopped and said where (above)
        from zoo.training.loop import TrainingInterrupted

        raise TrainingInterrupted(f"interrupted ({exc}); the {nproc} training processes stopped") from None
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        codes = {f.exitcode for f in exc.failures.values()}
        error = ZooUsageError if codes == {2} else ZooError
        raise error(f"training process {rank} of {nproc} failed (exit code {failure.exitcode}); "
                    f"its error is above") from None


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
