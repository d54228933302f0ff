"""The common contract every registered strategy keeps, on every registered model; then what each strategy promises."""

from __future__ import annotations

import pytest
import torch

from warmstart.config import TrainConfig
from warmstart.engine import build_optimizer, build_scheduler, fit, lr_multiplier
from warmstart.errors import WarmstartError
from warmstart.models import MODELS, create_model
from warmstart.strategies import STRATEGIES, create_strategy

from tiny_models import example_inputs, model_options

SHAPES = {"mlp": (1, 8, 8), "cnn": (1, 16, 16), "hf": (12,), "timm": (1, 16, 16), "keras": (1, 16, 16),
          "torchvision": (1, 16, 16)}


def build(model_name):
    return create_model(model_name, SHAPES[model_name], 3, **model_options(model_name))
EPOCHS = 8
# what trains in the first and in the last of EPOCHS epochs; in between, phases only ever add groups from the top
EXPECTED_FIRST_LAST = {"full": ("all", "all"), "freeze": ("head", "head"), "layerwise-lr": ("all", "all"),
                       "l2-sp": ("all", "all"), "gradual-unfreeze": ("head", "all"), "lp-ft": ("head", "all"),
                       "linear-probe": ("head", "head"), "bitfit": ("all", "all"),
                       "lora": ("all but the first", "all but the first"),  # hf: the embeddings hold no adapter
                       "setfit": ("all but the head", "all but the head")}  # its head is fitted, not trained
# strategies that train only some parameters of a group that trains: which ones
TRAINED_PARAMETERS = {"bitfit": lambda group, name: group == "head" or name.endswith("bias"),
                      "lora": lambda group, name: group == "head" or ".lora_" in "." + name}
# (strategy, model) pairs refused with a WarmstartError that names the model: LoRA needs a transformer's layers
UNSUPPORTED = {("lora", "mlp"), ("lora", "cnn"), ("lora", "timm"), ("lora", "torchvision"), ("lora", "keras")}
WITHOUT_WEIGHT_DECAY = {"l2-sp"}  # its penalty replaces weight decay (towards the start, and beta on the head)


# strategies that stand for another one, chosen per run (tested in test_auto.py)
RESOLVED_PER_RUN = {name for name in STRATEGIES.names() if getattr(STRATEGIES.get(name), "resolved_per_run", False)}
CONCRETE = [name for name in STRATEGIES.names() if name not in RESOLVED_PER_RUN]


def test_every_strategy_states_its_expectation_here():
    assert set(CONCRETE) == set(EXPECTED_FIRST_LAST) and RESOLVED_PER_RUN == {"auto"}


def _ids(params):
    return {id(p) for p in params}


def _trainable_names(model):
    return [name for name, module in model.layer_groups() if any(p.requires_grad for p in module.parameters())]


@pytest.mark.parametrize("model_name", MODELS.names())
@pytest.mark.parametrize("strategy_name", CONCRETE)
def test_strategy_contract(model_name, strategy_name):
    model = build(model_name)
    names = [name for name, _ in model.layer_groups()]
    strategy = create_strategy(strategy_name)
    if (strategy_name, model_name) in UNSUPPORTED:
        with pytest.raises(WarmstartError, match=f"strategy {strategy_name}: the {model_name} model"):
            strategy.prepare(model, EPOCHS)
        pytest.skip(f"{strategy_name} refuses {model_name} models (checked: with an error naming the model)")
    strategy.prepare(model, EPOCHS)
    trained = TRAINED_PARAMETERS.get(strategy_name, lambda group, name: True)
    groups = strategy.param_groups(model, lr=0.01, weight_decay=0.1)
    in_optimizer = _ids(p for g in groups for p in g["params"])
    for g in groups:  # no weight decay on biases and normalisation parameters
        exempt = strategy_name in WITHOUT_WEIGHT_DECAY
        assert g["weight_decay"] == (0.0 if exempt or all(p.ndim <= 1 for p in g["params"]) else 0.1)
        assert g["lr"] == pytest.approx(0.01 * g["lr_scale"])

    seen: list[list[str]] = []
    for epoch in range(1, EPOCHS + 1):
        strategy.begin_epoch(model, epoch)
        trains = _trainable_names(model)
        assert trains == [n for n in names if n in strategy.trainable(model, epoch)]
        if strategy_name != "setfit":  # a suffix: groups join from the head down
            assert trains == names[len(names) - len(trains):]
        assert _ids(p for p in model.parameters() if p.requires_grad) <= in_optimizer
        assert _ids(p for p in model.parameters() if p.requires_grad) == _ids(
            p for n, m in model.layer_groups() if n in trains for pn, p in m.named_parameters() if trained(n, pn))
        assert not seen or set(seen[-1]) <= set(trains)
        seen.append(trains)

        # a run resumed at this epoch is in the same phase: phases are a function of the epoch alone
        resumed = create_strategy(strategy_name)
        resumed.prepare(build(model_name), EPOCHS)
        assert resumed.trainable(model, epoch) == strategy.trainable(model, epoch)

        strategy.train_mode(model)
        for name, module in model.layer_groups():  # frozen parts (and their BatchNorm) stay in eval mode
            assert module.training == (name in trains), (epoch, name)
        model.zero_grad(set_to_none=True)
        penalty = strategy.penalty(model)
        assert penalty is None or (penalty.ndim == 0 and torch.isfinite(penalty))
        x = example_inputs(model_name, SHAPES[model_name], 4)
        (model(x).sum() + (0 if penalty is None else penalty)).backward()
        for p in model.parameters():
            assert (p.grad is not None) == p.requires_grad

    expected = {"all": names, "head": ["head"], "all but the first": names[1:], "all but the head": names[:-1]}
    first, last = EXPECTED_FIRST_LAST[strategy_name]
    assert seen[0] == expected[first]
    assert seen[-1] == expected[last]
    assert in_optimizer == _ids(p for n, m in model.layer_groups() if n in set().union(*seen)
                                for pn, p in m.named_parameters() if trained(n, pn))


