"""k-NN probe: leave-one-out accuracy of a k-nearest-neighbour classifier on the features.

A non-parametric probe of how well the feature space already clusters the target classes (as in the k-NN
evaluation of self-supervised features, Wu et al., CVPR 2018; Caron et al., ICCV 2021). Each training example is
classified by the majority label of its k nearest *other* examples (scikit-learn's ``NearestNeighbors``, Euclidean
distance on the features after standardising each dimension). A tied vote goes to the class of the nearest tied
neighbour, so that the score does not depend on how classes are numbered (``KNeighborsClassifier`` gives ties to the
smallest label; without ties the two agree). Higher is better; in [0, 1].
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors  # at import: its first import takes seconds, not a score's time

from .base import FEATURES, check_inputs, register_score


@register_score("knn", input=FEATURES)
def knn(features: np.ndarray, labels: np.ndarray, *, k: int = 5, standardize: bool = True) -> float:
    """k-NN probe: leave-one-out accuracy of a k-nearest-neighbour vote on the features (sklearn)."""
    features, indices, num_classes = check_inputs(features, labels, "features")
    k = min(int(k), len(features) - 1)
    if standardize:
        spread = features.std(0)
        features = (features - features.mean(0)) / np.where(spread > 0, spread, 1.0)
    # ask for k + 1: the nearest is (normally) the example itself, which leave-one-out excludes
    _, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    rows = np.arange(len(features))[:, None]
    not_self = neighbours != rows
    keep = np.where(not_self.all(1, keepdims=True), np.arange(k + 1) < k, not_self)  # self absent: drop the last
    others = neighbours[keep].reshape(len(features), k)
    # one vote per neighbour, plus 2^-(j+1) < 1 in total for the j-th nearest: the majority always wins, and a tie
    # goes to the class of the nearest tied neighbour, which (unlike the smallest label) ignores class names
    weights = 1.0 + 0.5 ** np.arange(1, k + 1)
    votes = np.zeros((len(features), num_classes))
    np.add.at(votes, (np.repeat(np.arange(len(features)), k), indices[others].ravel()), np.tile(weights, len(features)))
    return float(np.mean(votes.argmax(1) == indices))
