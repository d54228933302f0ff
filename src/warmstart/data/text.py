"""Text classification data from CSV, TSV, JSON-lines and Parquet files: one text column and one label column.

A file named ``train.<ext>`` with a ``test.<ext>`` beside it (or a folder holding both) gives both splits; any other
file has its test split held out by warmstart, as for every dataset without one. Labels are strings (or numbers
read as strings), mapped to ids in sorted order; the names travel with the checkpoint.

Empty texts: rows whose text is empty or only whitespace are dropped, and the drop is reported (a note); an empty
text carries nothing to classify, and failing a whole dataset over a stray blank line helps nobody.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import WarmstartError
from .dataset import Dataset
from .files import check_regular_file, class_order, read_csv_rows, repeated

TEXT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")
log = logging.getLogger("warmstart")


def split_files(path: Path) -> tuple[Path, Path | None] | None:
    """(train, test) files for a folder holding ``train.<ext>`` (and maybe ``test.<ext>``), or for such a file."""
    if path.is_dir():
        for suffix in TEXT_SUFFIXES:
            if (path / f"train{suffix}").is_file():
                test = path / f"test{suffix}"
                return path / f"train{suffix}", test if test.is_file() else None
        return None
    if path.stem == "train":
        test = path.with_name(f"test{path.suffix}")
        return path, test if test.is_file() else None
    return path, None


@dataclass(frozen=True)
class Table:
    """A text table as read: its ``columns`` in order (a JSON-lines file's keys in the order they first occur), its
    ``rows`` as dicts of strings (a missing value is ``""``), and each row's 1-based ``numbers`` in the file for
    messages: a CSV/TSV record (the header is 1), a JSON line, a Parquet row."""

    path: Path
    columns: list[str]
    rows: list[dict[str, str]]
    numbers: list[int]

    def place(self, index: int) -> str:
        """Where row ``index`` is in the file: ``line 3``, or ``row 3`` of a Parquet file (which has no lines)."""
        return f"{'row' if self.path.suffix.lower() == '.parquet' else 'line'} {self.numbers[index]}"


def read_table(path: Path) -> Table:
    """A text table (.csv, .tsv, .jsonl or .parquet; any other suffix is read as CSV), as training reads it. Blank
    lines are no rows, nor is a line of one empty or blank field in a table of several columns; a row with fewer
    fields than the header has its last ones missing (``""``); one with more is refused."""
    suffix = path.suffix.lower()
    check_regular_file(path, "file")  # a FIFO would block the first read forever
    if suffix == ".parquet":
        return _parquet_table(path)
    if suffix == ".jsonl":
        return _json_lines_table(path)
    records = read_csv_rows(path, delimiter="\t" if suffix == ".tsv" else ",")
    if not records:
        return Table(path, [], [], [])
    header = [h.strip() for h in records[0]]
    rows, numbers = [], []
    for line, record in enumerate(records[1:], start=2):
        if not record or (len(header) > 1 and len(record) == 1 and not record[0].strip()):
            continue  # a blank line; a row of empty cells (",,") is a row
        if len(record) > len(header):  # zip would drop the extra fields, and shift none: a text cut short
            separator = "a tab" if suffix == ".tsv" else "a comma"
            raise WarmstartError(f"{path}, row {line}: {len(record)} fields, but the header has {len(header)}",
                                 hint=f"quote a field that holds {separator} (\"...\"), or add the missing "
                                      "column names to the header")
        rows.append(dict(zip(header, record + [""] * (len(header) - len(record)))))
        numbers.append(line)
    return Table(path, header, rows, numbers)


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a text table (.csv, .tsv, .jsonl or .parquet) as dicts of strings; a missing value is ``""``."""
    return read_table(path).rows


def _json_lines_table(path: Path) -> Table:
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = f.readlines()
    except UnicodeDecodeError as exc:
        raise WarmstartError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                             hint="re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
    columns: dict[str, None] = {}  # an ordered set
    rows, numbers = [], []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, object_pairs_hook=_object_naming_each_key_once)
        except json.JSONDecodeError as exc:
            raise WarmstartError(f"{path}, line {n}: not valid JSON ({exc.msg})", hint="one JSON object per line") \
                from None
        except _RepeatedKeys as exc:  # json keeps the last silently: which was meant, the text or the label?
            raise WarmstartError(f"{path}, line {n}: the object names {exc} twice",
                                 hint="give each field one value per line") from None
        if not isinstance(record, dict):
            raise WarmstartError(f"{path}, line {n}: expected a JSON object, got {type(record).__name__}",
                                 hint='one object per line, e.g. {"text": "...", "label": "..."}')
        columns.update(dict.fromkeys(record))
        rows.append({k: "" if v is None else NestedValue(json.dumps(v)) if isinstance(v, (list, dict)) else str(v)
                     for k, v in record.items()})
        numbers.append(n)
    return Table(path, list(columns), rows, numbers)


