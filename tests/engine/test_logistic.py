"""The L-BFGS logistic-regression head: scikit-learn's objective, solved to the same optimum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from warmstart.engine.logistic import choose_c, fit_linear_head, fit_logistic


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(y), 400, replace=False)
    return torch.tensor(x[idx] / 16.0), torch.tensor(y[idx])


@pytest.mark.parametrize("C", [0.05, 1.0])
def test_fit_matches_scikit_learn_logistic_regression(digits, C):
    x, y = digits
    ours = fit_logistic(x, y, 10, C=C)
    reference = LogisticRegression(C=C, max_iter=20_000, tol=1e-12).fit(x.numpy(), y.numpy())
    assert np.abs(ours.weight.numpy() - reference.coef_).max() < 2e-3
    assert np.abs(ours.bias.numpy() - reference.intercept_).max() < 2e-3
    assert ((x.numpy() @ ours.weight.numpy().T + ours.bias.numpy()).argmax(1) == reference.predict(x.numpy())).all()


def test_warm_start_reaches_the_same_solution(digits):
    x, y = digits
    cold = fit_logistic(x, y, 10, C=1.0)
    warm = fit_logistic(x, y, 10, C=1.0, start=fit_logistic(x, y, 10, C=0.1))
    assert torch.allclose(cold.weight, warm.weight, atol=2e-3)
    # Fewer iterations is not guaranteed: L-BFGS rebuilds its curvature history from a warm start too (torch 2.14
    # on this machine took 181 iterations warm and 154 cold, where earlier builds took fewer warm). The bound
    # catches a warm start that derails the solver, not a few dozen iterations either way.
    assert warm.iterations < 2 * cold.iterations


def test_cross_validation_avoids_a_crippling_penalty(digits):
    x, y = digits
    chosen, scores = choose_c(x, y, 10)
    assert set(scores) >= {0.01, 1.0, 1000.0}
    assert scores[chosen] == max(scores.values())
    assert scores[chosen] > scores[0.01] + 0.05  # C=0.01 underfits the digits badly


def test_one_example_per_class_falls_back_to_the_default_c():
    x = torch.randn(3, 4, dtype=torch.float64)
    assert choose_c(x, torch.tensor([0, 1, 2]), 3) == (1.0, {})


def test_fit_linear_head_writes_the_solution_into_the_head(digits):
    x, y = digits
    head = torch.nn.Linear(64, 10)
    logs, summary = fit_linear_head(head, (x[:300].float(), y[:300]), (x[300:].float(), y[300:]), C=1.0)
    reference = fit_logistic(x[:300], y[:300], 10, C=1.0)
    assert torch.allclose(head.weight.double(), reference.weight, atol=1e-5)
    assert logs["train_accuracy"] > 0.95 and logs["val_accuracy"] > 0.85
    assert summary["steps"] == reference.iterations and summary["train_time_s"] > 0
