"""The statistics of repeated runs, against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from warmstart.evaluation.stats import (gain_flag, is_negative_transfer, is_significant, paired_gain, summarize,
                                        t_interval)


def test_summarize_gives_the_student_t_interval():
    values = [0.71, 0.74, 0.69, 0.77, 0.72]
    mean, std, low, high = summarize(values)
    x = np.array(values)
    assert mean == pytest.approx(x.mean()) and std == pytest.approx(x.std(ddof=1))
    expected = stats.t.interval(0.95, df=len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert (low, high) == pytest.approx(expected)
    assert summarize(values, confidence=0.99)[2] < low  # a wider interval at 99%


def test_summarize_of_one_value_has_no_spread_and_no_interval():
    assert summarize([0.8]) == (0.8, 0.0, None, None)
    with pytest.raises(ValueError):
        summarize([])


def test_paired_gain_is_scipys_paired_t_test():
    transfer, scratch = [80.2, 78.9, 82.4, 79.5], [74.1, 76.0, 75.3, 77.8]
    mean, std, p = paired_gain(transfer, scratch)
    d = np.subtract(transfer, scratch)
    assert mean == pytest.approx(d.mean()) and std == pytest.approx(d.std(ddof=1))
    assert p == pytest.approx(stats.ttest_rel(transfer, scratch).pvalue)


def test_paired_gain_of_one_seed_has_no_p_value():
    assert paired_gain([0.9], [0.7]) == (pytest.approx(0.2), 0.0, None)


def test_paired_gain_with_identical_differences_does_not_return_nan():
    assert paired_gain([0.5, 0.6], [0.5, 0.6])[2] == 1.0  # no difference at all: no evidence of one
    assert paired_gain([0.7, 0.8], [0.5, 0.6])[2] == 0.0  # scipy's t = inf
    with pytest.raises(ValueError):
        paired_gain([1.0, 2.0], [1.0])


@pytest.mark.parametrize("mean, p, flag", [
    (3.0, 0.01, "gain (significant)"),
    (3.0, 0.30, "gain (not significant)"),
    (-3.0, 0.01, "negative transfer (significant)"),
    (-3.0, 0.30, "negative transfer (not significant)"),
    (0.0, 1.0, "no difference"),
    (2.0, None, "no p-value: needs 2+ seeds"),
    (-2.0, None, "negative transfer (no p-value: needs 2+ seeds)"),
])
def test_gain_flag(mean, p, flag):
    assert gain_flag(mean, p) == flag
    assert is_negative_transfer(mean) == (mean < 0)



@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_t_interval_is_scipys(confidence):
    x = np.array([3.1, 2.7, 3.6, 2.9, 3.3, 3.0])
    expected = stats.t.interval(confidence, df=len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert t_interval(x, confidence) == pytest.approx(expected)
    assert t_interval([1.0]) is None


def test_paired_gain_p_value_is_scipys_on_random_pairs():
    rng = np.random.default_rng(0)
    for _ in range(5):
        scratch = rng.normal(70, 3, size=4)
        transfer = scratch + rng.normal(2, 2, size=4)
        assert paired_gain(transfer, scratch)[2] == pytest.approx(stats.ttest_rel(transfer, scratch).pvalue)


def test_is_significant():
    assert is_significant(0.01) is True and is_significant(0.2) is False and is_significant(None) is None
    assert is_significant(0.04, alpha=0.01) is False
