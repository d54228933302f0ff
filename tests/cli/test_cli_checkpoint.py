"""--checkpoint (-c) names the checkpoint a command reads; the --model of old scripts still works, with a note."""

from __future__ import annotations

import json

import pytest

from cli_runner import run_cli


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import warmstart

    out = tmp_path_factory.mktemp("source")
    warmstart.pretrain(warmstart.DataConfig("digits", classes="0-2"),
                       model=warmstart.ModelConfig("mlp", {"hidden": [8]}),
                       train=warmstart.TrainConfig(epochs=1, progress=False, trackers=()), out=out)
    return str(out)


def test_checkpoint_c_and_the_deprecated_model_read_the_same_checkpoint(checkpoint, capsys):
    results = []
    for flag in ("--checkpoint", "-c", "--model"):
        code, out, err = run_cli(["evaluate", flag, checkpoint, "--data", "digits", "--classes", "0-2", "--json"],
                                 capsys)
        assert code == 0, err
        assert ("note: `warmstart evaluate --model` is deprecated" in err) == (flag == "--model")
        results.append(json.loads(out)["accuracy"])
    assert results[0] == results[1] == results[2]


def test_a_missing_checkpoint_says_which_flag(capsys):
    code, _, err = run_cli(["evaluate", "--data", "digits"], capsys)
    assert code == 2 and "--checkpoint" in err


def test_the_deprecated_model_is_hidden_from_help(capsys):
    code, out, _ = run_cli(["evaluate", "--help"], capsys)
    assert code == 0 and "--checkpoint" in out and "--model " not in out
