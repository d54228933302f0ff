"""Reading data: the built-in datasets, .npz arrays, .csv tables and image folders, through ``read_source``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from warmstart.config import DataConfig
from warmstart.data import DATASETS, load_splits
from warmstart.data.fashion_mnist import CLASS_NAMES as FASHION_NAMES
from warmstart.data.sources import read_source
from warmstart.errors import WarmstartError


# ---------------------------------------------------------------- built-ins

def test_builtins_are_registered():
    assert {"digits", "fashion-mnist"} <= set(DATASETS.names())


def test_digits_shapes_classes_and_range():
    train, test = read_source("digits")
    assert test is None  # warmstart holds its test split out itself
    assert train.x.shape == (1797, 1, 8, 8)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int64
    assert train.kind == "image" and train.input_shape == (1, 8, 8)
    assert train.class_names == tuple(str(i) for i in range(10))
    assert set(np.unique(train.y)) == set(range(10))
    assert train.x.min() == 0.0 and train.x.max() == 1.0


def test_fashion_mnist_splits_names_and_range(fashion_available):
    train, test = read_source("fashion-mnist")
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert len(train.y) == 60000 and len(test.y) == 10000
    assert train.class_names == test.class_names == FASHION_NAMES
    assert train.class_names[0] == "T-shirt/top" and train.class_names[9] == "Ankle boot"
    assert train.x.dtype == np.float32
    assert 0.0 <= float(train.x.min()) and float(train.x.max()) <= 1.0 and float(train.x.max()) > 0.9
    # balanced: 6,000 and 1,000 images of every class
    assert train.class_counts().tolist() == [6000] * 10
    assert test.class_counts().tolist() == [1000] * 10


def test_fashion_mnist_keeps_its_own_test_split(fashion_available):
    splits = load_splits(DataConfig("fashion-mnist", classes="Sandal,Bag", shots=3), seed=0)
    assert len(splits.test) == 2000  # the official test images of both classes, not a hold-out of train
    assert splits.test.class_names == ("Sandal", "Bag")
    assert len(splits.train) == 6 and splits.val is None


# ---------------------------------------------------------------- .npz

def _npz(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def test_npz_vectors(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 5)).astype(np.float32)
    y = np.arange(12) % 3
    train, test = read_source(_npz(tmp_path / "v.npz", x=x, y=y))
    assert test is None
    assert train.kind == "vector" and train.x.shape == (12, 5)
    np.testing.assert_array_equal(train.x, x)  # float data is not rescaled
    np.testing.assert_array_equal(train.y, y)
    assert train.class_names == ("0", "1", "2")
    assert train.name == "v.npz"


def test_npz_grey_images_get_a_channel_axis_and_uint8_is_scaled(tmp_path):
    x = np.zeros((4, 6, 7), dtype=np.uint8)
    x[0, 0, 0], x[1, 2, 3] = 255, 51
    train, _ = read_source(_npz(tmp_path / "g.npz", x=x, y=np.array([0, 1, 0, 1])))
    assert train.kind == "image" and train.x.shape == (4, 1, 6, 7) and train.x.dtype == np.float32
    assert train.x[0, 0, 0, 0] == 1.0
    assert train.x[1, 0, 2, 3] == pytest.approx(0.2)
    assert 0.0 <= train.x.min() and train.x.max() <= 1.0


def test_npz_channels_first_images(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, size=(6, 3, 5, 4), dtype=np.uint8)
    train, _ = read_source(_npz(tmp_path / "c.npz", x=x, y=np.arange(6) % 2))
    assert train.x.shape == (6, 3, 5, 4) and train.input_shape == (3, 5, 4)
    np.testing.assert_allclose(train.x, x / 255.0, rtol=1e-6)


def test_npz_channels_last_is_rejected_with_the_fix(tmp_path):
    x = np.zeros((6, 5, 4, 3), dtype=np.uint8)
    path = _npz(tmp_path / "hwc.npz", x=x, y=np.arange(6) % 2)
    with pytest.raises(WarmstartError, match="channels-last") as err:
        read_source(path)
    assert "hwc.npz" in str(err.value) and "'x'" in str(err.value)
    assert "transpose" in str(err.value)  # the hint says how to fix it


def test_npz_with_its_own_test_split(tmp_path):
    x = np.random.default_rng(2).integers(0, 256, size=(8, 4, 4), dtype=np.uint8)
    x_test = np.full((3, 4, 4), 255, dtype=np.uint8)
    y, y_test = np.array([2, 0, 1, 2, 0, 1, 0, 1]), np.array([1, 2, 0])
    path = _npz(tmp_path / "t.npz", x=x, y=y, x_test=x_test, y_test=y_test)
    train, test = read_source(path)
    assert test is not None and test.x.shape == (3, 1, 4, 4)
    assert float(test.x.max()) == 1.0  # x_test is scaled like x
    assert train.class_names == test.class_names == ("0", "1", "2")
    np.testing.assert_array_equal(test.y, y_test)
    # and it is the test split a run uses: no hold-out from train
    splits = load_splits(DataConfig(path, val_fraction=0.0), seed=0)
    assert len(splits.train) == 8 and len(splits.test) == 3


def test_npz_test_labels_map_to_the_training_classes_not_to_their_own(tmp_path):
    # labels 1..3 without class_names: y_test [1, 2] are the classes "1" and "2" (ids 0 and 1)
    x = np.zeros((6, 2), np.float32)
    path = _npz(tmp_path / "l.npz", x=x, y=np.array([1, 2, 3, 1, 2, 3]), x_test=x[:2], y_test=np.array([1, 2]))
    train, test = read_source(path)
    assert train.class_names == ("1", "2", "3")
    assert [test.class_names[i] for i in test.y] == ["1", "2"]


def test_npz_integer_labels_index_the_stored_class_names(tmp_path):
    names = np.array(["cat", "dog", "bird"])
    x = np.zeros((6, 3), np.float32)
    path = _npz(tmp_path / "n.npz", x=x, y=np.array([0, 1, 2, 2, 1, 0]), x_test=x[:2], y_test=np.array([2, 0]),
                class_names=names)
    train, test = read_source(path)
    assert train.class_names == test.class_names == ("cat", "dog", "bird")  # the stored order, not sorted
    np.testing.assert_array_equal(train.y, [0, 1, 2, 2, 1, 0])
    np.testing.assert_array_equal(test.y, [2, 0])


def test_npz_string_labels_follow_the_stored_class_names(tmp_path):
    x = np.zeros((4, 3), np.float32)
    path = _npz(tmp_path / "s.npz", x=x, y=np.array(["dog", "cat", "dog", "bird"]),
                class_names=np.array(["cat", "dog", "bird"]))
    train, _ = read_source(path)
    assert train.class_names == ("cat", "dog", "bird")
    np.testing.assert_array_equal(train.y, [1, 0, 1, 2])


def test_npz_string_labels_without_names_are_sorted(tmp_path):
    path = _npz(tmp_path / "s.npz", x=np.zeros((3, 2), np.float32), y=np.array(["b", "c", "a"]))
    train, _ = read_source(path)
    assert train.class_names == ("a", "b", "c")
    np.testing.assert_array_equal(train.y, [1, 2, 0])


def test_npz_integer_labels_sort_numerically(tmp_path):
    path = _npz(tmp_path / "i.npz", x=np.zeros((4, 2), np.float32), y=np.array([10, 2, 1, 2]))
    train, _ = read_source(path)
    assert train.class_names == ("1", "2", "10")  # not "1", "10", "2"
    np.testing.assert_array_equal(train.y, [2, 1, 0, 1])


# ---------------------------------------------------------------- .csv

def test_csv_numeric_features_and_string_labels(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n1.5,2,dog\n-3,4e-1,cat\n0,0,dog\n\n")  # a trailing blank line is ignored
    train, test = read_source(str(path))
    assert test is None
    assert train.kind == "vector" and train.x.shape == (3, 2) and train.x.dtype == np.float32
    np.testing.assert_allclose(train.x, [[1.5, 2.0], [-3.0, 0.4], [0.0, 0.0]])
    assert train.class_names == ("cat", "dog")
    np.testing.assert_array_equal(train.y, [1, 0, 1])
    assert train.name == "t.csv"


def test_csv_integer_labels_in_any_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("label,x1,x2,x3\n10,1,2,3\n2,4,5,6\n0,7,8,9\n2,1,1,1\n")
    train, _ = read_source(str(path))
    assert train.class_names == ("0", "2", "10")
    np.testing.assert_array_equal(train.y, [2, 1, 0, 1])
    np.testing.assert_array_equal(train.x[0], [1, 2, 3])  # the label column is not a feature


def test_csv_label_column_by_name(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("species, w ,h\nsetosa,1,2\nvirginica,3,4\nsetosa,5,6\nvirginica,7,8\n")
    with pytest.raises(WarmstartError, match="no label column 'label'"):
        read_source(str(path))
    train, _ = read_source(str(path), label_column="species")
    assert train.class_names == ("setosa", "virginica")
    assert train.x.shape == (4, 2)
    # through a run's config, as --label-column passes it
    splits = load_splits(DataConfig(str(path), label_column="species", test_fraction=0.5, val_fraction=0), seed=0)
    assert splits.train.class_counts().tolist() == [1, 1] and splits.test.class_counts().tolist() == [1, 1]


def test_csv_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("label,a\nx,1\ny,2\n", encoding="utf-8-sig")
    train, _ = read_source(str(path))
    assert train.class_names == ("x", "y")


# ---------------------------------------------------------------- image folders

def _png(path: Path, size=(5, 4), colour=None, value: int = 128) -> None:
    """A tiny PNG; size is (width, height) as PIL has it; grey unless ``colour`` is an RGB triple."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, colour) if colour is not None else Image.new("L", size, value)
    img.save(path)


