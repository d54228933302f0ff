"""The loop and its batches: shuffling is seeded, frozen parts stay frozen, callbacks see every epoch."""

from __future__ import annotations

import pytest
import torch

from warmstart.config import TrainConfig
from warmstart.engine import Callback, TensorBatches, fit
from warmstart.models import create_model
from warmstart.strategies import create_strategy


def test_batches_cover_every_example_once_and_shuffle_by_seed():
    x, y = torch.arange(10).float().unsqueeze(1), torch.arange(10)
    first = [b[1].tolist() for b in TensorBatches(x, y, 4, shuffle=True, generator=torch.Generator().manual_seed(0))]
    again = [b[1].tolist() for b in TensorBatches(x, y, 4, shuffle=True, generator=torch.Generator().manual_seed(0))]
    other = [b[1].tolist() for b in TensorBatches(x, y, 4, shuffle=True, generator=torch.Generator().manual_seed(1))]
    assert first == again != other
    assert sorted(sum(first, [])) == list(range(10))
    assert [len(b) for b in first] == [4, 4, 2]


def test_a_last_training_batch_of_one_is_dropped_but_not_in_evaluation():
    x, y = torch.zeros(9, 1), torch.zeros(9, dtype=torch.long)
    assert len(TensorBatches(x, y, 4, shuffle=True)) == 2
    assert len(TensorBatches(x, y, 4, shuffle=False)) == 3


class Recorder(Callback):
    def __init__(self):
        self.epochs = []

    def on_epoch_end(self, epoch, logs):
        self.epochs.append(dict(logs))


def _toy_images(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 1, 12, 12, generator=g) + y.view(-1, 1, 1, 1).float()  # class 1 is brighter
    return x, y


def test_frozen_backbone_keeps_weights_and_batchnorm_statistics():
    torch.manual_seed(0)
    model = create_model("cnn", (1, 12, 12), 2, widths=[4, 8])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recorder = Recorder()
    fit(model, create_strategy("freeze"), _toy_images(), None, TrainConfig(epochs=2, batch_size=16, lr=0.05),
        device=torch.device("cpu"), generator=torch.Generator().manual_seed(0), callbacks=[recorder])
    after = model.state_dict()
    for key, value in before.items():
        if key.startswith("backbone."):
            assert torch.equal(value, after[key]), key  # weights and running statistics alike
    assert not torch.equal(before["head.weight"], after["head.weight"])
    assert [e["epoch"] for e in recorder.epochs] == [1, 2]


def test_full_training_learns_a_separable_toy_task():
    torch.manual_seed(0)
    model = create_model("cnn", (1, 12, 12), 2, widths=[4, 8])
    recorder = Recorder()
    fit(model, create_strategy("full"), _toy_images(), _toy_images(seed=1), TrainConfig(epochs=8, batch_size=16),
        device=torch.device("cpu"), generator=torch.Generator().manual_seed(0), callbacks=[recorder])
    assert recorder.epochs[-1]["val_accuracy"] > 0.9
    assert recorder.epochs[-1]["train_loss"] < recorder.epochs[0]["train_loss"]


def test_frozen_batchnorm_train_updates_statistics_but_not_weights():
    torch.manual_seed(0)
    model = create_model("cnn", (1, 12, 12), 2, widths=[4, 8])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, create_strategy("freeze"), _toy_images(), None,
        TrainConfig(epochs=1, batch_size=16, frozen_batchnorm="train"), device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0))
    after = model.state_dict()
    assert not torch.equal(before["backbone.stem.1.running_mean"], after["backbone.stem.1.running_mean"])
    assert torch.equal(before["backbone.stem.0.weight"], after["backbone.stem.0.weight"])
    assert torch.equal(before["backbone.stem.1.weight"], after["backbone.stem.1.weight"])


