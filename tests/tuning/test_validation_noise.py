"""The warning that a search's validation signal is too small to tune on: the criterion on both sides of its
threshold, and the warning printed once by `warmstart tune` and kept in tuning.json and report.html."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_runner import run_cli

from warmstart.tuning.validation_noise import SEARCH_GAIN, ValidationNoise, expected_maximum


def test_the_expected_maximum_of_normals_matches_a_simulation():
    draws = np.random.default_rng(0).standard_normal((200_000, 20))
    for trials in (2, 5, 20):
        assert expected_maximum(trials) == pytest.approx(draws[:, :trials].max(axis=1).mean(), abs=0.01)
    assert expected_maximum(2) == pytest.approx(1 / np.sqrt(np.pi))  # the closed form for two
    assert expected_maximum(1) == 0.0  # one trial: nothing is selected, nothing lifted


def test_a_huge_number_of_trials_gives_the_maximum_of_normals_not_a_broken_integral():
    """``--trials 10**20`` warned that noise lifts the best by "about 3559.552" (an accuracy!), and 10**12 printed
    scipy's IntegrationWarning: the density form of the integral broke down."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no IntegrationWarning
        huge = [expected_maximum(10**k) for k in (6, 9, 12, 20)]
    # the known values (Gumbel limit: between sqrt(2 ln T) minus its second-order term and sqrt(2 ln T))
    for k, value in zip((6, 9, 12, 20), huge):
        bound = np.sqrt(2 * np.log(10.0**k))
        assert bound - (np.log(np.log(10.0**k)) + np.log(4 * np.pi)) / (2 * bound) < value < bound
    assert huge == sorted(huge) and huge[0] == pytest.approx(4.8629, abs=1e-3)
    assert ValidationNoise(1, 10**20).selection_lift == 1.0  # an accuracy is lifted by at most 1


@pytest.mark.parametrize("examples, trials, warns", [
    (50, 20, True),     # 10 shots of 5 classes in folds: the benchmark where tuning lost to the default recipe
    (50, 8, True),
    (128, 20, True),    # SST-2 at 64 per class
    (384, 20, False),   # 64 shots of 6 classes
    (2000, 20, False),  # a validation split of 2,000
    (50, 1, False),     # one trial selects nothing
])
def test_a_small_validation_set_warns_and_a_larger_one_does_not(examples, trials, warns):
    noise = ValidationNoise(examples, trials)
    assert noise.standard_error == pytest.approx(0.5 / np.sqrt(examples))
    assert (noise.selection_lift > SEARCH_GAIN) == warns == (noise.warning is not None)
    if warns:
        assert f"{examples} examples" in noise.warning and f"best of {trials} trials" in noise.warning


def test_tune_prints_the_warning_once_and_records_it(tmp_path, capsys):
    pytest.importorskip("optuna")
    out = tmp_path / "run"
    # 5 shots of 10 digits: each trial is scored on 50 examples (3 folds); 3 trials lift the best by ~0.06
    code, _, err = run_cli(["tune", "--from", "none", "--model", "mlp", "--model-option", "hidden=[16]", "--data",
                            "digits", "--shots", "5", "--trials", "3", "--epochs", "1", "--pruner", "none", "--out",
                            out, "--json"], capsys)
    assert code == 0, err
    assert err.count("warning: tune: the validation signal is too small to tune on") == 1
    assert err.index("warning: tune: the validation signal") < err.index("tune: trial 0")  # before the search
    summary = json.loads((out / "tuning.json").read_text())
    assert summary["validation_noise"]["examples"] == 50 and summary["validation_noise"]["warning"]
    assert any("too small to tune on" in n for n in summary["notes"])
    assert "Warning: the validation signal is too small" in (out / "report.html").read_text()
