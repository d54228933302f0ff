"""Datasets from the user's files: ``.npz`` arrays, ``.csv`` tables and image folders.

Each loader returns ``(train, test)``, with ``test`` None when the file has no test split of its own. Nothing is
unpickled: ``.npz`` files are opened with ``allow_pickle=False``.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import stat
import struct
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import WarmstartError
from .dataset import Dataset

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".jfif", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
log = logging.getLogger("warmstart")


def class_order(labels) -> tuple[str, ...]:
    """The distinct labels (strings) in the order their class ids follow, the same for every kind of data: integers
    first in numeric order ("2" before "10"), the rest sorted as strings; integers that are equal as numbers ("1",
    "01") are ordered as strings, so the order never depends on a set's iteration."""
    return tuple(sorted(set(labels), key=lambda s: (0, int(s), s) if is_int(s) else (1, 0, s)))


def _labels_to_ids(labels: np.ndarray, names: tuple[str, ...] | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map raw labels to ids 0..C-1 (:func:`class_order`, unless ``names`` gives the order)."""
    text = [str(v) for v in labels.tolist()]
    if names is None:
        names = class_order(text)
    lookup = {name: i for i, name in enumerate(names)}
    return np.asarray([lookup.get(v, -1) for v in text], dtype=np.int64), names


def is_int(text: str) -> bool:
    """An optional minus and ASCII digits only: what ``int`` reads (``str.isdigit`` also accepts "²" and "①")."""
    return re.fullmatch(r"-?[0-9]+", text) is not None


def _as_examples(x: np.ndarray, path: Path, key: str) -> tuple[np.ndarray, str]:
    if x.dtype.kind not in "biuf":
        raise WarmstartError(f"{path}: array {key!r} has dtype {x.dtype}; expected numbers",
                             hint="store features or pixels as an integer or float array")
    if x.ndim == 2:
        kind = "vector"
    elif x.ndim == 3:
        x, kind = x[:, None, :, :], "image"
    elif x.ndim == 4:
        kind = "image"
        if x.shape[1] not in (1, 3, 4) and x.shape[3] in (1, 3, 4):
            raise WarmstartError(f"{path}: array {key!r} has shape {x.shape}, which looks channels-last (N, H, W, C)",
                                 hint="store images as (N, C, H, W): np.transpose(x, (0, 3, 1, 2))")
    else:
        raise WarmstartError(f"{path}: array {key!r} has shape {x.shape}; expected (N, D) vectors, (N, H, W) grey "
                             "images or (N, C, H, W) images",
                             hint="reshape the array: one row per example (flatten vectors, keep images 2-D)")
    if len(x) == 0:
        raise WarmstartError(f"{path}: array {key!r} holds no examples", hint="store at least one example")
    # pixels are scaled to [0, 1] as image files are read; feature vectors are taken as they are, whatever their
    # dtype, as a CSV's or a float array's are (a uint8 vector divided by 255 here was read unscaled by predict)
    scaled = x.astype(np.float32) / _pixel_scale(x, path, key) if kind == "image" else x.astype(np.float32)
    _check_finite(scaled, f"{path}: array {key!r}")
    return scaled, kind


def _pixel_scale(x: np.ndarray, path: Path, key: str) -> float:
    """What an image array's values are divided by to lie in [0, 1], as image files' pixels are (so that a model
    trained on the array reads PNGs the same way): 255 for 8-bit values in any integer type, 65535 for uint16; float
    arrays are taken as they are. Other integer ranges are refused: no scale can be inferred from them."""
    if x.dtype.kind == "f" and x.size and float(np.nanmax(x)) > 1.0 + 1e-6 and float(np.nanmin(x)) >= 0.0:
        log.info("%s: array %r holds float pixels up to %.4g, taken as they are; image files (predict, image "
                 "folders) are read in [0, 1], so a model trained on this array misreads them: store 8-bit pixels "
                 "as uint8, or floats in [0, 1]", path, key, float(np.nanmax(x)))
    if x.dtype.kind not in "iu" or x.size == 0:
        return 1.0
    low, high = int(x.min()), int(x.max())
    if low >= 0 and (high <= 255 or x.dtype == np.uint8):
        return 255.0
    if x.dtype == np.uint16:
        return 65535.0
    raise WarmstartError(f"{path}: array {key!r} holds integer pixels from {low} to {high} ({x.dtype}); expected "
                         "8-bit values (0-255) or a uint16 array",
                         hint="store 8-bit pixels as uint8, 16-bit ones as uint16, or scale them to floats in [0, 1]")


def _check_finite(x: np.ndarray, where: str) -> None:
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise WarmstartError(f"{where}: {len(rows)} example(s) contain NaN or infinite values (first: index {rows[0]})",
                             hint="drop or impute those examples before training")


# What reading a damaged .npz raises: zipfile's own errors, EOFError and zlib.error for a cut or corrupted member,
# RuntimeError for a member flagged as encrypted, NotImplementedError for an unknown compression method.
NPZ_ERRORS = (OSError, ValueError, EOFError, KeyError, RuntimeError, NotImplementedError, zipfile.BadZipFile,
              zlib.error)


def load_npz(path: Path) -> tuple[Dataset, Dataset | None]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except NPZ_ERRORS as exc:
        raise WarmstartError(f"{path}: cannot be read as an .npz archive ({type(exc).__name__}: {exc})",
                             hint="save it with numpy.savez(path, x=..., y=...); object arrays are not accepted") \
            from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise WarmstartError(f"{path}: missing array(s) {', '.join(missing)}; found {', '.join(arrays) or 'none'}",
                             hint="save it with numpy.savez(path, x=features_or_images, y=labels)")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise WarmstartError(f"{path}: has only one of x_test and y_test", hint="store both or neither")
    stored_names = "class_names" in arrays
    names = tuple(str(n) for n in arrays["class_names"].tolist()) if stored_names else None
    if stored_names and (arrays["class_names"].ndim != 1 or repeated(list(names))):
        raise WarmstartError(f"{path}: class_names must be a 1-D array of distinct names; found "
                             + (f"shape {arrays['class_names'].shape}" if arrays["class_names"].ndim != 1 else
                                f"{', '.join(map(repr, repeated(list(names))))} more than once"),
                             hint="store one distinct name per class, in the order of the class ids")

    def build(xk: str, yk: str, names: tuple[str, ...] | None) -> tuple[Dataset, tuple[str, ...]]:
        x, kind = _as_examples(arrays[xk], path, xk)
        if arrays[yk].ndim != 1:
            raise WarmstartError(f"{path}: array {yk!r} has shape {arrays[yk].shape}; expected one label per example",
                                 hint="store labels as a 1-D array of class ids or names")
        if len(x) != len(arrays[yk]):
            raise WarmstartError(f"{path}: {xk} has {len(x)} examples but {yk} has {len(arrays[yk])} labels",
                                 hint=f"store one label per example: len({yk}) == len({xk})")
        raw = arrays[yk]
        if stored_names and raw.dtype.kind == "f" and np.isfinite(raw).all() and (raw == np.round(raw)).all():
            raw = raw.astype(np.int64)  # 0.0, 1.0, ...: indices into class_names stored as floats (pandas, NaN-able)
        if stored_names and raw.dtype.kind in "iu":
            # integer labels index the stored class_names (labels without stored names are matched by value)
            y = np.where((raw >= 0) & (raw < len(names)), raw, -1).astype(np.int64)
        else:
            y, names = _labels_to_ids(raw, names)
        if (y < 0).any():
            bad = raw[np.flatnonzero(y < 0)[0]].item()
            raise WarmstartError(f"{path}: {yk} holds the label {bad!r}, which is neither a training label nor "
                                 f"an index into class_names ({len(names)} names: {', '.join(names)})",
                                 hint="make the labels training labels (or indices into class_names)")
        return Dataset(x, y, names, kind, path.name), names

    train, names = build("x", "y", names)
    test = build("x_test", "y_test", names)[0] if "x_test" in arrays else None
    if test is not None and test.input_shape != train.input_shape:
        raise WarmstartError(f"{path}: x has shape {train.input_shape} per example but x_test has {test.input_shape}",
                             hint="store the test examples in the same shape as the training examples")
    return train, test


# The csv module refuses fields over 131,072 characters by default, while the same text in a JSON-lines file loads:
# a long document is not an error. The C reader stores the limit in a C long, so 2**31 - 1 is safe on every platform.
CSV_FIELD_LIMIT = 2**31 - 1


def read_csv_rows(path: Path, delimiter: str = ",") -> list[list[str]]:
    """Every row of a UTF-8 CSV file whose first row is its header (a byte-order mark, as Excel writes, is skipped),
    with clear errors; a header that names a column twice is one (which of the two is the text, or the label?)."""
    check_regular_file(path, "file")
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    rows: list[list[str]] = []
    start = 1  # the line the record being read starts on
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            # strict: a stray quote that is never closed is an error, not one field running to the end of the file
            reader = csv.reader(f, delimiter=delimiter, strict=True)
            for row in reader:
                rows.append(row)
                start = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise WarmstartError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                             hint="re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
    except csv.Error as exc:
        end = reader.line_num
        where = f"line {start}" + (f" (a quoted field there runs on to line {end})" if end > start else "")
        form = "TSV" if delimiter == "\t" else "CSV"
        raise WarmstartError(f"{path}, {where}: cannot be read as {form} ({exc})",
                             hint="a field that starts with a quote is read as quoted: close every quote (a stray "
                                  'quote?), and quote a field that holds quotes whole, doubling those inside it '
                                  '("""Great"" movie"); or remove a NUL byte, or re-export the file') from None
    except OSError as exc:
        raise WarmstartError(f"{path}: cannot be read ({exc.strerror or exc})",
                             hint="check the path and its permissions") from None
    header = [name.strip() for name in rows[0]] if rows else []
    twice = repeated([name for name in header if name])
    if twice:
        places = "; ".join(f"{name!r} in columns {', '.join(str(i + 1) for i, h in enumerate(header) if h == name)}"
                           for name in twice)
        raise WarmstartError(f"{path}: the header names a column twice ({places})",
                             hint="give every column its own name in the first row")
    return rows


def repeated(names: list[str]) -> list[str]:
    """The names that occur more than once in ``names``, sorted: a table's columns must be told apart by name."""
    return sorted({name for name in names if names.count(name) > 1})


def check_regular_file(path: Path, what: str, where: str | None = None) -> None:
    """Refuse anything but a regular file (or a link to one) before opening it: opening a FIFO blocks until a writer
    comes, which would hang a run forever, and a device or socket is never a user's data."""
    where = where or str(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise WarmstartError(f"{where}: no such {what}", hint="check the path") from None
    except OSError as exc:
        raise WarmstartError(f"{where}: cannot be read ({exc.strerror or exc})",
                             hint="check the path and its permissions") from None
    if not stat.S_ISREG(mode):
        found = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
                 else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                 else "not a regular file")
        raise WarmstartError(f"{where}: expected a regular {what}, found {found}",
                             hint=f"point at the {what} itself (a pipe or device would block or never end)")


# What PIL's decoders raise on a damaged or crafted file, besides OSError (UnidentifiedImageError is one): its
# plugins signal bad headers with SyntaxError, truncated tables with struct.error or EOFError, bad sizes with
# ValueError. All of them mean "this file is not a readable image".
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, KeyError, TypeError,
                  ZeroDivisionError)


