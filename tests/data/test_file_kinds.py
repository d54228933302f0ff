"""What kind of data a file or folder holds is decided by its contents, and hostile files (a FIFO, a decompression
bomb, a 300k-character text) end in a WarmstartError with a fix, never a hang or a traceback (issue 14, items 4,
12, 13, 14)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from warmstart.data.files import numeric_columns, read_image
from warmstart.data.sources import read_source
from warmstart.errors import WarmstartError


def _vectors(path: Path, rows: int, dims: int, seed: int, labels: tuple[int, ...] = (0, 1, 2)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, dims)).round(4)
    y = np.asarray([labels[i % len(labels)] for i in range(rows)])
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"f{i}" for i in range(dims)] + ["label"])
        for features, label in zip(x, y):
            writer.writerow([*features.tolist(), int(label)])
    return x


# ---------------------------------------------------------------- item 4: vectors vs text by column types

def test_a_folder_of_numeric_train_and_test_csv_is_vectors_with_its_own_test_split(tmp_path):
    x = _vectors(tmp_path / "train.csv", 30, 100, seed=0)
    x_test = _vectors(tmp_path / "test.csv", 12, 100, seed=1)
    train, test = read_source(str(tmp_path))
    assert train.kind == test.kind == "vector"
    assert train.x.shape == (30, 100) and test.x.shape == (12, 100)
    np.testing.assert_allclose(test.x, x_test.astype(np.float32))
    np.testing.assert_allclose(train.x, x.astype(np.float32))
    assert train.class_names == test.class_names == ("0", "1", "2")
    assert train.feature_names == tuple(f"f{i}" for i in range(100))


def test_a_numeric_train_csv_named_as_a_file_takes_its_test_csv_too(tmp_path):
    _vectors(tmp_path / "train.csv", 20, 4, seed=0)
    _vectors(tmp_path / "test.csv", 9, 4, seed=1)
    train, test = read_source(str(tmp_path / "train.csv"))
    assert train.kind == "vector" and len(test) == 9


def test_numeric_test_split_with_an_unseen_label_is_refused(tmp_path):
    _vectors(tmp_path / "train.csv", 20, 4, seed=0, labels=(0, 1))
    _vectors(tmp_path / "test.csv", 9, 4, seed=1, labels=(0, 1, 7))
    with pytest.raises(WarmstartError, match="'7' never occur") as info:
        read_source(str(tmp_path))
    assert info.value.hint


def test_a_folder_of_text_csv_is_still_text(tmp_path):
    for name in ("train", "test"):
        (tmp_path / f"{name}.csv").write_text("text,label\nhello there,a\nbye now,b\n")
    train, test = read_source(str(tmp_path))
    assert train.kind == test.kind == "text"


def test_numeric_columns_decides_by_types(tmp_path):
    (tmp_path / "a.csv").write_text("x,y,label\n1,2.5e3,cat\n-3,.5,dog\n")
    (tmp_path / "b.csv").write_text("text,label\nhello,1\n")
    (tmp_path / "c.csv").write_text("label\n1\n")
    assert numeric_columns(tmp_path / "a.csv", "label")
    assert not numeric_columns(tmp_path / "b.csv", "label")
    assert not numeric_columns(tmp_path / "c.csv", "label")


# ---------------------------------------------------------------- item 14: long texts in a CSV

def test_a_300k_character_text_in_a_csv_loads_as_it_does_from_jsonl(tmp_path):
    long_text = "word " * 60_000  # 300k characters, over the csv module's default field limit of 131,072
    with open(tmp_path / "data.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerow([long_text, "a"])
        writer.writerow(["short", "b"])
    (tmp_path / "data.jsonl").write_text(json.dumps({"text": long_text, "label": "a"}) + "\n"
                                         + json.dumps({"text": "short", "label": "b"}) + "\n")
    from_csv, _ = read_source(str(tmp_path / "data.csv"))
    from_jsonl, _ = read_source(str(tmp_path / "data.jsonl"))
    assert from_csv.x.tolist() == from_jsonl.x.tolist()
    assert len(from_csv.x[0]) == len(long_text.strip())


# ---------------------------------------------------------------- items 12, 13: FIFOs and decompression bombs

def _class_folders(root: Path) -> None:
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        Image.new("L", (4, 4), 10).save(root / name / "0.png")


@pytest.mark.timeout(20)
def test_a_fifo_in_an_image_folder_is_refused_without_blocking(tmp_path):
    _class_folders(tmp_path)
    os.mkfifo(tmp_path / "a" / "1.png")  # opening it would wait for a writer forever
    with pytest.raises(WarmstartError, match="FIFO") as info:
        read_source(str(tmp_path))
    assert "1.png" in str(info.value) and info.value.hint


@pytest.mark.timeout(20)
def test_a_fifo_as_a_csv_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "data.csv")
    with pytest.raises(WarmstartError, match="FIFO"):
        read_source(str(tmp_path / "data.csv"))


@pytest.fixture
def small_bomb_limit(monkeypatch):
    """PIL warns above MAX_IMAGE_PIXELS and refuses above twice that; a small limit makes tiny files bombs."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)


