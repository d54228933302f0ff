"""The starting-point race: ranked by a score, raced in short fine-tunes, the winner fine-tuned with the full
budget; the size-only baseline beside each score."""

from __future__ import annotations

import json

import pytest

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig
from warmstart.models import save_checkpoint

QUIET = dict(progress=False, trackers=())


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Three MLPs on digits 0-4: two trained for an epoch (narrow, wide) and one barely trained, as checkpoints."""
    folder = tmp_path_factory.mktemp("zoo")
    paths = []
    for name, hidden, epochs in (("narrow", [16], 1), ("wide", [64], 1), ("raw", [64], 1)):
        train = TrainConfig.for_command("pretrain", epochs=epochs, lr=1e-5 if name == "raw" else 2e-3, **QUIET)
        result = warmstart.pretrain(DataConfig("digits", classes="0-4"), model=ModelConfig("mlp", {"hidden": hidden}),
                                    train=train)
        save_checkpoint(result.model, folder / name / "model", result.info)
        paths.append(str(folder / name))
    return paths


def test_the_race_promotes_by_validation_accuracy_and_trains_the_winner(zoo, tmp_path):
    result = warmstart.finetune("auto", DataConfig("digits", classes="5-9", shots=40, val_fraction=0.25),
                                candidates=zoo, race=True,
                                train=TrainConfig.for_command("finetune", epochs=2, batch_size=64, **QUIET),
                                out=tmp_path / "run")
    record = json.loads((tmp_path / "run" / "selection.json").read_text())
    parent = result.info.extra["parent"]["checkpoint"]
    assert record["chosen"] == parent and len(record["raced"]) == 2  # the top half of 3, at least 2
    assert any(n.startswith(f"--from auto: {parent} won the race of 2") for n in result.notes)
    rung = record["rungs"][0]
    assert rung["epochs"] == 1 and rung["promoted"] == [max(rung["validation_accuracy"],
                                                              key=rung["validation_accuracy"].get)]
    rows = {row["candidate"]: row for row in record["candidates"]}
    assert rows[zoo[1]]["parameters"] > rows[zoo[0]]["parameters"]  # the size baseline, beside the score
    assert all(0 < row["source_accuracy"] <= 1 for row in rows.values())
    assert record["size_top1"] in (zoo[1], zoo[2]) and record["race_steps"] > 0


def test_one_candidate_is_chosen_without_a_race_and_says_so(zoo, tmp_path):
    # it used to report "won the race of 2 (the top 2 of 1 by logme)"
    result = warmstart.finetune("auto", DataConfig("digits", classes="5-9", shots=20, val_fraction=0.25),
                                candidates=zoo[:1], race=True,
                                train=TrainConfig.for_command("finetune", epochs=1, batch_size=64, **QUIET),
                                out=tmp_path / "run")
    record = json.loads((tmp_path / "run" / "selection.json").read_text())
    assert record["raced"] == zoo[:1] and record["rungs"] == [] and record["race_steps"] == 0
    assert record["why"] == f"{zoo[0]} is the only candidate, so there was nothing to race"
    assert any("is the only candidate" in n for n in result.notes)


def test_tune_refuses_before_the_race_what_does_not_depend_on_the_winner(zoo, tmp_path, monkeypatch):
    """A wrong space key, folds the data cannot cut, or --average without a validation split: refused before the
    race (which is the costly part), and no folder is left behind (race.json was written before the checks)."""
    from warmstart.errors import WarmstartError
    from warmstart.tuning import race as race_module

    pytest.importorskip("optuna")

    def no_race(*args, **kwargs):
        raise AssertionError("the race ran before the checks")

    monkeypatch.setattr(race_module, "race", no_race)
    train = TrainConfig.for_command("tune", epochs=1, batch_size=64, **QUIET)
    space = tmp_path / "space.yaml"
    space.write_text("lrr: {low: 1.0e-4, high: 1.0e-2}\n")
    cases = [(dict(data=DataConfig("digits", classes="5-9", shots=20, val_fraction=0.25), space=space),
              "key 'lrr'.*not a training setting"),
             (dict(data=DataConfig("digits", classes="5-9", shots=2), folds=3),
              "folds=3: .*the smallest class has 2"),
             (dict(data=DataConfig("digits", classes="5-9", shots=8), average="wise-ft"),
              "--average wise-ft chooses on the validation split")]
    for options, message in cases:
        with pytest.raises(WarmstartError, match=message):
            warmstart.tune("auto", candidates=zoo, train=train, out=tmp_path / "run", trials=2, **options)
        assert not (tmp_path / "run").exists()
