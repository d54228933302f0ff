"""Calibration and interval metrics: ECE against a direct, loop-by-loop computation; Wilson and bootstrap
intervals against their definitions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score as sklearn_f1

from warmstart.evaluation.metrics import (bootstrap_interval, expected_calibration_error, f1_score,
                                          reliability_bins, wilson_interval)


def direct_ece(y_true, probabilities, bins):
    """ECE written out as in Guo et al. (2017), eq. 3: bins (lo, hi], one by one."""
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == y_true
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (confidence > lo) & (confidence <= hi) if b else (confidence <= hi)
        if inside.any():
            total += inside.sum() / len(y_true) * abs(correct[inside].mean() - confidence[inside].mean())
    return total


@pytest.mark.parametrize("bins", [1, 10, 15])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ece_matches_the_direct_computation(bins, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(500, 4)) * rng.uniform(0.5, 4)
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y_true = rng.integers(0, 4, 500)
    assert expected_calibration_error(y_true, probabilities, bins=bins) == pytest.approx(
        direct_ece(y_true, probabilities, bins), abs=1e-12)


def test_ece_is_zero_when_confidence_equals_accuracy_and_large_when_overconfident():
    # confidence 0.75 in every example, right on 3 of 4: perfectly calibrated
    probabilities = np.tile([0.75, 0.25], (8, 1))
    y_true = np.array([0, 0, 0, 1] * 2)
    assert expected_calibration_error(y_true, probabilities) == pytest.approx(0.0)
    # confidence 0.99, right on half: ECE 0.49
    probabilities = np.tile([0.99, 0.01], (8, 1))
    assert expected_calibration_error(np.array([0, 1] * 4), probabilities) == pytest.approx(0.49)


def test_reliability_bins_count_every_example_once_with_edges_to_the_right():
    probabilities = np.array([[0.5, 0.5], [0.6, 0.4], [1.0, 0.0], [0.1, 0.9]])
    bins = reliability_bins(np.array([0, 0, 1, 1]), probabilities, bins=10)
    assert bins["count"].sum() == 4
    assert bins["count"][4] == 1 and bins["count"][5] == 1  # 0.5 falls in (0.4, 0.5], 0.6 in (0.5, 0.6]
    assert bins["count"][8] == 1 and bins["count"][9] == 1 and bins["accuracy"][9] == 0.0


def test_wilson_interval_matches_its_formula_and_stays_in_0_1():
    low, high = wilson_interval(45, 50)
    z = 1.959963984540054
    p, n = 0.9, 50
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    assert (low, high) == pytest.approx((centre - half, centre + half))
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(10, 10)[0] > 0.65  # all right on 10 still leaves room below


def test_bootstrap_interval_holds_the_estimate_and_narrows_with_more_examples():
    rng = np.random.default_rng(0)

    def interval(n):
        y = rng.integers(0, 3, n)
        pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, 3, n))
        def macro_f1(t, p):
            return f1_score(t, p, num_classes=3)
        assert macro_f1(y, pred) == pytest.approx(sklearn_f1(y, pred, average="macro", labels=[0, 1, 2]))
        low, high = bootstrap_interval(y, pred, macro_f1, resamples=300)
        assert low <= macro_f1(y, pred) <= high
        return high - low

    assert interval(2000) < interval(100) / 2
