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
    assert any(note.startswith("auto chose gradual-unfreeze: 8 examples per class") for note in result.notes)
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
    assert chosen.describe() == expected and f"{per_class} examples per class" in reason
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
    assert any(note.startswith("auto chose setfit: 6 examples per class <= 16 and 2 classes <= 20 for a text encoder")
               for note in result.notes), result.notes
    assert "learning rate 2e-05: setfit's default for the hf model (set --lr to choose another)" in result.notes