@pytest.mark.parametrize("strategy_name", CONCRETE)
def test_each_groups_learning_rate_follows_its_scale_through_phases_and_schedule(strategy_name):
    if (strategy_name, "cnn") in UNSUPPORTED:
        pytest.skip(f"{strategy_name} refuses cnn models (test_strategy_contract checks that it says so)")
    model = create_model("cnn", SHAPES["cnn"], 3)
    strategy = create_strategy(strategy_name)
    strategy.prepare(model, EPOCHS)
    config = TrainConfig(epochs=EPOCHS, lr=0.1, schedule="cosine", warmup_epochs=1, optimizer="sgd")
    optimizer = build_optimizer(strategy.param_groups(model, config.lr, config.weight_decay), config)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch=2)
    factor = lr_multiplier(config, 2)
    step = 0
    for epoch in range(1, EPOCHS + 1):
        strategy.begin_epoch(model, epoch)
        for _ in range(2):
            for g in optimizer.param_groups:
                assert g["lr"] == pytest.approx(0.1 * g["lr_scale"] * factor(step)), (epoch, g["name"])
            model(torch.randn(4, *SHAPES["cnn"])).sum().backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(WarmstartError, match="unknown strategy .lora-xl.*expected one of: auto, bitfit, freeze, full"):
        create_strategy("lora-xl")


def test_unknown_options_are_named_with_the_accepted_ones():
    with pytest.raises(WarmstartError, match=r"strategy 'layerwise-lr' has no option decay(?s:.*)takes layer_decay"):
        create_strategy("layerwise-lr", decay=0.7)
    with pytest.raises(WarmstartError, match=r"'full' has no option alpha, layer_decay(?s:.*)takes head_lr_scale"):
        create_strategy("full", layer_decay=0.7, alpha=1.0)
    with pytest.raises(WarmstartError, match=r"'bitfit' has no option rank(?s:.*)takes no options"):
        create_strategy("bitfit", rank=2)


def test_options_reach_the_strategy_and_its_description():
    assert create_strategy("layerwise-lr").describe() == {"name": "layerwise-lr", "layer_decay": 0.5}
    assert create_strategy("l2-sp", alpha=0.5).describe() == {"name": "l2-sp", "alpha": 0.5, "beta": 0.01,
                                                              "base": "full"}
    assert create_strategy("full").describe() == {"name": "full", "head_lr_scale": 1.0}


@pytest.mark.parametrize("strategy_name", ["full", "lp-ft", "lora"])
def test_head_lr_scale_multiplies_only_the_heads_rate(strategy_name):
    model = create_model("hf", (16,), 3, **model_options("hf"))
    strategy = create_strategy(strategy_name, head_lr_scale=20.0)
    strategy.prepare(model, 4)
    rates = {g["name"]: g["lr"] for g in strategy.param_groups(model, 1e-3, 0.01)}
    assert rates["head"] == pytest.approx(2e-2) and rates["head.no_decay"] == pytest.approx(2e-2)
    others = [rate for name, rate in rates.items() if not name.startswith("head")]
    assert others and others == pytest.approx([1e-3] * len(others))


def test_lp_ft_with_an_lbfgs_probe_trains_every_layer_from_the_first_epoch():
    strategy = create_strategy("lp-ft", probe="lbfgs")
    model = create_model("mlp", (6,), 2, hidden=[4])
    strategy.prepare(model, 4)
    assert strategy.trainable(model, 1) == [name for name, _ in model.layer_groups()]
    with pytest.raises(WarmstartError, match="probe"):
        create_strategy("lp-ft", probe="sgd")


