"""``warmstart shift``, ``--corruption`` and ``finetune --adaptation`` through the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from warmstart.cli import main

from cli_runner import run_cli


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "source"
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "--data", "digits", "--model", "cnn", "--model-option", "widths=[8, 16]", "--epochs", "3",
              "--val-fraction", "0", "--quiet", "--out", str(out)])
    assert exit_info.value.code == 0
    return out


@pytest.fixture(scope="module")
def other_shape_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("other") / "twelve.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.integers(0, 255, (40, 12, 12), dtype=np.uint8), y=np.arange(40) % 10)
    return path


def test_shift_finds_inverted_digits_and_writes_json(digits_model, tmp_path, capsys):
    code, out, err = run_cli(["shift", "--source", "digits", "--target", "digits", "--target-corruption", "invert:5",
                              "--model", digits_model, "--samples", "300", "--permutations", "50", "--out", tmp_path],
                             capsys)
    assert code == 0, err
    assert "verdict: large shift" in out and "proxy A-distance" in out
    written = json.loads((tmp_path / "shift.json").read_text())
    assert written["scores"]["mmd_p_value"] < 0.05 and written["scores"]["proxy_a_distance"] > 1.5
    assert written["target"] == "digits[invert:5]" and written["command"] == "shift"


def test_shift_json_on_stdout_for_the_same_data(digits_model, capsys):
    code, out, err = run_cli(["shift", "--source", "digits", "--target", "digits", "--model", digits_model,
                              "--samples", "300", "--permutations", "50", "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["scores"]["mmd_p_value"] > 0.05  # the same test split, two subsamples of it
    assert result["verdict"].startswith("no significant shift")


def test_shift_refuses_a_negative_seed_by_name(digits_model, capsys):
    # numpy's "expected non-negative integer" traceback before
    code, _, err = run_cli(["shift", "--source", "digits", "--target", "digits", "-c", digits_model,
                            "--samples", "300", "--permutations", "5", "--seed", "-1"], capsys)
    assert code == 2 and err.startswith("error: parameter seed: expected an integer >= 0, got -1"), err


def test_finetune_with_dann_records_the_adaptation(digits_model, tmp_path, capsys):
    out = tmp_path / "dann"
    code, _, err = run_cli(["finetune", "--from", digits_model, "--data", "digits", "--target-unlabeled", "digits",
                            "--target-corruption", "noise:3", "--adaptation", "dann", "--adaptation-option",
                            "weight=0.5", "--adaptation-option", "hidden=32", "--epochs", "1", "--quiet",
                            "--out", out], capsys)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["adaptation"]["method"] == {"name": "dann", "weight": 0.5, "hidden": 32, "schedule": "ganin"}
    assert config["adaptation"]["target_unlabeled"]["corruption"] == "noise:3"
    log = json.loads((out / "train_log.jsonl").read_text().splitlines()[-1])
    assert log["adaptation_loss"] > 0 and 0 <= log["domain_accuracy"] <= 1
    metadata = json.loads((out / "model" / "metadata.json").read_text())
    assert "adaptation" in json.dumps(metadata)


def test_adabn_combines_with_the_linear_probe_and_evaluate_applies_it(digits_model, tmp_path, capsys):
    out = tmp_path / "adabn"
    code, _, err = run_cli(["finetune", "--from", digits_model, "--data", "digits", "--strategy", "linear-probe",
                            "--target-unlabeled", "digits", "--target-corruption", "contrast:5", "--adaptation",
                            "adabn", "--epochs", "2", "--quiet", "--out", out], capsys)
    assert code == 0, err
    assert "adabn: BatchNorm statistics re-estimated" in err
    plain = run_cli(["evaluate", "--checkpoint", digits_model, "--data", "digits", "--corruption", "contrast:5",
                     "--json"], capsys)
    adapted = run_cli(["evaluate", "--checkpoint", digits_model, "--data", "digits", "--corruption", "contrast:5",
                       "--target-unlabeled", "digits", "--target-corruption", "contrast:5", "--json"], capsys)
    assert plain[0] == adapted[0] == 0
    assert json.loads(adapted[1])["accuracy"] != json.loads(plain[1])["accuracy"]


@pytest.mark.parametrize("args, message", [
    (["--adaptation", "coral"], "--adaptation needs unlabelled target data"),
    (["--target-unlabeled", "digits"], "no --adaptation method"),
    (["--adaptation-option", "weight=1"], "--adaptation-option needs --adaptation"),
    (["--target-corruption", "noise:1"], "--target-corruption needs --target-unlabeled"),
    (["--adaptation", "mmd"], "unknown adaptation 'mmd'"),
    (["--adaptation", "dann", "--target-unlabeled", "digits", "--adaptation-option", "schedule=fast"], "schedule"),
    (["--corruption", "fog:2"], "unknown corruption 'fog'"),
    (["--corruption", "blur:9"], "severity must be a whole number from 1 to 5"),
])
def test_misused_adaptation_options_exit_2(digits_model, tmp_path, capsys, args, message):
    code, _, err = run_cli(["finetune", "--from", digits_model, "--data", "digits", "--epochs", "1", "--quiet",
                            "--out", tmp_path / "run", *args], capsys)
    assert code == 2 and err.startswith("error:") and message in err, err


def test_another_input_shape_is_a_clear_error(digits_model, other_shape_npz, tmp_path, capsys):
    code, _, err = run_cli(["finetune", "--from", digits_model, "--data", "digits", "--epochs", "1", "--quiet",
                            "--target-unlabeled", other_shape_npz, "--adaptation", "coral", "--out", tmp_path], capsys)
    assert code == 2 and "has inputs of shape 1x12x12, but the model (and its source data) take 1x8x8" in err
    assert "--resize" in err
    code, _, err = run_cli(["shift", "--source", "digits", "--target", other_shape_npz, "--model", digits_model],
                           capsys)
    assert code == 2 and "expects inputs of shape 1x8x8" in err and "--resize" in err


def test_list_shows_the_new_families(capsys):
    for family, name in (("adaptations", "dann"), ("corruptions", "rotate"), ("shift-measures", "mmd")):
        code, out, _ = run_cli(["list", family], capsys)
        assert code == 0 and name in out
