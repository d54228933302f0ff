"""compare takes every training option finetune does, and options per strategy."""

from __future__ import annotations

import json

import pytest

from warmstart.cli.train import strategy_options
from warmstart.errors import WarmstartError

from cli_runner import run_cli


def test_a_strategys_own_option_wins_over_a_plain_one_in_any_order():
    pairs = ["full:head_lr_scale=3", "head_lr_scale=5"]
    assert strategy_options(pairs, ["full", "freeze"]) == {"full": {"head_lr_scale": 3}, "freeze": {"head_lr_scale": 5}}


def test_a_plain_option_goes_only_to_the_strategies_that_take_it():
    assert strategy_options(["layer_decay=0.7"], ["full", "layerwise-lr"]) == {"layerwise-lr": {"layer_decay": 0.7}}


@pytest.mark.parametrize("pairs, message", [
    (["lp-ft:x=1"], "'lp-ft' is not among --strategies"),
    (["no_such_option=1"], "none of full, freeze takes 'no_such_option'"),
])
def test_options_no_compared_strategy_takes_are_errors(pairs, message):
    with pytest.raises(WarmstartError, match=message):
        strategy_options(pairs, ["full", "freeze"])


def test_compare_passes_training_and_per_strategy_options_to_every_run(tmp_path, capsys):
    code, _, err = run_cli(["finetune", "--from", "none", "--model", "mlp", "--model-option", "hidden=[8]", "--data",
                            "digits", "--classes", "0-2", "--epochs", "1", "--quiet", "--tracker", "none", "--out",
                            tmp_path / "source"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["compare", "--from", tmp_path / "source", "--data", "digits", "--classes", "0-2",
                            "--strategies", "full", "freeze", "--strategy-option", "full:head_lr_scale=3",
                            "--shots", "5", "--seeds", "1", "--epochs", "1", "--precision", "bf16",
                            "--label-smoothing", "0.1", "--tracker", "none", "--quiet", "--out", tmp_path / "c"],
                           capsys)
    assert code == 0, err
    runs = {arm: json.loads((tmp_path / "c" / "runs" / arm / "shots5" / "seed0" / "config.json").read_text())
            for arm in ("scratch", "full", "freeze")}
    assert runs["full"]["strategy"]["head_lr_scale"] == 3 and runs["freeze"]["strategy"]["head_lr_scale"] == 10
    assert all(r["train"]["precision"] == "bf16" and r["train"]["label_smoothing"] == 0.1 for r in runs.values())