# layerwise-lr: discriminative learning rates (ULMFiT)

def _group_index(model, group_name):
    names = [name for name, _ in model.layer_groups()]
    return names.index(group_name.removesuffix(".no_decay"))


@pytest.mark.parametrize("model_name", MODELS.names())
def test_layerwise_default_halves_the_rate_per_group_below_the_head(model_name):
    model = build(model_name)
    strategy = create_strategy("layerwise-lr")
    strategy.prepare(model)
    n = len(model.layer_groups())
    assert n >= 3  # enough groups for the test to tell decay from no decay
    groups = strategy.param_groups(model, lr=0.1, weight_decay=0.0)
    for g in groups:
        distance = n - 1 - _group_index(model, g["name"])
        assert g["lr"] == pytest.approx(0.1 * 0.5 ** distance), g["name"]
    assert all(g["lr"] == 0.1 for g in groups if g["name"].startswith("head"))  # the head keeps the base rate
    assert min(g["lr"] for g in groups) == pytest.approx(0.1 * 0.5 ** (n - 1))


SCHEDULES = [dict(schedule="constant"), dict(schedule="step", step_size=1, gamma=0.5), dict(schedule="cosine"),
             dict(schedule="cosine", warmup_epochs=1), dict(schedule="step", step_size=1, warmup_epochs=1)]


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
@pytest.mark.parametrize("model_name", MODELS.names())
def test_layer_decay_survives_every_schedule(model_name, schedule, optimizer):
    # timm PR #2532: layer decay was silently dropped by schedulers that reset each group to the base rate
    model = build(model_name)
    strategy = create_strategy("layerwise-lr", layer_decay=0.7)
    strategy.prepare(model)
    config = TrainConfig(epochs=4, lr=0.1, optimizer=optimizer, **schedule)
    steps_per_epoch = 3
    optimizer_ = build_optimizer(strategy.param_groups(model, config.lr, config.weight_decay), config)
    scheduler = build_scheduler(optimizer_, config, steps_per_epoch)
    factor = lr_multiplier(config, steps_per_epoch)
    n = len(model.layer_groups())
    head_rates = []
    for step in range(config.epochs * steps_per_epoch):
        for g in optimizer_.param_groups:
            distance = n - 1 - _group_index(model, g["name"])
            assert g["lr"] == pytest.approx(0.1 * factor(step) * 0.7 ** distance), (step, g["name"])
        head_rates.append(next(g["lr"] for g in optimizer_.param_groups if g["name"] == "head"))
        optimizer_.step()
        scheduler.step()
    if schedule["schedule"] != "constant" or "warmup_epochs" in schedule:
        assert len(set(head_rates)) > 1  # the schedule did move the rates, and the ratios held while it did


@pytest.mark.parametrize("bad", [0, -1, 1.5, 0.0, float("nan"), "0.5", True])
def test_layer_decay_outside_zero_to_one_is_refused(bad):
    with pytest.raises(WarmstartError, match=r"parameter layer_decay: expected a number in \(0, 1\]"):
        create_strategy("layerwise-lr", layer_decay=bad)


def test_layer_decay_of_one_is_full_fine_tuning():
    model = create_model("mlp", SHAPES["mlp"], 3)
    strategy = create_strategy("layerwise-lr", layer_decay=1)
    strategy.prepare(model)
    assert all(g["lr"] == 0.01 for g in strategy.param_groups(model, lr=0.01, weight_decay=0.0))


# l2-sp: an L2 pull towards the starting point (Li, Grandvalet & Davoine, 2018)

def _backbone_parameters(model):
    return [p for _, module in model.layer_groups()[:-1] for p in module.parameters()]


@pytest.mark.parametrize("model_name", MODELS.names())
def test_l2sp_penalty_at_the_start_is_only_the_head_term(model_name):
    model = build(model_name)
    without_head_term = create_strategy("l2-sp", alpha=0.3, beta=0.0)
    without_head_term.prepare(model)
    assert without_head_term.penalty(model).item() == 0.0

    strategy = create_strategy("l2-sp", alpha=0.3, beta=0.2)
    strategy.prepare(model)
    head_size = sum((p.detach() ** 2).sum() for p in model.head.parameters())
    assert head_size > 0
    assert strategy.penalty(model).item() == pytest.approx(0.1 * head_size.item())


