"""Classification metrics as pure functions of ``(y_true, y_pred)``, computed from the confusion matrix.

Conventions follow scikit-learn (and are cross-checked against it in the tests): rows of the confusion matrix are
true classes, columns predicted ones; a precision or recall whose denominator is zero counts as 0; macro averages
weigh classes equally, weighted averages by their support.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, *, num_classes: int) -> np.ndarray:
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has {y_pred.shape}")
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{name} holds labels from {labels.min()} to {labels.max()}; with {num_classes} classes "
                             f"they must lie in 0..{num_classes - 1}")
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else 0.0


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def per_class_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of every class, from a confusion matrix."""
    true_positive = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    precision = _safe_divide(true_positive, predicted)
    recall = _safe_divide(true_positive, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def average(values: np.ndarray, support: np.ndarray, how: str) -> float:
    """``macro``: mean over classes; ``weighted``: mean weighted by support."""
    if how == "macro":
        return float(values.mean()) if len(values) else 0.0
    if how == "weighted":
        total = support.sum()
        return float((values * support).sum() / total) if total else 0.0
    raise ValueError(f"average must be 'macro' or 'weighted', got {how!r}")


def f1_score(y_true: np.ndarray, y_pred: np.ndarray, *, num_classes: int, average_by: str = "macro") -> float:
    scores = per_class_scores(confusion_matrix(y_true, y_pred, num_classes=num_classes))
    return average(scores["f1"], scores["support"], average_by)
