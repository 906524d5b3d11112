"""Randomised fault trials for RELIABILITY.md: kill -9 and Ctrl-C at random moments (and in the
middle of checkpoint writes), a full disk at random fill levels, poisoned and malformed
checkpoints, damaged images, and two runs racing for one --out. Every trial checks the promise
(loadable files, one error line, resume equal to an uninterrupted run) and the script prints the
table. The fast, deterministic cousins of these trials run in CI (tests/test_reliability.py).

    .venv/bin/python benchmarks/fault_trials.py --trials 10          # about 25 min on 2 cores
    .venv/bin/python benchmarks/fault_trials.py --trials 2 --only kill9,sigint

Needs root for the full-disk trials (it mounts a small tmpfs); they are skipped otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

EPOCHS = 3
RUN_SECONDS = [14.0]  # the reference run's wall time, measured in main(): the window for random kills
TRAIN = ["simple_cnn", "--data", "digits", "--image-size", "16", "--workers", "0", "--quiet",
         "--patience", "0", "--seed", "0", "--threads", "1"]


@dataclass
class Outcome:
    fault: str
    trials: int = 0
    passed: int = 0
    notes: list[str] = field(default_factory=list)
    exits: Counter[int] = field(default_factory=Counter)  # exit codes of the faulted commands

    def record(self, ok: bool, note: str = "", code: int | None = None) -> None:
        self.trials += 1
        self.passed += ok
        if code is not None:
            self.exits[code] += 1
        if not ok and note and len(self.notes) < 3:
            self.notes.append(note)


def zoo(*args: object, driver: str = "", wait: bool = True) -> subprocess.Popen[str] | tuple[int, str, str]:
    argv = ["zoo", *(str(a) for a in args)]
    code = f"{driver}\nimport sys\nfrom zoo.cli import main\nsys.argv = {argv!r}\nmain()"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, preexec_fn=_default_sigint)
    if not wait:
        return proc
    out, err = proc.communicate(timeout=900)
    return proc.returncode, out, err


def _default_sigint() -> None:
    """A shell's background job ignores SIGINT, and children inherit that: give Ctrl-C back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def one_error_line(err: str) -> bool:
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    return len(errors) == 1 and "Traceback" not in err


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def consistent(run: Path) -> tuple[bool, str]:
    """Every file complete: checkpoints load, JSON parses, metrics.csv has one row per epoch."""
    try:
        for name in ("config.json", "classes.json", "split.json"):
            if (run / name).exists():
                json.loads((run / name).read_text())
        if (run / "last.pt").exists():
            epoch = torch.load(run / "last.pt", weights_only=True)["loop"]["epoch"]
            if (run / "metrics.csv").exists():
                rows = len((run / "metrics.csv").read_text().splitlines()) - 1
                if rows != epoch:
                    return False, f"metrics.csv has {rows} rows, last.pt epoch {epoch}"
        if (run / "best.pt").exists():
            weights(run / "best.pt")
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return True, ""


def resume_to_end(run: Path, reference: Path) -> tuple[bool, str]:
    """Resume (or, where the kill came before anything was written, start) the run and finish it:
    its weights must equal those of the uninterrupted reference run, bit for bit."""
    if (run / "config.json").exists():
        code, _, err = zoo("train", "simple_cnn", "--resume", run, "--epochs", EPOCHS, "--threads", "1",
                           "--quiet")
    else:
        code, _, err = zoo("train", *TRAIN, "--epochs", EPOCHS, "--out", run)
    if code != 0:
        return False, f"resume exited {code}: {err.strip()[-200:]}"
    if not same_weights(run / "last.pt", reference / "last.pt"):
        return False, "resumed weights differ from the uninterrupted run"
    return True, ""