@pytest.mark.parametrize("model_name", MODELS.names())
def test_l2sp_gradient_pulls_a_moved_backbone_back_to_its_start(model_name):
    torch.manual_seed(0)
    model = build(model_name)
    strategy = create_strategy("l2-sp", alpha=0.3, beta=0.2)
    strategy.prepare(model)
    moved = _backbone_parameters(model)[0]
    start = moved.detach().clone()
    with torch.no_grad():
        moved.add_(torch.randn_like(moved))

    penalty = strategy.penalty(model)
    assert penalty.item() == pytest.approx(0.15 * ((moved.detach() - start) ** 2).sum().item()
                                           + 0.1 * sum((p.detach() ** 2).sum() for p in model.head.parameters()).item(),
                                           rel=1e-5)
    penalty.backward()
    assert torch.allclose(moved.grad, 0.3 * (moved.detach() - start))
    assert (moved.grad * (start - moved.detach())).sum() < 0  # a gradient step moves it towards the start
    for p in _backbone_parameters(model)[1:]:
        assert p.grad is None or not p.grad.any()  # unmoved parameters feel no pull
    for p in model.head.parameters():
        assert torch.allclose(p.grad, 0.2 * p.detach())  # the head is pulled towards zero


def test_l2sp_replaces_weight_decay_in_every_group():
    model = create_model("cnn", SHAPES["cnn"], 3)
    strategy = create_strategy("l2-sp")
    strategy.prepare(model)
    groups = {g["name"]: g["weight_decay"] for g in strategy.param_groups(model, lr=0.01, weight_decay=0.05)}
    assert "head" in groups and len(groups) > 2 and set(groups.values()) == {0.0}


@pytest.mark.parametrize("bad", [{"alpha": -0.1}, {"beta": -1}, {"alpha": "big"}, {"beta": None}])
def test_l2sp_negative_or_non_numeric_strengths_are_refused(bad):
    (name, value), = bad.items()
    with pytest.raises(WarmstartError, match=rf"parameter {name}: expected a number >= 0"):
        create_strategy("l2-sp", **bad)


def test_l2sp_penalty_needs_a_starting_point():
    with pytest.raises(RuntimeError, match="prepare"):
        create_strategy("l2-sp").penalty(create_model("mlp", SHAPES["mlp"], 3))


def _toy_images(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 1, 12, 12, generator=g) + y.view(-1, 1, 1, 1).float()  # class 1 is brighter
    return x, y


def _train_and_measure_drift(strategy):
    """Train a small CNN on the toy task; how far its backbone moved, and its final validation accuracy."""
    torch.manual_seed(0)
    model = create_model("cnn", (1, 12, 12), 2, widths=[4, 8])
    start = [p.detach().clone() for p in _backbone_parameters(model)]
    history = fit(model, strategy, _toy_images(), _toy_images(seed=1), TrainConfig(epochs=6, batch_size=16, lr=0.01),
                  device=torch.device("cpu"), generator=torch.Generator().manual_seed(0))
    drift = sum(((p.detach() - p0) ** 2).sum() for p, p0 in zip(_backbone_parameters(model), start)).sqrt()
    return drift.item(), history.epochs[-1]["val_accuracy"]


def test_l2sp_training_keeps_the_backbone_near_its_start():
    full_drift, _ = _train_and_measure_drift(create_strategy("full"))
    l2sp_drift, l2sp_accuracy = _train_and_measure_drift(create_strategy("l2-sp", alpha=10.0))
    assert full_drift > 0.5
    assert l2sp_drift < 0.25 * full_drift
    assert l2sp_accuracy > 0.8  # the head still learns the task


@pytest.mark.parametrize("strategy_name, text_lr", [("full", 5e-5), ("gradual-unfreeze", 5e-5), ("lp-ft", 2e-5),
                                                    ("setfit", 2e-5), ("lora", 5e-4), ("bitfit", 5e-4),
                                                    ("freeze", 1e-3), ("linear-probe", 1e-3)])
def test_default_learning_rate_follows_the_model(strategy_name, text_lr):
    """Without --lr a transformer encoder fine-tunes at a transformer's rate, the small networks at 1e-3."""
    strategy = create_strategy(strategy_name)
    assert strategy.default_lr(build("hf")) == text_lr
    assert strategy.default_lr(build("cnn")) == strategy.default_lr(build("mlp")) == 1e-3


def test_a_run_without_a_learning_rate_records_the_default_it_took(tmp_path):
    import json

    import warmstart
    from warmstart import DataConfig

    from tiny_models import tiny_bert_source

    path = tmp_path / "t.csv"
    path.write_text("text,label\n" + "".join(f"text number {i},{'ab'[i % 2]}\n" for i in range(12)))
    result = warmstart.finetune("hf:" + tiny_bert_source(), DataConfig(str(path), max_length=8, val_fraction=0.0),
                                strategy="full", train=TrainConfig(epochs=1, batch_size=4, progress=False),
                                out=tmp_path / "run")
    assert "learning rate 5e-05: full's default for the hf model (set --lr to choose another)" in result.notes
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["lr"] == 5e-5
