"""The learning-rate range test: the smoothing and the suggestions on curves whose answer is known, then real range
tests on digits that fall and diverge, keep discriminative ratios, leave checkpoints alone, and run from the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import warmstart
from warmstart import DataConfig, TrainConfig
from warmstart.cli import main
from warmstart.engine import loop as loop_module
from warmstart.engine.lr_find import (check_range, divergence_step, exponential_lrs, lr_range_test,
                                      min_loss_lr_over_10, smooth_losses, steepest_descent_lr, suggestion_window)
from warmstart.errors import WarmstartError
from warmstart.models import create_model
from warmstart.strategies import create_strategy

FAST = TrainConfig(batch_size=32, progress=False, device="cpu")


# --- the pure part --------------------------------------------------------------------------------------------


def test_smoothing_is_fastais_bias_corrected_moving_average():
    losses = np.random.default_rng(0).uniform(1, 3, size=50)
    average, expected = 0.0, []
    for i, loss in enumerate(losses):
        average = 0.98 * average + 0.02 * loss
        expected.append(average / (1 - 0.98 ** (i + 1)))
    np.testing.assert_allclose(smooth_losses(losses), expected)
    assert smooth_losses(losses)[0] == pytest.approx(losses[0])  # bias-corrected: no drag towards zero
    np.testing.assert_allclose(smooth_losses([2.5] * 20), 2.5)


def test_rates_are_exponentially_spaced_from_start_to_end():
    lrs = exponential_lrs(1e-6, 1.0, 61)
    assert lrs[0] == pytest.approx(1e-6) and lrs[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(np.diff(np.log10(lrs)), 0.1)


def valley(lrs):
    """Flat, a steep drop centred on lr 1e-4, a floor, then a blow-up from lr 0.1 on."""
    x = np.log10(lrs)
    return 2 - np.tanh(2 * (x + 4)) + 3 * np.clip(x + 1, 0, None) ** 2


def test_the_steepest_descent_is_found_where_the_curve_falls_fastest():
    lrs = exponential_lrs(1e-7, 10, 200)
    assert np.log10(steepest_descent_lr(lrs, valley(lrs))) == pytest.approx(-4, abs=0.04)
    lowest = lrs[np.argmin(valley(lrs))]
    assert -2 < np.log10(lowest) <= -1  # the floor, before the blow-up
    assert min_loss_lr_over_10(lrs, valley(lrs)) == pytest.approx(lowest / 10)
    # on a smoothed, noisy version the steepest point moves right by the average's lag, not to the floor
    noisy = valley(lrs) + np.random.default_rng(1).normal(0, 0.05, len(lrs))
    window = suggestion_window(len(lrs))
    found = np.log10(steepest_descent_lr(lrs[window], smooth_losses(noisy)[window]))
    assert -4 < found < -2.5


def test_divergence_is_the_first_step_above_four_times_the_running_minimum():
    assert divergence_step([3.0, 2.0, 1.0, 1.5, 3.9, 4.0, 4.1, 9.0]) == 6  # 4.0 is not above 4 x 1.0
    assert divergence_step([3.0, 2.0, 1.0, 0.5, 1.9, 2.1]) == 5  # the minimum is the running one
    assert divergence_step([5.0, 1.2, 4.9, 1.0]) == 2  # 4.9 > 4 x 1.2
    assert divergence_step([3.0, 2.0, 1.0, 3.9]) is None


def test_the_suggestions_skip_the_first_tenth_and_the_last_five_points():
    assert suggestion_window(100) == slice(10, 95)
    assert range(8)[suggestion_window(8)] == range(0, 3)
    assert range(6)[suggestion_window(6)] == range(0, 6)  # too short to trim: all of it


@pytest.mark.parametrize("start_lr, end_lr, steps, parameter", [
    (0.0, 1.0, 100, "start_lr"), (-1e-3, 1.0, 100, "start_lr"), (1e-3, -1.0, 100, "end_lr"),
    (1.0, 1.0, 100, "end_lr"), (1.0, 1e-3, 100, "end_lr"), (1e-7, 10.0, 4, "steps"), (1e-7, 10.0, 10.5, "steps")])
def test_an_unusable_range_names_its_parameter(start_lr, end_lr, steps, parameter):
    with pytest.raises(WarmstartError, match=f"parameter {parameter}:"):
        check_range(start_lr, end_lr, steps)


# --- real range tests on digits -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch_result():
    return warmstart.lr_find(None, DataConfig("digits"), model="mlp", train=FAST, start_lr=1e-5, end_lr=10.0,
                             steps=60)


def test_a_real_loss_falls_then_diverges_and_the_test_stops(scratch_result):
    result = scratch_result
    smoothed = np.array(result.smoothed)
    assert smoothed.min() < 0.9 * smoothed[0]  # it learns at moderate rates
    assert result.stopped_early and result.steps_run < 60  # and blows up at the largest ones
    assert smoothed[-1] > 4 * smoothed.min()
    assert divergence_step(smoothed) == len(smoothed) - 1  # it stopped at the first step past 4x, not later
    assert any("stopped after" in note for note in result.notes)


def test_the_suggestion_lies_inside_the_range_on_exponential_rates(scratch_result):
    result = scratch_result
    assert result.start_lr < result.suggestion < result.end_lr
    assert result.suggestion == result.steepest_lr and result.suggested_by == "steepest"
    assert result.start_lr < result.min_loss_lr_over_10 < result.end_lr
    np.testing.assert_allclose(result.lrs, exponential_lrs(1e-5, 10.0, 60)[:result.steps_run])
    lowest = result.lrs[int(np.argmin(result.smoothed))]
    assert result.suggestion < lowest  # the loss still falls steeply before its minimum
    record = result.to_dict()
    assert record["candidates"] == {"steepest": result.steepest_lr, "min_loss_over_10": result.min_loss_lr_over_10}
    assert len(record["lrs"]) == len(record["losses"]) == len(record["smoothed"]) == result.steps_run


def digits_tensors():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32).view(-1, 1, 8, 8) / 16
    return x, torch.tensor(digits.target)


def test_every_group_keeps_its_lr_scale_ratio_at_every_step(monkeypatch):
    seen: list[list[tuple[str, float, float]]] = []

    def recording_optimizer(param_groups, config):
        optimizer = build_optimizer(param_groups, config)
        optimizer.register_step_pre_hook(lambda opt, args, kwargs: seen.append(
            [(g["name"], g["lr"], g["lr_scale"]) for g in opt.param_groups]))
        return optimizer

    build_optimizer = loop_module.build_optimizer  # the range test runs in the training loop, which builds it
    monkeypatch.setattr(loop_module, "build_optimizer", recording_optimizer)
    torch.manual_seed(0)
    model = create_model("mlp", (1, 8, 8), 10)
    result = lr_range_test(model, create_strategy("layerwise-lr", layer_decay=0.5), digits_tensors(), FAST,
                           torch.device("cpu"), torch.Generator().manual_seed(0), 1e-6, 1.0, 20)
    assert len(seen) == result.steps_run
    scales = {name: scale for name, _, scale in seen[0]}
    assert sorted(set(scales.values())) == [0.25, 0.5, 1.0]  # three layer groups: the head at the base rate
    for base_lr, groups in zip(result.lrs, seen):
        for name, lr, scale in groups:
            assert lr == pytest.approx(base_lr * scale), name


def test_the_model_given_is_left_as_it_was():
    torch.manual_seed(0)
    model = create_model("mlp", (1, 8, 8), 10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lr_range_test(model, create_strategy("full"), digits_tensors(), FAST, torch.device("cpu"),
                  torch.Generator().manual_seed(0), 1e-4, 1.0, 10)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters())


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A small MLP checkpoint trained on digits 0-4."""
    out = tmp_path_factory.mktemp("source")
    warmstart.pretrain(DataConfig("digits", classes="0-4"), model="mlp",
                       train=TrainConfig(epochs=2, batch_size=32, progress=False, device="cpu"), out=out)
    return out


