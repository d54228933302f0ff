"""Seeded, stratified sampling: few-shot subsets and held-out splits."""

from __future__ import annotations

import numpy as np

from ..errors import WarmstartError
from .dataset import Dataset


def few_shot(dataset: Dataset, shots: int, rng: np.random.Generator) -> Dataset:
    """K examples of every class, drawn without replacement; the same seed gives the same examples."""
    counts = dataset.class_counts()
    short = [(dataset.class_names[c], int(n)) for c, n in enumerate(counts) if n < shots]
    if short:
        listing = ", ".join(f"{name!r} has {n}" for name, n in short)
        raise WarmstartError(
            f"--shots {shots} asks for {shots} training examples per class of {dataset.name}, but {listing}",
            hint=f"use --shots {min(n for _, n in short)} or fewer, or drop those classes with --classes",
        )
    chosen = [rng.choice(np.flatnonzero(dataset.y == c), size=shots, replace=False)
              for c in range(dataset.num_classes)]
    return dataset.subset(np.sort(np.concatenate(chosen)))


def stratified_split(dataset: Dataset, fraction: float, rng: np.random.Generator) -> tuple[Dataset, Dataset | None]:
    """Split off ``fraction`` of each class; every class keeps at least one example on the first side."""
    if fraction <= 0:
        return dataset, None
    held: list[np.ndarray] = []
    for c in range(dataset.num_classes):
        members = rng.permutation(np.flatnonzero(dataset.y == c))
        n_held = min(int(round(len(members) * fraction)), len(members) - 1)
        held.append(members[:max(n_held, 0)])
    held_out = np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)
    if len(held_out) == 0:
        return dataset, None
    mask = np.ones(len(dataset), dtype=bool)
    mask[held_out] = False
    return dataset.subset(np.flatnonzero(mask)), dataset.subset(held_out)
