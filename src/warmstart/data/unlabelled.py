"""Unlabelled data (self-supervised pretraining, ``distill --unlabeled``): inputs alone, from files that hold no
labels or, when asked, from a labelled dataset whose labels are ignored.

Inputs without labels come from:

- a ``.txt`` file: one text per line (blank lines skipped);
- a ``.csv``, ``.tsv``, ``.jsonl`` or ``.parquet`` file with a text column (``--text-column``, ``text`` by default)
  and no label column, or a folder holding such a ``train.<ext>`` (its test file is never read);
- an ``.npz`` holding ``x`` and no ``y``;
- a folder of images without class sub-folders (``--image-size`` when their sizes differ).

Any labelled dataset (a built-in, an ``.npz`` with ``y``, class folders, a labelled table) is refused unless
``ignore_labels``, which takes the inputs of its *training* split (``--classes`` applies; the test split, the data's
own or the fixed hold-out, is never read), so pretraining never sees the examples a later run is scored on.

The result is a :class:`~warmstart.data.Dataset` of one class, ``unlabelled``, every ``y`` 0: the training loop's
batches carry labels, and the objectives never read them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..config import DataConfig
from ..errors import WarmstartError
from . import load_split
from .dataset import Dataset
from .files import IMAGE_SUFFIXES, NPZ_ERRORS, _as_examples, check_regular_file, images_to_array, read_image
from .memory import InMemoryData
from .sources import DATASETS
from .text import TEXT_SUFFIXES, flat, read_rows, split_files

UNLABELLED = ("unlabelled",)
log = logging.getLogger("warmstart")


def without_labels(dataset: Dataset) -> Dataset:
    """``dataset``'s inputs as unlabelled examples."""
    return Dataset(dataset.x, np.zeros(len(dataset), dtype=np.int64), UNLABELLED, dataset.kind, dataset.name,
                   dataset.feature_names)


def load_unlabelled(config: DataConfig, *, ignore_labels: bool = False, flag: str = "--data",
                    notes: list[str] | None = None, run_classes: str | None = None) -> Dataset:
    """The unlabelled inputs ``config`` names (see the module's docstring for the sources). ``flag``: the option
    that named the data, for the messages. With ``ignore_labels``, a labelled source gives its training split's
    inputs, and a sentence saying so goes to ``notes`` (a run's notes) and the log; it also says that the run's
    ``--classes`` (``run_classes``), which select its labelled rows, do not select these: they are used unread."""
    own = _inputs_only(config, flag)
    if own is not None:
        if config.classes is not None:
            raise WarmstartError(f"--classes {config.classes}: {config.source} holds no labels to select by",
                                 hint="drop --classes")
        return own
    if not ignore_labels:
        raise WarmstartError(f"{flag} {config.source!r} holds labels, and self-supervised pretraining uses none",
                             hint="pass --ignore-labels to pretrain on the inputs of its training split (labels "
                                  "unused, the test split never read), or --objective supervised to train on them")
    dataset = without_labels(load_split(config, "train"))
    message = (f"{flag} {config.source}: holds labels, which are ignored: the {len(dataset)} inputs of its training "
               "split are used (its test split is never read)")
    if run_classes is not None:
        message += (f"; --classes {run_classes} selects the labelled rows the run trains on, not these: they are "
                    "inputs of every class")
    log.info(message)
    if notes is not None:
        notes.append(message)
    return dataset


def _inputs_only(config: DataConfig, flag: str) -> Dataset | None:
    """The inputs of a source that holds no labels; None for a labelled one."""
    if config.source in DATASETS or isinstance(config.source, InMemoryData):  # both hold labels
        return None
    path = Path(config.source).expanduser()
    if not path.exists():
        raise WarmstartError(f"{flag} {config.source!r}: no such file or folder",
                             hint="pass a .txt, .csv, .jsonl, .parquet, .npz or an image folder")
    if path.is_dir():
        tables = split_files(path)  # a folder of train/test tables (what --data reads) is a table, not images
        return _image_folder(path, config.image_size, flag) if tables is None else _text_table(tables[0], config, flag)
    check_regular_file(path, "data file", f"{flag} {config.source!r}")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return _text_lines(path, flag)
    if suffix in TEXT_SUFFIXES:
        return _text_table(path, config, flag)
    if suffix == ".npz":
        return _npz_inputs(path, flag)
    raise WarmstartError(f"{flag} {config.source!r}: unsupported file type {suffix or '(none)'} for unlabelled data",
                         hint="use a .txt (one text per line), a .csv/.jsonl/.parquet text column, an .npz with x, "
                              "or a folder of images")


def _texts(texts: list[str], path: Path, flag: str) -> Dataset:
    if not texts:
        raise WarmstartError(f"{flag} {path}: holds no text", hint="put one text per line (or row)")
    return Dataset(np.asarray(texts, dtype=object), np.zeros(len(texts), dtype=np.int64), UNLABELLED, "text",
                   path.name)


def _text_lines(path: Path, flag: str) -> Dataset:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise WarmstartError(f"{flag} {path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                             hint="re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
    return _texts([line.strip() for line in lines if line.strip()], path, flag)


def _text_table(path: Path, config: DataConfig, flag: str) -> Dataset | None:
    try:
        rows = read_rows(path)
    except WarmstartError as exc:  # its messages start with the file: say which option named it
        raise WarmstartError(f"{flag} {exc.message}", hint=exc.hint) from None
    column = config.text_column or "text"
    if not rows:
        return _texts([], path, flag)
    if config.label_column in rows[0]:
        return None  # labelled
    if column not in rows[0]:
        raise WarmstartError(f"{flag} {path}: no text column {column!r}; the columns are {', '.join(rows[0])}",
                             hint="name the column that holds the texts with --text-column")
    texts = [flat(row.get(column), path, n, column).strip() for n, row in enumerate(rows, start=1)]
    return _texts([text for text in texts if text], path, flag)


def _npz_inputs(path: Path, flag: str) -> Dataset | None:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "y" in archive.files:
                return None
            if "x" not in archive.files:
                raise WarmstartError(f"{flag} {path}: no array x; found {', '.join(archive.files) or 'none'}",
                                     hint="save the inputs with numpy.savez(path, x=images_or_vectors)")
            raw = archive["x"]
    except NPZ_ERRORS as exc:
        raise WarmstartError(f"{flag} {path}: cannot be read as an .npz archive ({type(exc).__name__}: {exc})",
                             hint="save it with numpy.savez(path, x=...); object arrays are not accepted") from None
    x, kind = _as_examples(raw, path, "x")
    return Dataset(x, np.zeros(len(x), dtype=np.int64), UNLABELLED, kind, path.name)


def _image_folder(root: Path, image_size: tuple[int, int] | None, flag: str) -> Dataset | None:
    if any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir()):
        return None  # class sub-folders: labelled
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise WarmstartError(f"{flag} {root}: holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}) and no class "
                             "folders",
                             hint="put the images in the folder itself (unlabelled) or in one folder per class")
    x = images_to_array([read_image(file) for file in files], root, image_size)
    return Dataset(x, np.zeros(len(x), dtype=np.int64), UNLABELLED, "image", root.name)
