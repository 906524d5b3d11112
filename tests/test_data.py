"""zoo.data on real data: built-in sets, ImageFolder trees with bad files, transforms, loaders, CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from zoo.cli import app
from zoo.data import (
    batch_mixer,
    default_image_size,
    eval_preprocessing,
    export_dataset,
    load_imagefolder_set,
    load_splits,
    make_eval_loader,
    make_loaders,
    norm_stats,
)
from zoo.data.builtin import FASHION_ENV, fashion_mnist_available
from zoo.errors import ZooUsageError
from zoo.runtime.preprocess import open_image, preprocess

runner = CliRunner()
needs_fashion = pytest.mark.skipif(
    not fashion_mnist_available(),
    reason="no Fashion-MNIST idx files: apt-get install dataset-fashion-mnist, or set ZOO_FASHION_MNIST_DIR",
)


@pytest.fixture(scope="module")
def digits_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """digits exported as DIR/train + DIR/test, plus a corrupt, a truncated, a text and a hidden file."""
    root = tmp_path_factory.mktemp("digits") / "tree"
    export_dataset("digits", root)
    good = next((root / "train" / "3").glob("*.png")).read_bytes()
    (root / "train" / "3" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    (root / "train" / "5" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "train" / "7" / "notes.txt").write_text("not an image")
    (root / "train" / "7" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    return root


def _tree(root: Path, spec: dict[str, int], size: tuple[int, int] = (12, 10), mode: str = "L") -> Path:
    """class name -> image count, random pixels."""
    rng = np.random.default_rng(0)
    for cls, n in spec.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / cls / f"{i}.png")
    return root


# --- built-in data sets ---------------------------------------------------------------------------

def test_digits_splits_sizes_stratified_and_seeded() -> None:
    s = load_splits("digits", val_split=0.2, seed=0)
    assert (s.classes, s.channels, s.native_size, s.hflip) == ([str(d) for d in range(10)], 1, 8, False)
    assert len(s.train) + len(s.val) + len(s.test) == 1797
    assert len(s.test) == 359 and len(s.val) == 287 and len(s.train) == 1151
    assert s.train.images.dtype == np.uint8 and s.train.images.shape[1:] == (8, 8)
    assert s.train.images.max() == 255 and s.train.images.min() == 0
    everything = Counter(s.train.labels) + Counter(s.val.labels) + Counter(s.test.labels)
    for part, fraction in ((s.test, 0.2), (s.val, 0.16)):
        counts = Counter(part.labels)
        for cls, total in everything.items():
            assert abs(counts[cls] - total * fraction) <= 1.5, (cls, counts[cls], total)
    again, other = load_splits("digits", seed=0), load_splits("digits", seed=1)
    assert again.split_record["val"] == s.split_record["val"] != other.split_record["val"]
    assert np.array_equal(other.test.images, s.test.images)  # the test set does not move with --seed


@needs_fashion
def test_fashion_mnist_loads_60000_10000() -> None:
    s = load_splits("fashion-mnist", val_split=0.1)
    assert len(s.train) + len(s.val) == 60000 and len(s.test) == 10000
    assert (len(s.val), s.native_size, s.channels, s.hflip) == (6000, 28, 1, True)
    assert s.classes[0] == "tshirt_top" and s.classes[9] == "ankle_boot" and len(s.classes) == 10
    assert set(Counter(s.test.labels).values()) == {1000}
    assert s.test.images.shape == (10000, 28, 28) and s.test.images.dtype == np.uint8


def test_fashion_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FASHION_ENV, str(tmp_path))
    assert not fashion_mnist_available()
    with pytest.raises(ZooUsageError, match=rf"not found in {tmp_path}: install Debian's dataset-fashion"):
        load_splits("fashion-mnist")
    for stem in ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1"):
        (tmp_path / f"{stem}-ubyte").write_bytes(b"")
    assert fashion_mnist_available()


def test_data_list_and_load_splits_do_not_import_torch() -> None:
    code = ("import sys, zoo.data; from typer.testing import CliRunner; from zoo.cli import app; "
            "assert CliRunner().invoke(app, ['data', 'list']).exit_code == 0; "
            "zoo.data.load_splits('digits'); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# --- ImageFolder ------------------------------------------------------------------------------------

def test_imagefolder_from_export_skips_bad_files(digits_tree: Path) -> None:
    s = load_splits(digits_tree, val_split=0.2, seed=0)
    assert s.classes == [str(d) for d in range(10)] and s.channels == 1 and s.native_size == 8
    assert len(s.train) + len(s.val) == 1438 and len(s.test) == 359
    reasons = dict(s.skipped)
    assert set(reasons) == {"train/3/corrupt.png", "train/5/truncated.png", "train/7/notes.txt"}
    assert reasons["train/7/notes.txt"] == "not an image file (extension '.txt')"
    assert reasons["train/3/corrupt.png"].startswith("unreadable image")
    assert reasons["train/5/truncated.png"].startswith("unreadable image")
    used = {p.name for p in s.train.paths + s.val.paths}
    assert not used & {"corrupt.png", "truncated.png", "notes.txt", ".DS_Store"}
    pairs = zip(s.train.paths, s.train.labels, strict=True)
    assert all(p.parent.name == s.classes[label] for p, label in pairs)
    assert s.split_record["skipped"] == [list(x) for x in s.skipped]


def test_split_record_round_trip(digits_tree: Path) -> None:
    flat = digits_tree / "test"  # class folders only: split stratified + seeded
    first = load_splits(flat, val_split=0.25, seed=5)
    assert first.test is None and first.split_record["layout"] == "flat"
    record = json.loads(json.dumps(first.split_record))
    replay = load_splits(flat, val_split=0.5, seed=0, split_record=record)
    assert replay.train.paths == first.train.paths and replay.val.paths == first.val.paths
    assert replay.train.labels == first.train.labels and replay.classes == first.classes
    assert load_splits(flat, val_split=0.25, seed=6).val.paths != first.val.paths

    digits = load_splits("digits", seed=3)
    record = json.loads(json.dumps(digits.split_record))
    again = load_splits("digits", seed=0, val_split=0.5, split_record=record)
    assert again.val.labels == digits.val.labels and np.array_equal(again.val.images, digits.val.images)
    with pytest.raises(ZooUsageError, match="split record is for data set 'digits', not a directory"):
        load_splits(flat, split_record=digits.split_record)
    with pytest.raises(ZooUsageError, match=r"split record is for '.*test', not data set 'digits'"):
        load_splits("digits", split_record=first.split_record)


def test_val_and_test_class_lists_must_match_train(tmp_path: Path) -> None:
    _tree(tmp_path / "train", {"cat": 3, "dog": 3, "eel": 3})
    _tree(tmp_path / "valid", {"cat": 2, "eel": 2, "fox": 2})
    with pytest.raises(ZooUsageError, match=r"valid: class folders differ from the training classes "
                                            r"\(missing dog; extra fox\)"):
        load_splits(tmp_path)
    shutil.rmtree(tmp_path / "valid" / "fox")
    _tree(tmp_path / "valid", {"dog": 2})
    s = load_splits(tmp_path)
    assert (len(s.train), len(s.val), s.test) == (9, 6, None)
    subset, skipped = load_imagefolder_set(tmp_path / "valid", s.classes)
    assert len(subset) == 6 and skipped == [] and subset.labels == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ZooUsageError, match=r"valid: class folders differ .* \(extra eel\)$"):
        load_imagefolder_set(tmp_path / "valid", ["cat", "dog"])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "nope", r"nope: no such directory$"),
        (lambda d: d, r": no class folders \(expected .*/<class>/<image files>\)$"),
        (lambda d: _tree(d, {"a": 2, "b": 0}), r"/b: class folder has no images$"),
        (lambda d: _tree(d, {"only": 3}), r": only one class folder \('only'\); a classifier needs two$"),
    ],
    ids=["missing", "no-classes", "empty-class", "single-class"],
)
def test_bad_folders(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(ZooUsageError, match=message):
        load_splits(make(tmp_path))


def test_class_of_only_bad_files_says_so(tmp_path: Path) -> None:
    _tree(tmp_path, {"a": 2})
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(ZooUsageError, match=r"/b: class folder has no images \(1 unreadable file\(s\)"):
        load_splits(tmp_path)


@pytest.mark.parametrize("val_split", [0, 1, -0.1, 1.5, True])
def test_bad_val_split(val_split: float) -> None:
    with pytest.raises(ZooUsageError, match=r"--val-split must be between 0 and 1 \(exclusive\)"):
        load_splits("digits", val_split=val_split)


def test_unknown_data_set_suggests() -> None:
    with pytest.raises(ZooUsageError, match=r"unknown data set 'digts'; did you mean digits\? \(and no such"):
        load_splits("digts")


# --- sizes, statistics, eval transform ------------------------------------------------------------

def test_default_image_size_and_resize_rule() -> None:
    assert [default_image_size(n, 224) for n in (8, 28, 50, 64, 300)] == [32, 32, 56, 64, 224]
    assert default_image_size(500, 32) == 32
    small = eval_preprocessing(32, 1, [0.5], [0.5], native_size=28)
    assert (small["resize"], small["crop"]) == (32, 32)
    large = eval_preprocessing(224, 3, [0.5] * 3, [0.5] * 3, native_size=375)
    assert (large["resize"], large["crop"], large["channels"]) == (256, 224, 3)
    with pytest.raises(ZooUsageError, match="mean/std need 3 value"):
        eval_preprocessing(32, 3, [0.5], [0.5], 28)


def test_norm_stats() -> None:
    s = load_splits("digits")
    mean, std = norm_stats("dataset", s.train, 1, 32)
    x = np.stack([preprocess(Image.fromarray(im), {"resize": 32, "crop": 32, "channels": 1, "mean": [0],
                                                    "std": [1]}) for im in s.train.images])
    assert mean[0] == pytest.approx(float(x.mean()), abs=1e-5)
    assert std[0] == pytest.approx(float(x.std()), abs=1e-5)
    mean3, std3 = norm_stats("dataset", s.train, 3, 32)
    assert mean3 == [mean[0]] * 3 and std3 == [std[0]] * 3
    assert norm_stats("half", s.train, 1, 32) == ([0.5], [0.5])
    assert norm_stats("imagenet", s.train, 3, 32)[0] == [0.485, 0.456, 0.406]
    with pytest.raises(ZooUsageError, match="--norm must be one of dataset, imagenet, half, got 'zca'"):
        norm_stats("zca", s.train, 1, 32)


@pytest.mark.parametrize("cache", ["on", "off"])
@pytest.mark.parametrize("channels", [1, 3])
def test_eval_pixels_equal_runtime_preprocess(tmp_path: Path, channels: int, cache: str) -> None:
    spec = eval_preprocessing(32, channels, [0.3] * channels, [0.25] * channels, native_size=8)
    digits = load_splits("digits")
    _, _, test = make_loaders(digits, spec, workers=0, batch_size=50, cache=cache)
    x, y = next(iter(test))
    for i in range(50):
        assert np.array_equal(x[i].numpy(), preprocess(Image.fromarray(digits.test.images[i]), spec))
    assert y.tolist() == digits.test.labels[:50]
    # files, RGB of odd sizes larger than 64 px: resize 37 then center-crop 32
    _tree(tmp_path, {"a": 3, "b": 3}, size=(97, 71), mode="RGB")
    photos = load_splits(tmp_path, val_split=0.34)
    spec = eval_preprocessing(32, channels, [0.4] * channels, [0.2] * channels, photos.native_size)
    assert (photos.channels, photos.native_size, spec["resize"]) == (3, 71, 37)
    x, _ = next(iter(make_eval_loader(photos.val, spec, workers=0, cache=cache)))
    for i, path in enumerate(photos.val.paths):
        assert np.array_equal(x[i].numpy(), preprocess(open_image(path, channels), spec))


# --- loaders ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("augment", ["none", "light", "standard", "randaugment", "trivialaugment"])
@pytest.mark.parametrize("channels", [1, 3])
def test_loaders_shapes_and_dtypes(augment: str, channels: int) -> None:
    import torch

    s = load_splits("digits")
    spec = eval_preprocessing(32, channels, [0.3] * channels, [0.3] * channels, s.native_size)
    train, val, test = make_loaders(s, spec, augment=augment, batch_size=64, workers=0, seed=1)
    x, y = next(iter(train))
    assert x.shape == (64, channels, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert len(train) == len(s.train) // 64 and len(val.dataset) == len(s.val) and len(test.dataset) == 359
    x2, _ = next(iter(train))
    assert not torch.equal(x, x2)  # shuffled (and augmented) anew each epoch


def test_workers_and_seeded_order(digits_tree: Path) -> None:
    s = load_splits(digits_tree / "test", val_split=0.2)
    spec = eval_preprocessing(32, 3, [0.5] * 3, [0.5] * 3, s.native_size)
    a, val, _ = make_loaders(s, spec, augment="none", batch_size=32, workers=2, cache="off", seed=7)
    b, _, _ = make_loaders(s, spec, augment="none", batch_size=32, workers=0, cache="on", seed=7)
    assert a.num_workers == 2 and a.source.loader.persistent_workers and val.num_workers == 2
    xa, ya = next(iter(a))
    xb, yb = next(iter(b))
    assert xa.shape == (32, 3, 32, 32) and ya.tolist() == yb.tolist() and bool((xa == xb).all())


def test_loader_bad_options() -> None:
    s = load_splits("digits")
    spec = eval_preprocessing(32, 1, [0.5], [0.5], 8)
    with pytest.raises(ZooUsageError, match="--augment must be one of none, light, standard"):
        make_loaders(s, spec, augment="heavy")
    with pytest.raises(ZooUsageError, match="batch size must be a positive integer, got 0"):
        make_loaders(s, spec, batch_size=0)
    with pytest.raises(ZooUsageError, match="--workers must be 0 or a positive integer, got -1"):
        make_loaders(s, spec, workers=-1)
    with pytest.raises(ZooUsageError, match="--cache must be one of auto, on, off"):
        make_loaders(s, spec, cache="ram")


def test_batch_mixer() -> None:
    import torch

    assert batch_mixer(None, 10) is None and batch_mixer("none", 10) is None
    images, labels = torch.rand(8, 3, 16, 16), torch.arange(8) % 4
    for kind in ("mixup", "cutmix", "mixup,cutmix"):
        mixed, soft = batch_mixer(kind, 4)(images, labels)
        assert mixed.shape == images.shape and soft.shape == (8, 4)
        assert torch.allclose(soft.sum(1), torch.ones(8))
    with pytest.raises(ZooUsageError, match="--mix must be mixup, cutmix or mixup,cutmix, got 'mixip'"):
        batch_mixer("mixip", 4)


# --- CLI --------------------------------------------------------------------------------------------

def test_cli_data_list() -> None:
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0, result.output
    assert "digits" in result.stdout and "fashion-mnist" in result.stdout and "handwritten" in result.stdout
    rows = {r["name"]: r for r in json.loads(runner.invoke(app, ["data", "list", "--json"]).stdout)}
    assert rows["digits"]["available"] is True and rows["digits"]["classes"] == 10
    assert rows["fashion-mnist"]["available"] is fashion_mnist_available()


def test_cli_data_export(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "export", "digits", str(tmp_path / "d"), "--split", "test"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"wrote digits to {tmp_path / 'd'}: test 359 images"
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["test"]
    assert len(list((tmp_path / "d" / "test").glob("*/*.png"))) == 359
    assert Image.open(next((tmp_path / "d" / "test" / "0").glob("*.png"))).size == (8, 8)
    again = runner.invoke(app, ["data", "export", "digits", str(tmp_path / "d")])
    assert again.exit_code == 2 and "is not an empty directory" in again.stderr
    assert "Traceback" not in again.output
    unknown = runner.invoke(app, ["data", "export", "digts", str(tmp_path / "e")])
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == "error: unknown data set 'digts'; did you mean digits?"
    assert not (tmp_path / "e").exists()


# --- device batches (zoo.data.batches) ----------------------------------------------------------------

def test_resident_and_streamed_batches_are_the_same_batches() -> None:
    """Cached on the device (indexed there) or decoded by workers: one seed, one epoch of batches,
    augmentation included; reseeding the loader's generator replays an epoch (resume)."""
    import torch

    s = load_splits("digits")
    spec = eval_preprocessing(32, 1, [0.3], [0.3], s.native_size)
    resident, val, _ = make_loaders(s, spec, batch_size=64, workers=0, cache="on", seed=3, pipeline="batched")
    streamed, _, _ = make_loaders(s, spec, batch_size=64, workers=0, cache="off", seed=3, pipeline="batched")
    assert resident.resident and val.resident and not streamed.resident and resident.num_workers == 0
    epoch = [(x.clone(), y.clone()) for x, y in resident]
    for (x, y), (xs, ys) in zip(epoch, streamed, strict=True):
        assert torch.equal(x, xs) and torch.equal(y, ys)
    assert resident.clock.images == len(epoch) * 64 and resident.clock.seconds > 0
    for loader in (resident, streamed):
        loader.generator.manual_seed(11)
        first, _ = next(iter(loader))
        loader.generator.manual_seed(11)
        again, _ = next(iter(loader))
        loader.generator.manual_seed(12)
        other, _ = next(iter(loader))
        assert torch.equal(first, again) and not torch.equal(first, other)


