"""Transferability scores: each against an independent computation, invariance to class names, and the right order
on a constructed case where one candidate's features carry the labels and another's are noise."""

from __future__ import annotations

import numpy as np
import pytest

from warmstart.errors import WarmstartError
from warmstart.selection import SCORES, SOURCE_PROBABILITIES
from warmstart.selection.hscore import hscore
from warmstart.selection.knn import knn
from warmstart.selection.leep import leep
from warmstart.selection.logme import class_evidence, logme
from warmstart.selection.nce import nce


def direct_log_evidence(features: np.ndarray, target: np.ndarray, alpha: float, beta: float) -> float:
    """The LogME evidence per example, straight from its definition (You et al., 2021, eq. 2), without the SVD:
    log N(y | 0, beta^-1 I + alpha^-1 F F^T), the marginal likelihood of the Bayesian linear model."""
    n = len(features)
    covariance = np.eye(n) / beta + features @ features.T / alpha
    sign, log_det = np.linalg.slogdet(covariance)
    assert sign > 0
    return float(-0.5 * (n * np.log(2 * np.pi) + log_det + target @ np.linalg.solve(covariance, target))) / n


@pytest.fixture
def small_case():
    rng = np.random.default_rng(3)
    labels = np.repeat([0, 1, 2], 10)
    features = rng.normal(size=(30, 4)) + np.eye(3, 4)[labels] * 1.5
    return features, labels


def test_logme_is_the_maximum_of_the_directly_computed_evidence(small_case):
    features, labels = small_case
    per_class = []
    for c in range(3):
        target = (labels == c).astype(float)
        value, alpha, beta = class_evidence(features, target)
        # the same number as the definition, evaluated at the fixed point by a different route (n x n determinant)
        assert value == pytest.approx(direct_log_evidence(features, target, alpha, beta), abs=1e-9)
        # and no point of a wide grid around it does better: the fixed point is the maximum
        grid = [direct_log_evidence(features, target, alpha * a, beta * b)
                for a in np.geomspace(0.05, 20, 25) for b in np.geomspace(0.05, 20, 25)]
        assert value >= max(grid) - 1e-9
        assert max(grid) > value - 1e-3  # the grid comes close (it contains the point itself)
        per_class.append(value)
    assert logme(features, labels) == pytest.approx(np.mean(per_class), abs=1e-12)


def test_logme_also_holds_with_more_dimensions_than_examples():
    rng = np.random.default_rng(4)
    labels = np.repeat([0, 1], 6)
    features = rng.normal(size=(12, 20)) + np.outer(labels, np.ones(20))
    target = (labels == 1).astype(float)
    value, alpha, beta = class_evidence(features, target)
    assert value == pytest.approx(direct_log_evidence(features, target, alpha, beta), abs=1e-7)
    assert value >= max(direct_log_evidence(features, target, alpha * a, beta * b)
                        for a in (0.5, 0.9, 1.1, 2) for b in (0.5, 0.9, 1.1, 2))


def test_hscore_matches_a_direct_numpy_computation(small_case):
    features, labels = small_case
    covariance = np.cov(features, rowvar=False, bias=True)
    conditional_means = np.stack([features[labels == y].mean(0) for y in labels])  # E[f | y_i], row by row
    between = np.cov(conditional_means, rowvar=False, bias=True)
    expected = np.trace(np.linalg.inv(covariance) @ between)
    assert hscore(features, labels) == pytest.approx(expected, rel=1e-9)


def test_leep_known_answers():
    labels = np.array([0, 0, 1, 1, 1, 2])
    # a source head whose predicted class determines the target class: the expected empirical predictor is exact
    certain = np.eye(4)[[3, 3, 0, 0, 0, 1]]
    assert leep(certain, labels) == pytest.approx(0.0, abs=1e-12)
    # an uninformative head: the predictor is the target's class prior, LEEP = sum_y p(y) log p(y) = -H(Y)
    uniform = np.full((6, 4), 0.25)
    prior = np.array([2, 3, 1]) / 6
    assert leep(uniform, labels) == pytest.approx(float(np.sum(prior * np.log(prior))), abs=1e-12)
    # a hand-computed mixed case: two source classes, two target classes
    theta = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 0, 1])
    joint = np.array([[0.8 + 0.6, 0.2 + 0.4], [0.3, 0.7]]) / 3
    conditional = joint / joint.sum(0)
    expected = np.mean([np.log(theta[i] @ conditional[y[i]]) for i in range(3)])
    assert leep(theta, y) == pytest.approx(expected, abs=1e-12)


