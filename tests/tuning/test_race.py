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
