"""Turning a DATA argument (a built-in name or a path) into ``(train, test)`` datasets."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import WarmstartError
from ..registry import Registry
from . import fashion_mnist
from .dataset import Dataset
from .files import check_regular_file, load_csv, load_image_folder, load_npz, numeric_columns
from .memory import InMemoryData
from .text import load_text_table, split_files

BuiltIn = Callable[[], tuple[Dataset, Dataset | None]]
DATASETS: Registry[BuiltIn] = Registry("dataset")


@DATASETS.register("fashion-mnist")
def _fashion_mnist() -> tuple[Dataset, Dataset | None]:
    """Fashion-MNIST: 60,000 train and 10,000 test 28x28 grey images, 10 clothing classes."""
    return fashion_mnist.load()


@DATASETS.register("digits")
def _digits() -> tuple[Dataset, Dataset | None]:
    """scikit-learn's 8x8 handwritten digits: 1,797 grey images, 10 classes (test split held out by warmstart)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]
    names = tuple(str(n) for n in bunch.target_names)
    return Dataset(x, bunch.target.astype(np.int64), names, "image", "digits"), None


def _csv_header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return [h.strip() for h in next(csv.reader(f), [])]
    except (UnicodeDecodeError, OSError):
        return []  # the loader reports it properly


def read_source(source: str, *, label_column: str = "label", image_size: tuple[int, int] | None = None,
                text_column: str | None = None) -> tuple[Dataset, Dataset | None]:
    """Text classification when ``text_column`` is set, for .tsv, .jsonl and .parquet files, and for a .csv (or a
    folder's train.csv) that is not all numbers; numeric features for a .csv whose every column but the label holds
    numbers.

    A ``train.csv`` with a ``test.csv`` beside it (given as the file or as their folder) gives both splits, for
    vectors as for text. The column types decide, not the name or place: a folder of numeric ``train.csv`` and
    ``test.csv`` is a vector dataset with its own test split."""
    if isinstance(source, InMemoryData):
        return source.train, source.test
    if source in DATASETS:
        return DATASETS.create(source)
    path = Path(source).expanduser()
    if not path.exists():
        raise WarmstartError(
            f"--data {source!r}: no built-in dataset of that name and no such file or folder",
            hint=f"use one of {', '.join(DATASETS.names())}, or a path to an .npz, a .csv or an image folder",
        )
    if not path.is_dir():
        check_regular_file(path, "data file", f"--data {source!r}")  # a FIFO would block the first read forever
    suffix = path.suffix.lower()
    tables = split_files(path) if path.is_dir() or suffix == ".csv" else None
    if text_column is None and tables is not None and tables[0].suffix.lower() == ".csv" \
            and numeric_columns(tables[0], label_column):
        return load_csv(tables[0], label_column, tables[1])
    is_table_folder = path.is_dir() and tables is not None
    csv_with_text = suffix == ".csv" and "text" in _csv_header(path)
    text_file = suffix in (".tsv", ".jsonl", ".parquet")
    if text_column is not None or text_file or is_table_folder or csv_with_text:
        return load_text_table(path, text_column or "text", label_column)
    if path.is_dir():
        return load_image_folder(path, image_size)
    if suffix == ".npz":
        return load_npz(path)
    if suffix == ".csv":
        return load_csv(path, label_column)
    raise WarmstartError(f"--data {source!r}: unsupported file type {suffix or '(none)'}",
                         hint="use an .npz with arrays x and y, a .csv with a label column (--text-column for text), "
                              "a .tsv, .jsonl or .parquet text file, or an image folder")