def kill_at_random(work: Path, reference: Path, outcome: Outcome, sig: int, rng: random.Random) -> None:
    run = work / f"{outcome.fault}-{outcome.trials}"
    proc = zoo("train", *TRAIN, "--epochs", EPOCHS, "--out", run, wait=False)
    assert isinstance(proc, subprocess.Popen)
    time.sleep(rng.uniform(1.0, RUN_SECONDS[0]))  # from just after start-up to the end of the run
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    # a SIGINT that lands while the interpreter shuts down, after the run finished, kills it: fine
    late = (run / "results.json").exists() and proc.returncode == -sig
    if sig == signal.SIGINT and proc.returncode not in (0, 130) and not late:
        outcome.record(False, f"exit {proc.returncode} after SIGINT: {err.strip()[-200:]}")
        return
    if sig == signal.SIGINT and "Traceback" in err:
        outcome.record(False, "traceback after SIGINT")
        return
    ok, why = consistent(run)
    if ok:
        ok, why = resume_to_end(run, reference)
    outcome.record(ok, why, proc.returncode)


KILL_IN_SAVE = """
import os, random, signal, torch
_save, _rng = torch.save, random.Random({seed})
_victim = _rng.randint(1, {epochs})

class _Dying:
    def __init__(self, fh):
        self.fh, self.writes, self.at = fh, 0, _rng.randint(1, 6)
    def write(self, data):
        self.writes += 1
        if self.writes == self.at:
            os.kill(os.getpid(), signal.{sig})
        return self.fh.write(data)
    def __getattr__(self, name):
        return getattr(self.fh, name)

def _save_and_die(obj, f, *args, **kwargs):
    if isinstance(obj, dict) and obj.get("loop", {{}}).get("epoch") == _victim:
        f = _Dying(f)
    return _save(obj, f, *args, **kwargs)

torch.save = _save_and_die
"""


def signal_in_save(work: Path, reference: Path, outcome: Outcome, sig: str, rng: random.Random) -> None:
    run = work / f"{outcome.fault}-{outcome.trials}"
    driver = KILL_IN_SAVE.format(seed=rng.randrange(10**6), epochs=EPOCHS, sig=sig)
    code, _, err = zoo("train", *TRAIN, "--epochs", EPOCHS, "--out", run, driver=driver)
    if sig == "SIGINT" and (code not in (0, 130) or "Traceback" in err):
        outcome.record(False, f"exit {code} after SIGINT in a save: {err.strip()[-200:]}")
        return
    ok, why = consistent(run)
    if ok:
        ok, why = resume_to_end(run, reference)
    outcome.record(ok, why, code)


def disk_full(work: Path, reference: Path, outcome: Outcome, rng: random.Random) -> None:
    mount = work / f"disk-{outcome.trials}"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        outcome.notes = ["skipped: mounting a tmpfs needs root"]
        return
    try:
        run = mount / "run"
        shutil.copytree(reference.parent / "one-epoch", run)
        free = shutil.disk_usage(mount).free
        with open(mount / "filler", "wb") as fh:
            fh.write(b"\0" * max(0, free - rng.randint(0, 7_000_000)))
        code, _, err = zoo("train", "simple_cnn", "--resume", run, "--epochs", EPOCHS, "--threads", "1",
                           "--quiet")
        temps = [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
        ok, why = consistent(run)
        if code == 1:  # every file complete (old or new), no temp file, one line with the free space
            ok = ok and one_error_line(err) and "free on that file system" in err and not temps
            why = why or f"error output: {err.strip()[-200:]}; temps {temps}"
        elif code != 0:
            ok, why = False, f"exit {code}: {err.strip()[-200:]}"
        (mount / "filler").unlink()
        if ok and code == 1:  # the same as resuming the one-epoch run without a fault
            ok, why = resume_to_end(run, reference.parent / "one-epoch-resumed")
        outcome.record(ok, why, code)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


POISON = """
import os
class Boom:
    def __reduce__(self):
        return (os.system, ("touch {marker}",))
"""


def poisoned(work: Path, reference: Path, outcome: Outcome, rng: random.Random) -> None:
    run = work / f"poison-{outcome.trials}"
    shutil.copytree(reference.parent / "one-epoch", run)
    marker = work / f"pwned-{outcome.trials}"
    namespace: dict[str, object] = {}
    exec(POISON.format(marker=marker), namespace)  # a checkpoint whose unpickling would run a command
    victim = rng.choice(["last.pt", "best.pt"])
    state = torch.load(run / victim, weights_only=True)
    state[rng.choice(["model", "loop", "extra"])] = namespace["Boom"]()
    torch.save(state, run / victim)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".zoo.lock"}
    command = (["train", "simple_cnn", "--resume", run, "--epochs", EPOCHS, "--quiet"] if victim == "last.pt"
               else rng.choice([["eval", run], ["export", run, "--no-validate"]]))
    code, _, err = zoo(*command)
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".zoo.lock"}
    ok = code == 2 and one_error_line(err) and not marker.exists() and after == before
    outcome.record(ok, f"{command[0]} on poisoned {victim}: exit {code}, marker {marker.exists()}")


