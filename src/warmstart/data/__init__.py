"""Data: built-in and file datasets, class subsets, few-shot sampling and splits, preprocessing."""

from __future__ import annotations

import numpy as np

from ..config import DataConfig
from ..errors import WarmstartError
from .class_names import with_class_name_examples
from .classes import parse_class_spec, select_classes
from .corruptions import corrupt
from .dataset import DataSplits, Dataset
from .sampling import few_shot, stratified_split
from .sources import DATASETS, read_source

# The test hold-out of data without a test split must not move with the training seed.
TEST_HOLDOUT_SEED = 0

__all__ = ["DATASETS", "DataSplits", "Dataset", "load_splits", "load_split", "evaluation_split", "SPLITS",
           "parse_class_spec", "select_classes", "few_shot", "stratified_split"]


def _read(config: DataConfig) -> tuple[Dataset, Dataset | None]:
    return read_source(config.source, label_column=config.label_column, image_size=config.image_size,
                       text_column=config.text_column)


def _train_and_test(config: DataConfig, *, hold_out: bool = True,
                    read: tuple[Dataset, Dataset | None] | None = None) -> tuple[Dataset, Dataset | None, bool]:
    """The train and test splits, and whether the test split is the data's own (a built-in's, an .npz's
    ``x_test``, a folder's ``test/``) rather than the fixed hold-out of a file without one. ``hold_out=False``: a
    file without a test split is returned whole as ``train``, with ``test`` None (``evaluate`` scores it whole, so
    a file too small to hold a test split out is still scored). ``read``: the source as :func:`_read` gave it."""
    train, test = _read(config) if read is None else read
    own_test = test is not None
    if test is None and hold_out:
        train, test = stratified_split(train, config.test_fraction, np.random.default_rng(TEST_HOLDOUT_SEED))
        if test is None:
            raise WarmstartError(f"--data {config.source!r}: too few examples to hold out a test split",
                                 hint="use more examples, or give the data its own test split")
    if config.classes is not None:
        ids = parse_class_spec(config.classes, train.class_names, source=config.source)
        train, test = select_classes(train, ids), None if test is None else select_classes(test, ids)
    if config.corruption is not None:
        train = corrupt(train, config.corruption, split="train")
        test = None if test is None else corrupt(test, config.corruption, split="test")
    empty = [train.class_names[c] for c, n in enumerate(train.class_counts()) if n == 0]
    if empty:
        raise WarmstartError(f"--data {config.source!r}: class(es) {', '.join(map(repr, empty))} have no training "
                             "examples", hint="drop them with --classes")
    return train, test, own_test


def load_splits(config: DataConfig, seed: int) -> DataSplits:
    """Train (few-shot sampled when asked), validation and test splits, deterministic for a given seed; the
    examples written from the class names (``class_name_examples``) join the training split last."""
    train, test, _ = _train_and_test(config)
    rng = np.random.default_rng(seed)
    if config.shots is not None:
        train = few_shot(train, config.shots, rng)
    train, val = stratified_split(train, config.resolved_val_fraction, rng)
    if config.class_name_examples == 0:
        return DataSplits(train=train, val=val, test=test)
    written = with_class_name_examples(train, config.class_name_examples, config.class_name_template)
    return DataSplits(train=written, val=val, test=test, synthetic=len(written) - len(train))


SPLITS = ("train", "val", "test", "all")


def load_split(config: DataConfig, split: str) -> Dataset:
    """One whole split, with the class selection applied (for evaluation): ``train`` (the training examples; a
    file without its own test split gives the rest beside the fixed hold-out), ``val`` (the validation split a
    run with seed 0 holds out of ``train``; ``evaluate`` uses the checkpoint's own seed), ``test`` (the data's own
    test split, or the fixed hold-out), or ``all`` (train and test together: the whole of a file without its own
    test split)."""
    if split not in SPLITS:
        raise WarmstartError(f"--split {split!r}: expected one of {', '.join(SPLITS)}",
                             hint="pass --split test (or train, val, all)")
    return evaluation_split(config, split)[0]


def evaluation_split(config: DataConfig, split: str | None, *, seed: int = 0) -> tuple[Dataset, str, str]:
    """The split ``evaluate`` scores, the split's name and why: with ``split=None``, a user's file or folder
    without its own test split is scored whole (``all``: a file passed to evaluate is meant as a test set), and
    data with a test split (every built-in; an .npz with ``x_test``; a folder with ``test/``) on that split.
    ``val``: the validation split a run with ``seed`` (and ``config``'s shots and fractions) holds out."""
    if split is not None and split not in SPLITS:
        raise WarmstartError(f"--split {split!r}: expected one of {', '.join(SPLITS)}",
                             hint="pass --split test (or train, val, all)")
    read = _read(config)
    if read[1] is None and split in (None, "all") and config.source not in DATASETS:
        # a file without a test split is scored whole, in its own order: no hold-out is made, so a file too small
        # to hold one out is scored too
        whole = _train_and_test(config, hold_out=False, read=read)[0]
        return whole, "all", ("the whole file: it has no test split of its own, so it is taken as the test set"
                              if split is None else f"--split {split}, as asked")
    train, test, own_test = _train_and_test(config, read=read)
    if split is None:
        if own_test or config.source in DATASETS:
            split, why = "test", ("the data's own test split" if own_test else
                                  f"the fixed {config.test_fraction:.0%} hold-out of the built-in {config.source}")
        else:
            split, why = "all", "the whole file: it has no test split of its own, so it is taken as the test set"
    else:
        why = f"--split {split}, as asked"
    if split == "train":
        return train, split, why
    if split == "test":
        return test, split, why
    if split == "val":
        val = load_splits(config, seed=seed).val
        if val is None:
            raise WarmstartError(f"--split val: {config.source} holds no validation split out (val_fraction 0)",
                                 hint="pass --split train, test or all")
        return val, split, why + f" (the validation split of seed {seed})"
    return concatenate(train, test), split, why


def concatenate(first: Dataset, second: Dataset) -> Dataset:
    """Two splits of one dataset as one (the same classes and features)."""
    return Dataset(np.concatenate([first.x, second.x]), np.concatenate([first.y, second.y]), first.class_names,
                   first.kind, first.name, first.feature_names)