def read_image(file: Path, where: str | None = None) -> PILImage:
    """The decoded image in ``file``, refused with a clear error when it is not a regular file (a FIFO would block
    forever), not an image, or a decompression bomb (more pixels than PIL's ``MAX_IMAGE_PIXELS``: PIL's warning is
    treated as the error, since a photo that large is almost always a crafted file and would exhaust memory)."""
    from PIL import Image

    where = where or str(file)
    check_regular_file(file, "image file", where)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as img:
                img.load()
                return eight_bit(img.copy(), where)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise WarmstartError(f"{where}: refused as a possible decompression bomb ({exc})",
                             hint=f"downscale the image below {Image.MAX_IMAGE_PIXELS:,} pixels, or remove it") \
            from None
    except _DECODE_ERRORS as exc:
        raise WarmstartError(f"{where}: cannot be read as an image ({type(exc).__name__}: {exc})",
                             hint="remove or replace the file") from None


def eight_bit(img: PILImage, where: str) -> PILImage:
    """``img`` with 8-bit samples. PIL's ``convert("L")`` clips 16-bit and 32-bit grey images at 255 instead of
    scaling them (a 16-bit scan turns white), so those are scaled here: integer modes ("I;16", "I") over 0-65535,
    float ("F") over 0-1 when that is their range, else 0-255; a range outside both is refused."""
    from PIL import Image

    if img.mode not in ("I", "F") and not img.mode.startswith("I;16"):
        return img
    values = np.asarray(img, dtype=np.float64)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if img.mode == "F" and low >= 0.0 and high <= 1.0:
        full = 1.0
    elif img.mode == "F" and low >= 0.0 and high <= 255.0:
        full = 255.0
    elif img.mode != "F" and low >= 0.0 and high <= 65535.0:
        full = 65535.0
    else:
        raise WarmstartError(f"{where}: a {img.mode} image with values {low:g} to {high:g}; expected 16-bit samples "
                             "(0-65535) or float samples in 0-1", hint="re-save it as an 8-bit or 16-bit image")
    return Image.fromarray(np.round(values / full * 255.0).astype(np.uint8), "L")


