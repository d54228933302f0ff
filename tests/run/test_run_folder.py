"""The run folder's rules (issue 14, items 3, 10 and 11): an existing run is never lost or mixed with another,
evaluate never writes a training run's files and says which rows it scored, resume refuses changed data, and
data of one class is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig, WarmstartError

QUICK = TrainConfig(epochs=2, batch_size=16, progress=False)


def _blobs(path, *, seed=0, classes=3, per_class=30, test=False):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((classes, 6)) * 3

    def draw(n):
        x = np.concatenate([c + rng.standard_normal((n, 6)) for c in centres]).astype(np.float32)
        return x, np.repeat(np.arange(classes), n)

    x, y = draw(per_class)
    arrays = {"x": x, "y": y}
    if test:
        arrays["x_test"], arrays["y_test"] = draw(10)
    np.savez(path, **arrays)
    return str(path)


@pytest.fixture
def blobs(tmp_path):
    return _blobs(tmp_path / "blobs.npz")


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class Fail(warmstart.engine.Callback):
    def on_epoch_end(self, epoch, logs):
        raise RuntimeError("killed")


class Interrupt(warmstart.engine.Callback):
    def on_epoch_end(self, epoch, logs):
        if epoch == 2:  # epoch 1's state is on disk by now
            raise KeyboardInterrupt


def test_training_into_a_finished_run_is_refused(blobs, tmp_path):
    warmstart.pretrain(blobs, model="mlp", train=QUICK, out=tmp_path / "run")
    before = _files(tmp_path / "run")
    with pytest.raises(WarmstartError, match="already holds a run") as error:
        warmstart.pretrain(blobs, model="mlp", train=QUICK, out=tmp_path / "run")
    assert "--overwrite" in error.value.hint
    assert _files(tmp_path / "run") == before  # the train log is still there, and everything else


def test_a_failed_overwrite_leaves_the_previous_run_as_it_was(blobs, tmp_path):
    warmstart.pretrain(blobs, model="mlp", train=QUICK, out=tmp_path / "run")
    before = _files(tmp_path / "run")
    with pytest.raises(RuntimeError, match="killed"):
        warmstart.pretrain(blobs, model="mlp", train=QUICK, out=tmp_path / "run", overwrite=True,
                           callbacks=(Fail(),))
    assert _files(tmp_path / "run") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blobs.npz", "run"]  # no partial folder left


def test_an_overwrite_replaces_the_whole_folder(blobs, tmp_path):
    first = warmstart.pretrain(blobs, model="mlp", train=QUICK, out=tmp_path / "run")
    (tmp_path / "run" / "events.from-the-old-run").write_text("old")
    second = warmstart.pretrain(blobs, model="mlp", train=TrainConfig(epochs=3, batch_size=16, progress=False),
                                out=tmp_path / "run", overwrite=True)
    assert not (tmp_path / "run" / "events.from-the-old-run").exists()
    assert second.run_dir == first.run_dir and second.checkpoint == tmp_path / "run" / "model" / "model.safetensors"
    assert second.checkpoint.is_file()
    log = (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in log] == [1, 2, 3]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["epochs"] == 3
    # written in the hidden .run.partial folder, the card and report used to be titled after it
    assert (tmp_path / "run" / "MODEL_CARD.md").read_text().startswith("# Model card: run\n")
    assert ".partial" not in (tmp_path / "run" / "report.html").read_text()


def test_evaluate_never_writes_a_training_runs_files(blobs, tmp_path):
    warmstart.pretrain(blobs, model="mlp", train=QUICK, out=tmp_path / "run")
    before = _files(tmp_path / "run")
    with pytest.raises(WarmstartError, match="holds a training run") as error:
        warmstart.evaluate(tmp_path / "run", blobs, out=tmp_path / "run")
    assert "another --out" in error.value.hint
    assert _files(tmp_path / "run") == before
    warmstart.evaluate(tmp_path / "run", blobs, out=tmp_path / "run", overwrite=True)
    after = _files(tmp_path / "run")
    assert {k: v for k, v in after.items() if k in before} == before  # every training file as it was
    assert json.loads((tmp_path / "run" / "evaluation" / "config.json").read_text())["command"] == "evaluate"
    # an evaluation's own folder can be evaluated into again
    warmstart.evaluate(tmp_path / "run", blobs, out=tmp_path / "eval")
    warmstart.evaluate(tmp_path / "run", blobs, out=tmp_path / "eval", split="train")
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["split"] == "train"


def test_evaluate_never_replaces_a_comparisons_report(blobs, tmp_path):
    warmstart.pretrain(blobs, model="mlp", train=QUICK, out=tmp_path / "run")
    comparison = tmp_path / "cmp"
    comparison.mkdir()
    for name in ("compare.json", "compare.csv", "report.html"):  # what `warmstart compare --out cmp` writes
        (comparison / name).write_text(f"the comparison's {name}")
    before = _files(comparison)
    with pytest.raises(WarmstartError, match="holds a comparison, whose report.html") as error:
        warmstart.evaluate(tmp_path / "run", blobs, out=comparison)
    assert "another --out" in error.value.hint
    assert _files(comparison) == before
    warmstart.evaluate(tmp_path / "run", blobs, out=comparison, overwrite=True)
    assert {k: v for k, v in _files(comparison).items() if k in before} == before
    assert json.loads((comparison / "evaluation" / "config.json").read_text())["command"] == "evaluate"


def test_evaluate_scores_the_whole_of_a_file_without_a_test_split(blobs, tmp_path):
    warmstart.pretrain(blobs, model="mlp", train=QUICK, out=tmp_path / "run")
    test_file = _blobs(tmp_path / "my_test.npz", seed=5)  # 90 rows, no test split of its own
    result = warmstart.evaluate(tmp_path / "run", test_file, out=tmp_path / "eval")
    assert result.num_examples == 90 and result.split == "all"
    assert "no test split of its own" in result.split_reason
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["rows_scored"] == 90 and metrics["split"] == "all" and metrics["split_reason"]
    held_out = warmstart.evaluate(tmp_path / "run", test_file, split="test")
    assert held_out.num_examples == 18  # the fixed 20% hold-out, when asked for
    assert warmstart.evaluate(tmp_path / "run", test_file, split="train").num_examples == 72
    assert warmstart.evaluate(tmp_path / "run", test_file, split="val").num_examples < 72
    with_test = _blobs(tmp_path / "with_test.npz", seed=6, test=True)
    own = warmstart.evaluate(tmp_path / "run", with_test)
    assert own.split == "test" and own.num_examples == 30
    with pytest.raises(WarmstartError, match="--split 'everything'"):
        warmstart.evaluate(tmp_path / "run", test_file, split="everything")
    # a file too small to hold a test split out is still scored whole: it used to be refused ("too few examples")
    tiny = _blobs(tmp_path / "tiny.npz", seed=7, per_class=1)
    for split in (None, "all"):
        scored = warmstart.evaluate(tmp_path / "run", tiny, split=split)
        assert scored.num_examples == 3 and scored.split == "all"


def test_resume_refuses_data_that_changed(tmp_path):
    data = _blobs(tmp_path / "data.npz")
    train = TrainConfig(epochs=3, batch_size=16, progress=False)
    with pytest.raises(KeyboardInterrupt):
        warmstart.pretrain(data, model="mlp", train=train, out=tmp_path / "run", callbacks=(Interrupt(),))
    _blobs(tmp_path / "data.npz", seed=1)  # the same path, other examples
    with pytest.raises(WarmstartError, match="the data changed"):
        warmstart.pretrain(data, model="mlp", train=train, out=tmp_path / "run", resume=True)
    _blobs(tmp_path / "data.npz")  # back as it was: the run resumes
    result = warmstart.pretrain(data, model="mlp", train=train, out=tmp_path / "run", resume=True)
    assert [e["epoch"] for e in result.history][-1] == 3


def test_data_of_one_class_is_refused(tmp_path):
    data = _blobs(tmp_path / "one.npz", classes=1)
    with pytest.raises(WarmstartError, match="at least two classes") as error:
        warmstart.pretrain(data, model="mlp", train=QUICK)
    assert error.value.hint


def test_negative_seeds_are_refused():
    with pytest.raises(WarmstartError, match="parameter seed"):
        TrainConfig(seed=-1)


@pytest.mark.parametrize("command", ["finetune", "distill", "tune"])
def test_an_overwrite_of_the_folder_the_run_reads_is_refused(blobs, tmp_path, command):
    """``--from runs/a --out runs/a --overwrite`` deleted its own source before reading it, then named itself as its
    parent; a source inside the folder (a weight file, a teacher) went the same way."""
    warmstart.pretrain(blobs, model="mlp", train=QUICK, out=tmp_path / "source")
    before = _files(tmp_path / "source")
    calls = {
        "finetune": lambda: warmstart.finetune(tmp_path / "source", blobs, train=QUICK, out=tmp_path / "source",
                                               overwrite=True),
        "distill": lambda: warmstart.distill(tmp_path / "source", blobs, student="mlp", train=QUICK, out=tmp_path,
                                             overwrite=True),
        "tune": lambda: warmstart.tune(str(tmp_path / "source"), blobs, train=QUICK, trials=1,
                                       out=tmp_path / "source", overwrite=True),
    }
    with pytest.raises(WarmstartError, match="which this run reads: --overwrite would delete it") as error:
        calls[command]()
    assert "another --out" in error.value.hint
    assert _files(tmp_path / "source") == before


class InterruptFirstEpoch(warmstart.engine.Callback):
    def on_epoch_end(self, epoch, logs):
        raise KeyboardInterrupt  # before epoch 1's state is saved


def test_a_run_interrupted_before_any_state_was_saved_starts_over_when_run_again(blobs, tmp_path, caplog):
    """It used to be stuck: running the command again was refused (the folder 'already holds a run'), and
    --resume found no state to resume; only --overwrite got out, and no message said so."""
    with caplog.at_level("WARNING", logger="warmstart"), pytest.raises(KeyboardInterrupt):
        warmstart.pretrain(blobs, model="mlp", train=QUICK, out=tmp_path / "run", callbacks=(InterruptFirstEpoch(),))
    assert "run the command again to start over" in caplog.text
    assert (tmp_path / "run" / "state" / "config.json").is_file()
    assert not (tmp_path / "run" / "state" / "trainer.pt").exists()
    with pytest.raises(WarmstartError, match="no training state to resume from") as error:
        warmstart.pretrain(blobs, model="mlp", train=QUICK, out=tmp_path / "run", resume=True)
    assert "run without --resume" in error.value.hint
    again = warmstart.pretrain(blobs, model="mlp", train=QUICK, out=tmp_path / "run")  # as the note says
    assert again.checkpoint.is_file() and not (tmp_path / "run" / "state").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blobs.npz", "run"]


def test_an_interrupted_overwrite_says_the_earlier_run_is_kept_and_saves_no_state(blobs, tmp_path, caplog):
    """The note used to point --resume at the partial folder's state, which was deleted as the note printed."""
    warmstart.pretrain(blobs, model="mlp", train=QUICK, out=tmp_path / "run")
    before = _files(tmp_path / "run")
    with caplog.at_level("WARNING", logger="warmstart"), pytest.raises(KeyboardInterrupt):
        warmstart.pretrain(blobs, model="mlp", train=TrainConfig(epochs=3, batch_size=16, progress=False),
                           out=tmp_path / "run", overwrite=True, callbacks=(Interrupt(),))
    assert "--resume" not in caplog.text and "earlier run in its folder stays as it was" in caplog.text
    assert _files(tmp_path / "run") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blobs.npz", "run"]


