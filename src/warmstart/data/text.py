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
    """A text table as read: its ``columns`` in order (a JSON-lines file's keys in the order they first occur), each
    row's ``cells`` by position, one per column (a missing value is ``""``), and each row's 1-based ``numbers`` in the
    file for messages: a CSV/TSV record (the header is 1), a JSON line, a Parquet row. Cells are kept by position, not
    by name: a CSV may leave more than one column unnamed, and a dict by name would give them all the last one's
    value."""

    path: Path
    columns: list[str]
    cells: list[list[str]]
    numbers: list[int]

    def place(self, index: int) -> str:
        """Where row ``index`` is in the file: ``line 3``, or ``row 3`` of a Parquet file (which has no lines)."""
        return place(self.path, self.numbers[index])

    def listed_columns(self) -> str:
        """The columns for a message: ``text, label``; or why there are none."""
        if any(self.columns):
            return ", ".join(name or "(unnamed)" for name in self.columns)
        if self.path.suffix.lower() == ".jsonl" and self.cells:
            return "none (every JSON object in it is {}, with no keys)"
        return "none"


def place(path: Path, number: int) -> str:
    """Where the row numbered ``number`` is in the table ``path``: ``line 3``, or ``row 3`` of a Parquet file."""
    return f"{'row' if path.suffix.lower() == '.parquet' else 'line'} {number}"