def numeric_columns(path: Path, label_column: str, sample: int = 200) -> bool:
    """Whether ``path`` looks like a table of numeric features: every column but ``label_column`` holds numbers in
    its first ``sample`` data rows (empty cells are left to the loader, which names them). This, not the file's
    name or place, tells vectors from text: a folder's ``train.csv`` of 100 feature columns is vectors."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            features = [i for i, name in enumerate(header) if name != label_column]
            if not features:
                return False
            seen = 0
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                for i in features:
                    cell = row[i].strip() if i < len(row) else ""
                    if cell and not is_number_text(cell):
                        return False
                seen += 1
                if seen >= sample:
                    break
            return True
    except (UnicodeDecodeError, OSError, csv.Error):
        return False  # not readable as a table: the loader reports it properly


def is_number_text(text: str) -> bool:
    """Whether ``float`` reads ``text`` (``"1.5"``, ``"1e3"``, ``"1_000"``)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_csv(path: Path, label_column: str, test: Path | None = None) -> tuple[Dataset, Dataset | None]:
    """Numeric features and a label column; ``test``: a second file with the same columns, the test split (its
    labels must occur in ``path``)."""
    x, labels, feature_names = _read_feature_table(path, label_column)
    y, names = _labels_to_ids(np.asarray(labels))
    train = Dataset(x, y, names, "vector", path.parent.name if test is not None else path.name, feature_names)
    if test is None:
        return train, None
    x_test, test_labels, test_features = _read_feature_table(test, label_column)
    if test_features != feature_names:
        raise WarmstartError(f"{test}: its feature columns differ from {path.name}'s "
                             f"({len(test_features)} against {len(feature_names)}; first difference: "
                             f"{_first_difference(test_features, feature_names)})",
                             hint="give both files the same columns, in the same order")
    y_test, _ = _labels_to_ids(np.asarray(test_labels), names)
    if (y_test < 0).any():
        unseen = sorted({label for label, i in zip(test_labels, y_test.tolist()) if i < 0})
        raise WarmstartError(f"{test}: label(s) {', '.join(map(repr, unseen[:5]))} never occur in {path.name}, so "
                             "no model trained on it can predict them",
                             hint="drop those rows from the test file, or add training examples for them")
    return train, Dataset(x_test, y_test, names, "vector", train.name, feature_names)