def malformed(work: Path, reference: Path, outcome: Outcome, rng: random.Random) -> None:
    run = work / f"malformed-{outcome.trials}"
    shutil.copytree(reference.parent / "one-epoch", run)
    state = torch.load(run / "last.pt", weights_only=True)
    mutations: list[Callable[[dict], None]] = [
        lambda s: s.pop(rng.choice(list(s))),
        lambda s: s["loop"].pop(rng.choice(list(s["loop"]))),
        lambda s: s["loop"].__setitem__("epoch", rng.choice([-1, 10**6, "3", None, 2.5])),
        lambda s: s.__setitem__("model", rng.choice([[], 3, "weights", {"x": 1}])),
        lambda s: s["model"].__setitem__(rng.choice(list(s["model"])), torch.zeros(rng.randint(1, 5))),
        lambda s: s["optimizer"].__setitem__("state", {0: {"exp_avg": torch.zeros(3)}}),
        lambda s: s["rng"].pop(rng.choice(list(s["rng"]))),
        lambda s: s["loop"].__setitem__("history", [None] * int(s["loop"]["epoch"])),
    ]
    rng.choice(mutations)(state)
    torch.save(state, run / "last.pt")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".zoo.lock"}
    code, _, err = zoo("train", "simple_cnn", "--resume", run, "--epochs", EPOCHS, "--quiet")
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".zoo.lock"}
    ok = code == 2 and one_error_line(err) and after == before
    outcome.record(ok, f"exit {code}: {err.strip()[-200:]}")


def damaged_images(work: Path, reference: Path, outcome: Outcome, rng: random.Random) -> None:
    from PIL import Image

    folder = work / f"images-{outcome.trials}"
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True)
        for i in range(8):
            pixels = np.random.default_rng(i).integers(0, 255, (24, 24, 3), dtype=np.uint8)
            fmt = rng.choice(["PNG", "JPEG", "TIFF", "BMP", "GIF"])
            path = folder / cls / f"{i}.{fmt.lower()}"
            Image.fromarray(pixels).save(path, fmt)
            data = bytearray(path.read_bytes())
            if i % 2:  # every other file: truncated or bytes flipped
                if rng.random() < 0.5:
                    data = data[: rng.randint(0, len(data) - 1)]
                else:
                    for _ in range(rng.randint(1, 40)):
                        data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
                path.write_bytes(bytes(data))
    out = work / f"imgrun-{outcome.trials}"
    code, _, err = zoo("train", "simple_cnn", "--data", folder, "--out", out, "--epochs", "1",
                       "--image-size", "16", "--workers", "0", "--quiet", "--val-split", "0.3")
    zoo_lines = all(line.startswith(("error: ", "warning: ")) for line in err.splitlines())  # zoo's form only
    train_ok = (code == 0 and zoo_lines) or (code == 2 and one_error_line(err))
    model = reference.parent / "export" / "model.onnx"
    code, _, err = zoo("predict", model, folder, "--json")
    predict_ok = code in (0, 1) and all(ln.startswith(("error: ", "warning: ")) for ln in err.splitlines())
    predict_ok = predict_ok and "Traceback" not in err
    outcome.record(train_ok and predict_ok, f"train/predict stderr: {err.strip()[-200:]}")


