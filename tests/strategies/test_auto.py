"""``auto`` picks a strategy by the written rule, reports why, and trains with its choice."""

from __future__ import annotations

import json

import pytest

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig
from warmstart.errors import WarmstartError
from warmstart.strategies import create_strategy
from warmstart.strategies.auto import FEW_SHOT_LIMIT


@pytest.mark.parametrize("per_class, expected", [(1, "gradual-unfreeze"), (FEW_SHOT_LIMIT, "gradual-unfreeze"),
                                                 (FEW_SHOT_LIMIT + 1, "full"), (6000, "full")])
def test_the_rule_by_examples_per_class(per_class, expected):
    chosen, reason = create_strategy("auto").choose(per_class)
    assert chosen.name == expected and str(per_class) in reason


def test_minimal_budget_and_scratch():
    assert create_strategy("auto", budget="minimal").choose(10)[0].name == "linear-probe"
    assert create_strategy("auto").choose(10, pretrained=False)[0].name == "full"
    with pytest.raises(WarmstartError, match="budget"):
        create_strategy("auto", budget="huge")


def test_finetune_with_auto_trains_with_its_choice_and_records_why(fashion_subset_npz, tmp_path):
    source = warmstart.pretrain(DataConfig(fashion_subset_npz, classes="0-4"),
                                model=ModelConfig("cnn", {"widths": [8, 16]}),
                                train=TrainConfig(epochs=1, progress=False), out=tmp_path / "source")
    result = warmstart.finetune(source.checkpoint, DataConfig(fashion_subset_npz, classes="5-9", shots=8),
                                strategy="auto", train=TrainConfig(epochs=4, progress=False), out=tmp_path / "run")
    assert any(note.startswith("auto chose gradual-unfreeze: smallest class: 8 examples") for note in result.notes)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["strategy"]["name"] == "gradual-unfreeze"
    assert any("auto chose" in note for note in config["notes"])


@pytest.mark.parametrize("per_class, epochs, expected", [
    (8, 1, {"name": "setfit", "iterations": 20, "C": 1.0}),
    (8, 10, {"name": "setfit", "iterations": 2, "C": 1.0}),  # SetFit's 20 rounds of pairs, spread over 10 epochs
    (16, 40, {"name": "setfit", "iterations": 1, "C": 1.0}),
    (17, 3, {"name": "lp-ft", "probe_fraction": 0.5, "probe": "lbfgs", "head_lr_scale": 1.0}),
])
def test_the_rule_for_a_text_encoder(per_class, epochs, expected):
    chosen, reason = create_strategy("auto").choose(per_class, text=True, classes=6, epochs=epochs)
    assert chosen.describe() == expected and f"smallest class: {per_class} examples" in reason
    many, reason = create_strategy("auto").choose(per_class, text=True, classes=77, epochs=epochs)
    assert many.name == "lp-ft" and ("77 classes > 20" in reason or per_class > 16)
    minimal, _ = create_strategy("auto", budget="minimal").choose(per_class, text=True)
    assert minimal.describe()["solver"] == "lbfgs"


def test_finetune_with_auto_on_a_text_encoder_takes_the_text_rule(tmp_path):
    from tiny_models import tiny_bert_source

    path = tmp_path / "t.csv"
    path.write_text("text,label\n" + "".join(f"text number {i},{'ab'[i % 2]}\n" for i in range(16)))
    result = warmstart.finetune("hf:" + tiny_bert_source(), DataConfig(str(path), max_length=8, val_fraction=0.0),
                                strategy="auto", train=TrainConfig(epochs=2, batch_size=8, progress=False))
    assert any(note.startswith("auto chose setfit: smallest class: 6 examples <= 16 and 2 classes <= 20 for a text encoder")
               for note in result.notes), result.notes
    assert "learning rate 2e-05: setfit's default for the hf model (set --lr to choose another)" in result.notes


# ---------------------------------------------------------------- issue 14, item 7: a budget scaled to the data

from warmstart.strategies.auto import (MAX_EPOCHS, class_balance_note, measure_step_seconds,  # noqa: E402
                                       scaled_epochs, time_estimate_note)


