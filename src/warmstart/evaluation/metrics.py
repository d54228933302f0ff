"""Classification metrics as pure functions of ``(y_true, y_pred)``, computed from the confusion matrix.

Conventions follow scikit-learn (and are cross-checked against it in the tests): rows of the confusion matrix are
true classes, columns predicted ones; a precision or recall whose denominator is zero counts as 0; macro averages
weigh equally the classes that occur in the labels or the predictions (a class of the model that a test file lacks
and that is never predicted does not count), weighted averages by their support.
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
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64),
            "present": (support > 0) | (predicted > 0)}


def average(values: np.ndarray, support: np.ndarray, how: str, present: np.ndarray | None = None) -> float:
    """``macro``: mean over the classes ``present`` (scikit-learn's: those in y_true or y_pred; None: all);
    ``weighted``: mean weighted by support."""
    if how == "macro":
        values = values if present is None else values[present]
        return float(values.mean()) if len(values) else 0.0
    if how == "weighted":
        total = support.sum()
        return float((values * support).sum() / total) if total else 0.0
    raise ValueError(f"average must be 'macro' or 'weighted', got {how!r}")


def f1_score(y_true: np.ndarray, y_pred: np.ndarray, *, num_classes: int, average_by: str = "macro") -> float:
    scores = per_class_scores(confusion_matrix(y_true, y_pred, num_classes=num_classes))
    return average(scores["f1"], scores["support"], average_by, scores["present"])


def reliability_bins(y_true: np.ndarray, probabilities: np.ndarray, *, bins: int = 15) -> dict[str, np.ndarray]:
    """Confidence (the top softmax probability) against accuracy, in ``bins`` equal-width bins of (0, 1].

    A prediction of confidence c falls in bin b when ``b/B < c <= (b+1)/B`` (Guo et al., "On Calibration of Modern
    Neural Networks", ICML 2017); confidence 0 joins the first bin. Returns per bin ``count``, ``confidence`` (mean
    confidence) and ``accuracy`` (share correct); both are 0 in an empty bin.
    """
    y_true, probabilities = np.asarray(y_true, dtype=np.int64), np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or len(probabilities) != len(y_true):
        raise ValueError(f"probabilities must be (n, classes) for n={len(y_true)} labels; got {probabilities.shape}")
    if bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins}")
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == y_true).astype(np.float64)
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    return {"count": count,
            "confidence": _safe_divide(np.bincount(index, weights=confidence, minlength=bins), count),
            "accuracy": _safe_divide(np.bincount(index, weights=correct, minlength=bins), count),
            "edges": np.linspace(0.0, 1.0, bins + 1)}


def expected_calibration_error(y_true: np.ndarray, probabilities: np.ndarray, *, bins: int = 15) -> float:
    """ECE = sum_b (n_b / n) |acc(b) - conf(b)| over the bins of :func:`reliability_bins` (Naeini et al., AAAI 2015;
    Guo et al., 2017): how far the model's confidence is from its accuracy, on average over examples."""
    b = reliability_bins(y_true, probabilities, bins=bins)
    n = b["count"].sum()
    return float((b["count"] * np.abs(b["accuracy"] - b["confidence"])).sum() / n) if n else 0.0


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (Wilson, JASA 1927): ``(p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) /
    (1 + z²/n)``; unlike the normal approximation it stays inside [0, 1] and is sound near 0 and 1."""
    if n <= 0:
        return 0.0, 1.0
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def bootstrap_interval(y_true: np.ndarray, y_pred: np.ndarray, metric, *, resamples: int = 1000,
                       confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """The percentile bootstrap interval (Efron & Tibshirani, 1993) of ``metric(y_true, y_pred)``, resampling the
    examples with replacement ``resamples`` times."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(y_true), size=(resamples, len(y_true)))
    values = np.array([metric(y_true[d], y_pred[d]) for d in draws])
    tail = (1 - confidence) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))