def _first_difference(a: tuple[str, ...], b: tuple[str, ...]) -> str:
    for i, (left, right) in enumerate(zip(a, b)):
        if left != right:
            return f"column {i + 1} is {left!r} here and {right!r} there"
    return "one has more columns"


def _read_feature_table(path: Path, label_column: str) -> tuple[np.ndarray, list[str], tuple[str, ...]]:
    rows = read_csv_rows(path)
    if not rows or not rows[0]:
        raise WarmstartError(f"{path}: empty file; expected a header row and data rows",
                             hint="write a header row (feature names and the label column), then one row per example")
    header = [h.strip() for h in rows[0]]
    if label_column not in header:
        raise WarmstartError(f"{path}: no label column {label_column!r}; the columns are {', '.join(header)}",
                             hint="name the label column with --label-column")
    unnamed = [i + 1 for i, name in enumerate(header) if not name]
    if unnamed:  # every other column is a feature: an unnamed one is most often a row index, which leaks the order
        raise WarmstartError(f"{path}: column(s) {', '.join(map(str, unnamed))} have no name in the header; a "
                             "feature needs a name (an unnamed first column is usually a row index, as "
                             "pandas.DataFrame.to_csv writes by default)",
                             hint="drop the column, or name it; with pandas, write the file with to_csv(..., "
                                  "index=False)")
    label_at = header.index(label_column)
    features = [i for i in range(len(header)) if i != label_at]
    if not features:
        raise WarmstartError(f"{path}: only the label column {label_column!r}; expected numeric feature columns too",
                             hint="add the feature columns, or name a text column with --text-column")
    data = [r for r in rows[1:] if any(cell.strip() for cell in r)]
    if not data:
        raise WarmstartError(f"{path}: a header but no data rows", hint="add one row per example")
    x = np.empty((len(data), len(features)), dtype=np.float32)
    labels = []
    for n, row in enumerate(data):
        line = n + 2  # 1-based, after the header
        if len(row) != len(header):
            raise WarmstartError(f"{path}, line {line}: {len(row)} fields, but the header has {len(header)}",
                                 hint="give every row one value per column (quote values that hold a comma)")
        for j, col in enumerate(features):
            cell = row[col].strip()
            if not cell:
                raise WarmstartError(f"{path}, line {line}, column {header[col]!r}: the value is missing (empty)",
                                     hint="drop or impute missing values before training")
            try:
                value = float(cell)
            except ValueError:
                raise WarmstartError(f"{path}, line {line}, column {header[col]!r}: {cell[:50]!r} is not a number",
                                     hint="feature columns must be numeric; encode categories as numbers first, "
                                          "or name a text column with --text-column") \
                    from None
            if not np.isfinite(value) or abs(value) > np.finfo(np.float32).max:
                raise WarmstartError(f"{path}, line {line}, column {header[col]!r}: {cell[:50]} is not a finite "
                                     "(32-bit) number", hint="drop or impute missing values before training")
            x[n, j] = value
        label = row[label_at].strip()
        if not label:
            raise WarmstartError(f"{path}, line {line}: the label column {label_column!r} is empty",
                                 hint="give every row a label, or drop the unlabelled rows")
        labels.append(label)
    return x, labels, tuple(header[i] for i in features)


