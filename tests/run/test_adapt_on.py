"""finetune --adapt-on (issue 17): the stage resumes from its own state and is never trained twice, and it combines
with --from auto, compare and lr-find."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig, api
from warmstart.config import AdaptConfig
from warmstart.engine import Callback, loop
from warmstart.errors import WarmstartError
from warmstart.models import load_checkpoint
from warmstart.run import self_supervised

from cli_runner import run_cli

CNN = ModelConfig("cnn", {"widths": [4, 8]})
STAGE = AdaptConfig("self", epochs=2, batch_size=32, lr=1e-3)
TRAIN = TrainConfig(epochs=2, batch_size=16, progress=False, trackers=())


@pytest.fixture(scope="module")
def target(fashion_subset_npz) -> DataConfig:
    return DataConfig(fashion_subset_npz, classes="5-9", shots=16, val_fraction=0.0)


def run(target, out, **settings):
    return api.finetune(None, target, model=CNN, strategy="full", adapt_on=STAGE, train=TRAIN, out=out, **settings)


@pytest.fixture(scope="module")
def whole(target, tmp_path_factory):
    """The uninterrupted run: the reference every resumed one must equal, bit for bit."""
    return run(target, tmp_path_factory.mktemp("whole") / "run")


def record_saves(monkeypatch, kill_at=None):
    """Every training state the loop saves, as (stage, epoch); ``kill_at`` (stage, epoch): the process dies just
    before that save, so the epoch before is the last on disk (once: the list is emptied)."""
    saved, real, kill = [], loop.save_training_state, [kill_at]

    def save(state_dir, *, epoch, **state):
        stage = state_dir.parent.name if state_dir.parent.name == "adapt" else "supervised"
        if (stage, epoch) in kill:
            kill.clear()
            raise KeyboardInterrupt
        real(state_dir, epoch=epoch, **state)
        saved.append((stage, epoch))

    monkeypatch.setattr(loop, "save_training_state", save)
    return saved


def same_weights(a, b) -> bool:
    a, b = a.model.state_dict(), b.model.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_killed_in_the_stage_resumes_the_stage_from_its_last_epoch(target, whole, tmp_path, monkeypatch):
    out = tmp_path / "run"
    saves = record_saves(monkeypatch, kill_at=("adapt", 2))
    with pytest.raises(KeyboardInterrupt):
        run(target, out)
    assert saves == [("adapt", 1)] and not (out / "state").exists()  # the supervised run never began
    with pytest.raises(WarmstartError, match="already holds a run"):  # a folder holding only the stage is a run
        run(target, out)
    with pytest.raises(WarmstartError, match="began with an --adapt-on stage"):
        api.finetune(None, target, model=CNN, strategy="full", train=TRAIN, out=out, resume=True)
    saves.clear()
    resumed = run(target, out, resume=True)
    assert saves == [("adapt", 2), ("supervised", 1), ("supervised", 2)]
    assert same_weights(resumed, whole)
    assert resumed.info.extra["self_supervised"] == whole.info.extra["self_supervised"]
    assert any("resumed from its saved state" in n for n in resumed.notes)
    assert not (out / "adapt").exists() and not (out / "state").exists()  # a finished run leaves nothing

    saves = record_saves(monkeypatch, kill_at=("adapt", 1))  # killed before the stage saved any epoch
    with pytest.raises(KeyboardInterrupt):
        run(target, tmp_path / "early")
    again = run(target, tmp_path / "early", resume=True)  # nothing to continue: the stage starts over
    assert saves == [("adapt", 1), ("adapt", 2), ("supervised", 1), ("supervised", 2)]
    assert same_weights(again, whole)


def test_a_run_killed_after_the_stage_never_trains_it_again(target, whole, tmp_path, monkeypatch):
    class Interrupt(Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 2:  # the supervised run's epoch 2, before its state is saved
                raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run(target, out, callbacks=(Interrupt(),))
    saves = record_saves(monkeypatch)
    resumed = run(target, out, resume=True)
    assert saves == [("supervised", 2)]  # no epoch of the stage ran again
    assert same_weights(resumed, whole)
    assert resumed.info.extra["self_supervised"] == whole.info.extra["self_supervised"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory, fashion_subset_npz) -> list[str]:
    """Two untrained CNN checkpoints of different widths (no training: ranking needs only their features)."""
    from warmstart.data import load_splits
    from warmstart.data.preprocess import Normalization
    from warmstart.models import CheckpointInfo, create_model, save_checkpoint

    folder = tmp_path_factory.mktemp("sources")
    splits = load_splits(DataConfig(fashion_subset_npz, classes="0-4"), 0)
    paths = []
    for widths in ([4, 8], [8, 16]):
        torch.manual_seed(0)
        model = create_model("cnn", splits.train.input_shape, 5, widths=widths)
        path = folder / f"cnn{widths[0]}"
        save_checkpoint(model, path / "model", CheckpointInfo(
            arch="cnn", arch_args=model.arch_args, input_shape=model.input_shape,
            class_names=splits.train.class_names, preprocessing=Normalization.fit(splits.train).to_dict(),
            kind="image"))
        paths.append(str(path))
    return paths


def test_from_auto_runs_the_stage_once_on_the_chosen_source_and_records_it(sources, fashion_subset_npz, tmp_path,
                                                                           capsys, monkeypatch):
    stages, real = [], self_supervised.adapt_before_finetuning

    def adapt(start, *args, **kwargs):
        stages.append(start.lineage["parent"]["checkpoint"])
        return real(start, *args, **kwargs)

    monkeypatch.setattr(self_supervised, "adapt_before_finetuning", adapt)
    out = tmp_path / "auto"
    code, _, err = run_cli(["finetune", "--from", "auto", "--candidates", *sources, "--data", fashion_subset_npz,
                            "--classes", "5-9", "--shots", "16", "--epochs", "1", "--adapt-on", "self",
                            "--adapt-epochs", "1", "--adapt-batch-size", "32", "--quiet", "--out", out], capsys)
    assert code == 0, err
    chosen = json.loads((out / "selection.json").read_text())["chosen"]
    assert stages == [chosen]  # once, after the choice, on the chosen source
    config = json.loads((out / "config.json").read_text())
    assert config["parent"]["checkpoint"] == chosen
    assert config["self_supervised"]["objective"]["name"] == "simclr" and config["self_supervised"]["steps"] == 3
    assert json.loads((out / "model" / "metadata.json").read_text())["self_supervised"]["data"] == "self"
    notes = config["notes"]
    assert notes[0].startswith("--from auto: ranked 2 candidates")
    assert sum("task-adaptive pretraining: simclr on 80 unlabelled image inputs" in n for n in notes) == 1


def test_compare_gives_the_stage_to_the_transfer_arms_and_says_so(sources, fashion_subset_npz, tmp_path, capsys):
    out = tmp_path / "compare"
    common = ["compare", "--from", sources[0], "--data", fashion_subset_npz, "--classes", "5-9", "--shots", "8",
              "--seeds", "1", "--no-plateau", "--epochs", "1", "--quiet", "--out", out]
    code, printed, err = run_cli([*common, "--adapt-on", "self", "--adapt-batch-size", "16"], capsys)
    assert code == 0, err
    assert "ran for the transfer arms only" in " ".join(printed.split())
    report = json.loads((out / "compare.json").read_text())
    steps = {run["strategy"]: run["adapt_steps"] for run in report["runs"]}
    assert steps == {"scratch": 0, "full": 3}  # 40 images at batch 16: 3 steps, for the transfer arm only
    assert report["adapt_on"]["data"] == "self" and report["adapt_scratch"] is False
    assert "self_supervised" not in json.loads((out / "runs/scratch/shots8/seed0/config.json").read_text())
    markdown = (out / "compare.md").read_text()
    assert "(simclr objective, 1 epoch(s) at batch size 16)" in markdown  # auto's choice, named
    assert "ran for the transfer arms only" in markdown
    assert "full at 8 shots 3" in markdown
    code, _, err = run_cli([*common, "--adapt-scratch"], capsys)
    assert code == 2 and "--adapt-scratch gives scratch the --adapt-on stage, and there is none" in err

    asked = warmstart.compare(sources[0], DataConfig(fashion_subset_npz, classes="5-9"), shots=(8,), seeds=1,
                              plateau=False, train=replace(TRAIN, epochs=1), adapt_scratch=True,
                              adapt_on=replace(STAGE, epochs=1, batch_size=16))
    assert {run.strategy: run.adapt_steps for run in asked.runs} == {"scratch": 3, "full": 3}


def test_lr_find_starts_from_the_adapted_model(fashion_subset_npz, tmp_path):
    data = DataConfig(fashion_subset_npz, classes="5-9", shots=16)
    result = api.lr_find(None, data, model=CNN, train=TRAIN, steps=5, out=tmp_path,
                         adapt_on=replace(STAGE, epochs=1))
    stage = json.loads((tmp_path / "lr_find.json").read_text())["self_supervised"]
    assert (stage["objective"]["name"], stage["data"], stage["steps"]) == ("simclr", "self", 3)
    assert any("task-adaptive pretraining" in n and n.endswith("then the range test") for n in result.notes)
    plain = api.lr_find(None, data, model=CNN, train=TRAIN, steps=5)
    assert plain.losses[0] != result.losses[0]  # the same model and seed, but the stage changed its weights


# Everything fixed at the run's values but the rate, one choice: every trial is the run's own recipe, so the winner
# must be exactly what finetune --adapt-on trains.
FIXED_SPACE = """\
lr: {choices: [0.002]}
weight_decay: null
epochs: null
warmup_epochs: null
label_smoothing: null
augment: null
"""


def test_tune_runs_the_stage_once_and_its_winner_is_finetune_with_the_stage(target, tmp_path, capsys, monkeypatch):
    pytest.importorskip("optuna")
    stages, real = [], self_supervised.adapt_before_finetuning

    def adapt(start, *args, **kwargs):
        stages.append(1)
        return real(start, *args, **kwargs)

    monkeypatch.setattr(self_supervised, "adapt_before_finetuning", adapt)
    space = tmp_path / "space.yaml"
    space.write_text(FIXED_SPACE)
    train = replace(TRAIN, lr=0.002)
    out = tmp_path / "tune"
    tuned = api.tune(None, target, model=CNN, strategy="full", train=train, out=out, trials=2, space=space,
                     adapt_on=STAGE)
    assert stages == [1]  # once, before the search: not per trial (2 trials of 3 folds), not for the winner
    summary = json.loads((out / "tuning.json").read_text())
    assert summary["compute"]["adapt_steps"] == 6 and summary["adapt_on"]["stage"]["steps"] == 6  # 80 images / 32
    assert tuned.run.info.extra["self_supervised"]["objective"]["name"] == "simclr"
    assert any("run once before the search" in n for n in tuned.run.notes)

    reference = api.finetune(None, target, model=CNN, strategy="full", adapt_on=STAGE, train=train,
                             out=tmp_path / "finetune")
    assert same_weights(tuned.run, reference)  # the trials' and the winner's starting point is the stage's
    plain = api.finetune(None, target, model=CNN, strategy="full", train=train, out=tmp_path / "plain")
    assert not same_weights(tuned.run, plain)

    stages.clear()  # --resume reuses the finished stage
    more = api.tune(None, target, model=CNN, strategy="full", train=train, out=out, trials=3, space=space,
                    adapt_on=STAGE, resume=True)
    assert stages == [] and len(more.trials) == 3 and same_weights(more.run, reference)
    with pytest.raises(WarmstartError, match="adapt_on"):  # the study remembers the stage it started from
        api.tune(None, target, model=CNN, strategy="full", train=train, out=out, trials=4, space=space,
                 adapt_on=replace(STAGE, epochs=1), resume=True)

    # best_config.yaml replays the stage and the winner: the same weights from finetune --config
    assert "adapt_on: self" in (out / "best_config.yaml").read_text()
    code, _, err = run_cli(["finetune", "--config", out / "best_config.yaml", "--quiet", "--out", tmp_path / "replay"],
                           capsys)
    assert code == 0, err
    replayed_model, _ = load_checkpoint(tmp_path / "replay")
    assert all(torch.equal(a, b) for a, b in zip(replayed_model.state_dict().values(),
                                                 reference.model.state_dict().values()))


def test_a_searchs_trials_keep_their_starting_notes_without_logging_them_again(caplog):
    from warmstart.run.starting_point import note, notes_unlogged

    notes: list[str] = []
    with caplog.at_level("INFO", logger="warmstart"):
        note(notes, "announced once")
        with notes_unlogged():
            note(notes, "a trial's repeat")
        note(notes, "logged again")
    assert notes == ["announced once", "a trial's repeat", "logged again"]
    assert [r.getMessage() for r in caplog.records] == ["announced once", "logged again"]


def test_tune_refuses_a_stage_that_cannot_run_before_its_study_exists(tmp_path):
    pytest.importorskip("optuna")
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    np.savez(tmp_path / "vectors.npz", x=x, y=(x[:, 0] > 0).astype(np.int64), x_test=x[:10],
             y_test=(x[:10, 0] > 0).astype(np.int64))
    out = tmp_path / "tune"
    with pytest.raises(WarmstartError, match="--adapt-on: no self-supervised objective for a mlp model of vector"):
        api.tune(None, str(tmp_path / "vectors.npz"), model="mlp", train=TRAIN, out=out, trials=2,
                 adapt_on=STAGE)
    assert not (out / "study.journal").exists()  # nothing to --resume or --overwrite: the same --out runs again


@pytest.mark.parametrize("call", ["finetune", "lr_find", "tune", "compare"])
def test_every_api_function_names_a_bad_adapt_on(call, tmp_path):
    function, arguments = {"finetune": (api.finetune, {}), "lr_find": (api.lr_find, {}),
                           "tune": (api.tune, dict(out=tmp_path / "t")),
                           "compare": (warmstart.compare, dict(shots=(4,), seeds=1))}[call]
    with pytest.raises(WarmstartError, match="parameter adapt_on: expected None, a dataset .* got 123"):
        function(None, "digits", model="mlp", adapt_on=123, **arguments)


def test_a_stage_on_the_target_s_own_labelled_file_never_reads_its_test_rows(tmp_path, caplog):
    import logging

    import numpy as np
    from sklearn.datasets import load_digits

    from warmstart.run.distillation import unlabeled_config

    digits = load_digits()
    path = tmp_path / "d.npz"  # no test split of its own: --test-fraction holds one out
    np.savez(path, x=(digits.images[:200] * 15).astype(np.uint8), y=digits.target[:200])
    target = DataConfig(str(path), test_fraction=0.5, shots=5, val_fraction=0.0, classes="0-9")
    with caplog.at_level(logging.INFO, logger="warmstart"):
        result = api.finetune(None, target, model=CNN, strategy="full", train=replace(TRAIN, epochs=1),
                              adapt_on=AdaptConfig(str(path), epochs=1, batch_size=32), out=tmp_path / "run")
    assert result.metrics.num_examples == 100  # the test rows: half of the file
    # the stage read the other half (it read the default 20% hold-out's complement, 160, overlapping the test rows)
    assert "the 100 inputs of its training split are used" in caplog.text
    # and the run's notes say that --classes chose the labelled rows, not the stage's (it said nothing)
    assert any("--classes 0-9 selects the labelled rows the run trains on, not these" in n for n in result.notes)
    # distill --unlabeled reads a file with the --data file's hold-out alike
    assert unlabeled_config(str(path), target).test_fraction == 0.5


def test_a_stage_objective_for_another_kind_of_data_names_finetune_s_flag(tmp_path, capsys):
    code, _, err = run_cli(["finetune", "--from", "none", "--model", "mlp", "--data", "digits", "--shots", "5",
                            "--adapt-on", "self", "--adapt-objective", "simcse", "--out", str(tmp_path / "r")],
                           capsys)
    assert code == 2 and "--adapt-objective simcse trains on text data" in err
    assert "use --adapt-objective simclr for image data" in err and "--objective" not in err.replace(
        "--adapt-objective", "")


def test_a_stage_on_texts_for_an_image_model_is_refused_before_any_folder_is_written(tmp_path, capsys):
    """It failed inside the stage with 'could not convert string to float', and the stage's folder it left made
    the same command refuse to run again."""
    (tmp_path / "texts.txt").write_text("".join(f"question number {i} ?\n" for i in range(20)))
    code, _, err = run_cli(["finetune", "--from", "none", "--model", "mlp", "--data", "digits", "--shots", "5",
                            "--adapt-on", tmp_path / "texts.txt", "--adapt-objective", "simcse", "--out",
                            tmp_path / "r"], capsys)
    assert code == 2 and "holds text inputs, and the model (mlp) reads image inputs" in err, err
    assert not (tmp_path / "r" / "adapt").exists()


def test_tune_s_winner_with_a_text_stage_replays_bit_for_bit(tmp_path):
    """The stage trained in finetune drew dropout masks from the global random state, and tune's winner loaded the
    stage's weights without drawing: with dropout (a BERT) finetune --config best_config.yaml gave another model."""
    from tiny_models import tiny_bert_source

    pytest.importorskip("optuna")
    weather = ["rain falls", "cold wind", "snow storm", "sunny sky", "heavy rain", "warm sun", "grey clouds", "a storm"]
    food = ["fresh bread", "hot soup", "sweet cake", "ripe apple", "green salad", "warm bread", "cheese pie", "rice"]
    (tmp_path / "t.csv").write_text("text,label\n" + "\n".join([f"{t},weather" for t in weather]
                                                             + [f"{t},food" for t in food]) + "\n")
    data = DataConfig(str(tmp_path / "t.csv"), test_fraction=0.25, val_fraction=0.25, max_length=8)
    train = TrainConfig(epochs=1, batch_size=8, lr=1e-3, progress=False, trackers=())
    stage = AdaptConfig("self", epochs=1, batch_size=8, lr=1e-3)
    space = tmp_path / "space.yaml"
    space.write_text("lr: {choices: [0.001]}\nweight_decay: null\nepochs: null\nwarmup_epochs: null\n"
                     "label_smoothing: null\n")
    source = "hf:" + tiny_bert_source()
    tuned = api.tune(source, data, train=train, out=tmp_path / "tune", trials=1, space=space, adapt_on=stage)
    reference = api.finetune(source, data, train=train, adapt_on=stage, out=tmp_path / "finetune")
    assert same_weights(tuned.run, reference)


