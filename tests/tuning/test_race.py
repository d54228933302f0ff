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
             # named as --scores, which tune does not have
             (dict(data=DataConfig("digits", classes="5-9", shots=20), rank_score="bogus"),
              r"unknown score 'bogus' \(parameter --rank-score\)"),
             (dict(data=DataConfig("digits", classes="5-9", shots=2), folds=3),
              "folds=3: .*the smallest class has 2"),
             (dict(data=DataConfig("digits", classes="5-9", shots=8), average="wise-ft"),
              "--average wise-ft chooses on the validation split")]
    for options, message in cases:
        with pytest.raises(WarmstartError, match=message):
            warmstart.tune("auto", candidates=zoo, train=train, out=tmp_path / "run", trials=2, **options)
        assert not (tmp_path / "run").exists()


def test_overwrite_of_a_folder_holding_a_candidate_or_the_data_is_refused_before_the_race(zoo, tmp_path,
                                                                                          monkeypatch):
    """--out held a candidate (or the --data file): --overwrite emptied the folder after the race had chosen that
    candidate, which was then gone, and the old search with it."""
    import shutil

    import numpy as np

    from warmstart.errors import WarmstartError
    from warmstart.tuning import race as race_module

    pytest.importorskip("optuna")
    monkeypatch.setattr(race_module, "race", lambda *a, **k: pytest.fail("the race ran before the check"))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "study.journal").write_text("")
    shutil.copytree(zoo[0], tmp_path / "run" / "kept")
    train = TrainConfig.for_command("tune", epochs=1, batch_size=64, **QUIET)
    digits = DataConfig("digits", classes="5-9", shots=20, val_fraction=0.25)
    with pytest.raises(WarmstartError, match="holds '.*kept', which this run reads"):
        warmstart.tune("auto", digits, candidates=[str(tmp_path / "run" / "kept"), zoo[1]], train=train,
                       out=tmp_path / "run", trials=1, overwrite=True)
    x = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    np.savez(tmp_path / "run" / "data.npz", x=x, y=np.arange(40) % 2)
    with pytest.raises(WarmstartError, match="holds '.*data.npz', which this run reads"):
        warmstart.tune(None, str(tmp_path / "run" / "data.npz"), model="mlp", train=train, out=tmp_path / "run",
                       trials=1, overwrite=True)
    with pytest.raises(WarmstartError, match="holds '.*data.npz', which this run reads"):
        warmstart.finetune(None, str(tmp_path / "run" / "data.npz"), model="mlp", train=train, out=tmp_path / "run",
                           overwrite=True)
    assert (tmp_path / "run" / "kept" / "model").is_dir() and (tmp_path / "run" / "data.npz").is_file()


def test_a_resumed_search_refuses_other_candidates_or_another_score(zoo, tmp_path):
    # it continued from the old race's winner, even one no longer among the candidates
    from warmstart.errors import WarmstartError

    pytest.importorskip("optuna")
    train = TrainConfig.for_command("tune", epochs=1, batch_size=64, **QUIET)
    digits = DataConfig("digits", classes="5-9", shots=20, val_fraction=0.25)
    warmstart.tune("auto", digits, candidates=zoo[:2], train=train, out=tmp_path / "run", trials=1)
    for candidates, score in ((zoo[1:2], "logme"), (zoo[:2], "hscore")):
        with pytest.raises(WarmstartError, match="race.json: this search's race ran on --candidates"):
            warmstart.tune("auto", digits, candidates=candidates, rank_score=score, train=train,
                           out=tmp_path / "run", trials=2, resume=True)
    # a candidate named as a string is one candidate (it was split into its characters)
    again = warmstart.tune("auto", digits, candidates=zoo[0], train=train, out=tmp_path / "one", trials=1)
    assert json.loads((tmp_path / "one" / "race.json").read_text())["ranking"] == [zoo[0]]
    assert again.run_dir == tmp_path / "one"
