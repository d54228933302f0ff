"""``report`` on a damaged run folder: a cut-off log line, a damaged predictions.npz, a config that is not JSON each
end in an ``error:`` naming the file and a ``fix:`` line, not a traceback (issue 14, item 13)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import warmstart
from warmstart import TrainConfig
from warmstart.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("damaged") / "run"
    warmstart.pretrain("digits", model="mlp", train=TrainConfig(epochs=2, progress=False, trackers=()), out=out)
    assert (out / "train_log.jsonl").is_file() and (out / "predictions.npz").is_file()
    return out


def _cut_log(folder: Path) -> None:
    text = (folder / "train_log.jsonl").read_text()
    (folder / "train_log.jsonl").write_text(text[: len(text) - 20])  # the last line cut off mid-object


def _truncate_predictions(folder: Path) -> None:
    data = (folder / "predictions.npz").read_bytes()
    (folder / "predictions.npz").write_bytes(data[: len(data) // 2])


def _predictions_of_the_wrong_shape(folder: Path) -> None:
    np.savez(folder / "predictions.npz", y_true=np.zeros((3, 2), dtype=np.int64), probabilities=np.ones(3))


def _predictions_without_labels(folder: Path) -> None:
    np.savez(folder / "predictions.npz", probabilities=np.ones((3, 2)))


@pytest.mark.parametrize("damage, file, words", [
    (_cut_log, "train_log.jsonl", "not a whole JSON object"),
    (lambda f: (f / "train_log.jsonl").write_text("[1, 2]\n"), "train_log.jsonl", "expected a JSON object"),
    (_truncate_predictions, "predictions.npz", "cannot be read as the run's test predictions"),
    (_predictions_of_the_wrong_shape, "predictions.npz", "expected integer labels"),
    (_predictions_without_labels, "predictions.npz", "cannot be read"),
    (lambda f: (f / "config.json").write_text("{'not': json"), "config.json", "cannot be read as JSON"),
    (lambda f: (f / "config.json").write_bytes(b"\xff\xfe{}"), "config.json", "cannot be read as JSON"),
    (lambda f: (f / "metrics.json").write_text("[0.9]"), "metrics.json", "expected a JSON object"),
    (lambda f: (f / "model" / "metadata.json").write_text("{"), "metadata.json", "cannot be read as JSON"),
    (lambda f: (f / "examples.json").write_text("nul"), "examples.json", "cannot be read as JSON"),
])
def test_report_on_a_damaged_run_folder_names_the_file(run, tmp_path, capsys, damage, file, words):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    damage(copy)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(copy)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.startswith("error:") and "Traceback" not in err, err
    assert file in err and words in err and "fix:" in err, err


def test_an_intact_copy_still_reports(run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(copy)])
    assert exit_info.value.code in (0, None)