def test_resume_refuses_a_source_checkpoint_replaced_at_the_same_path(blobs, tmp_path):
    """Only the source's path was compared: retrained in place, it was resumed from without a word, and l2-sp
    pulled towards the new weights."""
    warmstart.pretrain(blobs, model="mlp", train=QUICK, out=tmp_path / "source")
    three = TrainConfig(epochs=3, batch_size=16, progress=False)
    with pytest.raises(KeyboardInterrupt):
        warmstart.finetune(tmp_path / "source", blobs, strategy="l2-sp", train=three, out=tmp_path / "run",
                           callbacks=(Interrupt(),))
    warmstart.pretrain(blobs, model="mlp", train=TrainConfig(epochs=2, batch_size=16, seed=9, progress=False),
                       out=tmp_path / "source", overwrite=True)
    with pytest.raises(WarmstartError, match=r"parent.sha256: '[0-9a-f]{64}' then, '[0-9a-f]{64}' now"):
        warmstart.finetune(tmp_path / "source", blobs, strategy="l2-sp", train=three, out=tmp_path / "run",
                           resume=True)


def test_a_relative_source_checkpoint_is_recorded_absolute_so_resume_and_replay_work_elsewhere(
        blobs, tmp_path, monkeypatch, capsys):
    """``--from runs/x`` was recorded as typed: `--config RUN/config.json` from another directory found no
    checkpoint, and a resume naming the same source by another path was refused (the parent's path differed)."""
    from cli_runner import run_cli

    warmstart.pretrain(blobs, model="mlp", train=QUICK, out=tmp_path / "source")
    three = TrainConfig(epochs=3, batch_size=16, progress=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        warmstart.finetune("./source/", blobs, train=three, out=tmp_path / "run", callbacks=(Interrupt(),))
    state = json.loads((tmp_path / "run" / "state" / "config.json").read_text())
    assert state["parent"]["checkpoint"] == str(tmp_path / "source")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    resumed = warmstart.finetune(tmp_path / "source", blobs, train=three, out=tmp_path / "run", resume=True)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    metadata = json.loads((tmp_path / "run" / "model" / "metadata.json").read_text())
    assert config["parent"] == metadata["parent"] == resumed.info.extra["parent"]
    assert config["parent"]["checkpoint"] == str(tmp_path / "source")
    code, _, err = run_cli(["finetune", "--config", tmp_path / "run" / "config.json", "--quiet", "--out",
                            tmp_path / "replay"], capsys)
    assert code == 0, err
    replayed = json.loads((tmp_path / "replay" / "config.json").read_text())
    assert replayed["parent"] == config["parent"]  # the same path and the same weights (sha256)


def test_a_relative_data_path_resumes_from_another_directory(tmp_path, monkeypatch, capsys):
    """Data paths are recorded as typed: ``--data data.npz`` could not be resumed from another directory, since
    the same relative path found no file there and any other spelling of it was refused as a changed setting."""
    _blobs(tmp_path / "data.npz")
    train = TrainConfig(epochs=3, batch_size=16, progress=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        warmstart.pretrain("data.npz", model="mlp", train=train, out=tmp_path / "run", callbacks=(Interrupt(),))
    state = json.loads((tmp_path / "run" / "state" / "config.json").read_text())
    assert state["data"]["source"] == "data.npz" and state["working_directory"] == str(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    (tmp_path / "copy.npz").write_bytes((tmp_path / "data.npz").read_bytes())  # the same rows, another file
    # the message says which file each path named
    with pytest.raises(WarmstartError, match=rf"data.source: 'data.npz' \({tmp_path}/data.npz\) then, "
                                             rf"'../copy.npz' \({tmp_path}/copy.npz\) now"):
        warmstart.pretrain("../copy.npz", model="mlp", train=train, out=tmp_path / "run", resume=True)
    state_file = tmp_path / "run" / "state" / "config.json"
    for damaged in (5, ["/"], None):  # a hand-edited directory: the paths are compared as typed (a TypeError before)
        state_file.write_text(json.dumps({**state, "working_directory": damaged}))
        with pytest.raises(WarmstartError, match=r"data.source: 'data.npz' then, '../data.npz' \("):
            warmstart.pretrain("../data.npz", model="mlp", train=train, out=tmp_path / "run", resume=True)
    state_file.write_text(json.dumps(state))
    result = warmstart.pretrain("../data.npz", model="mlp", train=train, out=tmp_path / "run", resume=True)
    assert [e["epoch"] for e in result.history] == [1, 2, 3]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["source"] == "../data.npz"
    # a replay from a third directory reads the file the run read (it looked for ../data.npz from there)
    from cli_runner import run_cli

    (tmp_path / "third" / "deeper").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "third" / "deeper")
    code, _, err = run_cli(["pretrain", "--config", tmp_path / "run" / "config.json", "--quiet", "--out",
                            tmp_path / "replay"], capsys)
    assert code == 0, err
    replayed = json.loads((tmp_path / "replay" / "config.json").read_text())
    assert replayed["data"]["source"] == str(tmp_path / "elsewhere" / ".." / "data.npz")
    assert replayed["data_fingerprint"] == config["data_fingerprint"]


def test_evaluate_on_the_validation_split_scores_the_rows_the_run_held_out(tmp_path):
    """--split val drew seed 0's validation split whatever seed the run had trained with: most of those rows were
    its training rows, and an MLP trained on noise scored 0.91 there against 0.30 on what it had really held out."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 8)).astype(np.float32), rng.integers(0, 3, 200)
    data = tmp_path / "noise.npz"
    np.savez(data, x=x, y=y)
    run = warmstart.pretrain(DataConfig(str(data), val_fraction=0.25), model=ModelConfig("mlp", {"hidden": [256]}),
                             train=TrainConfig(epochs=60, lr=0.01, seed=3, progress=False, trackers=()),
                             out=tmp_path / "run")
    held_out = warmstart.evaluate(tmp_path / "run", DataConfig(str(data)), split="val")
    assert held_out.accuracy == pytest.approx(max(h["val_accuracy"] for h in run.history))  # the best epoch's kept
    assert "the rows the run of checkpoint" in held_out.split_reason and "seed 3" in held_out.split_reason
    other = tmp_path / "other.npz"
    np.savez(other, x=x[::-1].copy(), y=y[::-1].copy())
    elsewhere = warmstart.evaluate(tmp_path / "run", str(other), split="val")
    assert "so this is not a split its run held out" in elsewhere.split_reason


def test_data_without_column_names_scored_by_a_model_that_records_them_says_so(tmp_path, caplog):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] > 0).astype(int)
    rows = ["a,b,c,d,label"] + [",".join(f"{v:.4f}" for v in r) + f",{'pos' if c else 'neg'}" for r, c in zip(x, y)]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    warmstart.pretrain(str(tmp_path / "train.csv"), model="mlp", train=QUICK, out=tmp_path / "run")
    np.savez(tmp_path / "rows.npz", x=x.astype(np.float32), y=y, class_names=np.array(["neg", "pos"]))
    with caplog.at_level("INFO", logger="warmstart"):
        warmstart.evaluate(tmp_path / "run", str(tmp_path / "rows.npz"))
    assert any("names no feature columns, so its columns are taken by position" in r.message and "a, b, c, d" in
               r.message for r in caplog.records)


@pytest.mark.parametrize("command", ["pretrain", "tune"])
def test_resume_and_overwrite_together_are_refused(blobs, tmp_path, command):
    # tune resumed and ignored --overwrite; finetune said "nothing to resume": neither named the contradiction
    warmstart.pretrain(blobs, model="mlp", train=QUICK, out=tmp_path / "run")
    before = _files(tmp_path / "run")
    calls = {"pretrain": lambda: warmstart.pretrain(blobs, model="mlp", train=QUICK, out=tmp_path / "run",
                                                    resume=True, overwrite=True),
             "tune": lambda: warmstart.tune(None, blobs, model="mlp", train=QUICK, trials=1, out=tmp_path / "run",
                                            resume=True, overwrite=True)}
    with pytest.raises(WarmstartError, match="--resume and --overwrite were both given") as error:
        calls[command]()
    assert error.value.hint == "pass one of them"
    assert _files(tmp_path / "run") == before