def test_a_resumed_search_refuses_adapt_on_data_that_changed(tmp_path):
    """The stage's file rewritten between runs: the resume reused the old stage, its lineage still counting the old
    inputs, while a replay would train on the new ones. A changed --data is refused the same way."""
    pytest.importorskip("optuna")
    import numpy as np

    data = DataConfig("digits", classes="0-2", shots=10, val_fraction=0.0)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "unlabelled.npz", x=rng.integers(0, 16, (40, 8, 8)).astype(np.uint8))
    stage = AdaptConfig(str(tmp_path / "unlabelled.npz"), epochs=1, batch_size=16, lr=1e-3)
    space = tmp_path / "space.yaml"
    space.write_text(FIXED_SPACE)
    train = TrainConfig(epochs=1, batch_size=16, lr=0.002, progress=False, trackers=())
    model = ModelConfig("cnn", {"widths": [4, 8]})
    api.tune(None, data, model=model, train=train, out=tmp_path / "tune", trials=1, space=space, adapt_on=stage)
    np.savez(tmp_path / "unlabelled.npz", x=rng.integers(0, 16, (5, 8, 8)).astype(np.uint8))
    with pytest.raises(WarmstartError, match="the --adapt-on data changed .its fingerprint differs."):
        api.tune(None, data, model=model, train=train, out=tmp_path / "tune", trials=2, space=space, adapt_on=stage,
                 resume=True)
