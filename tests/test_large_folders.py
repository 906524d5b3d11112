"""Large image folders (issue 10): no decoding up front past CHECK_UP_TO files, unreadable files
skipped with one warning when met, and `zoo bench --mode loader`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from image_folders import digits_folder
from typer.testing import CliRunner

from zoo.cli import app
from zoo.data import folders
from zoo.data.loaders import ImageSet, make_loaders
from zoo.data.splits import SampleSet

PREPROCESSING = {"channels": 1, "resize": 16, "crop": 16, "mean": [0.5], "std": [0.25]}


def truncate(path: Path) -> Path:
    """A real image cut short: its header reads, its pixels do not."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - max(24, len(data) // 5)])
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = digits_folder(tmp_path_factory.mktemp("large") / "data")
    truncate(root / "3" / "3.jpg")
    truncate(root / "4" / "4.png")
    return root


def test_small_folders_are_checked_up_front_large_ones_by_header_sample(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = folders.scan_folder(folder, folder)
    assert checked.checked and len(checked.paths) == 198
    assert {f for f, _ in checked.skipped} == {"3/3.jpg", "4/4.png"}

    headers: list[Path] = []
    probe = folders._probe

    def header_only(path: Path, decode: bool = True) -> folders.Probe:
        assert not decode, f"decoded {path} up front"
        headers.append(path)
        return probe(path, decode)

    monkeypatch.setattr(folders, "_probe", header_only)
    monkeypatch.setattr(folders, "CHECK_UP_TO", 100)
    monkeypatch.setattr(folders, "HEADER_SAMPLE", 20)
    lazy = folders.scan_folder(folder, folder)
    assert not lazy.checked and len(headers) == 20  # 20 headers read, nothing decoded
    assert len(lazy.paths) == 200 and not lazy.skipped  # the truncated files are found later
    assert lazy.gray and 8 <= min(lazy.shorter_sides) == max(lazy.shorter_sides) == 16

    assert not folders.scan_folder(folder, folder, check_images=False).checked
    monkeypatch.undo()
    assert folders.scan_folder(folder, folder, check_images=True).checked


@pytest.mark.parametrize("cache", [True, False])
def test_unreadable_files_are_left_out_with_one_warning(
    folder: Path, cache: bool, capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("zoo.data.images._warned", set())  # warnings are once per process
    scan = folders.scan_folder(folder, folder, check_images=False)
    samples = SampleSet(scan.labels, paths=scan.paths)
    images = ImageSet(samples, PREPROCESSING, side=16, cache=cache)
    seen = [images.__getitems__(list(range(start, min(start + 64, len(images)))))
            for start in (0, 64, 128, 192)]
    pixels = torch.cat([p for p, _ in seen])
    labels = torch.cat([lab for _, lab in seen])
    assert len(pixels) == len(labels) == 198
    assert labels.tolist() == [lab for p, lab in zip(scan.paths, scan.labels, strict=True)
                               if p.name not in ("3.jpg", "4.png")]
    images.__getitems__([0, 1, 2])  # a second pass warns no more
    err = capfd.readouterr().err
    assert err.count("warning: skipped") == 2, err
    assert "3/3.jpg: not a readable image" in err and "4/4.png: not a readable image" in err


@pytest.mark.parametrize("cache", [True, False])
def test_training_sets_fill_the_place_of_an_unreadable_file(folder: Path, cache: bool) -> None:
    """Every rank of a DDP run must keep the same number of full batches, whatever it cannot read."""
    scan = folders.scan_folder(folder, folder, check_images=False)
    samples = SampleSet(scan.labels, paths=scan.paths)
    images = ImageSet(samples, PREPROCESSING, side=16, cache=cache, fill=True)
    assert len(images) == 200
    pixels, labels = images.__getitems__(list(range(200)))
    assert len(pixels) == len(labels) == 200
    bad = [i for i, p in enumerate(scan.paths) if p.name in ("3.jpg", "4.png")]
    readable = ImageSet(samples, PREPROCESSING, side=16, cache=False)
    for i in bad:  # a real image of the set, with its own label, stands in
        match = [j for j in range(200) if j not in bad and torch.equal(pixels[i], pixels[j])]
        assert match and all(labels[j] == labels[i] for j in match)
        assert torch.equal(readable.__getitems__([match[0]])[0][0], pixels[i])


def test_a_batch_of_nothing_but_unreadable_files_is_passed_over(tmp_path: Path) -> None:
    root = digits_folder(tmp_path / "data", 60)
    scan = folders.scan_folder(root, root, check_images=False)
    for path in scan.paths[:10]:  # the whole first eval batch
        truncate(path)
    samples = SampleSet(scan.labels, paths=scan.paths)
    from zoo.data.splits import DataSplits

    splits = DataSplits(str(root), scan.classes, 1, 16, samples, samples, None, {}, checked=False)
    _, val, _ = make_loaders(splits, PREPROCESSING, augment="none", batch_size=10, workers=0, cache="off")
    batches = list(val)
    assert sum(len(labels) for _, labels in batches) == 50 and len(batches) == 5


def test_train_without_checking_skips_and_reports(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("zoo.data.images._warned", set())
    result = CliRunner().invoke(app, ["train", "simple_cnn", "--data", str(folder), "--epochs", "1",
                                      "--no-check-images", "--out", str(tmp_path / "run"), "--workers", "0",
                                      "--cache", "off", "--pipeline", "pil"])
    assert result.exit_code == 0, result.output
    assert "not all checked up front" in result.output
    assert result.stderr.count("warning: skipped") == 2  # once each, though decoded every epoch
    for name in ("3/3.jpg", "4/4.png"):
        assert f"{name}: not a readable image" in result.stderr
    assert (tmp_path / "run" / "best.pt").is_file()


def test_bench_loader_times_each_worker_count_beside_the_model_step(folder: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "--mode", "loader", "--data", str(folder), "simple_cnn",
                                      "--workers", "0,1", "--batch-size", "32", "--repeats", "3", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["workers"] for r in rows] == [0, 1]
    for row in rows:
        assert row["images"] == 3 * 32 and row["image_size"] == 32 and row["pipeline"] == "batched"
        assert row["images_per_s"] > 0 and row["step_images_per_s"] > 0
        assert row["per_worker"] == pytest.approx(row["images_per_s"] / max(1, row["workers"]))
    table = CliRunner().invoke(app, ["bench", "--mode", "loader", "--data", str(folder), "--workers", "0",
                                     "--repeats", "1", "--pipeline", "pil", "--image-size", "24"])
    assert table.exit_code == 0, table.output
    assert "img/s per worker" in table.stdout and "pil" in table.stdout
    assert "training step was not measured" in table.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--mode", "loader"], "--mode loader needs --data"),
    (["--data", "digits"], "--data goes with --mode loader"),
    (["--mode", "loader", "--data", "digits", "--workers", "0,-1"], "--workers must be 0 or more"),
    (["--mode", "loader", "--data", "digits", "--batch-size", "8,16"], "one --batch-size"),
    (["--mode", "loader", "--data", "digits", "--workers", "x"], "--workers takes comma-separated integers"),
])
def test_bench_loader_bad_input_is_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["bench", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_verdict_names_the_bound() -> None:
    from zoo.bench.loader import LoaderResult, verdict

    rows = [LoaderResult(w, "pil", 64, 224, 640, 1.0, rate, rate, 300.0)
            for w, rate in ((0, 100.0), (2, 350.0))]
    assert verdict(rows) == "the model bounds training (300 img/s): the loader keeps up from 2 worker(s)"
    rows[1].images_per_s = 200.0
    assert verdict(rows).startswith("the loader bounds training: at best 200 img/s (2 workers)")
