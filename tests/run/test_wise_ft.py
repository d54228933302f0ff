"""--average wise-ft in finetune: the mixing weight is chosen on validation, never worse there than the fine-tuned
model, and the checkpoint saved is the mixed one."""

from __future__ import annotations

import json

import pytest

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig
from warmstart.errors import WarmstartError
from warmstart.models import save_checkpoint

QUIET = dict(progress=False, trackers=())


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """An MLP pretrained on digits 0-4 for two epochs (no run folder: only its checkpoint)."""
    result = warmstart.pretrain(DataConfig("digits", classes="0-4"), model=ModelConfig("mlp", {"hidden": [32]}),
                                train=TrainConfig.for_command("pretrain", epochs=2, **QUIET))
    folder = tmp_path_factory.mktemp("source")
    save_checkpoint(result.model, folder / "model", result.info)
    return folder


def test_wise_ft_chooses_alpha_on_validation_and_saves_the_mixed_model(source, tmp_path):
    data = DataConfig("digits", classes="5-9", val_fraction=0.3)
    warmstart.finetune(source, data, train=TrainConfig.for_command("finetune", epochs=2, **QUIET), out=tmp_path / "ft",
                       average="wise-ft")
    config = json.loads((tmp_path / "ft" / "config.json").read_text())
    record = config["averaging"]
    scores = {row["alpha"]: row["accuracy"] for row in record["validation"]}
    assert config["average"] == "wise-ft" and 1.0 in scores and 0.0 in scores and len(scores) == 11
    assert scores[record["alpha"]] >= scores[1.0]  # never worse on validation than the fine-tuned model alone
    assert scores[1.0] > scores[0.0]  # the pretrained backbone alone (with the trained head) is worse: mixing is real
    saved = warmstart.evaluate(tmp_path / "ft", data, split="val")
    assert saved.accuracy == pytest.approx(scores[record["alpha"]])


def test_averaging_without_a_validation_split_is_refused_before_training(source, tmp_path):
    with pytest.raises(WarmstartError, match="--average wise-ft chooses on the validation split") as error:
        warmstart.finetune(source, DataConfig("digits", classes="5-9", shots=5), out=tmp_path / "ft",
                           average="wise-ft")
    assert "--val-fraction" in error.value.hint and not (tmp_path / "ft").exists()
    with pytest.raises(WarmstartError, match="soup averages the trials of a study"):
        warmstart.finetune(source, DataConfig("digits", classes="5-9"), average="soup")


def test_wise_ft_from_scratch_is_refused_before_training(tmp_path):
    """From scratch the snapshot WiSE-FT mixes with is the random initialisation: it was mixed in and reported as
    "pretrained alone", in finetune and tune alike."""
    data = DataConfig("digits", classes="5-9", val_fraction=0.25)
    with pytest.raises(WarmstartError, match="a run from scratch has none") as error:
        warmstart.finetune(None, data, model="mlp", out=tmp_path / "ft", average="wise-ft")
    assert "--from" in error.value.hint and not (tmp_path / "ft").exists()
    pytest.importorskip("optuna")
    with pytest.raises(WarmstartError, match="a run from scratch has none"):
        warmstart.tune(None, data, model="mlp", out=tmp_path / "tune", trials=1, average="wise-ft")
    assert not (tmp_path / "tune").exists()


def test_a_soup_with_no_other_trial_says_why_it_is_the_winner_alone():
    # --trials 1 --average soup said "no trial of 0 kept the soup's validation score from dropping"
    import torch

    from warmstart.models.base import create_model
    from warmstart.run.averaging import GreedySoup

    model = create_model("mlp", (8,), 3, hidden=[4])
    x, y = torch.randn(12, 8), torch.arange(12) % 3
    notes: list[str] = []
    record = GreedySoup([]).after_training(model, train_x=x, val=(x, y), device=torch.device("cpu"), notes=notes)
    assert record["fell_back"] and record["ingredients"] == ["the winner (retrained)"]
    assert notes[0].startswith("soup: no other finished trial to average the winner with") and "--trials 2" in notes[0]