def test_a_checkpoint_is_unchanged_by_a_range_test_from_it(source, tmp_path):
    files = sorted(p for p in source.rglob("*") if p.is_file())
    before = {p: p.read_bytes() for p in files}
    result = warmstart.lr_find(source, DataConfig("digits", classes="5-9"), strategy="layerwise-lr", train=FAST,
                               steps=30, out=tmp_path)
    assert sorted(p for p in source.rglob("*") if p.is_file()) == files
    assert all(p.read_bytes() == data for p, data in before.items())
    assert any("re-initialised" in note for note in result.notes)  # the same starting point as finetune
    written = json.loads((tmp_path / "lr_find.json").read_text())
    assert written["suggestion"] == result.suggestion and written["command"] == "lr-find"
    assert written["parent"]["checkpoint"] == str(source) and written["strategy"]["name"] == "layerwise-lr"


# --- the command line -----------------------------------------------------------------------------------------


def run_cli(argv: list[str], capsys) -> str:
    """Run the CLI expecting success; return its stdout."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    assert exit_info.value.code in (0, None), err
    return out


def test_cli_writes_json_and_plot(source, tmp_path, capsys):
    out = run_cli(["lr-find", "--from", str(source), "--data", "digits", "--classes", "5-9", "--steps", "30",
                   "--batch-size", "32", "--device", "cpu", "--out", str(tmp_path), "--json"], capsys)
    printed = json.loads(out)
    written = json.loads((tmp_path / "lr_find.json").read_text())
    assert printed["suggestion"] == written["suggestion"]
    assert 1e-7 < printed["suggestion"] < 10
    assert len(written["lrs"]) == printed["steps_run"] <= 30
    assert (tmp_path / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing half-written left behind


def test_cli_prints_the_suggestion_and_the_plot(tmp_path, capsys):
    out = run_cli(["lr-find", "--from", "none", "--model", "mlp", "--data", "digits", "--steps", "20",
                   "--device", "cpu", "--out", str(tmp_path)], capsys)
    assert "suggested learning rate:" in out and "steepest descent" in out and "other candidate:" in out
    assert f"plot: {tmp_path / 'lr_find.png'}" in out


@pytest.mark.parametrize("flags, parameter", [
    (["--start-lr", "0"], "start_lr"), (["--start-lr", "-1e-3"], "start_lr"),
    (["--start-lr", "1", "--end-lr", "0.1"], "end_lr"), (["--steps", "4"], "steps"),
    (["--steps", "1" * 30], "steps")])  # a huge --steps: numpy's "Maximum allowed size exceeded" traceback
def test_cli_bad_parameters_exit_2_before_any_work(flags, parameter, tmp_path, capsys):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["lr-find", "--from", str(tmp_path / "missing"), "--data", "digits", "--out", str(tmp_path / "out"),
              *flags])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.startswith(f"error: parameter {parameter}:"), err  # not the missing checkpoint: checked first
    assert not (tmp_path / "out").exists()
