"""The loop and its batches: shuffling is seeded, frozen parts stay frozen, callbacks see every epoch."""

from __future__ import annotations

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
