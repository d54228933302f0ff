"""``compare``: its statistics against scipy, and the whole report on a real Fashion-MNIST subset, through the API
and the CLI."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path
from dataclasses import fields

import numpy as np
import pytest
from scipy import stats

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig, WarmstartError
from warmstart.cli.command import COMMAND_OPTIONS, spread_values
from warmstart.compare import CompareCell, CompareRun, negative_transfer_warning, summarize_cells

from cli_runner import run_cli


PNG = b"\x89PNG\r\n\x1a\n"
TINY_CNN = ModelConfig("cnn", {"widths": [8, 16]})
FAST = TrainConfig(epochs=3, batch_size=16, progress=False)


# --- cells from runs (the statistics themselves: tests/evaluation/test_stats.py) ---------------------------------

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
                               strategies=("full", "freeze"), shots=(10, 5), seeds=2, train=FAST, out=out,
                               plateau=False)
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
    assert tuple(rows[0]) == ("budget", *(f.name for f in fields(CompareCell)))
    assert {"strategy", "shots", "accuracy_mean", "accuracy_ci_low", "gain_points_mean", "p_value",
            "negative_transfer", "flag", "epochs_mean", "steps_mean", "train_time_s", "wall_time_s"} <= set(rows[0])
    assert {r["budget"] for r in rows} == {"equal"}  # plateau=False: no plateau cells
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
            "--strategies", "full,freeze", "--shots", "5", "8", "--seeds", "2", "--epochs", "2", "--no-plateau", "--out", str(out)]
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



def test_compare_without_epochs_says_what_each_cell_trained(source, fashion_subset_npz, tmp_path, capsys):
    # without --epochs the budget follows the training set's size: compare.md says so and gives each cell's epochs
    # and steps (it used to print "None epochs")
    code, _, err = run_cli(["compare", "--from", str(source.run_dir), "--data", fashion_subset_npz, "--classes",
                            "5-9", "--strategies", "freeze", "--shots", "2", "--seeds", "1", "--no-plateau",
                            "--out", str(tmp_path), "--quiet"], capsys)
    assert code == 0, err
    text = (tmp_path / "compare.md").read_text()
    assert "None epochs" not in text and "epochs set by the training set's size" in text
    assert "| epochs | steps |" in text.split("## Equal budget")[1]
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


# --- only the starting point differs ----------------------------------------------------------------------------

def _run_config(run):
    return json.loads((Path(run.run_dir) / "config.json").read_text())


def test_strategy_options_and_every_training_option_reach_the_arms(source, fashion_subset_npz, tmp_path):
    train = TrainConfig(epochs=1, batch_size=16, progress=False, augment="light", precision="bf16",
                        label_smoothing=0.1, trackers=())
    result = warmstart.compare(source.run_dir, DataConfig(fashion_subset_npz, classes="5-9"), strategies=("full",),
                               shots=(5,), seeds=1, train=train, out=tmp_path, plateau=False,
                               strategy_options={"full": {"head_lr_scale": 10.0}})
    assert result.strategy_options == {"full": {"head_lr_scale": 10.0}}
    scratch, full = (_run_config(r) for r in result.runs)
    for config in (scratch, full):  # both arms train with every setting given
        assert {k: config["train"][k] for k in ("augment", "precision", "label_smoothing", "epochs")} == \
            {"augment": "light", "precision": "bf16", "label_smoothing": 0.1, "epochs": 1}
    assert full["strategy"]["head_lr_scale"] == 10.0 and scratch["strategy"]["head_lr_scale"] == 1.0
    assert "head_lr_scale=10.0" in (tmp_path / "compare.md").read_text()


def test_options_for_a_strategy_not_compared_are_a_clear_error(source, fashion_subset_npz, tmp_path):
    data = DataConfig(fashion_subset_npz, classes="5-9")
    with pytest.raises(WarmstartError, match="'freeze', which is not among the strategies compared") as info:
        warmstart.compare(source.run_dir, data, strategies=("full",), strategy_options={"freeze": {}}, train=FAST,
                          out=tmp_path)
    assert "--strategies" in info.value.hint
    with pytest.raises(WarmstartError, match="has no option nope"):
        warmstart.compare(source.run_dir, data, strategy_options={"full": {"nope": 1}}, train=FAST, out=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_resized_compare_trains_scratch_at_the_checkpoints_input_size(fashion_subset_npz, tmp_path):
    """Regression (issue 14, item 2): with resize, scratch trained at the data's 28x28 and transfer at the
    checkpoint's 8x8; now scratch takes the checkpoint's input pipeline, and the report states the size."""
    from warmstart.models import read_info

    digits = warmstart.pretrain(DataConfig("digits", classes="0-4"), model=TINY_CNN, out=tmp_path / "digits",
                                train=TrainConfig(epochs=1, batch_size=64, progress=False, trackers=()))
    result = warmstart.compare(digits.run_dir, DataConfig(fashion_subset_npz, classes="5-9", resize=True),
                               shots=(5,), seeds=1, train=TrainConfig(epochs=1, batch_size=16, progress=False),
                               out=tmp_path / "compare", plateau=False)
    assert result.input_shape == (1, 8, 8)
    source_info = read_info(digits.run_dir)[1]
    for run in result.runs:
        info = read_info(run.run_dir)[1]
        assert info.input_shape == (1, 8, 8)
        assert info.preprocessing == source_info.preprocessing  # the same normalisation as the transferred model
    assert "inputs of shape 1x8x8" in (tmp_path / "compare" / "compare.md").read_text()


def test_each_arm_to_its_plateau_reports_both_gains_and_the_steps_taken(source, fashion_subset_npz, tmp_path):
    result = warmstart.compare(source.run_dir, DataConfig(fashion_subset_npz, classes="5-9"), strategies=("full",),
                               shots=(5,), seeds=2, train=TrainConfig(epochs=2, batch_size=16, progress=False),
                               out=tmp_path)
    rule = result.plateau
    assert rule["monitor"] == "train_loss" and rule["max_epochs"] == 8  # few shots: no validation split
    assert [(c.strategy, c.shots) for c in result.plateau_cells] == [("scratch", 5), ("full", 5)]
    assert len(result.plateau_runs) == 4
    for run in result.plateau_runs:
        config = _run_config(run)["train"]
        assert config["epochs"] == 8 and config["early_stopping"] == rule["patience"]
        assert config["early_stopping_monitor"] == "train_loss"
        assert 1 <= run.epochs <= 8 and run.steps == run.epochs * 2  # 25 examples at batch 16: 2 steps an epoch
    for run in result.runs:  # the equal budget is untouched
        assert run.epochs == 2 and _run_config(run)["train"]["early_stopping"] is None
    full = result.plateau_cells[1]
    assert full.gain_points_mean == pytest.approx(np.mean([
        100 * (t.accuracy - s.accuracy) for t, s in zip(result.plateau_runs[1::2], result.plateau_runs[0::2])]))
    table = (tmp_path / "compare.md").read_text()
    assert "## Equal budget" in table and "## Each arm to its plateau" in table and rule["rule"] in table
    with open(tmp_path / "compare.csv", newline="") as f:
        assert [r["budget"] for r in csv.DictReader(f)] == ["equal", "equal", "plateau", "plateau"]
    assert "Each arm to its plateau" in (tmp_path / "report.html").read_text()


def test_training_loss_early_stopping_needs_no_validation_split():
    config = TrainConfig(early_stopping=3, early_stopping_monitor="train_loss", early_stopping_min_delta=1e-3)
    assert config.early_stopping_monitor == "train_loss"
    with pytest.raises(WarmstartError, match="early_stopping_monitor"):
        TrainConfig(early_stopping_monitor="accuracy")
    with pytest.raises(WarmstartError, match="early_stopping_min_delta"):
        TrainConfig(early_stopping_min_delta=-1)


def test_a_folder_holding_a_comparison_or_a_run_is_refused_unless_overwrite(source, compared, fashion_subset_npz,
                                                                            tmp_path, capsys):
    _, out = compared
    data = DataConfig(fashion_subset_npz, classes="5-9")
    small = dict(strategies=("full",), shots=(5,), seeds=1, train=TrainConfig(epochs=1, batch_size=16,
                                                                             progress=False), plateau=False)
    # into a training run's folder: it used to mix compare's files into the run's and keep the run's report
    with pytest.raises(WarmstartError, match="already holds a comparison or a run"):
        warmstart.compare(source.run_dir, data, out=source.run_dir, **small)
    assert not (source.run_dir / "compare.json").exists()
    # a smaller comparison over a larger one: replaced whole with --overwrite (no stale shots10/ or freeze/ left)
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    code, _, err = run_cli(["compare", "--from", str(source.run_dir), "--data", fashion_subset_npz, "--classes",
                            "5-9", "--strategies", "full", "--shots", "5", "--seeds", "1", "--epochs", "1",
                            "--no-plateau", "--out", str(copy), "--quiet"], capsys)
    assert code == 2 and "already holds a comparison or a run" in err and "--overwrite" in err
    # the data kept in the comparison's folder: --overwrite emptied the folder, the data with it
    shutil.copy(fashion_subset_npz, copy / "data.npz")
    with pytest.raises(WarmstartError, match="holds '.*data.npz', which this run reads"):
        warmstart.compare(source.run_dir, DataConfig(str(copy / "data.npz"), classes="5-9"), out=copy,
                          overwrite=True, **small)
    assert (copy / "data.npz").is_file() and (copy / "compare.json").is_file()
    (copy / "data.npz").unlink()
    warmstart.compare(source.run_dir, data, out=copy, overwrite=True, **small)
    assert sorted(p.name for p in (copy / "runs").iterdir()) == ["full", "scratch"]
    assert [p.name for p in (copy / "runs" / "full").iterdir()] == ["shots5"]


def test_an_arm_refused_by_its_training_leaves_no_runs_behind(source, fashion_subset_npz, tmp_path):
    """LoRA on a CNN is refused by its first run, after scratch had trained: runs/ stayed, and the corrected
    command was refused as "already holds a comparison or a run"."""
    data = DataConfig(fashion_subset_npz, classes="5-9")
    small = dict(shots=(5,), seeds=1, train=TrainConfig(epochs=1, batch_size=16, progress=False), plateau=False)
    with pytest.raises(WarmstartError, match="lora"):
        warmstart.compare(source.run_dir, data, strategies=("lora",), out=tmp_path / "cmp", **small)
    assert not (tmp_path / "cmp" / "runs").exists()
    warmstart.compare(source.run_dir, data, strategies=("full",), out=tmp_path / "cmp", **small)  # corrected


def test_an_interrupted_comparison_says_how_to_start_over(source, fashion_subset_npz, tmp_path, monkeypatch, caplog):
    # Ctrl-C said nothing, and the rerun was refused ("already holds a comparison") with no word of why
    import importlib

    module = importlib.import_module("warmstart.compare")
    real, calls = module._train_arm, []

    def interrupted_in_the_second_run(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "_train_arm", interrupted_in_the_second_run)
    data = DataConfig(fashion_subset_npz, classes="5-9")
    with caplog.at_level("WARNING", logger="warmstart"), pytest.raises(KeyboardInterrupt):
        warmstart.compare(source.run_dir, data, shots=(5,), seeds=1, plateau=False, out=tmp_path / "cmp",
                          train=TrainConfig(epochs=1, batch_size=16, progress=False))
    assert (f"compare: interrupted after 1 finished run(s), kept in {tmp_path / 'cmp'} but not summarised" in
            caplog.text and "run the command again with --overwrite to start over" in caplog.text)


def test_a_long_comparison_says_how_long_the_rest_should_take_once_the_first_seed_is_done(caplog, monkeypatch):
    """``--seeds 100000`` of short runs started with no word of the days ahead: each run announces only its own."""
    import importlib

    module = importlib.import_module("warmstart.compare")  # the module: the package exports the function by its name

    assert module.remaining_time_note(6.0, 3, 30, growing=False) is None  # 54 s left: short, said nothing
    assert module.remaining_time_note(6.0, 3, 300_003, growing=False) == (
        "compare: 300003 runs in all; the first 3 took 6.0 s, so the other 300000 should take about 6.9 days; "
        "fewer --seeds or --shots train for less")
    assert "the first 3 took 0.5 s, so the other 3000 should take about 8 minutes" in \
        module.remaining_time_note(0.5, 3, 3003, growing=False)
    assert "about 40.0 hours" in module.remaining_time_note(0.48, 3, 900_003, growing=False)
    assert "at least about 10 minutes (the larger shot counts train longer)" in \
        module.remaining_time_note(6.0, 3, 303, growing=True)
    clock = iter([0.0, 40.0])  # created at 0 s; the first round of 2 runs done at 40 s
    monkeypatch.setattr(module.time, "perf_counter", lambda: next(clock))
    with caplog.at_level("WARNING", logger="warmstart"):
        progress = module._Progress(20, 2, enabled=False)
        progress.advance()
        assert "compare:" not in caplog.text
        progress.advance()  # the estimate, once: 18 runs at 20 s each
        progress.advance()
    assert caplog.text.count("compare: 20 runs in all") == 1 and "should take about 6 minutes" in caplog.text
