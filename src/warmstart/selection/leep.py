"""LEEP: the log expected empirical prediction of the source classifier, re-labelled to the target classes.

Nguyen, Hassner, Seeger & Archambeau, "LEEP: A New Measure to Evaluate Transferability of Learned
Representations", ICML 2020. With theta(x) the source model's predicted distribution over its classes z:

    P(y, z) = 1/n sum_{i: y_i = y} theta(x_i)_z,     P(y | z) = P(y, z) / sum_y' P(y', z),
    LEEP = 1/n sum_i log( sum_z P(y_i | z) theta(x_i)_z ).

It is the average log-likelihood of the "expected empirical predictor", a classifier that maps each source class
to the target classes empirically. It is at most 0 (higher is better) and equals -H(Y) for an uninformative source.
"""

from __future__ import annotations

import numpy as np

from .base import SOURCE_PROBABILITIES, check_probabilities, register_score


@register_score("leep", input=SOURCE_PROBABILITIES)
def leep(source_probabilities: np.ndarray, labels: np.ndarray) -> float:
    """LEEP (Nguyen et al., ICML 2020): log-likelihood of the source head's predictions mapped to target classes."""
    theta, indices, num_classes = check_probabilities(source_probabilities, labels)
    n = len(theta)
    one_hot = np.eye(num_classes)[indices]  # (n, C)
    joint = one_hot.T @ theta / n  # (C, Z): P(y, z)
    marginal = joint.sum(0, keepdims=True)  # P(z)
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)  # P(y | z)
    likelihood = np.einsum("iz,iz->i", theta, conditional[indices])  # sum_z P(y_i | z) theta_z
    return float(np.mean(np.log(np.maximum(likelihood, 1e-300))))
