"""The proxy A-distance: how well a classifier tells the two domains apart.

Ben-David, Blitzer, Crammer & Pereira, "Analysis of Representations for Domain Adaptation", NIPS 2007: train a
classifier to separate source from target examples; with ε its held-out error, the proxy A-distance is

    d_A = 2 (1 - 2ε)

0 when the domains cannot be told apart (ε = 0.5), 2 when they separate perfectly (ε = 0). The classifier here is
scikit-learn's logistic regression on standardised features, its error the mean over stratified 5-fold
cross-validation; the domains are subsampled to equal sizes so that chance is ε = 0.5. An error above 0.5 (chance,
up to noise) is reported as d_A = 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import SHIFT_MEASURES, Sample


def proxy_a_distance(source: np.ndarray, target: np.ndarray, *, folds: int = 5, seed: int = 0) -> tuple[float, float]:
    """(d_A, ε): the proxy A-distance of two feature samples, and the domain classifier's cross-validated error."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = min(len(source), len(target))
    if n < folds:
        raise ValueError(f"the proxy A-distance needs at least {folds} points per domain, got {n}")
    x = np.concatenate([source[rng.choice(len(source), n, replace=False)],
                        target[rng.choice(len(target), n, replace=False)]])
    domain = np.repeat([0, 1], n)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    accuracy = cross_val_score(classifier, x, domain, cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    error = float(1.0 - accuracy.mean())
    return max(0.0, 2.0 * (1.0 - 2.0 * error)), error


@SHIFT_MEASURES.register("proxy-a-distance")
def proxy_a(source: Sample, target: Sample, *, seed: int = 0) -> dict[str, Any]:
    """Proxy A-distance 2(1 - 2ε), ε a logistic-regression domain classifier's cross-validated error."""
    distance, error = proxy_a_distance(source.features, target.features, seed=seed)
    return {"proxy_a_distance": distance, "domain_classifier_error": error}
