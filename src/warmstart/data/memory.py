"""Data held in memory, as a :class:`~warmstart.config.DataConfig` source: arrays ``(x, y)`` or ``(x, y, x_test,
y_test)``, a pandas DataFrame (feature columns and a label column, or a text column), a pair of DataFrames (train,
test), or a torch ``Dataset`` of ``(input, label)`` pairs (or a pair of them). Nothing is written to disk.

``x`` is read as the files are: (N, D) vectors, (N, H, W) grey or (N, C, H, W) images (8-bit ones scaled to [0, 1];
channels-last arrays are refused with the transpose to apply), or a 1-D array of strings (texts). Labels may be
integers or strings; class names are their sorted values, as for files.

The source becomes an :class:`InMemoryData`: a ``str`` whose text describes the data (``in-memory arrays: 200
examples, ... (sha256 3f2a...)``) and which carries the datasets. Everywhere a source is named (messages, a run's
config.json, a checkpoint's metadata, the resume check) the description stands for it, unchanged code; only
:func:`warmstart.data.sources.read_source` looks inside. The digest of the contents makes two different arrays two
different sources.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import WarmstartError
from .dataset import Dataset
from .files import _as_examples, _labels_to_ids

WHERE = Path("in-memory data")  # how the array checks of .npz files name these arrays
FORMS = ("arrays (x, y) or (x, y, x_test, y_test), a pandas DataFrame (or a pair: train, test), or a torch Dataset "
         "of (input, label) pairs (or a pair: train, test)")


class InMemoryData(str):
    """An in-memory source: its description, and the ``train`` and ``test`` (or None) datasets it holds."""

    train: Dataset
    test: Dataset | None

    def __new__(cls, train: Dataset, test: Dataset | None, form: str) -> "InMemoryData":
        digest = hashlib.sha256()
        for dataset in (train, test):
            if dataset is not None:
                digest.update(dataset.x.tobytes() if dataset.x.dtype != object else "\x1e".join(dataset.x).encode())
                digest.update(dataset.y.tobytes() + "\x1f".join(dataset.class_names).encode())
        test_part = "" if test is None else f" and {len(test)} test examples"
        self = super().__new__(cls, f"in-memory {form}: {len(train)} examples{test_part}, {train.num_classes} classes "
                                    f"(sha256 {digest.hexdigest()[:12]})")
        self.train, self.test = train, test
        return self

    # the data is immutable: copies (dataclasses.asdict deep-copies a config) share it
    def __copy__(self) -> "InMemoryData":
        return self

    def __deepcopy__(self, memo: dict) -> "InMemoryData":
        return self

    def __reduce__(self):
        return _rebuild, (self.train, self.test, str(self))


def _rebuild(train: Dataset, test: Dataset | None, text: str) -> InMemoryData:
    data = str.__new__(InMemoryData, text)
    data.train, data.test = train, test
    return data


def in_memory(source: Any, *, label_column: str = "label", text_column: str | None = None) -> InMemoryData:
    """``source`` (any of :data:`FORMS`) as an :class:`InMemoryData`."""
    if _is_frame(source):
        return InMemoryData(*_frames(source, None, label_column, text_column), "DataFrame")
    if _is_torch_dataset(source):
        return InMemoryData(*_torch_datasets(source, None), "torch Dataset")
    if isinstance(source, (tuple, list)):
        if len(source) == 2 and _is_frame(source[0]) and _is_frame(source[1]):
            return InMemoryData(*_frames(source[0], source[1], label_column, text_column), "DataFrames")
        if len(source) == 2 and _is_torch_dataset(source[0]) and _is_torch_dataset(source[1]):
            return InMemoryData(*_torch_datasets(source[0], source[1]), "torch Datasets")
        if len(source) in (2, 4):
            train = examples(source[0], source[1], "x", "y")
            test = None if len(source) == 2 else examples(source[2], source[3], "x_test", "y_test", train.class_names)
            if test is not None and test.input_shape != train.input_shape:
                raise WarmstartError(f"in-memory data: x has shape {train.input_shape} per example but x_test has "
                                     f"{test.input_shape}", hint="give the test examples the training examples' shape")
            return InMemoryData(train, test, "arrays")
    raise WarmstartError(f"data: expected a dataset name or path, or {FORMS}; got {type(source).__name__}",
                         hint="pass DataConfig((x, y)), DataConfig(dataframe, label_column=...), or a path")


def as_array(values: Any) -> np.ndarray:
    """NumPy from arrays, lists, tensors and pandas objects."""
    import torch

    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def inputs(x: Any, key: str = "x") -> tuple[np.ndarray, str]:
    """Examples as warmstart holds them, and their kind (``vector``, ``image`` or ``text``)."""
    if _is_frame(x):
        return _frame_features(x, key)[0], "vector"
    array = as_array(x)
    if array.ndim == 1 and array.dtype.kind in "OUS":
        texts = np.asarray([str(t) for t in array.tolist()], dtype=object)
        if len(texts) == 0:
            raise WarmstartError(f"in-memory data: {key} holds no examples", hint="pass at least one example")
        return texts, "text"
    if array.ndim == 1:
        raise WarmstartError(f"in-memory data: {key} is one-dimensional ({array.shape}) and not text",
                             hint="give one row per example: x.reshape(-1, 1) for a single feature")
    return _as_examples(array, WHERE, key)


def _is_missing(value: Any) -> bool:
    """None, a float NaN, or pandas' NA and NaT."""
    return value is None or (isinstance(value, float) and value != value) or type(value).__name__ in ("NAType",
                                                                                                     "NaTType")


