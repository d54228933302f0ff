"""Training options through the command line: they reach the run's config, and misuse exits with code 2."""

from __future__ import annotations

import json

import pytest

from warmstart.cli import main

from cli_runner import run_cli


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    out = tmp_path_factory.mktemp("source")
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "--data", "digits", "--classes", "0-4", "--model", "mlp", "--epochs", "3", "--quiet",
              "--out", str(out)])
    assert exit_info.value.code == 0
    return out


def test_training_options_reach_the_run_config(source, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(["finetune", "--from", source, "--data", "digits", "--classes", "5-9", "--epochs", "12",
                            "--val-fraction", "0.3", "--early-stopping", "2", "--schedule", "one-cycle",
                            "--label-smoothing", "0.1", "--class-balance", "weights", "--grad-clip-norm", "1.0",
                            "--strategy", "gradual-unfreeze", "--strategy-option", "boundaries=[3, 5]",
                            "--frozen-batchnorm", "train", "--quiet", "--out", out], capsys)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["train"] | {"progress": False} == config["train"]
    for key, value in {"early_stopping": 2, "schedule": "one-cycle", "label_smoothing": 0.1,
                       "class_balance": "weights", "grad_clip_norm": 1.0, "frozen_batchnorm": "train"}.items():
        assert config["train"][key] == value
    assert config["strategy"] == {"name": "gradual-unfreeze", "boundaries": [3, 5]}
    assert "gradual-unfreeze: from epoch 3, training layer2, head" in err
    epochs_run = len((out / "train_log.jsonl").read_text().splitlines())
    if epochs_run < 12:
        assert "early stopping after epoch" in err


@pytest.mark.parametrize("args, message", [
    (["--early-stopping", "2"], "early stopping needs a validation split"),
    (["--resume"], "nothing to resume"),
    (["--schedule", "one-cycle", "--warmup-epochs", "1"], "warmup_epochs"),
    (["--class-balance", "oversample"], "class_balance"),
    (["--strategy", "lp-ft", "--strategy-option", "probe_fraction=2"], "probe_fraction"),
    (["--strategy-option", "alpha=1"], "strategy 'full' has no option alpha"),
])
def test_misused_training_options_exit_2_with_a_message(source, tmp_path, capsys, args, message):
    code, _, err = run_cli(["finetune", "--from", source, "--data", "digits", "--classes", "5-9", "--shots", "20",
                            "--epochs", "2", "--quiet", "--out", tmp_path / "run", *args], capsys)
    assert code == 2 and err.startswith("error:") and message in err, err
    assert "Traceback" not in err
