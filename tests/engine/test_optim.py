"""Learning-rate schedules: each group's own rate follows the schedule, so per-group scales survive it."""

from __future__ import annotations

import math

import pytest
import torch

from warmstart.config import TrainConfig
from warmstart.engine import build_optimizer, build_scheduler


def groups_with_scales(scales):
    return [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": 0.1 * s, "lr_scale": s} for s in scales]


def lrs_over(config: TrainConfig, steps_per_epoch: int, scales=(1.0,)):
    optimizer = build_optimizer(groups_with_scales(scales), config)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch)
    seen = []
    for _ in range(config.epochs * steps_per_epoch):
        seen.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return seen


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_constant_keeps_each_groups_rate(optimizer):
    seen = lrs_over(TrainConfig(epochs=3, lr=0.1, schedule="constant", optimizer=optimizer), 4, (1.0, 0.25))
    assert all(step == pytest.approx([0.1, 0.025]) for step in seen)


def test_step_decay_multiplies_by_gamma_every_step_size_epochs():
    seen = lrs_over(TrainConfig(epochs=6, lr=0.1, schedule="step", step_size=2, gamma=0.5), 3)
    per_epoch = [seen[e * 3][0] for e in range(6)]
    assert per_epoch == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_cosine_anneals_to_zero_and_keeps_group_ratios():
    seen = lrs_over(TrainConfig(epochs=4, lr=0.1, schedule="cosine"), 5, (1.0, 0.5))
    assert seen[0] == pytest.approx([0.1, 0.05])
    middle = seen[10]  # half way
    assert middle[0] == pytest.approx(0.05) and middle[1] == pytest.approx(0.025)
    assert seen[-1][0] < 0.002
    assert all(a[1] == pytest.approx(a[0] * 0.5) for a in seen)


def test_linear_warmup_ramps_then_follows_the_schedule():
    seen = lrs_over(TrainConfig(epochs=5, lr=0.1, schedule="cosine", warmup_epochs=1), 10)
    ramp = [s[0] for s in seen[:10]]
    assert ramp[0] == pytest.approx(0.01) and all(b > a for a, b in zip(ramp, ramp[1:]))
    assert seen[10][0] == pytest.approx(0.1)
    assert seen[30][0] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.5)))


def test_sgd_settings_reach_the_optimizer():
    optimizer = build_optimizer(groups_with_scales([1.0]),
                                TrainConfig(optimizer="sgd", momentum=0.8, nesterov=True, weight_decay=0.01))
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.defaults["momentum"] == 0.8 and optimizer.defaults["nesterov"] is True


def test_exponential_multiplies_by_gamma_each_epoch():
    seen = lrs_over(TrainConfig(epochs=3, lr=0.1, schedule="exponential", gamma=0.5), 2)
    assert [s[0] for s in seen] == pytest.approx([0.1, 0.1 * 0.5**0.5, 0.05, 0.05 * 0.5**0.5, 0.025,
                                                  0.025 * 0.5**0.5])


def test_one_cycle_matches_torchs_one_cycle_lr():
    config = TrainConfig(epochs=5, lr=0.1, schedule="one-cycle", optimizer="sgd")
    ours = [s[0] for s in lrs_over(config, 4)]
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.1)
    reference = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=20, cycle_momentum=False)
    theirs = []
    for _ in range(20):
        theirs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        reference.step()
    assert ours[0] == pytest.approx(0.1 / 25) and max(ours) == pytest.approx(0.1)
    assert ours == pytest.approx(theirs, rel=1e-9)


def test_one_cycle_refuses_an_extra_warmup():
    from warmstart.errors import WarmstartError

    with pytest.raises(WarmstartError, match="warmup_epochs"):
        TrainConfig(epochs=5, schedule="one-cycle", warmup_epochs=1)


def test_linear_decay_matches_transformers_schedule():
    from transformers import get_linear_schedule_with_warmup

    ours = [s[0] for s in lrs_over(TrainConfig(epochs=4, lr=0.1, schedule="linear", optimizer="adamw"), 5)]
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=0.1)
    reference = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=0, num_training_steps=20)
    theirs = []
    for _ in range(20):
        theirs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        reference.step()
    assert ours[0] == pytest.approx(0.1) and ours[-1] == pytest.approx(0.1 / 20)
    assert ours == pytest.approx(theirs, rel=1e-9)


def test_adam_uses_fused_kernels_and_matches_the_default_path():
    def trained(fused_allowed: bool):
        torch.manual_seed(0)
        model = torch.nn.Linear(8, 3)
        groups = [{"params": list(model.parameters()), "lr": 0.01}]
        config = TrainConfig(optimizer="adamw", lr=0.01, weight_decay=0.01)
        optimizer = build_optimizer(groups, config) if fused_allowed else torch.optim.AdamW(groups, lr=0.01,
                                                                                             weight_decay=0.01)
        x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
        for _ in range(5):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        return optimizer, model.weight.detach()

    fused, weights = trained(True)
    assert fused.defaults["fused"] is True
    assert torch.allclose(weights, trained(False)[1], atol=1e-6)


# --- the registries: one table for validation, `warmstart list` and the help --------------------------------------

def test_optimizers_and_schedules_are_registered_and_listed():
    from warmstart import list_registered
    from warmstart.engine.optim import OPTIMIZERS, SCHEDULES

    assert OPTIMIZERS.names() == ["adam", "adamw", "sgd"]
    assert SCHEDULES.names() == ["constant", "cosine", "exponential", "linear", "one-cycle", "step"]
    assert list(list_registered("optimizers")) == OPTIMIZERS.names()
    assert list(list_registered("schedules")) == SCHEDULES.names() and list_registered("schedules")["cosine"]


def test_an_unknown_optimizer_or_schedule_names_the_registered_ones():
    from warmstart import WarmstartError

    with pytest.raises(WarmstartError, match="parameter optimizer: expected one of adam, adamw, sgd, got 'lamb'"):
        TrainConfig(optimizer="lamb")
    with pytest.raises(WarmstartError, match="parameter schedule: expected one of constant, cosine"):
        TrainConfig(schedule="poly")


@pytest.mark.parametrize("optimizer, kind", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                             ("adamw", torch.optim.AdamW)])
def test_each_registered_optimizer_builds_its_torch_optimizer(optimizer, kind):
    built = build_optimizer(groups_with_scales((1.0,)), TrainConfig(optimizer=optimizer, lr=0.1))
    assert type(built) is kind and built.defaults["weight_decay"] == TrainConfig().weight_decay


def test_every_family_is_listed_from_one_table():
    from warmstart import WarmstartError, list_registered
    from warmstart.catalog import FAMILIES

    for family in FAMILIES:
        assert list_registered(family), family
    with pytest.raises(WarmstartError, match="expected one of models, strategies"):
        list_registered("widgets")


def test_registry_create_takes_the_familys_positional_arguments():
    from warmstart import WarmstartError
    from warmstart.models import MODELS

    net = MODELS.create("mlp", (4,), 3, hidden=(5,))
    assert net.input_shape == (4,)
    with pytest.raises(WarmstartError, match="model 'mlp' has no option widths"):
        MODELS.create("mlp", (4,), 3, widths=(5,))
