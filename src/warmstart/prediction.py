"""Predicting a table of rows with a checkpoint (or an ONNX export of one, run through onnxruntime): the input's
rows, every column kept in order, plus ``predicted_label`` (the class name) and ``probability`` (the softmax
probability of that class), written as CSV. The input is read as training reads a table
(:func:`warmstart.data.text.read_table`): a .csv, .tsv, .jsonl or .parquet file.

What each row's input is depends on the checkpoint's data kind:

- ``vector``: the feature columns. A checkpoint trained on a CSV records their names, and they are selected by name
  (in any order; other columns are kept in the output and ignored). Without recorded names (a model trained on an
  ``.npz``), every column but the optional label column is a feature, and their number must match the model's.
- ``text``: the text column, tokenised as the checkpoint records. A row whose text is empty is left unpredicted
  (both new cells empty) and counted in a note; there is nothing in it to classify.
- ``image``: a column of image paths (relative ones resolve against the input file's folder), each converted to the
  model's channels and resized to its input size as image folders are at training time, then normalised with the
  checkpoint's statistics.

Rows are read, predicted in batches, and the output is written atomically only when every row succeeded: a failed
prediction leaves an existing output file as it was.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data.fit import interpolation as fit_interpolation
from .data.preprocess import Normalization, Tokenization, preprocessing_from_dict
from .engine import predict_logits, resolve_device
from .data.files import read_image
from .data.text import TEXT_SUFFIXES, Table, flat, read_table
from .errors import WarmstartError
from .io import write_text
from .models import CheckpointInfo
from .export import load_predictor

log = logging.getLogger("warmstart")

NEW_COLUMNS = ("predicted_label", "probability")


@dataclass(frozen=True)
class PredictionResult:
    """What ``predict`` returns; the predictions themselves are in the file ``out``."""

    out: Path
    rows: int  # rows of the input, all written to ``out``
    predicted: int  # rows given a prediction (text rows with an empty text get none)
    class_counts: dict[str, int]  # predictions per class, in the model's class order
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "rows": self.rows, "predicted": self.predicted,
                "class_counts": dict(self.class_counts), "notes": list(self.notes)}


@dataclass(frozen=True)
class _Table:
    path: Path
    header: list[str]
    rows: list[list[str]]  # every row's cell for every column of the header, by position; "" where it has none
    read: Table  # as the data package read it: where each row is in the file

    def column(self, name: str, flag: str, role: str) -> int:
        if name not in self.header:
            raise WarmstartError(f"{self.path}: no {role} column {name!r}; the columns are "
                                 f"{self.read.listed_columns()}", hint=f"name the {role} column with {flag}")
        return self.header.index(name)  # once: the reader refuses a header that names a column twice

    def place(self, row: int) -> str:
        return self.read.place(row)


TABLES = f"{', '.join(TEXT_SUFFIXES[:-1])} or {TEXT_SUFFIXES[-1]}"  # the tables predict reads, as training does
# What predict refuses by suffix, with what to do instead; every other file is read as training reads a table.
_NOT_TABLES = {
    ".json": "write one JSON object per row on its own line, as a .jsonl file (e.g. pandas.read_json(path)"
             ".to_json(out, orient='records', lines=True))",
    ".npz": "predict arrays in Python with warmstart.predict_proba(checkpoint, x), or save the rows as a .csv",
    ".txt": "add a header line naming the column (text) and save the file as .csv, or write one "
            '{"text": "..."} object per line as .jsonl',
}


def _read_table(path: Path) -> _Table:
    if not path.is_file():
        raise WarmstartError(f"--input {str(path)!r}: no such file" + (" (it is a folder)" if path.is_dir() else ""),
                             hint=f"pass the {TABLES} table of rows to predict")
    suffix = path.suffix.lower()
    if suffix in _NOT_TABLES:
        raise WarmstartError(f"--input {str(path)!r}: a {suffix} file; predict reads a {TABLES} table of rows, "
                             "one example each, as training does",
                             hint=_NOT_TABLES[suffix])
    # as training reads it (.csv, .tsv, .jsonl, .parquet; any other suffix as CSV), but for a row with fewer fields
    # than the header: a text broken by an unquoted line break would be predicted as two stray rows
    read = read_table(path, fill_short_rows=False)
    if not any(read.columns):
        found = ("empty file" if not read.cells else "every JSON object in it is {}: no keys, so no columns"
                 if suffix == ".jsonl" else "the header row names no column")
        raise WarmstartError(f"{path}: {found}; expected a header row (or JSON objects) and data rows",
                             hint="write a header row naming the columns (or JSON objects with a key per column), "
                                  "then one row per example to predict")
    taken = [name for name in NEW_COLUMNS if name in read.columns]
    if taken:
        raise WarmstartError(f"{path}: already has the column(s) {', '.join(taken)}, which predict writes",
                             hint="rename or drop them (is this an earlier prediction's output?)")
    # by position: a CSV may leave several columns unnamed, and each keeps its own cells in the output
    return _Table(path, read.columns, read.cells, read)


# An encoder turns the table's rows ``indices`` into the model's inputs.
Encoder = Callable[[np.ndarray], torch.Tensor]


def _vector_encoder(table: _Table, info: CheckpointInfo, norm: Normalization, label_column: str,
                    checkpoint: str | Path) -> Encoder:
    names = table.header
    recorded = info.extra.get("feature_names")
    if recorded is not None:
        missing = [name for name in recorded if name not in names]
        if missing:
            raise WarmstartError(f"{table.path}: missing the feature column(s) {', '.join(map(repr, missing))} that "
                                 f"checkpoint {checkpoint} was trained on; the columns are {', '.join(names)}",
                                 hint=f"add them; the model needs {', '.join(recorded)}")
        columns = [table.column(name, "--input", "feature") for name in recorded]
    else:
        columns = [i for i, name in enumerate(names) if name != label_column]
        expected = int(np.prod(info.input_shape))
        if len(columns) != expected:
            raise WarmstartError(f"{table.path}: {len(columns)} feature column(s) (every column but "
                                 f"{label_column!r}), but checkpoint {checkpoint} expects {expected} features",
                                 hint="this model records no feature names (it was trained on an .npz): keep exactly "
                                      "its feature columns, in training order, plus an optional label column")

    def encode(indices: np.ndarray) -> torch.Tensor:
        x = np.empty((len(indices), len(columns)), dtype=np.float32)
        for n, i in enumerate(indices):
            for j, col in enumerate(columns):
                x[n, j] = _number(table, i, col)
        return norm.apply(x)

    return encode


def _number(table: _Table, row: int, col: int) -> float:
    where = f"{table.path}, {table.place(row)}, column {table.header[col]!r}"
    cell = table.rows[row][col].strip()
    if not cell:
        raise WarmstartError(f"{where}: the value is missing (empty)", hint="fill in or impute missing values")
    try:
        value = float(cell)
    except ValueError:
        raise WarmstartError(f"{where}: {cell!r} is not a number", hint="feature columns must be numeric") from None
    if not np.isfinite(value):
        raise WarmstartError(f"{where}: {cell} is not a finite number", hint="fill in or impute missing values")
    return value


def _image_encoder(table: _Table, info: CheckpointInfo, norm: Normalization, image_column: str) -> Encoder:
    from PIL import Image

    col = table.column(image_column, "--image-column", "image path")
    channels, height, width = info.input_shape
    mode = "L" if channels == 1 else "RGB"
    # the fitting policy's interpolation (data/fit.py: the recorded one, bilinear when none), done by PIL here as
    # each image file comes at its own size
    resample = {"bicubic": Image.BICUBIC, "nearest": Image.NEAREST}.get(fit_interpolation(norm), Image.BILINEAR)
    if channels not in (1, 3):
        raise WarmstartError(f"cannot load image files for a model with {channels}-channel inputs",
                             hint="predict image files with a checkpoint trained on grey (1-channel) or colour "
                                  "(3-channel) images")

    def load(row: int) -> np.ndarray:
        cell = flat(table.rows[row][col], table.path, table.place(row), image_column).strip()
        where = f"{table.path}, {table.place(row)}, column {image_column!r}"
        if not cell:
            raise WarmstartError(f"{where}: the image path is empty",
                                 hint=f"fill in the image file's path in column {image_column!r}, or remove the row")
        file = Path(cell).expanduser()
        file = file if file.is_absolute() else table.path.parent / file
        # read_image refuses a FIFO (it would block forever), a decompression bomb and a damaged file
        img = read_image(file, f"{where}: {file}")
        try:
            # as image folders are read for training: PIL's conversion (its grey is the ITU-R 601 luma that
            # adapt_inputs uses too) and a bilinear resize to the model's input size
            img = img.convert(mode)
            if img.size != (width, height):
                img = img.resize((width, height), resample)
            pixels = np.asarray(img, dtype=np.float32) / 255.0
        except (ValueError, OSError) as exc:
            raise WarmstartError(f"{where}: {file} cannot be converted to {mode} ({exc})",
                                 hint="re-save it as an 8-bit grey or RGB image") from None
        return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)

    return lambda indices: norm.apply(np.stack([load(i) for i in indices]))


def _text_encoder(table: _Table, tokenization: Tokenization, text_column: str) -> tuple[Encoder, np.ndarray]:
    col = table.column(text_column, "--text-column", "text")
    # a JSON or Parquet list or object, or bytes that are not UTF-8, are no text: refused, as training refuses them
    texts = [flat(row[col], table.path, table.place(i), text_column).strip() for i, row in enumerate(table.rows)]
    keep = np.asarray([i for i, text in enumerate(texts) if text], dtype=np.int64)
    return (lambda indices: tokenization.apply(np.asarray([texts[i] for i in indices], dtype=object))), keep


def _write_output(out: Path, table: _Table, labels: list[str], probabilities: list[str]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*table.header, *NEW_COLUMNS])
    for row, label, probability in zip(table.rows, labels, probabilities):
        writer.writerow([*row, label, probability])
    try:
        write_text(out, buffer.getvalue())
    except OSError as exc:
        raise WarmstartError(f"--out {str(out)!r}: cannot be written ({exc.strerror or exc})",
                             hint="choose an --out file in a folder you can write to, on a disk with space") from None


def predict(checkpoint: str | Path, input: str | Path, out: str | Path, *, text_column: str = "text",
            image_column: str = "path", label_column: str = "label", batch_size: int = 128,
            device: str = "auto") -> PredictionResult:
    """Predict every row of the table ``input`` (.csv, .tsv, .jsonl or .parquet) with ``checkpoint`` and write the
    CSV ``out``: the input's rows and columns, plus ``predicted_label`` and ``probability``. See the module's
    docstring for what each data kind reads."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise WarmstartError(f"parameter batch_size: expected a positive integer, got {batch_size!r}",
                             hint="set --batch-size to 1 or more, e.g. --batch-size 256")
    input, out = Path(input).expanduser(), Path(out).expanduser()
    if out.is_dir():
        raise WarmstartError(f"--out {str(out)!r} is a folder; expected the CSV file to write",
                             hint=f"e.g. --out {out / 'predictions.csv'}")
    net, info = load_predictor(checkpoint)  # a checkpoint, or an ONNX export run by onnxruntime
    table = _read_table(input)
    preprocessing = preprocessing_from_dict(info.preprocessing)
    notes: list[str] = []
    to_predict = np.arange(len(table.rows))
    if info.kind == "text" and isinstance(preprocessing, Tokenization):
        encode, to_predict = _text_encoder(table, preprocessing, text_column)
        skipped = len(table.rows) - len(to_predict)
        if skipped:
            first = table.place(min(set(range(len(table.rows))) - set(to_predict.tolist())))
            notes.append(f"{input}: {skipped} row(s) with an empty text in column {text_column!r} were left "
                         f"unpredicted (first: {first})")
            log.info(notes[-1])
    elif info.kind == "vector" and isinstance(preprocessing, Normalization):
        encode = _vector_encoder(table, info, preprocessing, label_column, checkpoint)
    elif info.kind == "image" and isinstance(preprocessing, Normalization):
        encode = _image_encoder(table, info, preprocessing, image_column)
    else:
        raise WarmstartError(f"checkpoint {checkpoint}: its data kind {info.kind!r} (preprocessing "
                             f"{info.preprocessing.get('kind')!r}) is not one predict reads",
                             hint="predict reads checkpoints of text, vector or image data")

    run_on = resolve_device(device)
    net = net.to(run_on)
    labels = [""] * len(table.rows)
    probabilities = [""] * len(table.rows)
    counts = np.zeros(len(info.class_names), dtype=np.int64)
    for start in range(0, len(to_predict), batch_size):
        indices = to_predict[start:start + batch_size]
        logits = predict_logits(net, encode(indices), run_on, batch_size)
        if logits.shape[1] != len(info.class_names):  # an export whose graph does not say its width up front
            raise WarmstartError(f"{checkpoint}: the model outputs {logits.shape[1]} logits per example, but its "
                                 f"metadata lists {len(info.class_names)} classes",
                                 hint="export (or save) the model again: its model file and metadata come from "
                                      "different models")
        probability, predicted = torch.softmax(logits, dim=1).max(dim=1)
        for i, p, c in zip(indices.tolist(), probability.tolist(), predicted.tolist()):
            labels[i], probabilities[i] = info.class_names[c], f"{p:.6f}"
            counts[c] += 1
    _write_output(out, table, labels, probabilities)
    return PredictionResult(out=out, rows=len(table.rows), predicted=int(counts.sum()),
                            class_counts={name: int(n) for name, n in zip(info.class_names, counts)},
                            notes=tuple(notes))
