"""Unlabelled data for self-supervised pretraining: inputs alone, from files that hold no labels or, when asked,
from a labelled dataset whose labels are ignored.

Inputs without labels come from:

- a ``.txt`` file: one text per line (blank lines skipped);
- a ``.csv``, ``.tsv`` or ``.jsonl`` file with a text column (``--text-column``, ``text`` by default) and no label
  column;
- an ``.npz`` holding ``x`` and no ``y``;
- a folder of images without class sub-folders (``--image-size`` when their sizes differ).

Any labelled dataset (a built-in, an ``.npz`` with ``y``, class folders, a labelled table) is refused unless
``ignore_labels``, which takes the inputs of its *training* split (``--classes`` applies; the test split, the data's
own or the fixed hold-out, is never read), so pretraining never sees the examples a later run is scored on.

The result is a :class:`~warmstart.data.Dataset` of one class, ``unlabelled``, every ``y`` 0: the training loop's
batches carry labels, and the objectives never read them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import DataConfig
from ..errors import WarmstartError
from . import load_split
from .dataset import Dataset
from .files import IMAGE_SUFFIXES, NPZ_ERRORS, _as_examples, check_regular_file, images_to_array, read_image
from .sources import DATASETS
from .text import _read_rows

UNLABELLED = ("unlabelled",)
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl")


def without_labels(dataset: Dataset) -> Dataset:
    """``dataset``'s inputs as unlabelled examples."""
    return Dataset(dataset.x, np.zeros(len(dataset), dtype=np.int64), UNLABELLED, dataset.kind, dataset.name,
                   dataset.feature_names)


def load_unlabelled(config: DataConfig, *, ignore_labels: bool = False) -> Dataset:
    """The unlabelled inputs ``config`` names (see the module's docstring for the sources)."""
    own = _inputs_only(config)
    if own is not None:
        if config.classes is not None:
            raise WarmstartError(f"--classes {config.classes}: {config.source} holds no labels to select by",
                                 hint="drop --classes")
        return own
    if not ignore_labels:
        raise WarmstartError(f"--data {config.source!r} holds labels, and self-supervised pretraining uses none",
                             hint="pass --ignore-labels to pretrain on the inputs of its training split (labels "
                                  "unused, the test split never read), or --objective supervised to train on them")
    return without_labels(load_split(config, "train"))


def _inputs_only(config: DataConfig) -> Dataset | None:
    """The inputs of a source that holds no labels; None for a labelled one."""
    if config.source in DATASETS:
        return None
    path = Path(config.source).expanduser()
    if not path.exists():
        raise WarmstartError(f"--data {config.source!r}: no such file or folder",
                             hint="pass a .txt, .csv, .jsonl, .npz or an image folder")
    if path.is_dir():
        return _image_folder(path, config.image_size)
    check_regular_file(path, "data file", f"--data {config.source!r}")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return _text_lines(path)
    if suffix in TABLE_SUFFIXES:
        return _text_table(path, config)
    if suffix == ".npz":
        return _npz_inputs(path)
    raise WarmstartError(f"--data {config.source!r}: unsupported file type {suffix or '(none)'} for unlabelled data",
                         hint="use a .txt (one text per line), a .csv/.jsonl text column, an .npz with x, or a "
                              "folder of images")


def _texts(texts: list[str], path: Path) -> Dataset:
    if not texts:
        raise WarmstartError(f"{path}: holds no text", hint="put one text per line (or row)")
    return Dataset(np.asarray(texts, dtype=object), np.zeros(len(texts), dtype=np.int64), UNLABELLED, "text",
                   path.name)


def _text_lines(path: Path) -> Dataset:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise WarmstartError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                             hint="re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
    return _texts([line.strip() for line in lines if line.strip()], path)


def _text_table(path: Path, config: DataConfig) -> Dataset | None:
    rows = _read_rows(path)
    column = config.text_column or "text"
    if not rows:
        return _texts([], path)
    if config.label_column in rows[0]:
        return None  # labelled
    if column not in rows[0]:
        raise WarmstartError(f"{path}: no text column {column!r}; the columns are {', '.join(rows[0])}",
                             hint="name the column that holds the texts with --text-column")
    return _texts([row[column].strip() for row in rows if (row.get(column) or "").strip()], path)


def _npz_inputs(path: Path) -> Dataset | None:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "y" in archive.files:
                return None
            if "x" not in archive.files:
                raise WarmstartError(f"{path}: no array x; found {', '.join(archive.files) or 'none'}",
                                     hint="save the inputs with numpy.savez(path, x=images_or_vectors)")
            raw = archive["x"]
    except NPZ_ERRORS as exc:
        raise WarmstartError(f"{path}: cannot be read as an .npz archive ({type(exc).__name__}: {exc})",
                             hint="save it with numpy.savez(path, x=...); object arrays are not accepted") from None
    x, kind = _as_examples(raw, path, "x")
    return Dataset(x, np.zeros(len(x), dtype=np.int64), UNLABELLED, kind, path.name)


def _image_folder(root: Path, image_size: tuple[int, int] | None) -> Dataset | None:
    if any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir()):
        return None  # class sub-folders: labelled
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise WarmstartError(f"{root}: holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}) and no class folders",
                             hint="put the images in the folder itself (unlabelled) or in one folder per class")
    x = images_to_array([read_image(file) for file in files], root, image_size)
    return Dataset(x, np.zeros(len(x), dtype=np.int64), UNLABELLED, "image", root.name)
