"""H-score: how well the features separate the classes, as the share of feature covariance between classes.

Bao, Li, Huang, Ma, Zheng & Zhang, "An Information-Theoretic Approach to Transferability in Task Transfer
Learning", ICIP 2019:

    H(f) = tr( cov(f)^-1 cov(E[f | y]) ),

where cov(E[f | y]) is the covariance of each example's class-mean feature vector. A pseudo-inverse stands in for
cov(f)^-1 (features of small models are often rank-deficient); ``shrinkage`` > 0 blends cov(f) towards a scaled
identity first (Ibrahim et al., 2022, for high-dimensional features). Higher is better; H is at most d.
"""

from __future__ import annotations

import numpy as np

from .base import FEATURES, check_inputs, register_score


@register_score("hscore", input=FEATURES)
def hscore(features: np.ndarray, labels: np.ndarray, *, shrinkage: float = 0.0) -> float:
    """H-score (Bao et al., ICIP 2019): tr(cov(f)^-1 cov(E[f|y])), the between-class share of the features."""
    features, indices, num_classes = check_inputs(features, labels, "features")
    centred = features - features.mean(0)
    covariance = centred.T @ centred / len(features)
    if shrinkage:
        target = np.trace(covariance) / covariance.shape[0] * np.eye(covariance.shape[0])
        covariance = (1 - shrinkage) * covariance + shrinkage * target
    class_means = np.stack([centred[indices == c].mean(0) for c in range(num_classes)])
    per_example_means = class_means[indices]
    between = per_example_means.T @ per_example_means / len(features)
    return float(np.trace(np.linalg.pinv(covariance, rcond=1e-10, hermitian=True) @ between))
