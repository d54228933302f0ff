"""The one policy that fits data to a model's input (data/fit.py)."""

from __future__ import annotations

import numpy as np
import pytest

from warmstart.data import Dataset, DataSplits
from warmstart.data.fit import fit_splits, fit_to_model, model_kind
from warmstart.data.preprocess import Normalization, Tokenization, adapt_inputs
from warmstart.errors import WarmstartError


def _images(n=4, size=8, channels=1):
    x = np.random.default_rng(0).random((n, channels, size, size), dtype=np.float32)
    return Dataset(x, np.arange(n) % 2, ("a", "b"), "image", "tiny")


def test_a_recorded_input_size_resizes_with_the_recorded_interpolation():
    pretrained = Normalization((0.5,) * 3, (0.25,) * 3, "image", input_size=(3, 16, 16), interpolation="bicubic")
    fitted = fit_to_model(_images(), (3, 16, 16), pretrained, model_name="m")  # no --resize needed
    assert fitted.input_shape == (3, 16, 16)
    bicubic = adapt_inputs(_images(), (3, 16, 16), resize=True, model_name="m", interpolation="bicubic")
    np.testing.assert_array_equal(fitted.x, bicubic.x)


def test_without_a_recorded_size_resizing_is_asked_for():
    plain = Normalization((0.5,), (0.25,), "image")
    with pytest.raises(WarmstartError, match="expects inputs of shape 1x16x16"):
        fit_to_model(_images(), (1, 16, 16), plain, model_name="m")
    assert fit_to_model(_images(), (1, 16, 16), plain, model_name="m", resize=True).input_shape == (1, 16, 16)


def test_feature_columns_are_matched_by_name_in_every_split():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    data = Dataset(x, np.array([0, 1, 0, 1]), ("a", "b"), "vector", "t", feature_names=("c", "a", "b"))
    norm = Normalization((0.0,) * 3, (1.0,) * 3, "vector")
    splits = fit_splits(DataSplits(data, None, data), (3,), norm, model_name="m", feature_names=("a", "b", "c"))
    assert splits.val is None
    np.testing.assert_array_equal(splits.test.x, x[:, [1, 2, 0]])


def test_model_kind_is_decided_once():
    assert model_kind("hf", (128,)) == "text"
    assert model_kind("cnn", (1, 28, 28)) == "image"
    assert model_kind("mlp", (10,)) == "vector"


def test_texts_and_a_model_of_another_kind_are_refused_both_ways_naming_both():
    texts = Dataset(np.array(["what is a fjord", "who wrote it"], dtype=object), np.array([0, 1]), ("a", "b"), "text",
                    "questions.csv")
    image_model = Normalization((0.5,), (0.25,), "image")
    with pytest.raises(WarmstartError, match="checkpoint c is an image model, but questions.csv holds texts") as error:
        fit_to_model(texts, (1, 8, 8), image_model, model_name="checkpoint c")
    assert "text encoder" in error.value.hint
    tokenizer = Tokenization("sentence-transformers/all-MiniLM-L6-v2", 32)
    with pytest.raises(WarmstartError, match="checkpoint t is a text model, but tiny holds images") as error:
        fit_to_model(_images(), (32,), tokenizer, model_name="checkpoint t")
    assert "text column" in error.value.hint
    assert fit_to_model(texts, (32,), tokenizer, model_name="checkpoint t") is texts