def load_image_folder(root: Path, image_size: tuple[int, int] | None) -> tuple[Dataset, Dataset | None]:
    """One sub-folder per class; or ``train/`` and ``test/`` folders that each hold one sub-folder per class."""
    if (root / "train").is_dir() and (root / "test").is_dir():
        train = _read_class_folders(root / "train", image_size, None)
        return train, _read_class_folders(root / "test", image_size or _size_of(train), train.class_names,
                                          grey=train.input_shape[0] == 1)
    return _read_class_folders(root, image_size, None), None


def _size_of(dataset: Dataset) -> tuple[int, int]:
    return dataset.input_shape[1], dataset.input_shape[2]


def _read_class_folders(root: Path, image_size: tuple[int, int] | None, class_names: tuple[str, ...] | None,
                        grey: bool | None = None) -> Dataset:
    """Images of ``root``'s class folders; ``grey`` None: grey when every image is, else colour."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise WarmstartError(f"{root}: no class sub-folders; expected one folder of images per class",
                             hint="put each class's images in a sub-folder named after the class")
    names = class_names or tuple(p.name for p in folders)
    unknown = [p.name for p in folders if p.name not in names]
    if unknown:
        raise WarmstartError(f"{root}: class folder(s) {', '.join(unknown)} are not among the training classes "
                             f"({', '.join(names)})",
                             hint="name the test class folders as the training ones, or add training images")
    images, labels, skipped = [], [], []
    for folder in folders:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir())
        skipped += sorted(p for p in folder.iterdir() if p not in files and not p.name.startswith("."))
        if not files:
            raise WarmstartError(f"{folder}: holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})",
                                 hint="add images to it, or remove the empty class folder")
        for file in files:
            images.append(read_image(file))
            labels.append(names.index(folder.name))
    if skipped:  # class folders are read one level deep, image suffixes only: say what that left out
        folders_in = [p for p in skipped if p.is_dir()]
        log.info("%s: skipped %d entr(ies) in the class folders that are not image files (%s)%s: only the images "
                 "directly in each class folder are read", root, len(skipped),
                 ", ".join(str(p.relative_to(root)) for p in skipped[:3]) + (", ..." if len(skipped) > 3 else ""),
                 f", {len(folders_in)} of them sub-folders" if folders_in else "")
    return Dataset(images_to_array(images, root, image_size, grey), np.asarray(labels, dtype=np.int64), names,
                   "image", root.name)


def images_to_array(images: list, root: Path, image_size: tuple[int, int] | None,
                    grey: bool | None = None) -> np.ndarray:
    """PIL images as one float32 array (N, C, H, W) in [0, 1]: resized to ``image_size`` (needed when their sizes
    differ), grey when ``grey`` (None: when every image is), else RGB."""
    from PIL import Image

    if grey is None:
        grey = all(img.mode in ("1", "L", "LA", "I", "I;16") for img in images)
    sizes = {img.size for img in images}  # PIL sizes are (width, height)
    if image_size is None and len(sizes) > 1:
        raise WarmstartError(f"{root}: images come in {len(sizes)} different sizes (e.g. {sorted(sizes)[:3]})",
                             hint=f"pass --image-size {images[0].height} {images[0].width} (height, then width) "
                                  "to resize them all to one size")
    height, width = image_size or (next(iter(sizes))[1], next(iter(sizes))[0])
    mode = "L" if grey else "RGB"
    arrays = []
    for img in images:
        img = img.convert(mode)
        if img.size != (width, height):
            img = img.resize((width, height), Image.BILINEAR)
        pixels = np.asarray(img, dtype=np.float32) / 255.0
        arrays.append(pixels[None] if grey else pixels.transpose(2, 0, 1))
    return np.stack(arrays)
