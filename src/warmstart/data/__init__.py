"""Data: built-in and file datasets, class subsets, few-shot sampling and splits, preprocessing."""

from __future__ import annotations

import numpy as np

from ..config import DataConfig
from ..errors import WarmstartError
from .classes import parse_class_spec, select_classes
from .corruptions import corrupt
from .dataset import DataSplits, Dataset
from .sampling import few_shot, stratified_split
from .sources import DATASETS, read_source

# The test hold-out of data without a test split must not move with the training seed.
TEST_HOLDOUT_SEED = 0

__all__ = ["DATASETS", "DataSplits", "Dataset", "load_splits", "load_split", "parse_class_spec", "select_classes",
           "few_shot", "stratified_split"]


def _train_and_test(config: DataConfig) -> tuple[Dataset, Dataset]:
    train, test = read_source(config.source, label_column=config.label_column, image_size=config.image_size,
                              text_column=config.text_column)
    if test is None:
        train, test = stratified_split(train, config.test_fraction, np.random.default_rng(TEST_HOLDOUT_SEED))
        if test is None:
            raise WarmstartError(f"--data {config.source!r}: too few examples to hold out a test split")
    if config.classes is not None:
        ids = parse_class_spec(config.classes, train.class_names, source=config.source)
        train, test = select_classes(train, ids), select_classes(test, ids)
    if config.corruption is not None:
        train = corrupt(train, config.corruption, split="train")
        test = corrupt(test, config.corruption, split="test")
    empty = [train.class_names[c] for c, n in enumerate(train.class_counts()) if n == 0]
    if empty:
        raise WarmstartError(f"--data {config.source!r}: class(es) {', '.join(map(repr, empty))} have no training "
                             "examples", hint="drop them with --classes")
    return train, test


def load_splits(config: DataConfig, seed: int) -> DataSplits:
    """Train (few-shot sampled when asked), validation and test splits, deterministic for a given seed."""
    train, test = _train_and_test(config)
    rng = np.random.default_rng(seed)
    if config.shots is not None:
        train = few_shot(train, config.shots, rng)
    train, val = stratified_split(train, config.resolved_val_fraction, rng)
    return DataSplits(train=train, val=val, test=test)


def load_split(config: DataConfig, split: str) -> Dataset:
    """One whole split, ``train`` or ``test``, with the class selection applied (for evaluation)."""
    if split not in ("train", "test"):
        raise WarmstartError(f"--split {split!r}: expected train or test")
    train, test = _train_and_test(config)
    return train if split == "train" else test
