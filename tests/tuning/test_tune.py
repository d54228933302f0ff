"""warmstart tune: the search prunes, resumes, never reads the test split, replays, soups, and says what is wrong
with a bad space. A tiny MLP on sklearn's digits (an .npz whose test split we control), 3-epoch trials."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_runner import run_cli
from sklearn.datasets import load_digits

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig
from warmstart.errors import WarmstartError
from warmstart.search_space import SearchParam, fixed
from warmstart.strategies import create_strategy

pytest.importorskip("optuna")

MLP = ModelConfig("mlp", {"hidden": [32]})
TRAIN = TrainConfig.for_command("tune", batch_size=64, epochs=3, lr=0.01, progress=False, trackers=())
# lr is the only real choice: a good rate and one at which nothing is learnt, so that the median pruner has a bad
# curve to stop; the rest is fixed (or left at the run's value) to keep the trials short.
SPACE = """\
lr: {choices: [0.01, 1.0e-7]}
epochs: 3
weight_decay: null
warmup_epochs: null
label_smoothing: null
augment: null
head_lr_scale: null
"""
SPACE_PARAMS = (SearchParam("lr", choices=(0.01, 1e-7)), fixed("epochs", 3))


def digits_npz(path: Path, *, scramble_test: bool = False) -> str:
    digits = load_digits()
    x, y = (digits.images * 15).astype(np.uint8), digits.target
    x_test, y_test = x[1400:], y[1400:]
    if scramble_test:  # a test split unrelated to the training data: the search must not see any difference
        rng = np.random.default_rng(1)
        x_test, y_test = rng.integers(0, 255, x_test.shape, dtype=np.uint8), rng.permutation(y_test)
    np.savez(path, x=x[:1400], y=y[:1400], x_test=x_test, y_test=y_test,
             class_names=np.array([str(c) for c in range(10)]))
    return str(path)


@pytest.fixture(scope="module")
def space_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("space") / "space.yaml"
    path.write_text(SPACE)
    return path


@pytest.fixture(scope="module")
def study(tmp_path_factory, space_file):
    folder = tmp_path_factory.mktemp("tune")
    data = digits_npz(folder / "digits.npz")
    result = warmstart.tune(None, data, model=MLP, train=TRAIN, out=folder / "run", trials=4, space=space_file)
    return folder, data, result


def test_the_median_pruner_stops_a_bad_trial_in_the_loop(study):
    import optuna

    from warmstart.tuning.objective import Objective
    from warmstart.tuning.study import make_pruner

    _, data, _ = study
    objective = Objective(None, warmstart.DataConfig(data), create_strategy("full"), MLP, TRAIN, SPACE_PARAMS,
                          folds=3)
    search = optuna.create_study(direction="maximize", pruner=make_pruner("median"))
    for lr in (0.01, 0.01, 1e-7):  # two good curves, then one that learns nothing
        search.enqueue_trial({"lr": lr})
    search.optimize(objective, n_trials=3)
    assert [t.state.name for t in search.trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert search.trials[2].user_attrs["epochs_run"] == 2  # stopped after epoch 2 of 3: compute saved


def test_the_search_starts_from_the_recipe_and_trains_the_winner(study):
    folder, _, result = study
    assert len(result.trials) == 4 and result.trials[0]["params"] == {"lr": 0.01, "epochs": 3}
    assert result.best_params["lr"] == 0.01 and result.best_value > 0.8
    assert result.run.metrics.accuracy > 0.8  # the winner, trained again with the best settings, scored once
    run = folder / "run"
    for name in ("study.journal", "trials.csv", "trials.json", "best_config.yaml", "tuning.json", "report.html",
                 "best/model/model.safetensors", "best/report.html"):
        assert (run / name).exists(), name
    page = (run / "report.html").read_text()
    assert "Optimisation history" in page and "Parallel coordinates" in page
    # 140 validation examples (the tenth held out) scored per trial, 4 trials: noise lifts the best by ~0.044, under
    # the 0.05 a search is for, so no warning (test_validation_noise.py has the small side)
    noise = json.loads((run / "tuning.json").read_text())["validation_noise"]
    assert noise["examples"] == 140 and noise["warning"] is None and "Warning:" not in page


def test_best_config_replays_with_finetune_config(study):
    from warmstart.cli.app import app  # noqa: F401  (registers the commands)
    from warmstart.cli.command import COMMAND_OPTIONS
    from warmstart.cli.config_file import option_values

    folder, data, result = study
    values = option_values(folder / "run" / "best_config.yaml", "finetune", COMMAND_OPTIONS["finetune"])
    assert values["data"] == data and values["checkpoint"] == "none" and values["lr"] == result.best_params["lr"]
    assert values["epochs"] == 3 and values["model"] == "mlp"


def test_the_test_split_never_reaches_the_objective(study, tmp_path):
    import optuna

    from warmstart.tuning.objective import Objective

    _, data, result = study
    scrambled = digits_npz(tmp_path / "scrambled.npz", scramble_test=True)
    values = []
    for source in (data, scrambled):
        objective = Objective(None, warmstart.DataConfig(source), create_strategy("full"), MLP, TRAIN, SPACE_PARAMS,
                              folds=3)
        search = optuna.create_study(direction="maximize")
        for trial in result.trials[:2]:
            search.enqueue_trial(trial["params"])
        search.optimize(objective, n_trials=2)
        values.append([t.value for t in search.trials])
    # the same values, to the last digit, on data whose test split is noise
    assert values[0] == values[1] == [t["value"] for t in result.trials[:2]]


def test_resume_continues_the_same_study_and_a_soup_averages_its_trials(study, space_file, tmp_path):
    folder, data, result = study
    resumed = warmstart.tune(None, data, model=MLP, train=TRAIN, out=folder / "run", trials=6, space=space_file,
                             resume=True)
    assert len(resumed.trials) == 6
    assert [t["value"] for t in resumed.trials[:4]] == [t["value"] for t in result.trials]  # the same study, grown
    # a soup needs every trial's weights, which a study made without --average soup never saved: refused on resume
    with pytest.raises(WarmstartError, match="settings differ: average: 'none' then, 'soup' now"):
        warmstart.tune(None, data, model=MLP, train=TRAIN, out=folder / "run", trials=7, space=space_file,
                       resume=True, average="soup")
    warmstart.tune(None, data, model=MLP, train=TRAIN, out=tmp_path / "soup", trials=4, space=space_file,
                   average="soup")
    config = json.loads((tmp_path / "soup" / "best" / "config.json").read_text())
    # the replay is the winner alone, and says so; an MLP has no BatchNorm to recompute, and no note claims it
    assert "the replay trains the winner alone" in (tmp_path / "soup" / "best_config.yaml").read_text()
    assert not any("BatchNorm" in n for n in config["notes"])
    soup = config["averaging"]
    assert soup["method"] == "soup" and soup["tried"][0] == "the winner (retrained)"
    # kept only when validation does not drop: the soup never scores below the best single model
    assert soup["accuracy"] >= soup["validation"][0]["accuracy"]
    assert soup["fell_back"] == (len(soup["ingredients"]) == 1)


def test_resume_fails_a_trial_left_running_by_a_killed_process(study, space_file, tmp_path):
    import optuna

    from warmstart.tuning.objective import suggest
    from warmstart.tuning.study import STUDY_NAME, _storage

    folder, data, _ = study
    run = tmp_path / "run"
    shutil.copytree(folder / "run", run)
    search = optuna.load_study(study_name=STUDY_NAME, storage=_storage(run))
    finished = len(search.trials)
    search.enqueue_trial({"lr": 0.01, "epochs": 3})  # settings that train well: the retry completes
    killed = search.ask()  # a worker took a trial, suggested its settings, and was killed before telling the study
    params = suggest(killed, SPACE_PARAMS, {})
    resumed = warmstart.tune(None, data, model=MLP, train=TRAIN, out=run, trials=finished + 1, space=space_file,
                             resume=True)
    rows = {r["number"]: r for r in resumed.trials}
    assert rows[killed.number]["state"] == "fail" and "interrupted" in rows[killed.number]["note"]
    retry = rows[killed.number + 1]  # its settings queued again, and run: the budget never counted the killed one
    assert retry["state"] == "complete" and retry["params"] == params
    assert retry["note"] == f"a retry of trial {killed.number}" and len(rows) == finished + 2
    summary = json.loads((run / "tuning.json").read_text())["trials"]
    assert summary["running"] == 0 and summary["fail"] == 1 and summary["interrupted"] == [killed.number]
    assert f"{killed.number},fail," in (run / "trials.csv").read_text()


def test_ctrl_c_says_how_to_resume_the_search_and_the_resume_trains_the_interrupted_trial_again(
        space_file, tmp_path, monkeypatch, caplog):
    """Ctrl-C in a trial said "run the command again to start over" (refused: the folder holds a search), and under
    --overwrite that "the earlier run stays as it was" (it was deleted); the trial became a plain failure, whose
    settings --resume never tried again."""
    from warmstart.tuning import objective as module

    data = digits_npz(tmp_path / "d.npz")
    warmstart.tune(None, data, model=MLP, train=TRAIN, out=tmp_path / "run", trials=1, space=space_file)
    real, calls = module.train_trial, []

    def interrupted_in_its_second_trial(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "train_trial", interrupted_in_its_second_trial)
    with caplog.at_level("WARNING", logger="warmstart"), pytest.raises(KeyboardInterrupt):
        warmstart.tune(None, data, model=MLP, train=TRAIN, out=tmp_path / "run", trials=3, space=space_file,
                       overwrite=True)
    assert "start over" not in caplog.text and "stays as it was" not in caplog.text
    assert f"the study in {tmp_path / 'run'} keeps its 1 finished trial(s) (--overwrite deleted the earlier search" \
        in caplog.text and "run the same command with --resume to continue it" in caplog.text
    monkeypatch.setattr(module, "train_trial", real)
    resumed = warmstart.tune(None, data, model=MLP, train=TRAIN, out=tmp_path / "run", trials=3, space=space_file,
                             resume=True)
    rows = {r["number"]: r for r in resumed.trials}
    assert rows[1]["state"] == "fail" and rows[1]["note"].startswith("interrupted")
    assert rows[2]["note"] == "a retry of trial 1" and rows[2]["params"] == rows[1]["params"]
    assert sum(r["state"] in ("complete", "pruned") for r in rows.values()) == 3


def test_resume_after_a_kill_cut_the_journal_mid_record(study, space_file, tmp_path, caplog):
    """SIGKILL mid-write leaves a last line without its end: Optuna skips it on reading, but the resume appended
    after it, joining both into a line of broken JSON, and every later --resume failed with a JSONDecodeError."""
    folder, data, _ = study
    run = tmp_path / "run"
    shutil.copytree(folder / "run", run)
    journal = run / "study.journal"
    journal.write_bytes(journal.read_bytes()[:-37])
    finished = len(json.loads((run / "trials.json").read_text())["trials"])
    with caplog.at_level("WARNING", logger="warmstart"):
        warmstart.tune(None, data, model=MLP, train=TRAIN, out=run, trials=finished + 1, space=space_file,
                       resume=True)
    assert "was cut off" in caplog.text and journal.read_bytes().endswith(b"\n")
    again = warmstart.tune(None, data, model=MLP, train=TRAIN, out=run, trials=finished + 2, space=space_file,
                           resume=True)  # the journal reads whole again
    assert sum(r["state"] in ("complete", "pruned") for r in again.trials) >= finished + 1
    for damaged in (b"", b"junk\n"):  # an emptied or overwritten journal: Optuna's KeyError, a JSON error
        journal.write_bytes(damaged)
        with pytest.raises(WarmstartError, match="study.journal cannot be read as an Optuna journal"):
            warmstart.tune(None, data, model=MLP, train=TRAIN, out=run, trials=finished + 3, space=space_file,
                           resume=True)


def test_resume_with_other_settings_is_refused(study, space_file, tmp_path):
    from dataclasses import replace

    folder, data, _ = study
    with pytest.raises(WarmstartError, match="settings differ.*pruner"):
        warmstart.tune(None, data, model=MLP, train=TRAIN, out=folder / "run", trials=6, space=space_file,
                       resume=True, pruner="halving")
    # --folds is no setting of a search scored on a validation split: another value was refused
    shutil.copytree(folder / "run", tmp_path / "run")  # (another test may have grown the shared study: count them)
    trials = len((tmp_path / "run" / "trials.csv").read_text().strip().splitlines()) - 1
    resumed = warmstart.tune(None, data, model=MLP, train=TRAIN, out=tmp_path / "run", trials=trials,
                             space=space_file, resume=True, folds=4)
    assert len(resumed.trials) == trials
    # named key by key: the two whole 27-key sections were printed for one changed field
    with pytest.raises(WarmstartError, match=r"its settings differ: train.weight_decay: 0.0001 then, 0.5 now\n"):
        warmstart.tune(None, data, model=MLP, train=replace(TRAIN, weight_decay=0.5), out=folder / "run", trials=6,
                       space=space_file, resume=True)


def test_a_time_limit_that_passes_before_any_trial_says_so(tmp_path):
    # "finished no trial (1 started: waiting)": the queued recipe trial, which never began
    with pytest.raises(WarmstartError, match=r"began no trial: its --time-limit of 1e-09 s had passed") as error:
        warmstart.tune(None, vectors(tmp_path), model=MLP, train=TRAIN, out=tmp_path / "run", trials=2,
                       time_limit=1e-9)
    assert error.value.hint == "raise --time-limit"


def vectors(folder: Path) -> str:
    digits = load_digits()
    np.savez(folder / "v.npz", x=digits.data.astype(np.float32), y=digits.target)
    return str(folder / "v.npz")


@pytest.mark.parametrize("text, message", [
    ("lr: {low: 0.1, high: 0.01, log: true}\n", "key 'lr'.*low <= high"),
    ("learning_rate: {low: 0.001, high: 0.1}\n", "key 'learning_rate'.*not a training setting"),
    ("augment: {choices: [none, blurry]}\n", "key 'augment'.*'blurry' is refused"),
    ("epochs: [2, 4]\n", "key 'epochs'.*ambiguous"),
    # a name that cannot be searched is named as such, not told to write its list as choices first
    ("trackers: [none]\n", "key 'trackers': not a training setting"),
    # values of the wrong type: bare TypeErrors from inside the checks before
    ("epochs: abc\n", "key 'epochs'.*epochs"),
    ("augment: {choices: [[none, light]]}\n", "key 'augment'"),
    ("schedule: {choices: [cosine, {a: 1}]}\n", "key 'schedule'"),
    # image-only settings asked of vector data: dropped without a word, or failing inside the first trial, before
    ("augment: {choices: [none, light]}\n", "key 'augment'.*applies to image data, and this data is vector"),
    ("mix: {choices: [none, mixup]}\n", "key 'mix'.*applies to image data, and this data is vector"),
    # warm-up is kept below a trial's epochs: a range above them was cut in every trial, the table saying otherwise
    ("warmup_epochs: {low: 3, high: 5, int: true}\nepochs: 3\n",
     "key 'warmup_epochs': its lowest value 3 is not below the most epochs a trial trains .3."),
])
def test_a_bad_space_file_is_a_clear_error_naming_the_key(tmp_path, text, message):
    space = tmp_path / "space.yaml"
    space.write_text(text)
    with pytest.raises(WarmstartError, match=message) as error:
        warmstart.tune(None, "digits" if "vector" not in message else vectors(tmp_path), model=MLP, train=TRAIN,
                       out=tmp_path / "run", trials=2, space=space)
    assert str(space) in error.value.message and error.value.hint
    assert not (tmp_path / "run").exists()  # no study, and no empty folder left behind


def test_an_early_error_leaves_no_out_folder_behind(tmp_path, capsys):
    # the data is read after --out is checked: a missing file used to leave an empty --out (and its parents) behind
    code, _, err = run_cli(["tune", "--from", "none", "--model", "mlp", "--data", tmp_path / "nope.npz",
                            "--out", tmp_path / "runs" / "search", "--trials", "2"], capsys)
    assert code == 2 and "nope.npz" in err and "no such file" in err
    assert not (tmp_path / "runs").exists()


def test_resume_on_changed_data_is_refused(space_file, tmp_path):
    # the same path, other rows: a winner picked across trials scored on two datasets would be meaningless
    data = digits_npz(tmp_path / "d.npz")
    warmstart.tune(None, data, model=MLP, train=TRAIN, out=tmp_path / "run", trials=1, space=space_file)
    digits_npz(tmp_path / "d.npz", scramble_test=True)
    with pytest.raises(WarmstartError, match="settings differ: the data changed .its fingerprint differs."):
        warmstart.tune(None, data, model=MLP, train=TRAIN, out=tmp_path / "run", trials=2, space=space_file,
                       resume=True)


def test_a_study_on_a_relative_data_path_resumes_from_another_directory(space_file, tmp_path, monkeypatch):
    # the path was compared as typed: from elsewhere, no spelling of the same file could resume the study
    digits_npz(tmp_path / "d.npz")
    monkeypatch.chdir(tmp_path)
    warmstart.tune(None, "d.npz", model=MLP, train=TRAIN, out=tmp_path / "run", trials=1, space=space_file)
    monkeypatch.chdir(tmp_path / "run")
    resumed = warmstart.tune(None, str(tmp_path / "d.npz"), model=MLP, train=TRAIN, out=tmp_path / "run", trials=2,
                             space=space_file, resume=True)
    assert len(resumed.trials) == 2
    shutil.copy(tmp_path / "d.npz", tmp_path / "copy.npz")  # the same rows in another file: another setting
    with pytest.raises(WarmstartError, match=r"data.source: 'd.npz' \(.*/d.npz\) then, '.*copy.npz' now"):
        warmstart.tune(None, str(tmp_path / "copy.npz"), model=MLP, train=TRAIN, out=tmp_path / "run", trials=3,
                       space=space_file, resume=True)


def test_a_refused_overwrite_leaves_the_old_search_as_it_was(study, tmp_path, monkeypatch):
    folder, data, _ = study
    shutil.copytree(folder / "run", tmp_path / "run")
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "run").rglob("*"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 0\n")
    with pytest.raises(WarmstartError, match="key 'epochs'"):
        warmstart.tune(None, data, model=MLP, train=TRAIN, out=tmp_path / "run", trials=2, space=bad,
                       overwrite=True)
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "run").rglob("*")) == before
    # and --overwrite never empties the working directory (or a folder that holds it)
    (tmp_path / "run" / "precious.txt").write_text("mine")
    monkeypatch.chdir(tmp_path / "run")
    with pytest.raises(WarmstartError, match="is the working directory .or holds it."):
        warmstart.tune(None, data, model=MLP, train=TRAIN, out=".", trials=2, overwrite=True)
    assert (tmp_path / "run" / "precious.txt").read_text() == "mine"


def test_the_trial_table_reports_the_warm_up_a_trial_trained(tmp_path):
    """A suggested warm-up at or above a trial's epochs is cut below them: trials.csv, tuning.json and the summary
    reported the suggested value (4 where 1 trained) while best_config.yaml replayed the cut one."""
    space = tmp_path / "space.yaml"
    space.write_text("lr: {choices: [0.01]}\nepochs: 2\nwarmup_epochs: {choices: [1, 2, 3]}\nweight_decay: null\n"
                     "label_smoothing: null\nhead_lr_scale: null\n")
    result = warmstart.tune(None, vectors(tmp_path), model=MLP, train=TRAIN, out=tmp_path / "run", trials=3,
                            space=space)
    cut = [r for r in result.trials if "suggested" in r.get("note", "")]
    assert cut, [r["params"] for r in result.trials]  # the seed's suggestions hold a 2 or a 3 (26 in 27 seeds do)
    assert all(r["params"]["warmup_epochs"] == 1 for r in result.trials)  # what every trial trained
    assert all("trained (warm-up is kept below the trial's epochs)" in r["note"] for r in cut)
    table = (tmp_path / "run" / "trials.csv").read_text().splitlines()
    column = table[0].split(",").index("warmup_epochs")
    assert {line.split(",")[column] for line in table[1:]} == {"1"}
    best = yaml.safe_load((tmp_path / "run" / "best_config.yaml").read_text())
    assert best["warmup_epochs"] == result.best_params["warmup_epochs"] == 1


def test_folds_the_data_cannot_cut_are_refused_before_the_search_begins(tmp_path):
    # refused inside the first trial before: the folder kept a study with a failed trial, and the corrected command
    # was refused as "already holds a search"
    with pytest.raises(WarmstartError, match="folds=3: .*the smallest class has 2"):
        warmstart.tune(None, DataConfig(vectors(tmp_path), shots=2), model=MLP, train=TRAIN, out=tmp_path / "run",
                       trials=2, folds=3)
    assert not (tmp_path / "run").exists()


def test_tune_json_holds_what_the_search_chose(space_file, tmp_path, capsys):
    # --json printed only the winner's test metrics: a script could not learn the settings chosen
    code, out, err = run_cli(["tune", "--from", "none", "--model", "mlp", "--model-option", "hidden=[32]", "--data",
                              vectors(tmp_path), "--out", tmp_path / "run", "--trials", "2", "--space", space_file,
                              "--batch-size", "64", "--lr", "0.01", "--tracker", "none", "--quiet", "--json"], capsys)
    assert code == 0, err
    printed = json.loads(out)
    assert 0 <= printed["accuracy"] <= 1 and printed["num_examples"] > 0  # finetune --json's metrics, as they were
    chosen = printed["tune"]
    written = json.loads((tmp_path / "run" / "tuning.json").read_text())
    assert chosen["best_params"] == written["best"]["params"] and chosen["best_value"] == written["best"]["value"]
    assert sum(chosen["trials"].values()) == 2 and chosen["folder"] == str(tmp_path / "run")
    assert chosen["winner_run"] == str(tmp_path / "run" / "best")


def test_early_stopping_without_a_validation_split_is_refused_before_the_search(tmp_path):
    # every trial ran (on folds), then the winner's training was refused: the search was wasted, no best/ left
    from dataclasses import replace

    data = DataConfig(vectors(tmp_path), shots=20)
    with pytest.raises(WarmstartError, match="early stopping needs a validation split, and this search holds none"):
        warmstart.tune(None, data, model=MLP, train=replace(TRAIN, early_stopping=2), out=tmp_path / "run",
                       trials=2)
    space = tmp_path / "space.yaml"
    space.write_text("early_stopping: {low: 1, high: 3, int: true}\n")
    with pytest.raises(WarmstartError, match="early stopping needs a validation split"):
        warmstart.tune(None, data, model=MLP, train=TRAIN, out=tmp_path / "run", trials=2, space=space)
    assert not (tmp_path / "run").exists()


def test_a_setting_the_training_refuses_leaves_no_search_behind(tmp_path):
    """--augment on vector data (or LoRA on a CNN, fp16 without CUDA) is refused by the training itself, inside
    the first trial: the new study stayed, and the corrected command was refused as "already holds a search"."""
    from dataclasses import replace

    with pytest.raises(WarmstartError, match="augmentation applies to images"):
        warmstart.tune(None, vectors(tmp_path), model=MLP, train=replace(TRAIN, augment="light"),
                       out=tmp_path / "run", trials=2)
    assert not (tmp_path / "run").exists()
    warmstart.tune(None, vectors(tmp_path), model=MLP, train=TRAIN, out=tmp_path / "run", trials=1)  # corrected


def test_a_search_folder_given_as_a_checkpoint_points_to_its_best(study):
    # "no such file" of a folder that exists: predict, export, evaluate, --from and --teacher all said so
    folder, data, _ = study
    with pytest.raises(WarmstartError, match="a `warmstart tune` folder, whose model is in its best/ folder") as error:
        warmstart.evaluate(folder / "run", data)
    assert error.value.hint == f"pass {folder / 'run' / 'best'}"


def test_the_noise_warning_counts_only_the_examples_the_folds_score(tmp_path):
    """Examples written from the class names train every fold and are never scored: counted, they made the
    warning understate the noise (10 examples where 6 were scored)."""
    from tiny_models import tiny_bert_source

    rows = [f"rain {i},weather" for i in range(6)] + [f"bread {i},food" for i in range(6)]
    (tmp_path / "t.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    data = DataConfig(str(tmp_path / "t.csv"), shots=3, class_name_examples=2, max_length=8)
    train = TrainConfig.for_command("tune", batch_size=8, epochs=1, progress=False, trackers=())
    space = tmp_path / "space.yaml"
    space.write_text("lr: {choices: [0.001]}\nweight_decay: null\nepochs: null\nwarmup_epochs: null\n"
                     "label_smoothing: null\nhead_lr_scale: null\n")
    warmstart.tune("hf:" + tiny_bert_source(), data, train=train, out=tmp_path / "run", trials=1, folds=3,
                   space=space)
    assert json.loads((tmp_path / "run" / "tuning.json").read_text())["validation_noise"]["examples"] == 6


def test_best_config_names_local_sources_by_absolute_paths(tmp_path, monkeypatch):
    """best_config.yaml kept `from:` and `data:` as typed: replayed from another directory, `finetune --config`
    looked for them there (the run's own config.json already records its parent absolute)."""
    from warmstart.cli.app import app  # noqa: F401  (registers the commands)
    from warmstart.cli.command import COMMAND_OPTIONS
    from warmstart.cli.config_file import option_values

    monkeypatch.chdir(tmp_path)
    vectors(tmp_path)
    warmstart.pretrain("v.npz", model=MLP, train=TRAIN, out="source")
    warmstart.tune("source", "v.npz", train=TRAIN, out="run", trials=1)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    values = option_values(tmp_path / "run" / "best_config.yaml", "finetune", COMMAND_OPTIONS["finetune"])
    assert values["data"] == str(tmp_path / "v.npz") and values["checkpoint"] == str(tmp_path / "source")
    assert yaml.safe_load((tmp_path / "run" / "best_config.yaml").read_text())["from"] == str(tmp_path / "source")


def test_a_strategy_option_the_strategy_never_reads_gets_a_note(tmp_path):
    """--strategy-option C=2 under linear-probe's loop solver (C is the L-BFGS head's) was accepted without a word;
    a --space searching it is refused (test_search_space), and a run given it now says it is not read."""
    data = vectors(tmp_path)
    warmstart.pretrain(data, model=MLP, train=TRAIN, out=tmp_path / "source")
    run = warmstart.finetune(tmp_path / "source", data, strategy=create_strategy("linear-probe", C=2.0), train=TRAIN)
    assert any(n.startswith("--strategy-option C=2.0 set, and not read: C is the L-BFGS head's") for n in run.notes)
    plain = warmstart.finetune(tmp_path / "source", data, strategy="linear-probe", train=TRAIN)
    assert not any("not read" in n for n in plain.notes)