def concurrent(work: Path, reference: Path, outcome: Outcome, rng: random.Random) -> None:
    out = work / f"race-{outcome.trials}"
    first = zoo("train", *TRAIN, "--epochs", "2", "--out", out, wait=False)
    time.sleep(rng.uniform(0.0, 8.0))
    second = zoo("train", *TRAIN, "--epochs", "2", "--seed", "1", "--out", out, wait=False)
    results = []
    for proc in (first, second):
        assert isinstance(proc, subprocess.Popen)
        _, err = proc.communicate(timeout=600)
        results.append((proc.returncode, err))
    codes = sorted(code for code, _ in results)
    refused = [err for code, err in results if code == 2]
    ok = codes == [0, 2] and all(one_error_line(err) for err in refused) and consistent(out)[0]
    outcome.record(ok, f"exit codes {codes}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="trials per fault")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="comma list of faults to run")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="zoo-faults-"))
    reference = work / "reference"
    print(f"reference run ({EPOCHS} epochs) in {work}", file=sys.stderr)
    start = time.perf_counter()
    assert zoo("train", *TRAIN, "--epochs", EPOCHS, "--out", reference)[0] == 0
    RUN_SECONDS[0] = time.perf_counter() - start
    assert zoo("train", *TRAIN, "--epochs", "1", "--out", work / "one-epoch")[0] == 0
    assert zoo("export", reference, "--out", work / "export", "--no-validate")[0] == 0
    resumed = work / "one-epoch-resumed"  # what a one-epoch run resumed without a fault ends as
    shutil.copytree(work / "one-epoch", resumed)
    assert zoo("train", "simple_cnn", "--resume", resumed, "--epochs", EPOCHS, "--threads", "1")[0] == 0
    trials: dict[str, Callable[[Outcome], None]] = {
        "kill9": lambda o: kill_at_random(work, reference, o, signal.SIGKILL, rng),
        "kill9-in-save": lambda o: signal_in_save(work, reference, o, "SIGKILL", rng),
        "sigint": lambda o: kill_at_random(work, reference, o, signal.SIGINT, rng),
        "sigint-in-save": lambda o: signal_in_save(work, reference, o, "SIGINT", rng),
        "disk-full": lambda o: disk_full(work, reference, o, rng),
        "poisoned-checkpoint": lambda o: poisoned(work, reference, o, rng),
        "malformed-checkpoint": lambda o: malformed(work, reference, o, rng),
        "damaged-images": lambda o: damaged_images(work, reference, o, rng),
        "concurrent-runs": lambda o: concurrent(work, reference, o, rng),
    }
    wanted = [name for name in trials if not args.only or name in args.only.split(",")]
    outcomes = []
    for name in wanted:
        outcome = Outcome(name)
        for _ in range(args.trials):
            print(f"{name}: trial {outcome.trials + 1}", file=sys.stderr)
            trials[name](outcome)
            if outcome.notes and outcome.notes[0].startswith("skipped"):
                break
        outcomes.append(outcome)
    print("| fault | trials | kept the promise | exit codes of the faulted runs | notes |")
    print("|---|---|---|---|---|")
    for o in outcomes:
        exits = ", ".join(f"{code}: {n}" for code, n in sorted(o.exits.items())) or "-"
        print(f"| {o.fault} | {o.trials} | {o.passed}/{o.trials} | {exits} | {'; '.join(o.notes) or '-'} |")
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if all(o.passed == o.trials for o in outcomes) else 1)


if __name__ == "__main__":
    main()
