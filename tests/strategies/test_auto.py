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