def test_image_folder_one_subfolder_per_class(tmp_path):
    for cls, value in (("cat", 0), ("dog", 255)):
        for i in range(3):
            _png(tmp_path / "pets" / cls / f"{i}.png", value=value)
    (tmp_path / "pets" / "dog" / "notes.txt").write_text("not an image")  # ignored
    train, test = read_source(str(tmp_path / "pets"))
    assert test is None
    assert train.kind == "image" and train.x.shape == (6, 1, 4, 5)  # (N, C, H, W) from (width 5, height 4)
    assert train.class_names == ("cat", "dog")
    np.testing.assert_array_equal(train.y, [0, 0, 0, 1, 1, 1])
    assert train.x[train.y == 0].max() == 0.0 and train.x[train.y == 1].min() == 1.0


def test_image_folder_train_and_test_layout(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("a", "b", "c"):
            for i in range(n):
                _png(tmp_path / "imgs" / split / cls / f"{i}.png")
    train, test = read_source(str(tmp_path / "imgs"))
    assert train.class_names == test.class_names == ("a", "b", "c")
    assert len(train) == 9 and len(test) == 6
    assert train.input_shape == test.input_shape == (1, 4, 5)
    splits = load_splits(DataConfig(str(tmp_path / "imgs")), seed=0)
    assert len(splits.test) == 6  # the folder's test/ is used as is


def test_image_folder_test_may_lack_a_class_but_not_add_one(tmp_path):
    for cls in ("a", "b"):
        _png(tmp_path / "ok" / "train" / cls / "0.png")
    _png(tmp_path / "ok" / "test" / "b" / "0.png")
    train, test = read_source(str(tmp_path / "ok"))
    assert test.class_names == ("a", "b") and test.y.tolist() == [1]

    _png(tmp_path / "ok" / "test" / "zebra" / "0.png")
    with pytest.raises(WarmstartError, match="zebra"):
        read_source(str(tmp_path / "ok"))


def test_image_folder_grey_and_colour(tmp_path):
    _png(tmp_path / "grey" / "a" / "0.png")
    _png(tmp_path / "grey" / "b" / "0.png")
    assert read_source(str(tmp_path / "grey"))[0].input_shape == (1, 4, 5)

    _png(tmp_path / "colour" / "a" / "0.png", colour=(255, 0, 0))
    _png(tmp_path / "colour" / "b" / "0.png", colour=(0, 0, 255))
    train, _ = read_source(str(tmp_path / "colour"))
    assert train.input_shape == (3, 4, 5)
    np.testing.assert_allclose(train.x[0, :, 0, 0], [1.0, 0.0, 0.0])  # channel order R, G, B
    np.testing.assert_allclose(train.x[1, :, 0, 0], [0.0, 0.0, 1.0])

    # one colour image makes the whole set colour; grey images are repeated into three equal channels
    _png(tmp_path / "mixed" / "a" / "0.png", value=51)
    _png(tmp_path / "mixed" / "b" / "0.png", colour=(0, 255, 0))
    train, _ = read_source(str(tmp_path / "mixed"))
    assert train.input_shape == (3, 4, 5)
    np.testing.assert_allclose(train.x[0, :, 0, 0], [0.2, 0.2, 0.2], atol=1e-6)


def test_image_folder_test_images_take_the_training_channels(tmp_path):
    _png(tmp_path / "d" / "train" / "a" / "0.png")
    _png(tmp_path / "d" / "train" / "b" / "0.png")
    _png(tmp_path / "d" / "test" / "a" / "0.png", colour=(10, 20, 30))
    train, test = read_source(str(tmp_path / "d"))
    assert train.input_shape == test.input_shape == (1, 4, 5)


def test_image_folder_sizes_that_differ_need_image_size(tmp_path):
    _png(tmp_path / "s" / "a" / "0.png", size=(5, 4))
    _png(tmp_path / "s" / "b" / "0.png", size=(9, 7))
    with pytest.raises(WarmstartError, match="different sizes") as err:
        read_source(str(tmp_path / "s"))
    assert "--image-size" in str(err.value)

    train, _ = read_source(str(tmp_path / "s"), image_size=(6, 3))
    assert train.x.shape == (2, 1, 6, 3)  # (height, width) as given
    # through a run's config, and test/ images follow the training size
    for split in ("train", "test"):
        _png(tmp_path / "tt" / split / "a" / "0.png", size=(5, 4))
        _png(tmp_path / "tt" / split / "b" / "0.png", size=(8, 8))
    train, test = read_source(str(tmp_path / "tt"), image_size=(4, 4))
    assert train.input_shape == test.input_shape == (1, 4, 4)
    assert DataConfig(str(tmp_path / "tt"), image_size=[4, 4]).image_size == (4, 4)


def test_image_folder_same_sized_test_images_are_resized_to_train(tmp_path):
    _png(tmp_path / "r" / "train" / "a" / "0.png", size=(5, 4))
    _png(tmp_path / "r" / "test" / "a" / "0.png", size=(10, 8))
    train, test = read_source(str(tmp_path / "r"))
    assert test.input_shape == train.input_shape == (1, 4, 5)
