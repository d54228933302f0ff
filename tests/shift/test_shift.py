"""Shift measures: MMD and its permutation test, the proxy A-distance, label shift, and ``warmstart shift``."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from warmstart import api
from warmstart.config import DataConfig, TrainConfig
from warmstart.errors import WarmstartError
from warmstart.shift import SHIFT_MEASURES, Sample, label_histograms, mmd_permutation_test, proxy_a_distance, verdict


def _naive_unbiased_mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * bandwidth ** 2))

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    xy = sum(k(a, b) for a in x for b in y) / (m * n)
    return xx + yy - 2 * xy


def test_mmd_matches_the_unbiased_estimate_with_the_median_bandwidth():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 3)), rng.normal(size=(9, 3)) + 0.5
    result = mmd_permutation_test(x, y, permutations=10)
    pooled = np.concatenate([x, y])
    distances = [np.linalg.norm(a - b) for a, b in itertools.combinations(pooled, 2)]
    assert result.bandwidth == pytest.approx(np.median(distances))
    assert result.mmd2 == pytest.approx(_naive_unbiased_mmd2(x, y, result.bandwidth), rel=1e-9)


def test_mmd_near_zero_with_high_p_for_one_distribution_and_positive_with_low_p_for_a_shift():
    rng = np.random.default_rng(1)
    same_p, same_mmd = [], []
    for seed in range(5):
        a, b = rng.normal(size=(150, 8)), rng.normal(size=(150, 8))
        result = mmd_permutation_test(a, b, permutations=100, seed=seed)
        same_p.append(result.p_value)
        same_mmd.append(result.mmd2)
    shifted = mmd_permutation_test(rng.normal(size=(150, 8)), rng.normal(size=(150, 8)) + 0.5, permutations=100)
    assert abs(np.mean(same_mmd)) < 0.005
    assert np.mean(same_p) > 0.2 and min(same_p) > 0.01
    assert shifted.mmd2 > 0.02 and shifted.mmd2 > 10 * abs(np.mean(same_mmd))
    assert shifted.p_value == pytest.approx(1 / 101)  # no permutation reaches it


def test_proxy_a_distance_near_zero_for_one_distribution_and_near_two_for_separable_domains():
    rng = np.random.default_rng(2)
    same, error = proxy_a_distance(rng.normal(size=(200, 5)), rng.normal(size=(200, 5)))
    separable, separable_error = proxy_a_distance(rng.normal(size=(200, 5)), rng.normal(size=(200, 5)) + 4.0)
    assert same < 0.3 and error > 0.4
    assert separable > 1.9 and separable_error < 0.03


def test_label_shift_over_the_union_of_class_names():
    a = Sample(np.zeros((4, 2)), np.array([0, 0, 1, 1]), ("cat", "dog"))
    b = Sample(np.zeros((4, 2)), np.array([0, 1, 1, 1]), ("dog", "cat"))
    names, p, q = label_histograms(a, b)
    assert names == ["cat", "dog"] and p.tolist() == [0.5, 0.5] and q.tolist() == [0.75, 0.25]
    scores = SHIFT_MEASURES.get("label-shift")(a, b)
    assert scores["label_total_variation"] == pytest.approx(0.25)
    disjoint = SHIFT_MEASURES.get("label-shift")(a, Sample(np.zeros((2, 2)), np.array([0, 1]), ("0", "1")))
    assert disjoint["label_total_variation"] == pytest.approx(1.0)
    assert disjoint["label_js_distance"] == pytest.approx(1.0)
    assert disjoint["shared_classes"] == 0


def test_verdict_wording():
    base = {"mmd2": 0.2, "mmd_p_value": 0.005, "proxy_a_distance": 1.8, "domain_classifier_error": 0.05,
            "label_total_variation": 0.0, "shared_classes": 3}
    assert verdict(base).startswith("large shift")
    assert verdict({**base, "mmd_p_value": 0.4}).startswith("no significant shift")
    assert "disjoint" in verdict({**base, "shared_classes": 0, "label_total_variation": 1.0})


@pytest.fixture(scope="module")
def fashion_model(fashion_subset_npz, tmp_path_factory):
    out = tmp_path_factory.mktemp("shift") / "source"
    api.pretrain(DataConfig(fashion_subset_npz, classes="0-4", val_fraction=0.0), model="cnn", out=out,
                 train=TrainConfig(epochs=1, progress=False))
    return out


def test_shift_api_finds_a_corruption_and_not_the_clean_data(fashion_subset_npz, fashion_model, tmp_path):
    source = DataConfig(fashion_subset_npz, classes="0-4")
    clean = api.shift(source, source, fashion_model, samples=200, permutations=100, seed=1)
    inverted = api.shift(source, DataConfig(fashion_subset_npz, classes="0-4", corruption="invert:5"),
                         fashion_model, samples=200, permutations=100, out=tmp_path)
    assert clean.scores["mmd_p_value"] > 0.05 and clean.scores["proxy_a_distance"] < 0.5
    assert inverted.scores["mmd_p_value"] < 0.05 and inverted.scores["proxy_a_distance"] > 1.5
    assert inverted.verdict.startswith("large shift")
    written = json.loads((tmp_path / "shift.json").read_text())
    assert written["scores"]["mmd2"] == pytest.approx(inverted.scores["mmd2"])
    assert written["target_data"]["corruption"] == "invert:5"


def test_shift_with_another_input_shape_needs_resize(fashion_model):
    with pytest.raises(WarmstartError, match="expects inputs of shape 1x28x28, but digits has 1x8x8"):
        api.shift(DataConfig("digits"), DataConfig("digits"), fashion_model, samples=50, permutations=10)
    result = api.shift(DataConfig("digits", resize=True), DataConfig("digits", resize=True), fashion_model,
                       samples=100, permutations=20)
    assert result.scores["label_total_variation"] < 0.2


@pytest.mark.parametrize("name", SHIFT_MEASURES.names())
def test_every_shift_measure_returns_finite_numbers(name):
    rng = np.random.default_rng(3)
    a = Sample(rng.normal(size=(30, 4)), rng.integers(0, 2, 30), ("x", "y"))
    b = Sample(rng.normal(size=(25, 4)) + 1, rng.integers(0, 2, 25), ("x", "y"))
    scores = SHIFT_MEASURES.get(name)(a, b, seed=0)
    assert scores and all(np.isfinite(v) for v in scores.values())


def test_label_shift_is_claimed_only_beyond_sampling_noise():
    rng = np.random.default_rng(0)
    names = tuple(str(c) for c in range(10))
    # two samples of 100 from one uniform label distribution: total variation well above 0.05 by chance alone
    a, b = (Sample(np.zeros((100, 2)), rng.integers(0, 10, 100), names) for _ in range(2))
    same = SHIFT_MEASURES.get("label-shift")(a, b)
    assert same["label_total_variation"] > 0.05 and same["label_shift_p_value"] > 0.05
    base = {"mmd2": 0.0, "mmd_p_value": 0.6, "proxy_a_distance": 0.1, "domain_classifier_error": 0.5,
            "shared_classes": 10}
    assert "label distributions agree within sampling noise" in verdict({**base, **same})
    # one class four times as frequent on one side: a real shift, found
    skewed = Sample(np.zeros((400, 2)), np.where(rng.random(400) < 0.4, 0, rng.integers(1, 10, 400)), names)
    shifted = SHIFT_MEASURES.get("label-shift")(Sample(np.zeros((400, 2)), rng.integers(0, 10, 400), names), skewed)
    assert shifted["label_shift_p_value"] < 1e-6
    assert "the label distribution shifts too" in verdict({**base, **shifted})
