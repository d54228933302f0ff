"""The main job, end to end through the CLI, on a real Fashion-MNIST subset so that it takes seconds."""

from __future__ import annotations

import json

import pytest

from cli_runner import run_cli


def test_demo_writes_its_table_and_measures_the_gain(fashion_subset_npz, tmp_path, capsys):
    code, out, err = run_cli(["demo", "--data", fashion_subset_npz, "--shots", "5", "--seeds", "2",
                              "--pretrain-epochs", "2", "--finetune-epochs", "5", "--out", str(tmp_path),
                              "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert [row["method"] for row in result["rows"]] == ["transfer: full fine-tuning", "transfer: frozen backbone",
                                                         "scratch (same budget)"]
    assert result["target_test_examples"] == 500
    rows = {row["method"]: row for row in result["rows"]}
    gain = 100 * (rows["transfer: full fine-tuning"]["accuracy_mean"] - rows["scratch (same budget)"]["accuracy_mean"])
    assert result["gain_points_mean"] == pytest.approx(gain)
    table = (tmp_path / "demo.md").read_text()
    assert "Transfer gain" in table and "scratch (same budget)" in table
    assert json.loads((tmp_path / "demo.json").read_text()) == result
    for arm in ("transfer-full", "transfer-freeze", "scratch"):
        for seed in (0, 1):
            assert (tmp_path / arm / f"seed{seed}" / "metrics.json").is_file()
    card = (tmp_path / "transfer-full" / "seed1" / "MODEL_CARD.md").read_text()  # the demo's gain, stated
    assert f"{result['gain_points_mean']:+.2f} ± {result['gain_points_std']:.2f} accuracy points for `full`" in card
    # each arm to its plateau (issue 14, item 6): the second figure, with the epochs and steps each arm took
    rule = result["plateau"]
    assert rule["monitor"] == "train_loss" and rule["max_epochs"] == 10  # 2x the 5-epoch budget
    assert [row["method"] for row in result["plateau_rows"]] == ["transfer: full fine-tuning", "scratch"]
    for row, folder in zip(result["plateau_rows"], ("plateau-full", "plateau-scratch")):
        assert len(row["epochs"]) == 2 and all(1 <= e <= 10 for e in row["epochs"])
        assert row["steps"] == [2 * e for e in row["epochs"]]  # 25 images at batch 16: 2 steps an epoch
        for seed, epochs in enumerate(row["epochs"]):
            log = (tmp_path / folder / f"seed{seed}" / "train_log.jsonl").read_text().splitlines()
            assert len(log) == epochs
    plateau = {row["method"]: row for row in result["plateau_rows"]}
    assert result["plateau_gain_points_mean"] == pytest.approx(
        100 * (plateau["transfer: full fine-tuning"]["accuracy_mean"] - plateau["scratch"]["accuracy_mean"]))
    assert "Each arm to its plateau" in table and "Transfer gain with each arm at its plateau" in table
    assert rule["rule"] in table


def test_cli_pretrain_finetune_evaluate_chain(fashion_subset_npz, tmp_path, capsys):
    source, target = tmp_path / "source", tmp_path / "target"
    code, _, err = run_cli(["pretrain", "--data", fashion_subset_npz, "--classes", "0-4", "--model", "mlp",
                            "--epochs", "2", "--out", str(source), "--quiet"], capsys)
    assert code == 0, err
    code, out, err = run_cli(["finetune", "--from", str(source), "--data", fashion_subset_npz, "--classes",
                              "Sandal,Shirt,Sneaker", "--shots", "10", "--epochs", "3", "--out", str(target),
                              "--json"], capsys)
    assert code == 0, err
    assert "new head" in err
    finetuned = json.loads(out)
    assert finetuned["class_names"] == ["Sandal", "Shirt", "Sneaker"]
    code, out, err = run_cli(["evaluate", "--checkpoint", str(target), "--data", fashion_subset_npz, "--classes",
                              "5-7", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["accuracy"] == pytest.approx(finetuned["accuracy"])
    code, out, _ = run_cli(["evaluate", "--checkpoint", str(target), "--data", fashion_subset_npz, "--classes", "5-7"],
                           capsys)
    assert code == 0 and "per class" in out and "Sneaker" in out and "confusion matrix" in out


def test_cli_lists_registries(capsys):
    code, out, _ = run_cli(["list", "strategies"], capsys)
    assert code == 0 and "full" in out and "freeze" in out
