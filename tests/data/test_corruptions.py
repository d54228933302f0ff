"""Corruptions: deterministic, severity-graded shifts of image data, set through DataConfig.corruption."""

from __future__ import annotations

import numpy as np
import pytest

from warmstart.config import DataConfig
from warmstart.data import load_split
from warmstart.data.corruptions import CORRUPTIONS, SEVERITIES, corrupt, parse_corruption
from warmstart.data.dataset import Dataset
from warmstart.errors import WarmstartError


def _images(n: int = 32, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, 16, 16), np.float32)
    x[:, :, 4:12, 6:10] = rng.uniform(0.5, 1.0, size=(n, 1, 8, 4))  # a bright bar on a dark background
    return Dataset(x, rng.integers(0, 3, n), ("a", "b", "c"), "image", "bars")


@pytest.mark.parametrize("name", CORRUPTIONS.names())
def test_every_corruption_is_deterministic_in_range_and_grows_with_severity(name):
    data = _images()
    distances = []
    for severity in SEVERITIES:
        first = corrupt(data, f"{name}:{severity}")
        again = corrupt(data, f"{name}:{severity}")
        assert np.array_equal(first.x, again.x)  # seeded: the same set every time
        assert first.x.shape == data.x.shape and first.x.dtype == np.float32
        assert first.x.min() >= 0.0 and first.x.max() <= 1.0 + 1e-6
        assert np.array_equal(first.y, data.y) and first.name == f"bars[{name}:{severity}]"
        distances.append(float(np.abs(first.x - data.x).mean()))
    assert distances[0] > 0
    assert distances[-1] > distances[0]  # severity 5 moves the images further than severity 1


def test_train_and_test_splits_get_their_own_draws():
    data = _images()
    assert not np.array_equal(corrupt(data, "noise:3", split="train").x, corrupt(data, "noise:3", split="test").x)


def test_known_values():
    data = _images()
    assert np.allclose(corrupt(data, "invert:5").x, 1.0 - data.x)
    contrast = corrupt(data, "contrast:2").x
    assert np.allclose(contrast.std(axis=(1, 2, 3)), 0.5 * data.x.std(axis=(1, 2, 3)), rtol=1e-4)


def test_parse_and_clear_errors():
    assert parse_corruption("rotate") == ("rotate", 3)
    assert parse_corruption("blur:5") == ("blur", 5)
    with pytest.raises(WarmstartError, match="unknown corruption 'fog'"):
        parse_corruption("fog:2")
    with pytest.raises(WarmstartError, match="severity must be a whole number from 1 to 5"):
        DataConfig("digits", corruption="noise:7")
    vectors = Dataset(np.zeros((4, 3), np.float32), np.zeros(4, np.int64), ("a",), "vector", "table")
    with pytest.raises(WarmstartError, match="applies to images"):
        corrupt(vectors, "noise:1")


def test_data_config_corrupts_every_split():
    clean = load_split(DataConfig("digits"), "test")
    shifted = load_split(DataConfig("digits", corruption="invert:5"), "test")
    assert np.allclose(shifted.x, 1.0 - clean.x)
    assert np.array_equal(shifted.y, clean.y)
