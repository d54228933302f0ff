"""The shrinkage-regularised H-score (Ibrahim et al., 2022) and a ranking that never orders by float noise
(issue 14, item 5)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import LedoitWolf

from warmstart.config import DataConfig
from warmstart.selection import SCORES
from warmstart.selection.hscore import hscore, shrinkage_hscore
from warmstart.selection.ranking import (CandidateScores, RankingResult, explain_choice, rank_table_rows,
                                         ranking_notes, tie_groups)


def few_shot_features(seed: int = 0, classes: int = 5, shots: int = 10, dims: int = 64):
    """A good extractor (class-shifted Gaussians) and a random one, at n = 50 < d = 64: README's --shots 10."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), shots)
    good = rng.normal(size=(classes, dims))[labels] + rng.normal(size=(len(labels), dims))
    random = rng.normal(size=(len(labels), dims))
    return good, random, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_plain_hscore_saturates_where_the_regularised_one_separates(seed):
    good, random, labels = few_shot_features(seed)
    # plain H-score: C - 1 = 4 for both, up to float noise, whatever the features
    assert hscore(good, labels) == pytest.approx(4.0, abs=1e-9)
    assert hscore(random, labels) == pytest.approx(4.0, abs=1e-9)
    assert tie_groups([hscore(good, labels), hscore(random, labels)]) == [[0, 1]]
    # regularised: the good extractor clearly ahead
    assert shrinkage_hscore(good, labels) > 2 * shrinkage_hscore(random, labels)
    assert shrinkage_hscore(good, labels) > shrinkage_hscore(random, labels) + 1.0


def test_the_regularised_hscore_is_the_papers_formula():
    good, _, labels = few_shot_features()
    estimator = LedoitWolf().fit(good)
    alpha, covariance = estimator.shrinkage_, estimator.covariance_
    means = np.stack([good[labels == c].mean(0) for c in labels]) - good.mean(0)
    between = means.T @ means / len(good)
    expected = np.trace(np.linalg.pinv(covariance, rcond=1e-15) @ ((1 - alpha) * between))
    assert 0 < alpha < 1
    assert shrinkage_hscore(good, labels) == pytest.approx(expected, rel=1e-8)


def test_with_many_examples_the_regularised_hscore_approaches_the_plain_one():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(4), 500)
    features = rng.normal(size=(4, 16))[labels] + rng.normal(size=(len(labels), 16))
    assert shrinkage_hscore(features, labels) == pytest.approx(hscore(features, labels), rel=0.02)


def test_constant_features_score_zero_and_the_score_is_registered():
    labels = np.array([0, 0, 1, 1])
    assert shrinkage_hscore(np.ones((4, 3)), labels) == 0.0
    assert SCORES.get("shrinkage-hscore").input == "features"


def test_tie_groups_keep_the_given_order_within_a_tolerance():
    values = [3.9999999999999747, 4.000000000000002, 1.5, 3.999999999999998, 1.5 + 1e-3]
    assert tie_groups(values) == [[0, 1, 3], [4], [2]]
    assert tie_groups([]) == []


def _ranking(hscores: list[float], logmes: list[float]) -> RankingResult:
    candidates = tuple(
        CandidateScores(candidate=name, arch="cnn", num_features=64, source_classes=None,
                        scores={"hscore": h, "logme": m}, not_applicable={}, feature_time_s=0.1,
                        scoring_time_s=0.01, score_time_s={}, features_cached=False)
        for name, h, m in zip(("pretrained", "random", "other"), hscores, logmes))
    return RankingResult(data=DataConfig("digits"), score_names=("hscore", "logme"), rank_score="hscore",
                         candidates=candidates, train_examples=50, num_classes=5)


def test_a_saturated_hscore_is_reported_as_uninformative_not_ordered_by_noise():
    # the values of the issue: every candidate 4.000, the random one a hair "ahead" in float noise
    ranking = _ranking([3.9999999999999747, 4.000000000000002, 3.999999999999998], [-0.5, -1.2, -0.9])
    assert [c.candidate for c in ranking.ranked()] == ["pretrained", "random", "other"]  # as given, not by noise
    assert ranking.uninformative("hscore") and not ranking.uninformative("logme")
    assert [row[0] for row in rank_table_rows(ranking)] == ["=1", "=1", "=1"]
    assert ranking.to_dict()["uninformative"] == ["hscore"]
    assert ranking.to_dict()["ties"]["hscore"] == [["pretrained", "random", "other"]]
    notes = ranking_notes(ranking)
    assert len(notes) == 1 and notes[0].startswith("uninformative: hscore") and "shrinkage-hscore" in notes[0]
    why = explain_choice(ranking)
    assert "3 candidates tie for the highest hscore" in why and "cannot choose" in why


def test_a_partial_tie_shares_a_rank_and_a_clear_order_is_kept():
    ranking = _ranking([2.0, 3.0, 2.0 + 1e-12], [-0.5, -1.2, -0.9])
    assert [c.candidate for c in ranking.ranked()] == ["random", "pretrained", "other"]
    assert [row[0] for row in rank_table_rows(ranking)] == ["1", "=2", "=2"]
    assert not ranking.uninformative("hscore")
    assert ranking_notes(ranking) == ["tie: pretrained, other have the same hscore (2); their order is the order "
                                      "given"]
    assert explain_choice(ranking).startswith("random has the highest hscore (3) of 3; runner-up pretrained")
