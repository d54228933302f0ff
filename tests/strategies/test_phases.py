"""Phased strategies (gradual unfreezing, LP-FT) and the linear probe on cached features."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig
from warmstart.engine import features as feature_cache
from warmstart.errors import WarmstartError
from warmstart.data import load_splits
from warmstart.data.preprocess import preprocessing_from_dict
from warmstart.models import create_model, load_checkpoint
from warmstart.strategies import create_strategy


def cnn():
    return create_model("cnn", (1, 16, 16), 3)  # groups: stem, stage1, stage2, stage3, head


def test_gradual_unfreezing_default_spreads_one_group_per_step_over_the_first_half():
    model, strategy = cnn(), create_strategy("gradual-unfreeze")
    strategy.prepare(model, 40)
    assert strategy.boundaries_ == [6, 11, 16, 21]
    assert strategy.trainable(model, 5) == ["head"]
    assert strategy.trainable(model, 6) == ["stage3", "head"]
    assert strategy.trainable(model, 21) == ["stem", "stage1", "stage2", "stage3", "head"]


def test_gradual_unfreezing_with_given_boundaries_can_leave_lower_groups_frozen():
    model, strategy = cnn(), create_strategy("gradual-unfreeze", boundaries=[2, 4])
    strategy.prepare(model, 6)
    assert [len(strategy.trainable(model, e)) for e in range(1, 7)] == [1, 2, 2, 3, 3, 3]
    assert strategy.ever_trainable(model) == ["stage2", "stage3", "head"]


@pytest.mark.parametrize("boundaries, epochs, message", [
    ([3, 9], 8, "runs past the last epoch"),
    ([4, 3], 8, "strictly increasing"),
    ([1, 3], 8, "epoch numbers of 2 or more"),
    ([2, 3, 4, 5, 6], 8, "only 4 backbone groups"),
])
def test_bad_phase_boundaries_are_clear_errors(boundaries, epochs, message):
    with pytest.raises(WarmstartError, match=message):
        create_strategy("gradual-unfreeze", boundaries=boundaries).prepare(cnn(), epochs)


def test_lp_ft_probes_then_fine_tunes_everything():
    model, strategy = cnn(), create_strategy("lp-ft", probe_fraction=0.25)
    strategy.prepare(model, 8)
    assert [len(strategy.trainable(model, e)) for e in range(1, 9)] == [1, 1, 5, 5, 5, 5, 5, 5]
    assert strategy.begin_epoch(model, 3) == "lp-ft: from epoch 3, training stem, stage1, stage2, stage3, head"
    for bad in (0, 1, 1.5, "half"):
        with pytest.raises(WarmstartError, match="probe_fraction"):
            create_strategy("lp-ft", probe_fraction=bad)


def test_the_backbone_moves_only_after_its_phase_begins():
    torch.manual_seed(0)
    model = create_model("cnn", (1, 12, 12), 2, widths=[4, 8])
    stem_before = model.backbone.stem[0].weight.detach().clone()
    head_before = model.head.weight.detach().clone()
    x, y = torch.randn(32, 1, 12, 12), torch.arange(32) % 2
    history = []

    class Snapshot(warmstart.engine.Callback):
        def on_epoch_end(self, epoch, logs):
            history.append((torch.equal(model.backbone.stem[0].weight, stem_before),
                            torch.equal(model.head.weight, head_before)))

    warmstart.engine.fit(model, create_strategy("lp-ft", probe_fraction=0.5), (x, y), None,
                         TrainConfig(epochs=4, batch_size=8, optimizer="adam"), device=torch.device("cpu"),
                         generator=torch.Generator().manual_seed(0), callbacks=[Snapshot()])
    assert history == [(True, False), (True, False), (False, False), (False, False)]


@pytest.fixture(scope="module")
def source(fashion_subset_npz, tmp_path_factory):
    return warmstart.pretrain(DataConfig(fashion_subset_npz, classes="0-4"),
                              model=ModelConfig("cnn", {"widths": [8, 16]}),
                              train=TrainConfig(epochs=2, batch_size=64, progress=False),
                              out=tmp_path_factory.mktemp("source"))


def test_linear_probe_on_cached_features_matches_the_frozen_backbone(source, fashion_subset_npz):
    target = DataConfig(fashion_subset_npz, classes="5-9", shots=20, val_fraction=0.2)
    train = TrainConfig(epochs=15, batch_size=16, lr=3e-2, seed=3, progress=False)
    frozen = warmstart.finetune(source.checkpoint, target, strategy="freeze", train=train)
    probe = warmstart.finetune(source.checkpoint, target, strategy="linear-probe", train=train)
    assert any("backbone features of 80 training examples" in note for note in probe.notes)
    assert [e["train_loss"] for e in probe.history] == pytest.approx([e["train_loss"] for e in frozen.history],
                                                                    rel=1e-4)
    assert probe.metrics.accuracy == pytest.approx(frozen.metrics.accuracy, abs=0.004)
    assert probe.metrics.accuracy > 0.4  # chance is 0.2: the head learnt


def test_feature_cache_hits_only_for_the_same_backbone_and_inputs(tmp_path):
    feature_cache.clear_memory_cache()
    model = create_model("cnn", (1, 12, 12), 2, widths=[4, 8])
    x = torch.randn(10, 1, 12, 12)
    device = torch.device("cpu")
    first, hit = feature_cache.cached_features(model, x, device, disk=tmp_path)
    assert not hit and first.shape == (10, model.num_features)
    assert feature_cache.cached_features(model, x, device, disk=tmp_path)[1]  # memory
    feature_cache.clear_memory_cache()
    again, hit = feature_cache.cached_features(model, x, device, disk=tmp_path)  # disk
    assert hit and torch.equal(again, first)
    assert not feature_cache.cached_features(model, x + 1, device)[1]  # other inputs
    with torch.no_grad():
        model.backbone.stem[0].weight.add_(0.1)
    changed, hit = feature_cache.cached_features(model, x, device)  # other weights
    assert not hit and not torch.equal(changed, first)
    model.backbone.stem[1].running_mean.add_(1.0)  # BatchNorm statistics are part of the key too
    assert not feature_cache.cached_features(model, x, device)[1]


def test_l2_sp_combines_with_another_strategys_phases_and_rates():
    model = cnn()
    combined = create_strategy("l2-sp", alpha=0.1, base="gradual-unfreeze")
    combined.prepare(model, 40)
    alone = create_strategy("gradual-unfreeze")
    alone.prepare(cnn(), 40)
    assert [combined.trainable(model, e) for e in range(1, 41)] == [alone.trainable(model, e) for e in range(1, 41)]
    assert combined.penalty(model).item() == pytest.approx(combined.beta / 2 * sum((p ** 2).sum().item()
                                                                            for p in model.head.parameters()))
    assert {g["weight_decay"] for g in combined.param_groups(model, 0.01, 0.1)} == {0.0}
    layerwise = create_strategy("l2-sp", base="layerwise-lr")
    layerwise.prepare(model, 4)
    assert [g["lr_scale"] for g in layerwise.param_groups(model, 0.01, 0.0)][-1] == 1.0
    assert min(g["lr_scale"] for g in layerwise.param_groups(model, 0.01, 0.0)) == 0.5 ** 4
    with pytest.raises(WarmstartError, match="parameter base: expected one of full, gradual-unfreeze"):
        create_strategy("l2-sp", base="linear-probe")


def test_linear_probe_views_train_on_cached_augmented_features(source, fashion_subset_npz):
    feature_cache.clear_memory_cache()
    target = DataConfig(fashion_subset_npz, classes="5-9", shots=10)
    train = TrainConfig(epochs=3, batch_size=16, progress=False)
    probe = create_strategy("linear-probe", views=3)
    first = warmstart.finetune(source.checkpoint, target, strategy=probe, train=train)
    assert any("features of 50 training examples x 3 views" in note for note in first.notes)
    assert first.history[0]["steps_per_epoch"] == 10  # 150 feature vectors in batches of 16 (the last one of 6)
    again = warmstart.finetune(source.checkpoint, target, strategy=create_strategy("linear-probe", views=3),
                               train=train)
    assert again.metrics.confusion_matrix == first.metrics.confusion_matrix  # the same views, from the cache
    assert probe.describe() == {"name": "linear-probe", "cache": "memory", "views": 3, "augment": "light",
                                "head_lr_scale": 10.0, "solver": "loop", "C": "auto"}


def test_augmented_views_are_seeded_and_differ_from_the_images():
    from warmstart.data.augment import augment

    x = torch.rand(6, 1, 16, 16)
    a, b, c = augment(x, "light", seed=1), augment(x, "light", seed=1), augment(x, "light", seed=2)
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, x)
    state = torch.get_rng_state()
    augment(x, "light", seed=3)
    assert torch.equal(state, torch.get_rng_state())  # the global generator is left as it was
    with pytest.raises(WarmstartError, match="needs images"):
        augment(torch.rand(4, 10), "light", seed=0)


def test_views_on_vectors_and_bad_view_settings_are_clear_errors(tmp_path):
    with pytest.raises(WarmstartError, match="views"):
        create_strategy("linear-probe", views=0)
    with pytest.raises(WarmstartError, match="augment"):
        create_strategy("linear-probe", views=2, augment="heavy")
    rng = np.random.default_rng(0)
    data = tmp_path / "vectors.npz"
    np.savez(data, x=rng.normal(size=(60, 12)).astype(np.float32), y=np.arange(60) % 3)
    source = warmstart.pretrain(str(data), model="mlp", train=TrainConfig(epochs=1, progress=False),
                                out=tmp_path / "mlp")
    with pytest.raises(WarmstartError, match="views=2 augments images"):
        warmstart.finetune(source.checkpoint, DataConfig(str(data)), strategy=create_strategy("linear-probe", views=2),
                           train=TrainConfig(epochs=1, progress=False))


def test_linear_probe_scores_the_test_split_from_the_feature_cache(source, fashion_subset_npz):
    feature_cache.clear_memory_cache()
    target = DataConfig(fashion_subset_npz, classes="5-9", shots=5)
    first = warmstart.finetune(source.checkpoint, target, strategy="linear-probe",
                               train=TrainConfig(epochs=2, seed=0, progress=False))
    cached = len(feature_cache._MEMORY)
    second = warmstart.finetune(source.checkpoint, target, strategy="linear-probe",
                                train=TrainConfig(epochs=2, seed=1, progress=False))
    assert len(feature_cache._MEMORY) == cached + 1  # the new seed's training features only: the test split was hit
    frozen = warmstart.finetune(source.checkpoint, target, strategy="freeze",
                                train=TrainConfig(epochs=2, seed=1, progress=False))
    assert second.metrics.accuracy == pytest.approx(frozen.metrics.accuracy, abs=0.004)
    assert first.metrics.num_examples == second.metrics.num_examples == 500


def test_linear_probe_lbfgs_fits_scikit_learns_logistic_regression(source, fashion_subset_npz, tmp_path):
    from sklearn.linear_model import LogisticRegression

    target = DataConfig(fashion_subset_npz, classes="5-9", shots=20)
    probe = warmstart.finetune(source.checkpoint, target, strategy=create_strategy("linear-probe", solver="lbfgs"),
                               train=TrainConfig(seed=1, progress=False), out=tmp_path / "run")
    fitted = probe.history[0]
    assert fitted["solver"] == "lbfgs"
    assert any(float(c) == pytest.approx(fitted["C"], rel=1e-3) for c in fitted["cv_accuracy"])  # a grid point
    assert any("L-BFGS" in note and "cross-validation" in note for note in probe.notes)
    assert probe.metrics.accuracy > 0.5  # chance is 0.2
    # the same features and C through scikit-learn give the same classifier
    net, _ = load_checkpoint(tmp_path / "run")
    splits = load_splits(target, 1)
    norm = preprocessing_from_dict(probe.info.preprocessing)
    with torch.no_grad():
        train_features = net.forward_features(norm.apply(splits.train.x)).double().numpy()
        test_features = net.forward_features(norm.apply(splits.test.x)).double().numpy()
    reference = LogisticRegression(C=fitted["C"], max_iter=10_000, tol=1e-10).fit(train_features, splits.train.y)
    agree = (reference.predict(test_features) == net.forward_head(torch.tensor(test_features).float()).argmax(1)
             .numpy()).mean()
    assert agree > 0.99
    logged = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert logged[0]["C"] == fitted["C"]


def test_linear_probe_solver_options_are_checked():
    with pytest.raises(WarmstartError, match="solver"):
        create_strategy("linear-probe", solver="newton")
    with pytest.raises(WarmstartError, match="C"):
        create_strategy("linear-probe", solver="lbfgs", C=-1)


@pytest.mark.parametrize("terminal", [False, True])
def test_linear_probe_lbfgs_with_progress_on_runs_through_the_loop(source, fashion_subset_npz, tmp_path, capsys,
                                                                  monkeypatch, terminal):
    """The README's cheapest recipe with the progress bar on (it crashed with KeyError 'steps_per_epoch' when the
    L-BFGS head had its own loop): the fit is the loop's one closed-form step, so every callback gets real logs."""
    from warmstart.engine import callbacks as callbacks_module

    if terminal:  # a rich progress bar, as on a terminal
        real = callbacks_module.ProgressBar.__init__
        monkeypatch.setattr(callbacks_module.ProgressBar, "__init__",
                            lambda self, description="train", plain=None: real(self, description, plain=False))
    probe = warmstart.finetune(source.checkpoint, DataConfig(fashion_subset_npz, classes="5-9", shots=10,
                                                             val_fraction=0.0),
                               strategy=create_strategy("linear-probe", solver="lbfgs"),
                               train=TrainConfig(progress=True), out=tmp_path / "run")
    assert probe.history[0]["solver"] == "lbfgs" and probe.history[0]["steps_per_epoch"] == 1
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1] and log[0]["C"] == probe.history[0]["C"]
    if not terminal:  # without a terminal: one plain line for the one "epoch"
        assert "finetune epoch 1/1 - " in capsys.readouterr().err


def test_lp_ft_lbfgs_probes_the_head_before_fine_tuning(source, fashion_subset_npz):
    target = DataConfig(fashion_subset_npz, classes="5-9", shots=20)
    train = TrainConfig(epochs=2, batch_size=16, lr=1e-4, seed=0, progress=False)
    result = warmstart.finetune(source.checkpoint, target, strategy=create_strategy("lp-ft", probe="lbfgs"),
                                train=train)
    probe_note = next(note for note in result.notes if "L-BFGS first" in note)
    probe_accuracy = float(probe_note.split("training accuracy ")[1].split(",")[0])
    assert probe_accuracy > 0.6  # the head was fitted before the first step: it starts far above chance (0.2)
    assert result.metrics.accuracy > 0.5
