"""``compare``: its statistics against scipy, and the whole report on a real Fashion-MNIST subset, through the API
and the CLI."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from scipy import stats

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig, WarmstartError
from warmstart.cli.command import COMMAND_OPTIONS, spread_values
from warmstart.compare import (CSV_COLUMNS, CompareCell, gain_flag, is_negative_transfer, negative_transfer_warning,
                               paired_gain, summarize, summarize_cells, CompareRun)

from cli_runner import run_cli


PNG = b"\x89PNG\r\n\x1a\n"
TINY_CNN = ModelConfig("cnn", {"widths": [8, 16]})
FAST = TrainConfig(epochs=3, batch_size=16, progress=False)


# --- pure statistics --------------------------------------------------------------------------------------------

def test_summarize_gives_the_student_t_interval():
    values = [0.71, 0.74, 0.69, 0.77, 0.72]
    mean, std, low, high = summarize(values)
    x = np.array(values)
    assert mean == pytest.approx(x.mean()) and std == pytest.approx(x.std(ddof=1))
    expected = stats.t.interval(0.95, df=len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert (low, high) == pytest.approx(expected)
    assert summarize(values, confidence=0.99)[2] < low  # a wider interval at 99%


def test_summarize_of_one_value_has_no_spread_and_no_interval():
    assert summarize([0.8]) == (0.8, 0.0, None, None)
    with pytest.raises(ValueError):
        summarize([])


def test_paired_gain_is_scipys_paired_t_test():
    transfer, scratch = [80.2, 78.9, 82.4, 79.5], [74.1, 76.0, 75.3, 77.8]
    mean, std, p = paired_gain(transfer, scratch)
    d = np.subtract(transfer, scratch)
    assert mean == pytest.approx(d.mean()) and std == pytest.approx(d.std(ddof=1))
    assert p == pytest.approx(stats.ttest_rel(transfer, scratch).pvalue)


def test_paired_gain_of_one_seed_has_no_p_value():
    assert paired_gain([0.9], [0.7]) == (pytest.approx(0.2), 0.0, None)


def test_paired_gain_with_identical_differences_does_not_return_nan():
    assert paired_gain([0.5, 0.6], [0.5, 0.6])[2] == 1.0  # no difference at all: no evidence of one
    assert paired_gain([0.7, 0.8], [0.5, 0.6])[2] == 0.0  # scipy's t = inf
    with pytest.raises(ValueError):
        paired_gain([1.0, 2.0], [1.0])


@pytest.mark.parametrize("mean, p, flag", [
    (3.0, 0.01, "gain (significant)"),
    (3.0, 0.30, "gain (not significant)"),
    (-3.0, 0.01, "negative transfer (significant)"),
    (-3.0, 0.30, "negative transfer (not significant)"),
    (0.0, 1.0, "no difference"),
    (2.0, None, "no p-value: needs 2+ seeds"),
    (-2.0, None, "negative transfer (no p-value: needs 2+ seeds)"),
])
def test_gain_flag(mean, p, flag):
    assert gain_flag(mean, p) == flag
    assert is_negative_transfer(mean) == (mean < 0)


def _runs(strategy, accuracies, shots=5):
    return [CompareRun(strategy, shots, seed, acc, acc, 1.0, 2.0, None) for seed, acc in enumerate(accuracies)]


def test_a_strategy_worse_than_scratch_on_every_seed_is_flagged_as_significant_negative_transfer():
    scratch, freeze = [0.70, 0.74, 0.72, 0.69], [0.61, 0.66, 0.62, 0.60]
    cells = summarize_cells(_runs("scratch", scratch) + _runs("freeze", freeze), ["freeze"], [5])
    base, cell = cells
    assert base.strategy == "scratch" and base.flag == "baseline" and base.p_value is None
    assert cell.negative_transfer and cell.significant and cell.flag == "negative transfer (significant)"
    assert cell.gain_points_mean == pytest.approx(100 * (np.mean(freeze) - np.mean(scratch)))
    assert cell.p_value == pytest.approx(stats.ttest_rel(freeze, scratch).pvalue)
    warning = negative_transfer_warning(cell)
    assert "freeze at 5 shots" in warning and "below scratch" in warning and "significant" in warning
    assert negative_transfer_warning(base) is None


def test_a_single_seed_cell_says_it_has_no_p_value():
    cells = summarize_cells(_runs("scratch", [0.7]) + _runs("full", [0.6]), ["full"], [5])
    cell = cells[1]
    assert cell.p_value is None and cell.significant is None and cell.accuracy_ci_low is None
    assert cell.negative_transfer and "one seed, so no p-value" in negative_transfer_warning(cell)


def test_argv_spreading_only_touches_compare():
    assert spread_values(["compare", "--shots", "5", "10", "--strategies", "full", "freeze", "--seeds", "2"],
                         COMMAND_OPTIONS) == \
        ["compare", "--shots", "5", "--shots", "10", "--strategies", "full", "--strategies", "freeze", "--seeds", "2"]
    assert spread_values(["finetune", "--shots", "5", "10"], COMMAND_OPTIONS) == ["finetune", "--shots", "5", "10"]


# --- the real thing ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def source(fashion_subset_npz, tmp_path_factory):
    """A tiny CNN pretrained for 2 epochs on classes 0-4 of the subset."""
    return warmstart.pretrain(DataConfig(fashion_subset_npz, classes="0-4"), model=TINY_CNN,
                              train=TrainConfig(epochs=2, batch_size=64, lr=2e-3, progress=False),
                              out=tmp_path_factory.mktemp("source"))


@pytest.fixture(scope="module")
def compared(source, fashion_subset_npz, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    result = warmstart.compare(source.run_dir, DataConfig(fashion_subset_npz, classes="5-9", shots=50),
                               strategies=("full", "freeze"), shots=(10, 5), seeds=2, train=FAST, out=out)
    return result, out


def test_compare_has_a_cell_for_every_arm_and_shot_count(compared):
    result, _ = compared
    assert result.shots == (5, 10) and result.seeds == (0, 1) and result.strategies == ("full", "freeze")
    assert [(c.strategy, c.shots) for c in result.cells] == [(s, k) for k in (5, 10)
                                                             for s in ("scratch", "full", "freeze")]
    assert len(result.runs) == 3 * 2 * 2
    assert result.scratch_model == {"arch": "cnn", "arch_args": source_arch_args(result)}
    for cell in result.cells:
        runs = [r for r in result.runs if r.strategy == cell.strategy and r.shots == cell.shots]
        assert cell.seeds == 2 and cell.accuracy_mean == pytest.approx(np.mean([r.accuracy for r in runs]))
        assert cell.accuracy_ci_low < cell.accuracy_mean < cell.accuracy_ci_high or cell.accuracy_std == 0
        if cell.strategy == "scratch":
            assert cell.gain_points_mean is None
            continue
        scratch = sorted((r for r in result.runs if r.strategy == "scratch" and r.shots == cell.shots),
                         key=lambda r: r.seed)
        gains = [100 * (r.accuracy - s.accuracy) for r, s in zip(sorted(runs, key=lambda r: r.seed), scratch)]
        assert cell.gain_points_mean == pytest.approx(np.mean(gains))
        assert cell.negative_transfer == (cell.gain_points_mean < 0)
        assert (negative_transfer_warning(cell) in result.warnings) == cell.negative_transfer


def source_arch_args(result):
    from warmstart.models import read_info

    return read_info(result.checkpoint)[1].arch_args


def test_every_arm_of_a_seed_trains_on_the_same_examples(compared):
    result, out = compared
    for seed in (0, 1):
        configs = [json.loads((out / "runs" / arm / "shots5" / f"seed{seed}" / "config.json").read_text())
                   for arm in ("scratch", "full", "freeze")]
        assert {c["train"]["seed"] for c in configs} == {seed}
        assert {c["data"]["shots"] for c in configs} == {5}
        assert {c["train"]["epochs"] for c in configs} == {FAST.epochs}  # the same budget
    assert configs[0]["parent"] is None and configs[1]["parent"]["checkpoint"] == result.checkpoint


def test_compare_writes_csv_json_markdown_and_plot(compared):
    result, out = compared
    with open(out / "compare.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert {"strategy", "shots", "accuracy_mean", "accuracy_ci_low", "gain_points_mean", "p_value",
            "negative_transfer", "flag", "train_time_s", "wall_time_s"} <= set(CSV_COLUMNS)
    assert len(rows) == len(result.cells) == 6
    assert float(rows[1]["accuracy_mean"]) == pytest.approx(result.cells[1].accuracy_mean)
    assert rows[0]["p_value"] == "" and rows[0]["flag"] == "baseline"
    saved = json.loads((out / "compare.json").read_text())
    assert saved == json.loads(json.dumps(result.to_dict()))
    assert len(saved["runs"]) == 12 and {"accuracy", "seed", "run_dir", "wall_time_s"} <= set(saved["runs"][0])
    table = (out / "compare.md").read_text()
    assert "| strategy | shots | accuracy | 95% CI |" in table and table.count("| freeze |") == 2
    assert all(w in table for w in result.warnings)
    assert (out / "compare.png").read_bytes()[:8] == PNG


def test_compare_fails_before_training_on_bad_arguments(source, fashion_subset_npz, tmp_path):
    data = DataConfig(fashion_subset_npz, classes="5-9")
    for kwargs, message in [({"strategies": ("full", "fulll")}, "unknown strategy 'fulll'"),
                            ({"seeds": 0}, "parameter seeds"), ({"shots": ()}, "parameter shots"),
                            ({"shots": (5, 400)}, "--shots 400"), ({"strategies": ("scratch",)}, "baseline")]:
        with pytest.raises(WarmstartError, match=message):
            warmstart.compare(source.run_dir, data, train=FAST, out=tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []



def test_cli_compare_end_to_end(source, fashion_subset_npz, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["compare", "--from", str(source.run_dir), "--data", fashion_subset_npz, "--classes", "5-9",
            "--strategies", "full,freeze", "--shots", "5", "8", "--seeds", "2", "--epochs", "2", "--out", str(out)]
    code, stdout, err = run_cli(args + ["--json"], capsys)
    assert code == 0, err
    result = json.loads(stdout)
    assert result["strategies"] == ["full", "freeze"] and result["shots"] == [5, 8] and len(result["runs"]) == 12
    assert result["train"]["epochs"] == 2
    assert all(math.isfinite(c["accuracy_mean"]) for c in result["cells"])
    assert err.count("new head") == 1  # each distinct note once, not once per run
    assert err.count("warning: negative transfer") == len(result["warnings"])
    for name in ("compare.csv", "compare.json", "compare.md", "compare.png"):
        assert (out / name).is_file()


def test_cli_compare_table_with_one_seed(source, fashion_subset_npz, tmp_path, capsys):
    code, stdout, err = run_cli(["compare", "--from", str(source.run_dir), "--data", fashion_subset_npz,
                                 "--classes", "5-9", "--strategies", "freeze", "--shots", "5", "--seeds", "1",
                                 "--epochs", "1", "--out", str(tmp_path), "--quiet"], capsys)
    assert code == 0, err
    assert "freeze" in stdout and "scratch" in stdout and "95% CI" in stdout and "no p-values" in stdout
    cell = json.loads((tmp_path / "compare.json").read_text())["cells"][1]
    assert cell["p_value"] is None and ("warning:" in stdout) == cell["negative_transfer"]


@pytest.mark.parametrize("extra, message", [
    (["--strategies", "full", "nope"], "unknown strategy 'nope'"),
    (["--seeds", "0"], "parameter seeds"),
    (["--shots", ","], "parameter shots"),
    (["--shots", "five"], "--shots: expected whole numbers"),
])
def test_cli_compare_user_errors_exit_2_before_training(source, fashion_subset_npz, tmp_path, capsys, extra, message):
    code, stdout, err = run_cli(["compare", "--from", str(source.run_dir), "--data", fashion_subset_npz,
                                 "--classes", "5-9", "--out", str(tmp_path / "out"), *extra], capsys)
    assert code == 2 and err.startswith("error:") and message in err and stdout == ""
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


def test_compare_is_exported():
    assert "compare" in warmstart.__all__ and warmstart.compare.__module__ == "warmstart.compare"
    assert isinstance(CompareCell.__dataclass_params__.frozen, bool) and CompareCell.__dataclass_params__.frozen