def examples(x: Any, y: Any, x_key: str, y_key: str, class_names: tuple[str, ...] | None = None) -> Dataset:
    """A labelled dataset from arrays; with ``class_names`` (the training set's), labels must be among them."""
    values, kind = inputs(x, x_key)
    feature_names = _frame_features(x, x_key)[1] if _is_frame(x) else None
    labels = as_array(y)
    if labels.ndim != 1:
        raise WarmstartError(f"in-memory data: {y_key} has shape {labels.shape}; expected one label per example",
                             hint="pass labels as a 1-D array of class ids or names (y.argmax(1) for one-hot)")
    if len(labels) != len(values):
        raise WarmstartError(f"in-memory data: {x_key} has {len(values)} examples but {y_key} has {len(labels)} "
                             "labels", hint=f"give one label per example: len({y_key}) == len({x_key})")
    missing = [i for i, v in enumerate(labels.tolist()) if _is_missing(v)]
    if missing:  # str() would make "nan" or "None" a class; the file readers refuse an empty label alike
        raise WarmstartError(f"in-memory data: {y_key} has {len(missing)} missing label(s) (None or NaN; first at "
                             f"index {missing[0]})", hint="drop the unlabelled examples, or label them")
    ids, names = _labels_to_ids(labels, class_names)
    if (ids < 0).any():
        unknown = labels[np.flatnonzero(ids < 0)[0]].item()
        raise WarmstartError(f"in-memory data: {y_key} holds the label {unknown!r}, which the training labels never "
                             "have",
                             hint="drop those examples, or add training examples of that class")
    return Dataset(values, ids, names, kind, "in-memory data", feature_names)


def unlabelled(x: Any, class_names: tuple[str, ...]) -> Dataset:
    """Examples to predict: ``x`` with placeholder labels (class 0), in a model's classes."""
    values, kind = inputs(x)
    feature_names = _frame_features(x, "x")[1] if _is_frame(x) else None
    return Dataset(values, np.zeros(len(values), dtype=np.int64), tuple(class_names), kind, "in-memory data",
                   feature_names)


def _is_frame(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "columns")


def _is_torch_dataset(value: Any) -> bool:
    from torch.utils.data import Dataset as TorchDataset

    return isinstance(value, TorchDataset)


def _frame_features(frame: Any, key: str) -> tuple[np.ndarray, tuple[str, ...]]:
    columns = [str(c) for c in frame.columns]
    other = [c for c, dtype in zip(columns, frame.dtypes) if not (_plain_dtype(dtype) and
                                                                   np.dtype(dtype).kind in "biuf")]
    if other:
        raise WarmstartError(f"in-memory data: the DataFrame {key} has non-numeric column(s) {', '.join(other[:5])}",
                             hint="pass numeric feature columns (and the label column), or set text_column to "
                                  "read a text column")
    return _as_examples(frame.to_numpy(dtype=np.float32), WHERE, key)[0], tuple(columns)


def _plain_dtype(dtype: Any) -> bool:
    try:
        np.dtype(dtype)
    except TypeError:
        return False
    return True


def _frames(train: Any, test: Any, label_column: str, text_column: str | None) -> tuple[Dataset, Dataset | None]:
    def split(frame: Any, name: str, class_names: tuple[str, ...] | None) -> Dataset:
        columns = [str(c) for c in frame.columns]
        if label_column not in columns:
            raise WarmstartError(f"in-memory data: the {name} DataFrame has no label column {label_column!r}; its "
                                 f"columns are {', '.join(columns[:10])}", hint="name it with label_column=...")
        labels = frame[label_column]
        if text_column is not None:
            if text_column not in columns:
                raise WarmstartError(f"in-memory data: the {name} DataFrame has no text column {text_column!r}",
                                     hint=f"name the text column with text_column (columns: {', '.join(columns)})")
            texts = np.asarray([str(t) for t in frame[text_column].tolist()], dtype=object)
            return examples(texts, labels, f"{name}[{text_column!r}]", f"{name}[{label_column!r}]", class_names)
        return examples(frame.drop(columns=[label_column]), labels, name, f"{name}[{label_column!r}]", class_names)

    first = split(train, "train", None)
    return first, None if test is None else split(test, "test", first.class_names)


def _torch_datasets(train: Any, test: Any) -> tuple[Dataset, Dataset | None]:
    def read(dataset: Any, name: str, class_names: tuple[str, ...] | None) -> Dataset:
        try:
            pairs = [dataset[i] for i in range(len(dataset))]
        except TypeError:
            raise WarmstartError(f"in-memory data: the {name} torch Dataset has no length or cannot be indexed",
                                 hint="pass a map-style Dataset (with __len__ and __getitem__)") from None
        if not pairs or not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
            raise WarmstartError(f"in-memory data: the {name} torch Dataset does not give (input, label) pairs",
                                 hint="make __getitem__ return (input, label), as TensorDataset(x, y) does")
        x = np.stack([as_array(p[0]) for p in pairs])
        y = np.asarray([as_array(p[1]).item() if as_array(p[1]).size == 1 else as_array(p[1]) for p in pairs])
        return examples(x, y, f"{name} inputs", f"{name} labels", class_names)

    first = read(train, "train", None)
    return first, None if test is None else read(test, "test", first.class_names)