def test_pil_pipeline_still_augments_in_workers() -> None:
    import torch

    s = load_splits("digits")
    spec = eval_preprocessing(32, 1, [0.3], [0.3], s.native_size)
    train, val, _ = make_loaders(s, spec, batch_size=64, workers=1, seed=3, pipeline="pil")
    assert train.pipeline == "pil" and not train.resident and train.num_workers == 1 and val.resident
    x, y = next(iter(train))
    assert x.shape == (64, 1, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    batched, _, _ = make_loaders(s, spec, batch_size=64, workers=0, seed=3, pipeline="batched")
    assert torch.equal(next(iter(batched))[1], y)  # the same order: only where augmentation runs differs


def test_auto_pipeline_rule_and_bad_pipeline() -> None:
    from zoo.data.batches import resolve_pipeline

    assert resolve_pipeline("auto", "cpu", 32) == "batched" and resolve_pipeline("auto", "cpu", 224) == "pil"
    assert resolve_pipeline("auto", "cuda", 224) == "batched" and resolve_pipeline("pil", "cuda", 32) == "pil"
    s = load_splits("digits")
    with pytest.raises(ZooUsageError, match="--pipeline must be one of auto, batched, pil, got 'gpu'"):
        make_loaders(s, eval_preprocessing(32, 1, [0.5], [0.5], 8), pipeline="gpu")
