"""NCE: negative conditional entropy of the target labels given the source model's predicted source labels.

Tran, Nguyen & Hassner, "Transferability and Hardness of Supervised Classification Tasks", ICCV 2019. With
z_i = argmax theta(x_i) the source label the source model predicts for each target example, and the empirical
joint distribution P(y, z) of (target label, predicted source label):

    NCE = -H(Y | Z) = sum_{y,z} P(y, z) log( P(y, z) / P(z) ).

It is at most 0 (higher is better): 0 when the predicted source label determines the target label.
"""

from __future__ import annotations

import numpy as np

from .base import SOURCE_PROBABILITIES, check_probabilities, register_score


@register_score("nce", input=SOURCE_PROBABILITIES)
def nce(source_probabilities: np.ndarray, labels: np.ndarray) -> float:
    """NCE (Tran et al., ICCV 2019): -H(target label | source label the source model predicts)."""
    theta, indices, num_classes = check_probabilities(source_probabilities, labels)
    predicted = theta.argmax(1)
    joint = np.zeros((num_classes, theta.shape[1]))
    np.add.at(joint, (indices, predicted), 1.0)
    joint /= len(theta)
    marginal = joint.sum(0, keepdims=True)
    ratio = np.divide(joint, marginal, out=np.ones_like(joint), where=joint > 0)
    return float(np.sum(joint * np.log(ratio)))
