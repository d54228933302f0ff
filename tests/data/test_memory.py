"""In-memory data as a DataConfig source: arrays, DataFrames and torch Datasets, read as the files are."""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import TensorDataset

from warmstart.config import DataConfig, to_dict
from warmstart.data import load_splits
from warmstart.errors import WarmstartError


def test_arrays_with_and_without_a_test_split():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 4)).astype(np.float32), np.array(["cat", "dog"] * 25)
    data = DataConfig((x, y))
    splits = load_splits(data, seed=0)
    assert splits.train.class_names == ("cat", "dog") and len(splits.train) + len(splits.val) + len(splits.test) == 50
    assert json.loads(json.dumps(to_dict(data)))["source"].startswith("in-memory arrays: 50 examples, 2 classes")
    assert copy.deepcopy(data) == data and pickle.loads(pickle.dumps(data)).source.train.x.shape == (50, 4)
    assert DataConfig((x + 1, y)) != data  # the contents, not only their shape, name the source
    own = load_splits(DataConfig((x, y, x[:6], y[:6]), val_fraction=0.0), seed=0)
    assert len(own.train) == 50 and len(own.test) == 6


def test_images_texts_frames_and_torch_datasets():
    images = np.random.default_rng(1).integers(0, 256, size=(12, 8, 8), dtype=np.uint8)
    train = load_splits(DataConfig((images, np.arange(12) % 3), val_fraction=0.0), 0).train
    assert train.kind == "image" and train.input_shape == (1, 8, 8) and train.x.max() <= 1.0
    frame = pd.DataFrame({"b": np.arange(20.0), "a": np.ones(20), "target": [1, 2] * 10})
    vectors = load_splits(DataConfig(frame, label_column="target", val_fraction=0.0), 0).train
    assert vectors.feature_names == ("b", "a") and vectors.class_names == ("1", "2")
    texts = pd.DataFrame({"text": ["good film", "bad film"] * 10, "label": ["pos", "neg"] * 10})
    assert load_splits(DataConfig(texts, text_column="text"), 0).train.kind == "text"
    dataset = TensorDataset(torch.rand(10, 3, 4, 4), torch.arange(10) % 2)
    assert load_splits(DataConfig(dataset, val_fraction=0.0), 0).train.input_shape == (3, 4, 4)


@pytest.mark.parametrize("source, message", [
    ((np.zeros((5, 2)), np.zeros(4)), "x has 5 examples but y has 4 labels"),
    ((np.zeros((4, 8, 8, 3)), np.zeros(4)), "looks channels-last"),
    ((np.zeros((4, 2)), np.zeros(4), np.zeros((2, 3)), np.zeros(2)), r"x_test has \(3,\)"),
    ((np.zeros((4, 2)), np.array([0, 1, 0, 1]), np.zeros((2, 2)), np.array([0, 7])), "y_test holds the label 7"),
    (pd.DataFrame({"x": [1.0, 2.0]}), "no label column 'label'"),
    (pd.DataFrame({"x": ["a", "b"], "label": [0, 1]}), "non-numeric column"),
    ({"x": 1}, "expected a dataset name or path"),
])
def test_bad_in_memory_data_is_named(source, message):
    with pytest.raises(WarmstartError, match=message):
        DataConfig(source)
