"""The run directory: the contract between training, evaluation and export.

``runs/<arch>-<n>/`` holds ``config.json`` (everything needed to rebuild the model and its
eval preprocessing), ``classes.json``, ``best.pt`` / ``last.pt`` and reports. Every write is
atomic (temp file + rename), so an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from zoo.errors import WriteError, ZooUsageError, error_head

if TYPE_CHECKING:
    from torch import nn

CONFIG_FILE = "config.json"
CLASSES_FILE = "classes.json"
CHECKPOINTS = ("best", "last")
SPLIT_FILE = "split.json"  # the split record: which files are train, val and test
SKIPPED_FILE = "skipped.txt"  # unreadable files the scan left out
LOCK_FILE = ".zoo.lock"  # flock-ed while a command writes the run; never removed (see RunLock)
# What a run holds before its first checkpoint: a directory with only these was stopped early.
BEFORE_FIRST_CHECKPOINT = frozenset({CONFIG_FILE, CLASSES_FILE, SPLIT_FILE, SKIPPED_FILE})


# ----------------------------------------------------------------------------- atomic writes


@contextlib.contextmanager
def defer_interrupt() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) until the block is done, then deliver it.

    A KeyboardInterrupt raised inside torch.save's C++ writer turns into a RuntimeError and
    loses the file being written; deferring it lets the write finish and the interrupt land
    right after. Only the main thread can install signal handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: received.append(signum))
    failed = True
    try:
        yield
        failed = False
    finally:
        signal.signal(signal.SIGINT, previous)
        if received and not failed:
            if callable(previous):  # Python's default handler raises KeyboardInterrupt here
                previous(signal.SIGINT, None)
            elif previous == signal.SIG_DFL:
                os.kill(os.getpid(), signal.SIGINT)


def temp_sibling(path: Path) -> Path:
    """A hidden, unique name beside ``path``: ``.<name>.<pid>.<random>.tmp`` (see remove_stale_temps)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _open_temp(path: Path) -> IO[bytes]:
    """Create ``path`` exclusively with mode 0666 less the umask, like any file the user makes
    (mkstemp would make it 0600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    return os.fdopen(os.open(path, flags, 0o666), "wb")


class _Sink:
    """The file handed to a writer; remembers an OSError that a C++ writer (torch.save) would
    report as a RuntimeError, so a full disk is still recognised as one."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def free_space(path: Path) -> str:
    """``"1.2 MB free"`` on the file system that holds ``path`` (or its nearest existing parent)."""
    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return "free space unknown"
    value, unit = float(free), "B"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            break
        value /= 1000
    return f"{value:.0f} {unit} free" if unit == "B" else f"{value:.1f} {unit} free"


def write_error(path: str | Path, exc: OSError) -> WriteError:
    """One line for a failed write: the path, the reason, and the free space where it went."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = f"{reason} ({free_space(Path(path))} on that file system)"
    return WriteError(f"cannot write {path}: {reason}", Path(path))


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write through a hidden temp file in the same folder, fsync, then rename over ``path``.

    Ctrl-C is held back until the file is complete (or untouched); an OSError (a full disk, no
    permission) is a one-line ``WriteError`` naming the path; the temp file never stays."""
    path = Path(path)
    tmp = temp_sibling(path)
    with defer_interrupt():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with _open_temp(tmp) as fh:
                sink = _Sink(fh)
                try:
                    write(sink)  # type: ignore[arg-type]
                except Exception:
                    if sink.error is not None:
                        raise sink.error from None
                    raise
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise write_error(path, exc) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (a power cut after it keeps the new file)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not possible on every platform; the file's own fsync still holds
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """UTF-8; a name that is not valid UTF-8 (a surrogate escape from the file system) is written
    back as the bytes it came from."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8", "surrogateescape")))


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    import torch

    return atomic_write(path, lambda fh: torch.save(obj, fh))


# ----------------------------------------------------------------------------- the run directory


def remove_stale_temps(folder: Path) -> list[str]:
    """Delete hidden ``.*.tmp`` files left in ``folder`` by a killed writer (call it holding the
    run's lock: then no live process is writing them)."""
    removed = []
    for item in folder.iterdir():
        if item.name.startswith(".") and item.name.endswith(".tmp") and item.is_file():
            item.unlink(missing_ok=True)
            removed.append(item.name)
    return removed


def _run_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name != LOCK_FILE
            and not (p.name.startswith(".") and p.name.endswith(".tmp"))}


def stopped_before_first_checkpoint(folder: Path) -> bool:
    """A run directory that a kill left with its config but no checkpoint yet."""
    names = _run_files(folder)
    return CONFIG_FILE in names and names <= BEFORE_FIRST_CHECKPOINT


