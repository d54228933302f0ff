"""End to end through the Python API, on a real Fashion-MNIST subset: learning happens, and transfer pays."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig
from warmstart.models import load_checkpoint

SMALL_CNN = ModelConfig("cnn", {"widths": [16, 32, 64]})


@pytest.fixture(scope="module")
def source_run(fashion_subset_npz, tmp_path_factory):
    """A CNN pretrained on classes 0-4 of the subset (1,350 training images): the source model."""
    out = tmp_path_factory.mktemp("source")
    return warmstart.pretrain(DataConfig(fashion_subset_npz, classes="0-4"), model=SMALL_CNN,
                              train=TrainConfig(epochs=5, batch_size=64, lr=2e-3, progress=False), out=out)


def test_pretraining_learns_far_above_chance(source_run):
    assert source_run.metrics.num_examples == 500  # 100 test images for each of the 5 source classes
    assert source_run.metrics.accuracy > 0.7  # chance is 0.2
    losses = [epoch["train_loss"] for epoch in source_run.history]
    assert losses[-1] < losses[0] * 0.7


def test_run_folder_holds_config_log_checkpoint_metrics_and_plot(source_run):
    run = source_run.run_dir
    config = json.loads((run / "config.json").read_text())
    assert config["command"] == "pretrain" and config["data"]["classes"] == "0-4"
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2, 3, 4, 5] and all("val_accuracy" in e for e in log)
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("accuracy", "macro_f1", "weighted_f1", "precision_macro", "recall_macro", "per_class",
                "confusion_matrix"):
        assert key in metrics
    assert metrics["accuracy"] == pytest.approx(source_run.metrics.accuracy)
    assert (run / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert source_run.checkpoint == run / "model" / "model.safetensors"


def test_best_validation_epoch_is_the_one_kept(source_run):
    best = max(source_run.history, key=lambda e: e["val_accuracy"])
    model, _ = load_checkpoint(source_run.run_dir)
    assert source_run.info.extra["training"]["epochs"] == 5
    # the kept weights reproduce the best epoch's validation accuracy, not the last epoch's
    splits = warmstart.data.load_splits(DataConfig(str(source_run.info.extra["data"]["source"]), classes="0-4"),
                                        seed=0)
    from warmstart.data.preprocess import Normalization

    norm = Normalization.from_dict(source_run.info.preprocessing)
    with torch.no_grad():
        model.eval()
        accuracy = (model(norm.apply(splits.val.x)).argmax(1).numpy() == splits.val.y).mean()
    assert accuracy == pytest.approx(best["val_accuracy"], abs=1e-6)


def test_evaluate_agrees_with_the_run_and_selects_the_models_classes(source_run, fashion_subset_npz, tmp_path):
    result = warmstart.evaluate(source_run.run_dir, DataConfig(fashion_subset_npz), out=tmp_path)
    assert result.class_names == source_run.info.class_names
    assert result.accuracy == pytest.approx(source_run.metrics.accuracy)
    assert json.loads((tmp_path / "metrics.json").read_text())["split"] == "test"


def test_transfer_beats_scratch_on_few_shots_averaged_over_seeds(source_run, fashion_subset_npz):
    gains = []
    for seed in range(3):
        target = DataConfig(fashion_subset_npz, classes="5-9", shots=10)
        budget = TrainConfig(epochs=20, batch_size=16, seed=seed, progress=False)
        transfer = warmstart.finetune(source_run.run_dir, target, train=budget)
        scratch = warmstart.finetune(None, target, model=SMALL_CNN, train=budget)
        assert transfer.metrics.num_examples == scratch.metrics.num_examples == 500
        gains.append(transfer.metrics.accuracy - scratch.metrics.accuracy)
    assert np.mean(gains) > 0.02, gains  # measured: about +0.05 on this subset


def test_new_target_classes_get_a_new_head_and_the_note_says_so(source_run, fashion_subset_npz):
    result = warmstart.finetune(source_run.run_dir, DataConfig(fashion_subset_npz, classes="Sandal,Bag", shots=5),
                                train=TrainConfig(epochs=1, progress=False))
    assert result.info.class_names == ("Sandal", "Bag")
    assert any("re-initialised" in note for note in result.notes)
    assert result.info.extra["parent"]["class_names"] == list(source_run.info.class_names)


def test_keep_head_keeps_the_pretrained_head(source_run, fashion_subset_npz):
    result = warmstart.finetune(source_run.run_dir, DataConfig(fashion_subset_npz, classes="0-4", shots=5),
                                strategy="freeze", train=TrainConfig(epochs=1, lr=1e-12, progress=False),
                                keep_head=True)
    assert not any("re-initialised" in note for note in result.notes)
    assert any("kept the source head" in note for note in result.notes)
    assert result.metrics.accuracy == pytest.approx(source_run.metrics.accuracy, abs=0.01)


def test_keep_head_is_refused_when_the_classes_differ(source_run, fashion_subset_npz):
    with pytest.raises(warmstart.WarmstartError, match="class names differ"):
        warmstart.finetune(source_run.run_dir, DataConfig(fashion_subset_npz, classes="5-9", shots=5),
                           train=TrainConfig(epochs=1, progress=False), keep_head=True)
    with pytest.raises(warmstart.WarmstartError, match="class count differ"):
        warmstart.finetune(source_run.run_dir, DataConfig(fashion_subset_npz, classes="0-3", shots=5),
                           train=TrainConfig(epochs=1, progress=False), keep_head=True)


def test_equal_class_names_still_get_a_new_head(tmp_path):
    """Issue 14, item 1: integer labels 0..4 on two unrelated tasks are not the same classes."""
    rng = np.random.default_rng(0)

    def task(n_per_class, centres, file):
        x = np.concatenate([c + 0.3 * rng.standard_normal((n_per_class, 8)) for c in centres]).astype(np.float32)
        y = np.repeat(np.arange(len(centres)), n_per_class)
        np.savez(tmp_path / file, x=x, y=y)
        return str(tmp_path / file)

    centres = rng.standard_normal((10, 8)) * 2
    source = task(40, centres[:5], "source.npz")
    target = task(40, centres[5:], "target.npz")  # other data, relabelled 0..4
    pretrained = warmstart.pretrain(source, model="mlp", train=TrainConfig(epochs=3, progress=False, trackers=()),
                                    out=tmp_path / "source")
    source_head = pretrained.model.head.weight.detach()
    # a frozen backbone and a learning rate too small to move anything: the head left is the one the run started from
    still = TrainConfig(epochs=1, lr=1e-12, progress=False, trackers=())
    new = warmstart.finetune(pretrained.run_dir, target, strategy="freeze", train=still)
    assert any(note.startswith("new head") for note in new.notes), new.notes
    assert new.info.extra["head"] == "new"
    assert not torch.allclose(new.model.head.weight.detach(), source_head, atol=1e-3)  # the weights, not only a note
    kept = warmstart.finetune(pretrained.run_dir, target, strategy="freeze", train=still, keep_head=True)
    assert any("kept the source head" in note for note in kept.notes)
    assert kept.info.extra["head"] == "kept"
    assert torch.allclose(kept.model.head.weight.detach(), source_head, atol=1e-6)


def test_runs_are_deterministic_for_a_seed(fashion_subset_npz):
    def run(seed):
        return warmstart.finetune(None, DataConfig(fashion_subset_npz, classes="5-9", shots=5), model="mlp",
                                  train=TrainConfig(epochs=3, seed=seed, progress=False))

    first, again, other = run(1), run(1), run(2)
    assert first.metrics.confusion_matrix == again.metrics.confusion_matrix
    assert [e["train_loss"] for e in first.history] == [e["train_loss"] for e in again.history]
    assert [e["train_loss"] for e in first.history] != [e["train_loss"] for e in other.history]


def test_mlp_learns_tabular_csv(tmp_path):
    from sklearn.datasets import load_wine

    wine = load_wine()
    rows = ["," .join([*wine.feature_names, "label"])]
    rows += [",".join([*(f"{v:.4f}" for v in x), wine.target_names[t]]) for x, t in zip(wine.data, wine.target)]
    path = tmp_path / "wine.csv"
    path.write_text("\n".join(rows) + "\n")
    result = warmstart.pretrain(DataConfig(str(path)), model="mlp",
                                train=TrainConfig(epochs=30, batch_size=16, progress=False))
    assert result.info.class_names == tuple(wine.target_names)
    assert result.metrics.accuracy > 0.85  # chance is about 0.4


def test_an_interrupted_finetune_resumes_to_the_same_model(source_run, fashion_subset_npz, tmp_path):
    class Interrupt(warmstart.engine.Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 3:
                raise KeyboardInterrupt

    target = DataConfig(fashion_subset_npz, classes="5-9", shots=10, val_fraction=0.2)
    train = TrainConfig(epochs=6, batch_size=16, seed=4, progress=False)
    straight = warmstart.finetune(source_run.run_dir, target, strategy="lp-ft", train=train, out=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        warmstart.finetune(source_run.run_dir, target, strategy="lp-ft", train=train, out=tmp_path / "b",
                           callbacks=(Interrupt(),))
    assert (tmp_path / "b" / "state" / "weights.safetensors").is_file()
    with pytest.raises(warmstart.WarmstartError, match=r"train.lr: 0.001 then, 0.01 now"):
        warmstart.finetune(source_run.run_dir, target, strategy="lp-ft", out=tmp_path / "b", resume=True,
                           train=TrainConfig(epochs=6, batch_size=16, seed=4, lr=0.01, progress=False))
    settings = tmp_path / "b" / "state" / "config.json"
    saved = settings.read_text()
    settings.write_text(saved[:len(saved) // 2])  # cut off: a clear error, not a JSONDecodeError traceback
    with pytest.raises(warmstart.WarmstartError, match="settings cannot be read") as error:
        warmstart.finetune(source_run.run_dir, target, strategy="lp-ft", train=train, out=tmp_path / "b",
                           resume=True)
    assert error.value.hint
    settings.write_text(saved)
    resumed = warmstart.finetune(source_run.run_dir, target, strategy="lp-ft", train=train, out=tmp_path / "b",
                                 resume=True)
    assert resumed.metrics.confusion_matrix == straight.metrics.confusion_matrix
    a, _ = load_checkpoint(tmp_path / "a")
    b, _ = load_checkpoint(tmp_path / "b")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    log = [json.loads(line) for line in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2, 3, 4, 5, 6]  # epoch 3's callbacks never finished: it ran again
    assert not (tmp_path / "b" / "state").exists()  # a finished run leaves nothing to resume
    with pytest.raises(warmstart.WarmstartError, match="nothing to resume"):
        warmstart.finetune(source_run.run_dir, target, strategy="lp-ft", train=train, out=tmp_path / "b",
                           resume=True)
