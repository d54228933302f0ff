"""Choosing the pretrained model: transferability scores (one per file, registered in ``SCORES``), the ranking of
candidates on a target's training set, and the local model zoo."""

from . import hscore, knn, leep, logme, nce  # noqa: F401  (registers the scores)
from .base import FEATURES, SCORES, SOURCE_PROBABILITIES, TransferabilityScore

__all__ = ["SCORES", "TransferabilityScore", "FEATURES", "SOURCE_PROBABILITIES"]
