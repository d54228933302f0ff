"""Trackers, for real: TensorBoard's event files read back with tensorboard's EventAccumulator, and the MLflow run
read back through MLflow's own client."""

from __future__ import annotations

import json

import pytest

import warmstart
from warmstart import DataConfig, TrainConfig
from warmstart.cli import main
from warmstart.errors import WarmstartError
from warmstart.tracking import epoch_scalars, flatten, parse_trackers

DATA = DataConfig("digits", classes="0-4", val_fraction=0.2)


def read_tensorboard(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_events_are_written_by_default_and_hold_the_logged_scalars(tmp_path):
    result = warmstart.pretrain(DATA, model="mlp", train=TrainConfig(epochs=3, progress=False), out=tmp_path / "run")
    scalars = read_tensorboard(tmp_path / "run" / "tensorboard")
    assert {"train/loss", "train/accuracy", "val/loss", "val/accuracy", "lr", "test/accuracy"} <= set(scalars)
    assert [step for step, _ in scalars["train/loss"]] == [1, 2, 3]
    for step, value in scalars["val/accuracy"]:
        assert value == pytest.approx(result.history[step - 1]["val_accuracy"], abs=1e-6)
    assert scalars["test/accuracy"][-1][1] == pytest.approx(result.metrics.accuracy, abs=1e-6)


def test_mlflow_run_is_read_back_through_mlflows_client(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = warmstart.pretrain(DATA, model="mlp", train=TrainConfig(epochs=3, progress=False,
                                                                      trackers=("mlflow",)), out=tmp_path / "run")
    assert not (tmp_path / "run" / "tensorboard").exists()
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'run' / 'mlflow' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("warmstart").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["train.epochs"] == "3" and run.data.params["model.arch"] == "mlp"
    assert run.data.metrics["test/accuracy"] == pytest.approx(result.metrics.accuracy)
    assert run.data.metrics["test/macro_f1"] == pytest.approx(result.metrics.macro_f1)
    history = client.get_metric_history(run.info.run_id, "val/accuracy")
    assert [(m.step, round(m.value, 6)) for m in sorted(history, key=lambda m: m.step)] == \
        [(e["epoch"], round(e["val_accuracy"], 6)) for e in result.history]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "MODEL_CARD.md"} <= artifacts


def test_tracker_option_takes_lists_and_none(tmp_path, capsys):
    assert parse_trackers(None) == ("tensorboard",)
    assert parse_trackers(["tensorboard,mlflow", "mlflow"]) == ("tensorboard", "mlflow")
    assert parse_trackers(["none"]) == ()
    with pytest.raises(WarmstartError, match="unknown tracker 'wandb'"):
        parse_trackers(["wandb"])
    with pytest.raises(WarmstartError, match="'none' turns tracking off"):
        parse_trackers(["none", "mlflow"])
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "--data", "digits", "--classes", "0-2", "--model", "mlp", "--epochs", "1", "--quiet",
              "--tracker", "none", "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 0
    assert not (tmp_path / "run" / "tensorboard").exists()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["trackers"] == []
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "--data", "digits", "--model", "mlp", "--epochs", "1", "--quiet", "--tracker", "wandb",
              "--out", str(tmp_path / "bad")])
    assert exit_info.value.code == 2 and "unknown tracker 'wandb'" in capsys.readouterr().err


def test_epoch_logs_become_grouped_scalars_and_configs_flat_parameters():
    logs = {"epoch": 2, "train_loss": 0.5, "val_accuracy": 0.75, "lr": 1e-3, "trainable": "head", "phase": "x",
            "epoch_time_s": 0.1, "steps_per_epoch": 4}
    assert epoch_scalars(logs) == {"train/loss": 0.5, "val/accuracy": 0.75, "lr": 1e-3, "epoch_time_s": 0.1}
    assert flatten({"train": {"lr": 0.1, "trackers": []}, "parent": None}) == \
        {"train.lr": "0.1", "train.trackers": "[]", "parent": "None"}


def test_mlflow_follows_the_tracking_uri_and_marks_a_failed_run(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from warmstart.engine import Callback

    class FailsInEpoch2(Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 2:
                raise RuntimeError("stop here")

    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "failing")
    with pytest.raises(RuntimeError, match="stop here"):
        warmstart.pretrain(DATA, model="mlp", out=tmp_path / "run", callbacks=(FailsInEpoch2(),),
                           train=TrainConfig(epochs=4, progress=False, trackers=("tensorboard", "mlflow")))
    assert not (tmp_path / "run" / "mlflow").exists()  # the run went to the tracking URI's store
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("failing").experiment_id])
    assert run.info.status == "FAILED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [1]
    # the failing callback runs before the trackers: in epoch 2 neither logged, so both hold epoch 1 only
    assert [step for step, _ in read_tensorboard(tmp_path / "run" / "tensorboard")["train/loss"]] == [1]