def _fit_mlp(x, y, val=None, callbacks=(), **settings):
    torch.manual_seed(0)
    model = create_model("mlp", tuple(x.shape[1:]), int(y.max()) + 1, hidden=[16])
    history = fit(model, create_strategy("full"), (x, y), val, TrainConfig(**{"batch_size": 16, **settings}),
                  device=torch.device("cpu"), generator=torch.Generator().manual_seed(0), callbacks=callbacks)
    return model, history


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    from warmstart.engine import EarlyStopping

    x, y = _toy_images()
    x = x.flatten(1)
    noise_val = (torch.randn(40, x.shape[1]), torch.randint(0, 2, (40,), generator=torch.Generator().manual_seed(3)))
    recorder, stopper = Recorder(), EarlyStopping(patience=2)
    model, history = _fit_mlp(x, y, noise_val, callbacks=[recorder, stopper], epochs=30, lr=1e-2)
    assert len(recorder.epochs) < 30 and history.summary["stopped_epoch"] == len(recorder.epochs)
    accuracies = [e["val_accuracy"] for e in recorder.epochs]
    best = max(accuracies)
    assert accuracies.index(best) == len(accuracies) - 3  # two epochs without improvement, then stop
    assert all(a <= best for a in accuracies[-2:])


def test_gradient_clipping_bounds_every_step():
    x, y = _toy_images()
    x = x.flatten(1) * 100  # large inputs, large gradients
    torch.manual_seed(0)  # as _fit_mlp does: the same initial weights
    start = create_model("mlp", tuple(x.shape[1:]), 2, hidden=[16])
    before = [p.detach().clone() for p in start.parameters()]
    clipped, _ = _fit_mlp(x, y, epochs=1, optimizer="sgd", momentum=0.0, weight_decay=0.0, lr=1.0,
                          schedule="constant", grad_clip_norm=1e-3)
    moved = torch.sqrt(sum(((p - b) ** 2).sum() for p, b in zip(clipped.parameters(), before)))
    assert moved <= 4 * 1e-3 + 1e-6  # 4 steps of at most lr * clip norm each


def test_label_smoothing_keeps_the_training_loss_away_from_zero():
    x, y = _toy_images(n=128)
    x = x.flatten(1)
    _, sharp = _fit_mlp(x, y, epochs=15, lr=1e-2)
    _, smooth = _fit_mlp(x, y, epochs=15, lr=1e-2, label_smoothing=0.4)
    assert sharp.epochs[-1]["train_loss"] < 0.1 < smooth.epochs[-1]["train_loss"]
    assert smooth.epochs[-1]["train_accuracy"] > 0.9  # it still learns the task


def test_balanced_sampler_draws_classes_evenly():
    y = torch.tensor([0] * 95 + [1] * 5)
    counts = torch.bincount(y).float()
    weights = (1.0 / counts)[y]
    batches = TensorBatches(torch.zeros(100, 1), y, 50, shuffle=True, generator=torch.Generator().manual_seed(0),
                            weights=weights)
    drawn = torch.cat([b[1] for _ in range(20) for b in batches])
    assert 0.4 < drawn.float().mean() < 0.6  # about half from the 5% class


@pytest.mark.parametrize("balance", ["weights", "sampler"])
def test_class_balance_raises_minority_recall(balance):
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0] * 190 + [1] * 10)
    x = torch.randn(200, 2, generator=g) + y.view(-1, 1).float() * 1.5  # overlapping classes
    recalls = {}
    for setting in ("none", balance):
        model, _ = _fit_mlp(x, y, epochs=20, lr=1e-2, class_balance=setting)
        with torch.no_grad():
            predicted = model.eval()(x).argmax(1)
        recalls[setting] = (predicted[y == 1] == 1).float().mean().item()
    assert recalls[balance] > recalls["none"] + 0.2, recalls


class BlowUpAfterFirstEpoch(Callback):
    """Keeps epoch 1's weights, then sets a learning rate no training survives."""

    def __init__(self, model):
        self.model = model

    def on_optimizer(self, optimizer):
        self.optimizer = optimizer

    def on_epoch_end(self, epoch, logs):
        if epoch == 1:
            self.weights = {k: v.clone() for k, v in self.model.state_dict().items()}
            for group in self.optimizer.param_groups:
                group["lr"] = 1e30


