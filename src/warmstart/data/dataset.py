"""The in-memory dataset every loader produces and every step consumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Kind = Literal["image", "vector", "text"]


@dataclass(frozen=True)
class Dataset:
    """Examples held in memory.

    x: float32, (N, C, H, W) images scaled to [0, 1] when they came as 8-bit, or (N, D) feature vectors.
    y: int64 class ids, indices into ``class_names``.
    feature_names: the names of a CSV's feature columns, in the order of x's columns (None for other data); they
        travel with the checkpoint so that predictions select the same columns by name.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    kind: Kind
    name: str
    feature_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"{self.name}: {len(self.x)} examples but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, indices: np.ndarray) -> "Dataset":
        return Dataset(self.x[indices], self.y[indices], self.class_names, self.kind, self.name, self.feature_names)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.y, minlength=self.num_classes)


@dataclass(frozen=True)
class DataSplits:
    """The splits one run uses; ``val`` is None when no validation is held out. ``synthetic``: how many of the
    training examples, at the end of ``train``, were written from the class names (never to be validated on)."""

    train: Dataset
    val: Dataset | None
    test: Dataset
    synthetic: int = 0

    @property
    def labelled_train(self) -> Dataset:
        """The training examples without those written from the class names."""
        return self.train if not self.synthetic else self.train.subset(np.arange(len(self.train) - self.synthetic))