def test_nce_known_answers():
    labels = np.array([0, 0, 1, 1])
    assert nce(np.eye(3)[[2, 2, 0, 0]], labels) == pytest.approx(0.0, abs=1e-12)  # source label decides
    assert nce(np.eye(3)[[1, 1, 1, 1]], labels) == pytest.approx(np.log(0.5), abs=1e-12)  # says nothing: -H(Y)


def test_knn_matches_sklearn_leave_one_out():
    from sklearn.model_selection import LeaveOneOut, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    # two classes and odd k: no vote ties, where the two tie-break rules (nearest vs smallest label) would differ
    rng = np.random.default_rng(6)
    labels = np.repeat([0, 1], 20)
    features = rng.normal(size=(40, 3)) + labels[:, None] * 1.2
    for k in (1, 3, 5, 7):
        expected = cross_val_score(KNeighborsClassifier(n_neighbors=k), features, labels, cv=LeaveOneOut()).mean()
        assert knn(features, labels, k=k, standardize=False) == pytest.approx(expected)


def constructed_candidates(seed: int):
    """Two candidates on one target: one whose features (and source head) carry the labels, one of noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), 25)
    informative = np.eye(4, 8)[labels] * 2.0 + rng.normal(size=(100, 8))
    noise = rng.normal(size=(100, 8))
    logits_informative = np.eye(4, 6)[labels] * 3.0 + rng.normal(size=(100, 6))
    logits_noise = rng.normal(size=(100, 6))
    return labels, (informative, softmax(logits_informative)), (noise, softmax(logits_noise))


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("name", SCORES.names())
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_score_ranks_informative_features_above_noise(name, seed):
    labels, informative, noise = constructed_candidates(seed)
    which = 1 if SCORES.get(name).input == SOURCE_PROBABILITIES else 0
    assert SCORES.get(name)(informative[which], labels) > SCORES.get(name)(noise[which], labels)


@pytest.mark.parametrize("name", SCORES.names())
def test_every_score_is_unchanged_when_the_classes_are_renamed(name):
    labels, informative, _ = constructed_candidates(5)
    values = informative[1 if SCORES.get(name).input == SOURCE_PROBABILITIES else 0]
    permutation = np.array([2, 0, 3, 1])
    renamed = permutation[labels]
    assert SCORES.get(name)(values, renamed) == pytest.approx(SCORES.get(name)(values, labels), rel=1e-9, abs=1e-12)
    # string labels, and class ids with gaps, name the same partition
    assert SCORES.get(name)(values, np.array(["a", "b", "c", "d"])[labels]) == pytest.approx(
        SCORES.get(name)(values, labels), rel=1e-9, abs=1e-12)
    assert SCORES.get(name)(values, labels * 7 + 3) == pytest.approx(SCORES.get(name)(values, labels),
                                                                      rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", SCORES.names())
def test_every_score_rejects_mismatched_inputs(name):
    score = SCORES.get(name)
    with pytest.raises(WarmstartError, match="rows but"):
        score(np.full((5, 3), 1 / 3), np.array([0, 1, 0, 1]))
    with pytest.raises(WarmstartError, match="at least 2 classes"):
        score(np.full((4, 3), 1 / 3), np.zeros(4, dtype=int))


def test_leep_and_nce_reject_logits():
    with pytest.raises(WarmstartError, match="probability distribution"):
        leep(np.array([[2.0, -1.0], [0.5, 0.1]]), np.array([0, 1]))


def test_unknown_score_names_the_registered_ones():
    with pytest.raises(WarmstartError, match="unknown score 'logmee'.*hscore, knn, leep, logme, nce"):
        SCORES.get("logmee", parameter="--scores")
