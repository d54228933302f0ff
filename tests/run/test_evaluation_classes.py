"""``evaluate`` matches the data's classes to the model's by name: a test file may hold only some of them (every
row scored, macro averages over the classes present), rows of classes the model does not know are dropped and
counted, and data with none of them is refused."""

from __future__ import annotations

import csv
import logging

import numpy as np
import pytest

import warmstart
from warmstart import DataConfig, TrainConfig
from warmstart.errors import WarmstartError


def write(path, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["f0", "f1", "label"], *rows])
    return str(path)


def blobs(n, labels, seed):
    rng = np.random.default_rng(seed)
    centre = {"1": (0, 4), "2": (4, 0), "3": (-4, -4), "9": (9, 9)}
    return [[*(np.asarray(centre[lab]) + rng.normal(0, 0.5, 2)).round(3).tolist(), lab]
            for lab in labels for _ in range(n)]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("classes")
    data = write(folder / "train.csv", blobs(30, ["1", "2", "3"], seed=0))
    warmstart.pretrain(DataConfig(data), model="mlp", out=folder / "run",
                       train=TrainConfig(epochs=20, lr=0.01, progress=False, trackers=()))
    return folder / "run"


def test_a_test_file_with_some_of_the_model_s_classes_is_scored_row_by_row(model, tmp_path, caplog):
    data = write(tmp_path / "only1.csv", blobs(10, ["1"], seed=1))
    with caplog.at_level(logging.INFO, logger="warmstart"):
        result = warmstart.evaluate(model, DataConfig(data))
    assert result.num_examples == 10 and result.accuracy == 1.0
    assert result.macro_f1 == 1.0  # over the class present: the absent, never predicted ones do not count as 0
    assert result.class_names == ("1", "2", "3")
    assert "holds 1 of the 3 classes" in caplog.text and "none of 2, 3" in caplog.text
    # and --classes naming that one class is the same selection, not an error
    assert warmstart.evaluate(model, DataConfig(data, classes="1")).accuracy == 1.0


def test_rows_of_classes_the_model_does_not_know_are_dropped_and_counted(model, tmp_path, caplog):
    data = write(tmp_path / "extra.csv", blobs(6, ["2", "9", "3"], seed=2))
    with caplog.at_level(logging.INFO, logger="warmstart"):
        result = warmstart.evaluate(model, DataConfig(data))
    assert result.num_examples == 12 and result.accuracy == 1.0
    assert "dropped 6 row(s) of the class(es) 9" in caplog.text
    with pytest.raises(WarmstartError, match="but --classes selected 9, which it does not predict"):
        warmstart.evaluate(model, DataConfig(data, classes="2,9"))
    with pytest.raises(WarmstartError, match="the data holds none of them"):
        warmstart.evaluate(model, DataConfig(write(tmp_path / "none.csv", blobs(4, ["9"], seed=3))))