class RunLock:
    """An exclusive ``flock`` on RUN_DIR/.zoo.lock, held while one command writes the run, so a
    second ``zoo train`` on the same directory is refused instead of mixing two runs' files. The
    kernel drops it when the process dies (kill -9 included), so it never goes stale; the file
    stays (unlinking it would let two processes lock two different files)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.reused = False  # the directory held a run stopped before its first checkpoint
        path = run_dir / LOCK_FILE
        try:
            self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise write_error(path, exc) from None
        try:
            import fcntl
        except ImportError:  # not a POSIX system: no locking
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip() or "?"
            self.release()
            raise ZooUsageError(f"{run_dir}: another zoo process (pid {holder}) is writing this run "
                                "directory; wait for it to finish or choose another --out") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def claim_run_dir(run_dir: Path, *, fresh: bool) -> RunLock:
    """Create (if needed) and lock ``run_dir``, then clear what a killed writer left: stale temp
    files, and with ``fresh`` (a new run) a run stopped before its first checkpoint (``reused``).
    A fresh run refuses a directory holding anything else."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(run_dir, exc) from None
    lock = RunLock(run_dir)
    try:
        remove_stale_temps(run_dir)
        if fresh and stopped_before_first_checkpoint(run_dir):
            for name in _run_files(run_dir):
                (run_dir / name).unlink()
            lock.reused = True
        elif fresh and _run_files(run_dir):
            raise ZooUsageError(f"--out {run_dir}: directory is not empty; choose another or --resume it")
    except BaseException:
        lock.release()
        raise
    return lock


def new_run_dir(arch: str, root: str | Path = "runs") -> Path:
    """Create ``root/<arch>-<n>`` with the first free n (never reuses a directory)."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(root, exc) from None
    n = 1
    while True:
        candidate = root / f"{arch}-{n}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
        except OSError as exc:
            raise write_error(candidate, exc) from None


def latest_run(root: str | Path = "runs") -> Path:
    """The most recently trained run under ``root`` (newest best.pt), for commands given no run."""
    root = Path(root)
    runs = [d for d in root.glob("*") if (d / CONFIG_FILE).is_file() and (d / "best.pt").is_file()]
    if not runs:
        raise ZooUsageError(
            f"no trained run under {root}/ to use; train one first, e.g. "
            f"'zoo train simple_cnn_bn --data digits', or name a run directory"
        )
    return max(runs, key=lambda d: (d / "best.pt").stat().st_mtime)


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ZooUsageError(f"{path}: missing ({what})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ZooUsageError(f"{path}: corrupt {what} ({exc})") from None


def load_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's config.json; a clear error when ``run_dir`` is not a run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ZooUsageError(f"{run_dir}: no such run directory")
    if not (run_dir / CONFIG_FILE).is_file():
        raise ZooUsageError(f"{run_dir}: not a run directory (no {CONFIG_FILE})")
    path = run_dir / CONFIG_FILE
    config = read_json(path, "run config")
    if not isinstance(config, dict):
        raise ZooUsageError(f"{path}: corrupt run config (not a JSON object)")
    for key in ("arch", "num_classes", "in_channels", "classes", "preprocessing"):
        if key not in config:
            raise ZooUsageError(f"{path}: missing key '{key}'")
    sizes_ok = all(isinstance(config[k], int) and not isinstance(config[k], bool) and config[k] > 0
                   for k in ("num_classes", "in_channels"))
    classes = config["classes"]
    if not (isinstance(config["arch"], str) and sizes_ok and isinstance(config["preprocessing"], dict)
            and isinstance(classes, list) and len(classes) == config["num_classes"]
            and all(isinstance(c, str) for c in classes)):
        raise ZooUsageError(f"{path}: corrupt run config (arch, num_classes, in_channels, classes or "
                            "preprocessing has the wrong type, or the class list the wrong length)")
    return config


def resolve_checkpoint(target: str | Path, checkpoint: str = "best") -> tuple[Path, Path]:
    """(run directory, checkpoint file) from a run directory or a ``.pt`` inside one."""
    target = Path(target)
    if target.is_file():
        return target.parent, target
    if checkpoint not in CHECKPOINTS:
        raise ZooUsageError(f"--checkpoint must be one of {', '.join(CHECKPOINTS)}, got '{checkpoint}'")
    load_config(target)
    path = target / f"{checkpoint}.pt"
    if not path.is_file():
        raise ZooUsageError(f"{path}: no such checkpoint")
    return target, path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` (never runs pickled code), then the structure every
    command relies on: a mapping whose "model" is a state dict (names -> tensors). A file that
    is not that is bad input: a one-line usage error (exit 2), like a missing file."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ZooUsageError(f"{path}: not a readable checkpoint (corrupt or truncated: "
                            f"{type(exc).__name__})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise ZooUsageError(f"{path}: not a zoo checkpoint (no 'model' entry)")
    weights = state["model"]
    if not isinstance(weights, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()
    ):
        raise ZooUsageError(f"{path}: not a zoo checkpoint ('model' is not a state dict of tensors)")
    return state


def build_model(config: dict[str, Any]) -> nn.Module:
    """The architecture a run config describes, with random weights."""
    from zoo.catalog import get_model

    return get_model(
        config["arch"],
        num_classes=int(config["num_classes"]),
        in_channels=int(config["in_channels"]),
        **config.get("model_kwargs", {}),
    )


def load_model(target: str | Path, checkpoint: str = "best") -> tuple[nn.Module, dict[str, Any]]:
    """A trained model in eval mode and its run config, from a run dir or checkpoint file."""
    run_dir, path = resolve_checkpoint(target, checkpoint)
    config = load_config(run_dir)
    state = load_checkpoint(path)
    model = build_model(config)
    weights = state["model"]  # training stores the weights to evaluate (EMA if enabled) here
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise ZooUsageError(f"{path}: weights do not fit {config['arch']} ({error_head(exc)})") from None
    return model.eval(), config