class NestedValue(str):
    """A JSON list or object in a JSON-lines field, kept as its JSON text so that fields nobody reads may hold one;
    a text or label field holding one is refused (:func:`flat`): it used to train on its Python repr, and
    ``"label": ["anger"]`` made a class named "['anger']"."""


def flat(value: str | None, path: Path, row: int, field: str) -> str:
    """``value`` (a row's field, ``""`` when missing), refused when it is a JSON list or object."""
    if isinstance(value, NestedValue):
        kind = "list" if value.startswith("[") else "object"
        raise WarmstartError(f"{path}, row {row}: the field {field!r} holds a JSON {kind} ({value[:60]}), not a text",
                             hint=f"give {field!r} a string on every line (join or pick the part that is meant)")
    return value or ""


class _RepeatedKeys(ValueError):
    """A JSON object that names a key more than once."""


def _object_naming_each_key_once(pairs: list[tuple[str, object]]) -> dict[str, object]:
    twice = repeated([key for key, _ in pairs])
    if twice:
        raise _RepeatedKeys(", ".join(map(repr, twice)))
    return dict(pairs)


def _parquet_table(path: Path) -> Table:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise WarmstartError(f"{path}: reading Parquet needs pyarrow, which is not installed",
                             hint="pip install 'warmstart[parquet]' (or pyarrow), or save the table as .csv or "
                                  ".jsonl") from None
    try:
        table = parquet.read_table(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise WarmstartError(f"{path}: cannot be read as a Parquet file ({type(exc).__name__}: {exc})",
                             hint="write it with pandas.DataFrame.to_parquet or pyarrow.parquet.write_table") \
            from None
    rows = [{k: "" if v is None else str(v) for k, v in row.items()} for row in table.to_pylist()]
    return Table(path, list(table.column_names), rows, list(range(1, len(rows) + 1)))


def _read_table(path: Path, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    table = read_table(path)
    if not table.rows:
        raise WarmstartError(f"{path}: no rows; expected a header (or JSON objects) with {text_column!r} and "
                             f"{label_column!r}",
                             hint="add a header row and data rows, or point --data at another file")
    columns = table.columns
    for role, column, flag in (("text", text_column, "--text-column"), ("label", label_column, "--label-column")):
        if column not in columns:
            raise WarmstartError(f"{path}: no {role} column {column!r}; the columns are {', '.join(columns)}",
                                 hint=f"name the {role} column with {flag}")
    texts, labels, dropped = [], [], []
    for n, row in zip(table.numbers, table.rows):
        text, label = (flat(row.get(text_column), path, n, text_column).strip(),
                       flat(row.get(label_column), path, n, label_column).strip())
        if not label:
            raise WarmstartError(f"{path}, row {n}: the label column {label_column!r} is empty",
                                 hint="give every row a label, or drop the unlabelled rows")
        if not text:
            dropped.append(n)
            continue
        texts.append(text)
        labels.append(label)
    if dropped:
        log.info("%s: dropped %d row(s) with an empty text (first: row %d)", path, len(dropped), dropped[0])
    if not texts:
        raise WarmstartError(f"{path}: every text in column {text_column!r} is empty",
                             hint="name the column that holds the texts with --text-column")
    return texts, labels


def load_text_table(path: Path, text_column: str, label_column: str) -> tuple[Dataset, Dataset | None]:
    files = split_files(path)
    if files is None:
        raise WarmstartError(f"{path}: a folder without train{'/'.join(TEXT_SUFFIXES)}",
                             hint="point --data at a text file, or at a folder with train.csv (and test.csv)")
    train_file, test_file = files
    texts, labels = _read_table(train_file, text_column, label_column)
    names = class_order(labels)
    ids = {name: i for i, name in enumerate(names)}
    train = Dataset(np.asarray(texts, dtype=object), np.asarray([ids[l] for l in labels], dtype=np.int64), names,
                    "text", train_file.parent.name if train_file.stem == "train" else train_file.name)
    if test_file is None:
        return train, None
    test_texts, test_labels = _read_table(test_file, text_column, label_column)
    unseen = sorted(set(test_labels) - set(names))
    if unseen:
        raise WarmstartError(f"{test_file}: label(s) {', '.join(map(repr, unseen[:5]))} never occur in "
                             f"{train_file.name}, so no model trained on it can predict them",
                             hint="drop those rows from the test file, or add training examples for them")
    test = Dataset(np.asarray(test_texts, dtype=object), np.asarray([ids[l] for l in test_labels], dtype=np.int64),
                   names, "text", train.name)
    return train, test
