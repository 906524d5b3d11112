"""Faults and bad input, reproduced for real: each test failed before its fix (issue 9).

Real files, real processes and signals, a real full filesystem where the machine lets us mount
one (root and ``mount -t tmpfs``), and a fault-injecting file object where it does not.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from zoo.cli import app
from zoo.data import load_splits

FAST = ["--image-size", "16", "--workers", "0", "--quiet", "--epochs", "1"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
