"""The common contract every registered strategy keeps, on every registered model."""

from __future__ import annotations

import pytest
import torch

from warmstart.errors import WarmstartError
from warmstart.models import MODELS, create_model
from warmstart.strategies import STRATEGIES, create_strategy

SHAPES = {"mlp": (1, 8, 8), "cnn": (1, 16, 16)}
EXPECTED_TRAINABLE = {"full": "all", "freeze": "head"}


def test_every_strategy_states_its_expectation_here():
    assert set(STRATEGIES.names()) == set(EXPECTED_TRAINABLE)


@pytest.mark.parametrize("model_name", MODELS.names())
@pytest.mark.parametrize("strategy_name", STRATEGIES.names())
def test_strategy_contract(model_name, strategy_name):
    model = create_model(model_name, SHAPES[model_name], 3)
    strategy = create_strategy(strategy_name)
    strategy.prepare(model)
    groups = strategy.param_groups(model, lr=0.01, weight_decay=0.1)

    trained = {id(p) for g in groups for p in g["params"]}
    requires_grad = {id(p) for p in model.parameters() if p.requires_grad}
    assert trained == requires_grad  # the optimizer gets exactly the parameters that compute gradients
    head = {id(p) for p in model.head.parameters()}
    expected = {id(p) for p in model.parameters()} if EXPECTED_TRAINABLE[strategy_name] == "all" else head
    assert trained == expected
    for g in groups:  # no weight decay on biases and normalisation parameters
        assert g["weight_decay"] == (0.0 if all(p.ndim <= 1 for p in g["params"]) else 0.1)
        assert g["lr"] == pytest.approx(0.01 * g["lr_scale"])

    strategy.train_mode(model)
    for name, module in model.layer_groups():
        trains = any(p.requires_grad for p in module.parameters())
        assert module.training == trains, name  # frozen parts (and their BatchNorm) stay in eval mode

    x = torch.randn(4, *SHAPES[model_name])
    model(x).sum().backward()
    for p in model.parameters():
        assert (p.grad is not None) == p.requires_grad


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(WarmstartError, match="unknown strategy 'lora-xl'.*expected one of: freeze, full"):
        create_strategy("lora-xl")
