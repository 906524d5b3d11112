"""Faults and bad input, reproduced for real: each test failed before its fix (issue 9).

Real files, real processes and signals, a real full filesystem where the machine lets us mount
one (root and ``mount -t tmpfs``), and a fault-injecting file object where it does not.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from zoo.cli import app
from zoo.data import load_splits
from zoo.errors import WriteError
from zoo.run import defer_interrupt

FAST = ["--image-size", "16", "--workers", "0", "--quiet", "--epochs", "1"]


pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args: object):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


# ------------------------------------------------------------------ 7: a folder named like a data set


def test_a_folder_named_like_a_data_set_is_ambiguous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("data", "export", "digits", "digits").exit_code == 0
    result = invoke("train", "simple_cnn", "--data", "digits", "--runs-dir", "runs", *FAST)
    assert result.exit_code == 2
    assert result.stderr == ("error: --data digits is ambiguous: it names the data set 'digits' and the "
                             "directory ./digits; write --data ./digits for the directory or --data "
                             "dataset:digits for the data set\n")
    assert not Path("runs").exists()
    assert load_splits("./digits").split_record["kind"] == "folder"
    assert load_splits(tmp_path / "digits").split_record["kind"] == "folder"
    assert load_splits("dataset:digits").split_record["kind"] == "builtin"
    result = invoke("train", "simple_cnn", "--data", "dataset:digits", "--out", "run", *FAST)
    assert result.exit_code == 0, result.output
    config = json.loads(Path("run/config.json").read_text())
    assert config["data"]["source"] == "digits"  # the name, as before: old runs read the same
    # the run's own record says which it was: resume and eval are not ambiguous
    assert invoke("train", "simple_cnn", "--resume", "run", "--epochs", "2", "--quiet").exit_code == 0
    assert invoke("eval", "run", "--json").exit_code == 0
    monkeypatch.chdir(tmp_path / "digits")  # no such folder here: the bare name is the data set
    assert load_splits("digits").split_record["kind"] == "builtin"


# ------------------------------------------------------------------ helpers: real processes, a small disk

ZOO = str(Path(sys.executable).parent / "zoo")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def zoo_process(*args: object, driver: str = "") -> subprocess.Popen[str]:
    """`zoo ARGS` in a fresh interpreter; ``driver`` is Python run first (to inject a fault)."""
    argv = ["zoo", *(str(a) for a in args)]
    code = f"{driver}\nimport sys\nfrom zoo.cli import main\nsys.argv = {argv!r}\nmain()"
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV, preexec_fn=_default_sigint)


def _default_sigint() -> None:
    """A shell's background job ignores SIGINT, and children inherit that: give Ctrl-C back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes, but the lock file's (it holds the pid of the last process to lock it)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name != ".zoo.lock"}


