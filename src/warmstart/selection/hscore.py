"""H-score and its shrinkage-regularised form: how well the features separate the classes, as the share of
feature covariance between classes.

H-score: Bao, Li, Huang, Ma, Zheng & Zhang, "An Information-Theoretic Approach to Transferability in Task Transfer
Learning", ICIP 2019:

    H(f) = tr( cov(f)^-1 cov(E[f | y]) ),

where cov(E[f | y]) is the covariance of each example's class-mean feature vector. A pseudo-inverse stands in for
cov(f)^-1 (features of small models are often rank-deficient). Higher is better; H is at most min(d, C - 1).

That bound is the trap of few-shot data. With n examples in d >= n - 1 dimensions, the centred features span at most
n - 1 directions, cov(f) restricted to them is invertible, and within that span the between-class part is a
projection of rank C - 1: H(f) = C - 1 exactly, for every feature extractor, good or random. At 10 shots of 5
classes and 64 features, every candidate scores 4.000 and any order among them is float noise.

Shrinkage-regularised H-score: Ibrahim, Ponomareva & Mazumder, "Newer is not always better: Rethinking
transferability metrics, their peculiarities, stability and performance", ECML-PKDD 2022 (section 4.2). The
feature covariance is shrunk towards a scaled identity with the Ledoit-Wolf coefficient alpha, which minimises the
expected squared error of the estimate (Ledoit & Wolf, "A well-conditioned estimator for large-dimensional covariance
matrices", J. Multivariate Analysis 2004), and the between-class covariance is scaled by the same 1 - alpha:

    cov_alpha(f) = (1 - alpha) cov(f) + alpha (tr(cov(f)) / d) I,
    H_alpha(f)   = tr( cov_alpha(f)^-1 (1 - alpha) cov(E[f | y]) ).

The shrunk covariance is full rank for any alpha > 0, so H_alpha no longer saturates when n <= d; when n >> d,
alpha tends to 0 and H_alpha to H. ``sklearn.covariance.ledoit_wolf`` gives cov_alpha and alpha (with the same
biased 1/n covariance as :func:`hscore`). Compared with the authors' reference code: the same formula; they use
a pseudo-inverse with rcond 1e-15, we solve the (positive definite) system directly, which gives the same value
when alpha > 0 and is stabler; at alpha = 0 (no shrinkage needed) we fall back to the pseudo-inverse of H.
"""

from __future__ import annotations

import numpy as np
from sklearn.covariance import ledoit_wolf

from .base import FEATURES, check_inputs, register_score


def _between_class_covariance(centred: np.ndarray, indices: np.ndarray, num_classes: int) -> np.ndarray:
    """cov(E[f | y]) of centred features: the covariance of each example's class-mean vector."""
    class_means = np.stack([centred[indices == c].mean(0) for c in range(num_classes)])
    per_example_means = class_means[indices]
    return per_example_means.T @ per_example_means / len(centred)


@register_score("hscore", input=FEATURES)
def hscore(features: np.ndarray, labels: np.ndarray, *, shrinkage: float = 0.0) -> float:
    """H-score (Bao et al., ICIP 2019): tr(cov(f)^-1 cov(E[f|y])), the between-class share of the features."""
    features, indices, num_classes = check_inputs(features, labels, "features")
    centred = features - features.mean(0)
    covariance = centred.T @ centred / len(features)
    if shrinkage:
        target = np.trace(covariance) / covariance.shape[0] * np.eye(covariance.shape[0])
        covariance = (1 - shrinkage) * covariance + shrinkage * target
    between = _between_class_covariance(centred, indices, num_classes)
    return float(np.trace(np.linalg.pinv(covariance, rcond=1e-10, hermitian=True) @ between))


def ledoit_wolf_shrinkage(features: np.ndarray) -> tuple[np.ndarray, float]:
    """The Ledoit-Wolf shrunk covariance of ``features`` (rows are examples) and its coefficient alpha in [0, 1]."""
    centred = np.asarray(features, dtype=np.float64)
    centred = centred - centred.mean(0)
    covariance, alpha = ledoit_wolf(centred, assume_centered=True)
    return covariance, float(alpha)


@register_score("shrinkage-hscore", input=FEATURES)
def shrinkage_hscore(features: np.ndarray, labels: np.ndarray) -> float:
    """Shrinkage-regularised H-score (Ibrahim et al., ECML-PKDD 2022): H-score with a Ledoit-Wolf covariance."""
    features, indices, num_classes = check_inputs(features, labels, "features")
    centred = features - features.mean(0)
    between = _between_class_covariance(centred, indices, num_classes)
    if not centred.any():  # constant features: nothing separates anything (and Ledoit-Wolf divides by zero)
        return 0.0
    covariance, alpha = ledoit_wolf_shrinkage(centred)
    if alpha <= 0.0:  # no shrinkage: the plain H-score, through its pseudo-inverse
        return float(np.trace(np.linalg.pinv(covariance, rcond=1e-10, hermitian=True) @ between))
    return float(np.trace(np.linalg.solve(covariance, (1.0 - alpha) * between)))