@pytest.mark.parametrize("side", [12, 20], ids=["warning", "error"])  # 144 px: PIL warns; 400 px: PIL raises
def test_decompression_bombs_in_an_image_folder_are_refused(tmp_path, small_bomb_limit, side):
    _class_folders(tmp_path)
    Image.new("L", (side, side), 0).save(tmp_path / "b" / "bomb.png")
    monkeypatch_size = Image.MAX_IMAGE_PIXELS
    with pytest.raises(WarmstartError, match="decompression bomb") as info:
        read_source(str(tmp_path), image_size=(4, 4))
    assert "bomb.png" in str(info.value) and f"{monkeypatch_size:,}" in info.value.hint


def test_read_image_names_the_file_of_a_damaged_image(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(WarmstartError, match="x.png: cannot be read as an image") as info:
        read_image(tmp_path / "x.png")
    assert info.value.hint


# ---------------------------------------------------------------- files that used to be read wrongly without a word

def test_a_text_row_with_an_unquoted_comma_is_refused_not_read_as_a_new_class(tmp_path):
    rows = [["text", "label"], *[[f"where is town {i} ?", "LOC"] for i in range(4)],
            *[[f"who wrote book {i} ?", "HUM"] for i in range(4)]]
    with open(tmp_path / "t.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    with open(tmp_path / "t.csv", "a") as f:
        f.write("How many people live in Tokyo, Japan?,NUM\n")  # three fields: zip used to drop the label
    with pytest.raises(WarmstartError, match=r"t\.csv, line 10: 3 fields, but the header has 2") as err:
        read_source(str(tmp_path / "t.csv"))
    assert "quote a field that holds a comma" in err.value.hint


def test_feature_vectors_are_read_as_they_are_whatever_their_dtype(tmp_path):
    """A uint8 (N, D) array was divided by 255 as if it held pixels, while predict read the same values from a CSV
    or a float array unscaled: the model saw other numbers at prediction than in training."""
    values = np.random.default_rng(0).integers(0, 256, size=(20, 5))
    y = np.arange(20) % 2
    np.savez(tmp_path / "u8.npz", x=values.astype(np.uint8), y=y)
    pd.DataFrame(values.astype(float), columns=[f"f{i}" for i in range(5)]).assign(label=y).to_csv(
        tmp_path / "v.csv", index=False)
    from_array, from_csv = read_source(str(tmp_path / "u8.npz"))[0].x, read_source(str(tmp_path / "v.csv"))[0].x
    assert from_array.max() > 200 and np.array_equal(from_array, values.astype(np.float32))
    assert np.array_equal(np.sort(from_array, axis=0), np.sort(from_csv, axis=0))


def test_integer_image_arrays_are_scaled_as_8_bit_pixels_whatever_their_dtype(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(12, 1, 6, 6))
    y = np.arange(12) % 2
    read = {}
    for dtype in (np.uint8, np.int64, np.int32):
        np.savez(tmp_path / f"{np.dtype(dtype).name}.npz", x=pixels.astype(dtype), y=y)
        read[dtype] = read_source(str(tmp_path / f"{np.dtype(dtype).name}.npz"))[0].x
    # int64 0-255 used to be kept as 0-255 floats, so a model trained on it read PNGs (divided by 255) as near black
    assert np.array_equal(read[np.int64], read[np.uint8]) and np.array_equal(read[np.int32], read[np.uint8])
    assert read[np.uint8].max() <= 1.0
    np.savez(tmp_path / "u16.npz", x=(pixels * 257).astype(np.uint16), y=y)
    assert np.allclose(read_source(str(tmp_path / "u16.npz"))[0].x, read[np.uint8], atol=1e-6)
    np.savez(tmp_path / "wide.npz", x=pixels.astype(np.int32) * 1000, y=y)
    with pytest.raises(WarmstartError, match="holds integer pixels from 0 to .* expected 8-bit values"):
        read_source(str(tmp_path / "wide.npz"))


def test_an_npz_naming_a_class_twice_is_refused_before_training(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((6, 4), np.float32), y=np.arange(6) % 3,
             class_names=np.array(["cat", "dog", "cat"]))
    with pytest.raises(WarmstartError, match="class_names must be a 1-D array of distinct names; found 'cat' more"):
        read_source(str(tmp_path / "d.npz"))


def test_an_unnamed_column_such_as_a_pandas_index_is_refused_not_used_as_a_feature(tmp_path):
    with open(tmp_path / "v.csv", "w", newline="") as f:
        csv.writer(f).writerows([["", "f0", "f1", "label"], *[[i, 0.5 * i, -i, "ab"[i % 2]] for i in range(10)]])
    with pytest.raises(WarmstartError, match="column.s. 1 have no name in the header") as err:
        read_source(str(tmp_path / "v.csv"))
    assert "index=False" in err.value.hint


@pytest.mark.parametrize("dtype, suffix", [(np.uint16, ".png"), (np.int32, ".tif")])  # PIL modes I;16 and I
def test_16_bit_grey_images_are_scaled_not_clipped_to_white(tmp_path, dtype, suffix):
    for name, level in (("dark", 5000), ("bright", 60000)):
        (tmp_path / "img" / name).mkdir(parents=True)
        for i in range(3):
            image = Image.fromarray(np.full((8, 8), level + 100 * i, dtype=dtype))
            image.save(tmp_path / "img" / name / f"{i}{suffix}")
    train, _ = read_source(str(tmp_path / "img"))
    dark, bright = train.x[train.y == train.class_names.index("dark")], train.x[train.y == train.class_names.index(
        "bright")]
    assert abs(dark.mean() - 5100 / 65535) < 0.01 and abs(bright.mean() - 60100 / 65535) < 0.01


def test_what_an_image_folder_read_leaves_out_is_said(tmp_path, caplog):
    import logging

    for name in ("red", "blue"):
        (tmp_path / "img" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (6, 6), name).save(tmp_path / "img" / name / f"{i}.png")
    (tmp_path / "img" / "red" / "more").mkdir()
    Image.new("RGB", (6, 6), "red").save(tmp_path / "img" / "red" / "more" / "9.png")
    (tmp_path / "img" / "blue" / "notes.txt").write_text("not an image")
    Image.new("RGB", (6, 6), "blue").save(tmp_path / "img" / "blue" / "x.jfif", format="JPEG")  # a JPEG, read
    with caplog.at_level(logging.INFO, logger="warmstart"):
        train, _ = read_source(str(tmp_path / "img"))
    assert sorted(np.bincount(train.y).tolist()) == [3, 4]
    assert "skipped 2 entr(ies) in the class folders that are not image files" in caplog.text
    assert "blue/notes.txt" in caplog.text and "red/more" in caplog.text and "1 of them sub-folders" in caplog.text


def test_float_labels_that_are_whole_numbers_index_the_stored_class_names(tmp_path):
    np.savez(tmp_path / "f.npz", x=np.zeros((6, 3), np.float32), y=np.array([0.0, 1.0, 2.0] * 2),
             class_names=np.array(["cat", "dog", "eel"]))
    train, _ = read_source(str(tmp_path / "f.npz"))
    assert train.class_names == ("cat", "dog", "eel") and train.y.tolist() == [0, 1, 2, 0, 1, 2]


def test_float_image_arrays_in_0_255_are_taken_as_they_are_with_a_note(tmp_path, caplog):
    import logging

    np.savez(tmp_path / "f.npz", x=np.random.default_rng(0).uniform(0, 255, (6, 1, 4, 4)), y=np.arange(6) % 2)
    with caplog.at_level(logging.INFO, logger="warmstart"):
        train, _ = read_source(str(tmp_path / "f.npz"))
    assert train.x.max() > 200 and "holds float pixels up to" in caplog.text and "uint8" in caplog.text


def test_a_stray_quote_in_a_csv_is_an_error_not_one_text_running_to_the_end(tmp_path):
    """csv.reader without strict read an unclosed quote as one field to the end of the file: 40 questions became 5
    examples, the last holding 36 lines, and training went on without a word."""
    lines = [f"question {i} ?,{'ab'[i % 2]}" for i in range(40)]
    lines[4] = '"' + lines[4]
    (tmp_path / "q.csv").write_text("text,label\n" + "\n".join(lines) + "\n")
    with pytest.raises(WarmstartError, match=r"q\.csv, line 6 \(a quoted field there runs on to line 41\): cannot be "
                                             "read as CSV") as error:
        read_source(str(tmp_path / "q.csv"))
    assert "stray quote" in error.value.hint