def epoch_of(checkpoint: Path) -> int:
    return int(torch.load(checkpoint, weights_only=True)["loop"]["epoch"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch run to copy: tests damage copies, never this."""
    out = tmp_path_factory.mktemp("trained") / "run"
    result = invoke("train", "simple_cnn", "--data", "digits", "--out", out, *FAST)
    assert result.exit_code == 0, result.output
    return out


def copy_run(trained: Path, where: Path) -> Path:
    target = where / "run"
    shutil.copytree(trained, target)
    return target


@contextlib.contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted at ``where`` (root only; skipped where mounting is refused)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or mounted.returncode})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path, leave: int) -> None:
    """Fill the file system holding ``folder`` until about ``leave`` bytes are free."""
    (folder / "filler").unlink(missing_ok=True)
    free = shutil.disk_usage(folder).free
    with open(folder / "filler", "wb") as fh, contextlib.suppress(OSError):
        fh.write(b"\0" * max(0, free - leave))


def one_error_line(stderr: str) -> str:
    """The one ``error:`` line of a failed command (progress lines may precede it), no traceback."""
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and stderr.rstrip().endswith(errors[0]), stderr
    assert "Traceback" not in stderr
    return errors[0]


# ------------------------------------------------------------------ 9: two runs, one --out


HOLD_BEFORE_EPOCH_2_SAVE = """
import os, time, torch
_save = torch.save

def _save_when_released(obj, f, *args, **kwargs):
    if isinstance(obj, dict) and obj.get("loop", {}).get("epoch") == 2:
        deadline = time.monotonic() + 240
        while not os.path.exists(os.environ["ZOO_TEST_RELEASE"]) and time.monotonic() < deadline:
            time.sleep(0.05)
    return _save(obj, f, *args, **kwargs)

torch.save = _save_when_released
"""


def test_second_run_on_the_same_out_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, release = tmp_path / "shared", tmp_path / "release"
    # The first run holds its lock, mid-run, until released: the second process takes seconds to import
    # torch, and a run of three tiny epochs could otherwise finish first (it did on CI).
    monkeypatch.setitem(ENV, "ZOO_TEST_RELEASE", str(release))
    first = zoo_process("train", "simple_cnn", "--data", "digits", "--out", out, *FAST[:-2], "--epochs", "3",
                        "--seed", "1", driver=HOLD_BEFORE_EPOCH_2_SAVE)
    deadline = time.monotonic() + 120
    while not (out / "last.pt").exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        code, _, err = finish(zoo_process("train", "simple_cnn", "--data", "digits", "--out", out, *FAST))
    finally:
        release.touch()
    assert code == 2
    assert one_error_line(err) == (f"error: {out}: another zoo process (pid {first.pid}) is writing this "
                                   "run directory; wait for it to finish or choose another --out")
    assert finish(first)[0] == 0
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["seed"] == 1 and epoch_of(out / "last.pt") == 3  # one run's files only
    code, _, err = finish(zoo_process("train", "simple_cnn", "--data", "digits", "--out", out, *FAST))
    assert code == 2 and "directory is not empty" in one_error_line(err)


# ------------------------------------------------------------------ 11: Ctrl-C while last.pt is written

SIGINT_DURING_SAVE = """
import os, signal, torch
_save, _fired = torch.save, []

class _Interrupting:
    def __init__(self, fh):
        self.fh, self.writes = fh, 0
    def write(self, data):
        self.writes += 1
        if self.writes == 3 and not _fired:
            _fired.append(1)
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of torch.save's C++ writer
        return self.fh.write(data)
    def __getattr__(self, name):
        return getattr(self.fh, name)

def _save_with_interrupt(obj, f, *args, **kwargs):
    if isinstance(obj, dict) and obj.get("loop", {}).get("epoch") == 2:
        f = _Interrupting(f)
    return _save(obj, f, *args, **kwargs)

torch.save = _save_with_interrupt
"""


def test_ctrl_c_during_the_last_pt_write_finishes_the_save(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, _, err = finish(zoo_process("train", "simple_cnn", "--data", "digits", "--out", out, *FAST[:-2],
                                      "--epochs", "5", "--patience", "0", driver=SIGINT_DURING_SAVE))
    assert code == 130, err
    assert "Traceback" not in err and f"{out / 'last.pt'} holds epoch 2" in err
    assert epoch_of(out / "last.pt") == 2
    assert len((out / "metrics.csv").read_text().splitlines()) == 3  # header + 2 epochs
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_defer_interrupt_delivers_after_the_block() -> None:
    done = []
    # Python's own handler, even where the suite runs as a background job (SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), defer_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
            done.append("finished")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert done == ["finished"]


# ------------------------------------------------------------------ 12: a full disk


class FullDisk(io.FileIO):
    """A real file that takes ``budget`` bytes, then fails as a full disk does."""

    budget = 4096

    def write(self, data):  # type: ignore[override]
        if self.tell() + len(data) > self.budget:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def test_full_disk_on_a_checkpoint_write_is_one_error_and_keeps_the_old_file(
        trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The logic, with a fault-injecting file (no mount needed)."""
    import zoo.run

    run = copy_run(trained, tmp_path)
    before = (run / "last.pt").read_bytes()
    monkeypatch.setattr(zoo.run, "_open_temp", lambda path: io.BufferedWriter(FullDisk(path, "xb")))
    with pytest.raises(WriteError) as info:
        zoo.run.atomic_torch_save(torch.load(run / "last.pt", weights_only=True), run / "last.pt")
    assert str(info.value).startswith(f"cannot write {run / 'last.pt'}: No space left on device (")
    assert "free on that file system)" in str(info.value)
    assert (run / "last.pt").read_bytes() == before
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_full_disk_for_real(trained: Path, tmp_path: Path) -> None:
    """train/resume, eval, export (TorchScript, ONNX) and data export on a real, full tmpfs."""
    with small_filesystem(tmp_path / "mnt", "24m") as disk:
        run = copy_run(trained, disk)
        intact = snapshot(run)
        cases = [
            (["train", "simple_cnn", "--resume", run, "--epochs", "2", "--quiet"], run),
            (["eval", run, "--json"], run / "eval.json"),
            (["export", run, "--format", "torchscript", "--no-validate"], run / "export" / "model.pt"),
            (["export", run, "--format", "onnx", "--no-validate"], run / "export" / "model.onnx"),
            (["data", "export", "digits", disk / "digits"], disk / "digits"),
        ]
        for args, target in cases:
            fill(disk, leave=16_000 if args[0] == "train" else 0)  # train fails on last.pt, not before
            code, _, err = finish(zoo_process(*args))
            assert code == 1, (args, code, err)
            line = one_error_line(err)
            assert "No space left on device" in line and "free on that file system" in line, line
            assert str(target) in line or str(run) in line, line
            leftovers = [p for p in disk.rglob("*") if p.name.endswith(".tmp") or ".tmp" in p.name]
            assert not leftovers, (args, leftovers)
            assert not (disk / "digits").exists()
            assert {k: v for k, v in snapshot(run).items() if k != "config.json"} == {
                k: v for k, v in intact.items() if k != "config.json"}, args
            json.loads((run / "config.json").read_text())  # rewritten whole or not at all
        assert epoch_of(run / "last.pt") == 1
        (disk / "filler").unlink()
        assert finish(zoo_process("data", "export", "digits", disk / "digits", "--split", "test"))[0] == 0


# ------------------------------------------------------------------ 14, 17: killed runs

KILL_AT_FIRST_CHECKPOINT = """
import os, signal
import zoo.training.loop
zoo.training.loop.save_checkpoint = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
"""

KILL_DURING_SECOND_SAVE = """
import os, signal, torch
_save = torch.save

class _Killing:
    def __init__(self, fh):
        self.fh, self.writes = fh, 0
    def write(self, data):
        self.writes += 1
        if self.writes == 3:
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9 in the middle of writing last.pt
        return self.fh.write(data)
    def __getattr__(self, name):
        return getattr(self.fh, name)

def _save_then_die(obj, f, *args, **kwargs):
    if isinstance(obj, dict) and obj.get("loop", {}).get("epoch") == 2:
        f = _Killing(f)
    return _save(obj, f, *args, **kwargs)

torch.save = _save_then_die
"""


def test_a_run_killed_before_its_first_checkpoint_is_resumable_and_reusable(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, _, _ = finish(zoo_process("train", "simple_cnn", "--data", "digits", "--out", out, *FAST,
                                    driver=KILL_AT_FIRST_CHECKPOINT))
    assert code == -signal.SIGKILL
    assert (out / "config.json").is_file() and not (out / "last.pt").exists()
    resumed = tmp_path / "resumed"
    shutil.copytree(out, resumed)
    result = invoke("train", "simple_cnn", "--resume", resumed, "--quiet")
    assert result.exit_code == 0, result.output
    assert epoch_of(resumed / "last.pt") == 1
    result = invoke("train", "simple_cnn", "--data", "digits", "--out", out, *FAST[:-3], "--epochs", "1")
    assert result.exit_code == 0, result.output
    assert f"{out}: a run stopped before its first checkpoint; starting it afresh" in result.stderr
    assert epoch_of(out / "last.pt") == 1


def test_kill_9_during_a_checkpoint_write_leaves_a_resumable_run_and_no_temp_files(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, _, _ = finish(zoo_process("train", "simple_cnn", "--data", "digits", "--out", out, *FAST[:-2],
                                    "--epochs", "3", "--patience", "0", driver=KILL_DURING_SECOND_SAVE))
    assert code == -signal.SIGKILL
    stale = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert stale and all(name.startswith(".last.pt.") for name in stale)  # what kill -9 leaves
    assert epoch_of(out / "last.pt") == 1  # the previous, complete checkpoint
    result = invoke("train", "simple_cnn", "--resume", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert epoch_of(out / "last.pt") == 3
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ 16: checkpoints of the wrong shape


def damaged(checkpoint: dict, case: str) -> dict:
    ckpt = {**checkpoint, "loop": dict(checkpoint["loop"])}
    first = next(iter(ckpt["model"]))
    if case == "model is a list":
        ckpt["model"] = list(ckpt["model"].values())
    elif case == "model holds a number":
        ckpt["model"] = {**ckpt["model"], first: 3}
    elif case == "wrong tensor shape":
        ckpt["model"] = {**ckpt["model"], first: torch.zeros(3, 3)}
    elif case == "loop lacks a key":
        del ckpt["loop"]["best_loss"]
    elif case == "negative epoch":
        ckpt["loop"]["epoch"] = -1
    elif case == "history is short":
        ckpt["loop"]["history"] = []
    elif case == "optimizer state shape":
        state = {k: dict(v) for k, v in ckpt["optimizer"]["state"].items()}
        key = next(iter(state))
        state[key] = {n: (torch.zeros(7) if isinstance(t, torch.Tensor) and t.ndim else t)
                      for n, t in state[key].items()}
        ckpt["optimizer"] = {**ckpt["optimizer"], "state": state}
    elif case == "no rng":
        del ckpt["rng"]
    return ckpt


@pytest.mark.parametrize("case", ["model is a list", "model holds a number", "wrong tensor shape",
                                  "loop lacks a key", "negative epoch", "history is short",
                                  "optimizer state shape", "no rng"])
def test_malformed_checkpoint_is_one_usage_error_and_touches_nothing(trained: Path, tmp_path: Path,
                                                                    case: str) -> None:
    run = copy_run(trained, tmp_path)
    torch.save(damaged(torch.load(run / "last.pt", weights_only=True), case), run / "last.pt")
    if case.startswith(("model", "wrong")):
        best = torch.load(run / "best.pt", weights_only=True) | {"loop": {}}
        torch.save(damaged(best, case), run / "best.pt")
    before = snapshot(run)
    commands = [["train", "simple_cnn", "--resume", run, "--epochs", "2", "--quiet"]]
    if case.startswith(("model", "wrong")):
        commands += [["eval", run, "--json"], ["export", run, "--no-validate"]]
    for args in commands:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        line = one_error_line(result.stderr)
        assert "last.pt" in line or "best.pt" in line, line
        assert snapshot(run) == before, args  # config.json included: nothing was rewritten
        assert not (run / "export").exists()


# ------------------------------------------------------------------ 18: file modes


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_run_files_get_the_umask_modes_every_other_file_gets(tmp_path: Path, umask: int) -> None:
    out = tmp_path / "run"
    driver = f"import os\nos.umask({umask:#o})"
    code, _, err = finish(zoo_process("train", "simple_cnn", "--data", "digits", "--out", out, *FAST,
                                      driver=driver))
    assert code == 0, err
    code, _, err = finish(zoo_process("export", out, "--no-validate", driver=driver))
    assert code == 0, err
    expected = 0o666 & ~umask
    modes = {str(p.relative_to(out)): p.stat().st_mode & 0o777 for p in out.rglob("*") if p.is_file()}
    assert modes and set(modes.values()) == {expected}, modes


# ------------------------------------------------------------------ 13: names that are not UTF-8


def undecodable_tree(root: Path) -> Path:
    """Two class folders, one named in Latin-1 (not valid UTF-8), and a skipped file likewise."""
    import numpy as np
    from PIL import Image

    base = os.fsencode(root)
    for cls, value in ((b"caf\xe9", 40), (b"plain", 200)):
        os.makedirs(base + b"/" + cls)
        for i in range(12):
            pixels = np.full((8, 8), value + i, np.uint8)
            Image.fromarray(pixels).save(os.fsdecode(base + b"/" + cls + b"/" + str(i).encode() + b".png"))
    with open(base + b"/plain/r\xe9sum\xe9.txt", "wb") as fh:  # not an image: skipped and listed
        fh.write(b"text")
    with open(base + b"/plain/broken\xff.png", "wb") as fh:  # a corrupt image with such a name
        fh.write(b"\x89PNG\r\n\x1a\n garbage")
    return root


def test_names_that_are_not_utf8_go_through_train_resume_eval_export_and_predict(tmp_path: Path) -> None:
    data = undecodable_tree(tmp_path / "data")
    out = tmp_path / "run"
    result = invoke("train", "simple_cnn", "--data", data, "--out", out, *FAST[:-2], "--epochs", "1",
                    "--val-split", "0.25")
    assert result.exit_code == 0, result.output
    skipped = (out / "skipped.txt").read_bytes()
    assert b"plain/r\xe9sum\xe9.txt\tnot an image file" in skipped and b"broken\xff.png" in skipped
    assert (out / "confusion.png").is_file() and (out / "curves.png").is_file()
    classes = json.loads((out / "classes.json").read_text())
    assert [os.fsencode(c) for c in classes] == [b"caf\xe9", b"plain"]
    assert invoke("train", "simple_cnn", "--resume", out, "--epochs", "2", "--quiet").exit_code == 0
    for args in (["eval", out], ["eval", out, "--json"], ["export", out, "--format", "onnx"]):
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.output)
    image = os.fsdecode(os.fsencode(data) + b"/caf\xe9/0.png")
    for args in (["predict", out / "export" / "model.onnx", image],
                 ["predict", out / "export" / "model.onnx", image, "--json"]):
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.output)
        assert "caf" in result.stdout


# ------------------------------------------------------------------ 19: absurd image sizes


@pytest.mark.parametrize(("size", "message"), [
    ("100000", "error: --image-size 100000 is above zoo's maximum of 8192 px"),
    ("6000", "error: --image-size 6000 at --batch-size 64: training simple_cnn needs about "),
])
def test_an_image_size_beyond_memory_is_one_usage_error(tmp_path: Path, size: str, message: str) -> None:
    result = invoke("train", "simple_cnn", "--data", "digits", "--runs-dir", tmp_path, "--image-size", size,
                    "--batch-size", "64", "--workers", "0", "--quiet")
    assert result.exit_code == 2
    assert one_error_line(result.stderr).startswith(message)
    assert "free; use a smaller --image-size or --batch-size" in result.stderr or size == "100000"
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ 20: libtiff's own lines, hidden files


def corrupt_tiff(path: Path) -> Path:
    """A deflate-compressed TIFF with a damaged stream: libtiff prints 'ZIPDecode: ...' itself."""
    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)).save(buffer, "TIFF",
                                                                             compression="tiff_deflate")
    data = bytearray(buffer.getvalue())
    for i in range(20, 200):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


def test_libtiff_lines_and_hidden_files(trained: Path, tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    assert invoke("export", trained, "--out", tmp_path / "export", "--no-validate").exit_code == 0
    model = tmp_path / "export" / "model.onnx"
    photos = tmp_path / "photos"
    (photos / ".cache").mkdir(parents=True)
    for name in ("a.png", ".hidden.png", ".cache/b.png"):
        Image.fromarray(np.full((8, 8), 90, np.uint8)).save(photos / name)
    corrupt_tiff(photos / "broken.tif")
    code, out, err = finish(zoo_process("predict", model, photos, "--json"))
    assert code == 1  # one unreadable image
    assert [json.loads(line)["image"] for line in out.splitlines()] == [str(photos / "a.png")]
    assert err.splitlines()[0].startswith(f"error: {photos / 'broken.tif'}: not a readable image")
    assert all(line.startswith("error: ") for line in err.splitlines()), err  # no raw libtiff line
    data = tmp_path / "data"  # training skips it with a line in skipped.txt, and prints nothing of libtiff's
    assert invoke("data", "export", "digits", data, "--split", "test").exit_code == 0
    corrupt_tiff(data / "test" / "3" / "broken.tif")
    run = tmp_path / "run"
    code, _, err = finish(zoo_process("train", "simple_cnn", "--data", data / "test", "--out", run, *FAST))
    assert code == 0 and err == "", err
    assert "3/broken.tif\tunreadable image" in (tmp_path / "run" / "skipped.txt").read_text()


def test_a_four_step_onecycle_run_does_not_divide_by_zero() -> None:
    """Found by the test above: torch's OneCycleLR divides by pct_start * total_steps - 1."""
    from zoo.training.config import TrainConfig
    from zoo.training.optim import Schedule

    for steps in range(1, 9):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        schedule = Schedule(optimizer, TrainConfig(epochs=1, lr=0.1, optimizer="sgd"), steps)
        for _ in range(steps):
            optimizer.step()
            schedule.after_batch()


def test_a_file_system_error_no_library_code_named_is_still_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import zoo.data.export

    def full(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/somewhere/file.png")

    monkeypatch.setattr(zoo.data.export, "export_dataset", full)
    result = invoke("data", "export", "digits", "anywhere")
    assert (result.exit_code, result.stderr) == (1, "error: cannot write /somewhere/file.png: "
                                                    "No space left on device\n")