@pytest.mark.parametrize("examples, batch, text, expected", [
    (4136, 64, True, 2),    # the spam corpus: 2 full-encoder epochs (the text benchmarks' whole-set recipe), not 10
    (48, 16, True, 20),     # 8 per class of 6 at batch 16: the text benchmarks' 20 epochs
    (448, 64, False, 40),   # vectors, 7 steps per epoch: 40 epochs (10 left the MLP badly undertrained)
    (50, 64, False, 40),    # 10 shots of 5 classes: the 40 epochs of benchmarks/results/strategies.md
    (30000, 128, False, 3),  # all of Fashion-MNIST 5-9: the benchmarks' 3 epochs
    (3000, 64, False, 13),  # 47 steps per epoch: 600 / 47 = 12.8
])
def test_epochs_are_scaled_to_the_data(examples, batch, text, expected):
    assert scaled_epochs(examples, batch, text=text) == expected


def test_given_epochs_are_kept_and_scaled_ones_are_explained():
    auto = create_strategy("auto")
    assert auto.epochs(4136, 64, text=True, given=10) == (10, None)
    epochs, why = auto.epochs(448, 64, given=None)
    assert epochs == MAX_EPOCHS and "auto trains 40 epochs (280 steps of 64)" in why and "--epochs" in why


def test_the_reason_names_the_smallest_class_and_flags_an_imbalance():
    # the spam corpus: 470 spam against 3,253 ham
    chosen, reason = create_strategy("auto").choose(470, text=True, classes=2, epochs=2, class_counts=[3253, 470],
                                                    class_names=["ham", "spam"])
    assert chosen.name == "lp-ft"
    assert reason.startswith("smallest class: 470 examples > 16") and "per class" not in reason.split(":")[1]
    assert "imbalanced classes: the largest has 3,253 (ham) examples, the smallest 470 (spam), 6.9x" in reason
    assert class_balance_note([100, 90, 40]) is None  # 2.5x: not flagged
    assert "3.1x" in class_balance_note([31, 10])


def test_a_long_run_is_announced_with_its_estimate():
    assert time_estimate_note(0.01, 1000, 64, 10) is None  # 160 steps, 2 s
    note = time_estimate_note(0.6, 4136, 32, 10)  # the spam corpus at 10 epochs: 1,300 steps of 0.6 s
    assert note.startswith("estimated training time: about 14 minutes (10 epochs of 130 steps at 0.60 s per step")
    assert "about 2.1 hours" in time_estimate_note(5.3, 4136, 32, 10)  # 7,579 s


def test_measuring_a_step_leaves_the_model_as_it_was():
    import torch

    from warmstart.models import create_model

    torch.manual_seed(0)
    model = create_model("cnn", (1, 8, 8), 3, widths=(4, 8), blocks=1).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    state = torch.random.get_rng_state()
    seconds = measure_step_seconds(model, x, y)
    assert seconds > 0 and model.training
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BatchNorm statistics too
    assert all(p.grad is None for p in model.parameters())


def test_auto_without_epochs_trains_its_scaled_budget_and_flags_an_imbalance(tmp_path, monkeypatch):
    """Through the API, as a vector user runs it: no --epochs gives auto's step budget (40 epochs of 4 steps here,
    not the 10 that left the MLP undertrained), the reason reads the smallest class and flags the imbalance, and a
    run whose measured step says it will be long announces its estimate before training."""
    import numpy as np

    import warmstart.run.trainer

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 8)) * 2

    def vectors(counts, centres, file):
        x = np.concatenate([c + 0.3 * rng.standard_normal((n, 8)) for n, c in zip(counts, centres)])
        np.savez(tmp_path / file, x=x.astype(np.float32), y=np.repeat(np.arange(len(counts)), counts))
        return str(tmp_path / file)

    source = warmstart.pretrain(vectors([40, 40], centres[:2], "source.npz"), model="mlp",
                                train=TrainConfig(epochs=2, progress=False, trackers=()), out=tmp_path / "source")
    target = vectors([64, 16], centres[2:], "target.npz")  # 4x more of class 0 than of class 1
    monkeypatch.setattr(warmstart.run.trainer, "measure_step_seconds", lambda *args: 1.0)  # as if on a slow machine
    result = warmstart.finetune(source.run_dir, DataConfig(target, val_fraction=0.0), strategy="auto",
                                train=TrainConfig(batch_size=16, progress=False, trackers=()))
    assert len(result.history) == 40, result.notes
    assert any("auto trains 40 epochs" in note for note in result.notes), result.notes
    choice = next(note for note in result.notes if note.startswith("auto chose"))
    # the training split holds 80% of each class: 51 and 13
    assert choice.startswith("auto chose gradual-unfreeze: smallest class: 13 examples"), choice
    assert "imbalanced classes: the largest has 51 (0) examples, the smallest 13 (1), 3.9x" in choice, choice
    assert any(note.startswith("estimated training time: about 3 minutes (40 epochs of 4 steps at 1.00 s per step")
               for note in result.notes), result.notes
