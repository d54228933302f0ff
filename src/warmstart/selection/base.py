"""What every transferability score shares: the registry, the kind of input it reads, and label handling.

A score is a pure function of a candidate model's outputs on the *target's training set* and the target labels,
computed before any fine-tuning, and "higher is better" for every one of them, so candidates sort the same way
whichever score ranks them. Two kinds of input exist:

- ``features``: the backbone's feature vectors, ``(n, d)`` (LogME, H-score, k-NN probe);
- ``source_probabilities``: the source model's predicted probabilities over *its own* classes, ``(n, z)`` (LEEP,
  NCE); only a model that still has its source classifier can give them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import WarmstartError
from ..registry import Registry

FEATURES = "features"
SOURCE_PROBABILITIES = "source_probabilities"


@dataclass(frozen=True)
class TransferabilityScore:
    """A registered score: its pure function and the input it reads (``features`` or ``source_probabilities``)."""

    name: str
    function: Callable[..., float]
    input: str
    description: str

    def __call__(self, values: np.ndarray, labels: np.ndarray, **options) -> float:
        return self.function(values, labels, **options)


SCORES: Registry[TransferabilityScore] = Registry("score")


def register_score(name: str, *, input: str) -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Register ``function`` under ``name``; the function itself is returned unchanged, to be called directly."""

    def add(function: Callable[..., float]) -> Callable[..., float]:
        description = (function.__doc__ or "").strip().splitlines()[0]
        SCORES.register(name, description=description)(TransferabilityScore(name, function, input, description))
        return function

    return add


def class_indices(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels as 0..C-1 (any integer or string labels), and C: a score never depends on how classes are named."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise WarmstartError(f"labels: expected a 1-D array, got shape {labels.shape}",
                             hint="pass one label per example, as a flat array")
    names, indices = np.unique(labels, return_inverse=True)
    return indices, len(names)


def check_inputs(values: np.ndarray, labels: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray, int]:
    """``values`` as a float64 (n, d) matrix and ``labels`` as 0..C-1, checked for matching length and size."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise WarmstartError(f"{what}: expected a 2-D array (examples x dimensions), got shape {values.shape}",
                             hint=f"pass {what} with one row per example, e.g. array.reshape(len(array), -1)")
    indices, num_classes = class_indices(labels)
    if len(indices) != len(values):
        raise WarmstartError(f"{what}: {len(values)} rows but {len(indices)} labels; they must match one to one",
                             hint=f"pass exactly one label per row of {what}")
    if len(values) < 2 or num_classes < 2:
        raise WarmstartError(f"{what}: a score needs at least 2 examples of at least 2 classes, got {len(values)} "
                             f"examples of {num_classes} class(es)",
                             hint="score on data with 2 or more examples of 2 or more classes (check --classes and "
                                  "--shots)")
    if not np.isfinite(values).all():
        raise WarmstartError(f"{what}: contains NaN or infinite values",
                             hint="remove the non-finite values; features that are not finite come from damaged or "
                                  "diverged weights")
    return values, indices, num_classes


def check_probabilities(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    probabilities, indices, num_classes = check_inputs(probabilities, labels, "source_probabilities")
    if (probabilities < 0).any() or not np.allclose(probabilities.sum(1), 1.0, atol=1e-4):
        raise WarmstartError("source_probabilities: each row must be a probability distribution (non-negative, "
                             "summing to 1)", hint="pass the source model's softmax outputs, not its logits")
    return probabilities, indices, num_classes
