"""The pure averaging functions: WiSE-FT's interpolation, uniform averages, the greedy soup, BatchNorm statistics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from warmstart.models.averaging import average, choose_mixing, greedy_soup, interpolate, recompute_batchnorm


def states():
    pretrained = {"backbone.w": torch.zeros(2, 2), "head.w": torch.full((2,), 5.0), "bn.n": torch.tensor(3)}
    finetuned = {"backbone.w": torch.ones(2, 2), "head.w": torch.full((2,), 7.0), "bn.n": torch.tensor(9)}
    return pretrained, finetuned


def test_interpolation_mixes_only_the_named_keys_and_keeps_the_fine_tuned_rest():
    pretrained, finetuned = states()
    for alpha in (0.0, 0.3, 1.0):
        mixed = interpolate(pretrained, finetuned, alpha, ["backbone.w", "bn.n"])
        assert torch.allclose(mixed["backbone.w"], torch.full((2, 2), alpha))
        assert torch.equal(mixed["head.w"], finetuned["head.w"])  # the new head has no pretrained counterpart
        assert mixed["bn.n"].item() == 9  # integer counters are not averaged
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        interpolate(pretrained, finetuned, 1.5, [])


def test_average_is_the_uniform_mean_of_floating_tensors():
    pretrained, finetuned = states()
    mean = average([pretrained, finetuned, finetuned])
    assert torch.allclose(mean["backbone.w"], torch.full((2, 2), 2 / 3))
    assert torch.allclose(mean["head.w"], torch.full((2,), 19 / 3))
    assert mean["bn.n"].item() == 3


def test_choose_mixing_takes_the_best_score_and_the_first_of_equals():
    alpha, scores = choose_mixing((1.0, 0.5, 0.0), lambda a: (round(1 - abs(a - 0.5), 3), 0.0))
    assert alpha == 0.5 and set(scores) == {1.0, 0.5, 0.0}
    assert choose_mixing((1.0, 0.5), lambda a: (0.9, 0.0))[0] == 1.0


def test_the_greedy_soup_keeps_an_ingredient_only_when_the_score_does_not_drop():
    # one weight each; the score prefers soups near 1.0: adding 1.2 helps (mean 1.1 is nearer than 2.0? no: 2.0
    # alone scores -1.0, the mean 1.6 scores -0.6), adding 9.0 hurts and is left out
    ingredients = [{"w": torch.tensor([2.0])}, {"w": torch.tensor([1.2])}, {"w": torch.tensor([9.0])}]
    calls = []

    def evaluate(state, size):
        calls.append(size)
        return -abs(float(state["w"]) - 1.0)

    kept, soup, score, attempts = greedy_soup(ingredients, evaluate)
    assert kept == [0, 1] and float(soup["w"]) == pytest.approx(1.6) and score == pytest.approx(-0.6)
    assert calls == [1, 2, 3] and attempts[0] == pytest.approx(-1.0) and score >= attempts[0]


def test_recomputed_batchnorm_statistics_are_those_of_the_inputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    inputs = torch.randn(300, 3) * 2 + 1
    assert recompute_batchnorm(model, inputs, torch.device("cpu"), batch_size=300)
    features = model[0](inputs).detach()
    assert torch.allclose(model[1].running_mean, features.mean(0), atol=1e-5)
    assert torch.allclose(model[1].running_var, features.var(0), rtol=1e-4)
    assert not model.training
    assert not recompute_batchnorm(nn.Linear(3, 4), inputs, torch.device("cpu"))