def read_table(path: Path, *, fill_short_rows: bool = True) -> Table:
    """A text table (.csv, .tsv, .jsonl or .parquet; any other suffix is read as CSV), as training reads it. Blank
    lines are no rows, nor is a line of one empty or blank field in a table of several columns; a CSV/TSV row with
    fewer fields than the header has its last ones missing (``""``), or is refused when not ``fill_short_rows``
    (predict: a text broken by an unquoted newline is two short rows, each of which would be predicted); one with
    more is refused."""
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
    separator = "a tab" if suffix == ".tsv" else "a comma"
    cells, numbers = [], []
    for line, record in enumerate(records[1:], start=2):
        if not record or (len(header) > 1 and len(record) == 1 and not record[0].strip()):
            continue  # a blank line; a row of empty cells (",,") is a row
        if len(record) > len(header):  # zip would drop the extra fields, and shift none: a text cut short
            raise WarmstartError(f"{path}, line {line}: {len(record)} fields, but the header has {len(header)}",
                                 hint=f"quote a field that holds {separator} (\"...\"), or add the missing "
                                      "column names to the header")
        if len(record) < len(header) and not fill_short_rows:
            raise WarmstartError(f"{path}, line {line}: {len(record)} field(s), but the header has {len(header)}",
                                 hint=f"quote a field that holds a line break or {separator} (\"...\"): unquoted, "
                                      f"it splits one row in two; or give line {line} the header's {len(header)} "
                                      "fields")
        cells.append(record + [""] * (len(header) - len(record)))
        numbers.append(line)
    return Table(path, header, cells, numbers)


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a text table (.csv, .tsv, .jsonl or .parquet) as dicts of strings; a missing value is ``""``."""
    table = read_table(path)
    return [dict(zip(table.columns, row)) for row in table.cells]


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
        rows.append({k: "" if v is None else _nested(v, "a JSON list" if isinstance(v, list) else "a JSON object")
                     if isinstance(v, (list, dict)) else str(v) for k, v in record.items()})
        numbers.append(n)
    return Table(path, list(columns), [[row.get(name, "") for name in columns] for row in rows], numbers)


class NotText(str):
    """A value that is no text, kept as a printable form (a list or object as its JSON text) so that columns nobody
    reads may hold one: a JSON list or object, a Parquet list, struct or map, bytes that are not UTF-8. A text or
    label field holding one is refused (:func:`flat`): it used to be read as its Python repr, and
    ``"label": ["anger"]`` made a class named "['anger']"."""

    what: str  # "a JSON list", "a Parquet struct", ...: what the field holds, for the message
    fix: str  # how to make it a text

    def __new__(cls, shown: str, what: str, fix: str) -> NotText:
        value = super().__new__(cls, shown)
        value.what, value.fix = what, fix
        return value


def _nested(value: object, what: str) -> NotText:
    return NotText(json.dumps(value, ensure_ascii=False, default=str), what,
                   "give {field!r} a string in every row (join or pick the part that is meant)")


def flat(value: str | None, path: Path, where: str | int, field: str) -> str:
    """``value`` (the field ``field`` of a row of ``path``, ``""`` when missing), refused when it is no text
    (:class:`NotText`). ``where`` is the row's place in the file (:meth:`Table.place`: ``line 3``), or its 1-based
    position among the rows (``row 3``)."""
    if isinstance(value, NotText):
        where = where if isinstance(where, str) else f"row {where}"
        shown = value if len(value) <= 60 else value[:57] + "..."
        kind = "field" if path.suffix.lower() == ".jsonl" else "column"
        raise WarmstartError(f"{path}, {where}: the {kind} {field!r} holds {value.what} ({shown}), not a text",
                             hint=value.fix.format(field=field))
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
        import pyarrow
        import pyarrow.parquet as parquet
    except ImportError:
        raise WarmstartError(f"{path}: reading Parquet needs pyarrow, which is not installed",
                             hint="pip install 'warmstart[parquet]' (or pyarrow), or save the table as .csv or "
                                  ".jsonl") from None
    try:
        file = parquet.ParquetFile(path)
        twice = repeated(file.schema_arrow.names)
        if twice:  # pyarrow.parquet.read_table fails with a dump of its own schema; which one is the text?
            raise WarmstartError(f"{path}: the table names a column twice ({', '.join(map(repr, twice))})",
                                 hint="give every column its own name, e.g. with pandas: "
                                      "df.columns = [...] before df.to_parquet(path)")
        table = file.read()
    except (OSError, ValueError, pyarrow.ArrowException) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise WarmstartError(f"{path}: cannot be read as a Parquet file ({type(exc).__name__}: {exc})",
                             hint="write it with pandas.DataFrame.to_parquet or pyarrow.parquet.write_table") \
            from None
    columns = [_parquet_cells(table.column(i)) for i in range(table.num_columns)]
    cells = [list(row) for row in zip(*columns)]
    return Table(path, list(table.column_names), cells, list(range(1, len(cells) + 1)))


def _parquet_cells(column) -> list[str]:
    """A Parquet column's values as text: bytes decoded as UTF-8; a list, struct or map kept as :class:`NotText`
    (their Python repr was read as a text or a class name), as bytes that are not UTF-8 are."""
    import pyarrow

    kind, values = column.type, column.to_pylist()
    if pyarrow.types.is_nested(kind):  # Parquet nests three ways
        what = ("a Parquet struct" if pyarrow.types.is_struct(kind) else "a Parquet map" if pyarrow.types.is_map(kind)
                else "a Parquet list")
        return ["" if v is None else _nested(v, what) for v in values]
    return ["" if v is None else _decoded(v) if isinstance(v, bytes) else str(v) for v in values]


def _decoded(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return NotText(value.decode("utf-8", "backslashreplace"),
                       f"bytes that are not UTF-8 text ({exc.reason} at byte {exc.start})",
                       "store {field!r} as UTF-8 text, e.g. with pandas: df[column] = "
                       "df[column].str.decode('latin-1') before df.to_parquet(path)")


def _read_table(path: Path, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    table = read_table(path)
    if not table.cells:
        raise WarmstartError(f"{path}: no rows; expected a header (or JSON objects) with {text_column!r} and "
                             f"{label_column!r}",
                             hint="add a header row and data rows, or point --data at another file")
    for role, column, flag in (("text", text_column, "--text-column"), ("label", label_column, "--label-column")):
        if column not in table.columns:
            raise WarmstartError(f"{path}: no {role} column {column!r}; the columns are {table.listed_columns()}",
                                 hint=f"name the {role} column with {flag}")
    text_at, label_at = table.columns.index(text_column), table.columns.index(label_column)
    texts, labels, dropped = [], [], []
    for i, row in enumerate(table.cells):
        text = flat(row[text_at], path, table.place(i), text_column).strip()
        label = flat(row[label_at], path, table.place(i), label_column).strip()
        if not label:
            raise WarmstartError(f"{path}, {table.place(i)}: the label column {label_column!r} is empty",
                                 hint="give every row a label, or drop the unlabelled rows")
        if not text:
            dropped.append(i)
            continue
        texts.append(text)
        labels.append(label)
    if dropped:
        log.info("%s: dropped %d row(s) with an empty text (first: %s)", path, len(dropped), table.place(dropped[0]))
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