def test_a_diverged_epoch_restores_the_last_finite_weights_and_says_lower_the_lr(tmp_path):
    from warmstart.errors import WarmstartError

    torch.manual_seed(0)
    model = create_model("cnn", (1, 12, 12), 2, widths=[4, 8])
    blow_up, recorder = BlowUpAfterFirstEpoch(model), Recorder()
    with pytest.raises(WarmstartError, match="training diverged in epoch 2.*learning rate 0.01") as error:
        fit(model, create_strategy("full"), _toy_images(), None,
            TrainConfig(epochs=3, batch_size=16, optimizer="sgd", schedule="constant", lr=0.01),
            device=torch.device("cpu"), generator=torch.Generator().manual_seed(0), callbacks=[blow_up, recorder],
            state_dir=tmp_path)
    assert "lower the learning rate (--lr 0.001" in error.value.hint
    assert [e["epoch"] for e in recorder.epochs] == [1]  # the diverged epoch is not logged or saved
    assert all(torch.equal(v, blow_up.weights[k]) for k, v in model.state_dict().items())
    assert torch.load(tmp_path / "trainer.pt", weights_only=True)["epoch"] == 1


@pytest.mark.parametrize("field", ["lr", "weight_decay", "momentum", "grad_clip_norm", "mix_alpha"])
@pytest.mark.parametrize("value", [float("inf"), float("nan"), float("-inf")])
def test_non_finite_numbers_are_refused_in_the_config(field, value):
    from warmstart.errors import WarmstartError

    with pytest.raises(WarmstartError, match=f"parameter {field}"):
        TrainConfig(**{field: value})


def test_progress_without_a_terminal_prints_one_plain_line_per_epoch(capsys):
    from warmstart.engine import ProgressBar

    torch.manual_seed(0)
    model = create_model("cnn", (1, 12, 12), 2, widths=[4, 8])
    fit(model, create_strategy("full"), _toy_images(), _toy_images(seed=1), TrainConfig(epochs=2, batch_size=16),
        device=torch.device("cpu"), generator=torch.Generator().manual_seed(0), callbacks=[ProgressBar("finetune")])
    lines = capsys.readouterr().err.strip().splitlines()  # pytest's captured stderr is not a terminal
    assert len(lines) == 2
    assert lines[0].startswith("finetune epoch 1/2 - ") and " - loss " in lines[0] and " - val_acc " in lines[0]
    assert lines[1].startswith("finetune epoch 2/2 - ")


def test_a_resumed_log_keeps_each_epoch_once(tmp_path):
    """Killed after epoch 2's log line but before its state was saved: the resumed run redoes epoch 2, and the log
    holds epochs 1, 2, 3 once each."""
    import json

    from warmstart.engine import JsonLinesLogger

    config = TrainConfig(epochs=3, batch_size=16)
    state, log = tmp_path / "state", tmp_path / "train_log.jsonl"

    class DieBeforeSaving(Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 2:
                raise KeyboardInterrupt

    def run(callbacks, resume):
        torch.manual_seed(0)
        model = create_model("cnn", (1, 12, 12), 2, widths=[4, 8])
        fit(model, create_strategy("full"), _toy_images(), None, config, device=torch.device("cpu"),
            generator=torch.Generator().manual_seed(0), callbacks=callbacks, state_dir=state, resume=resume)

    with pytest.raises(KeyboardInterrupt):
        run([JsonLinesLogger(log), DieBeforeSaving()], resume=False)  # the logger writes epoch 2, then the kill
    with open(log, "a") as f:
        f.write('{"epoch": 2, "train_lo')  # and a line cut off by the kill
    run([JsonLinesLogger(log)], resume=True)
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1, 2, 3]
