"""Resuming an interrupted run gives exactly the run that was never interrupted, across phase changes too."""

from __future__ import annotations

import pytest
import torch

from warmstart.config import TrainConfig
from warmstart.engine import BestWeights, Callback, fit
from warmstart.errors import WarmstartError
from warmstart.models import create_model
from warmstart.strategies import create_strategy


class Interrupt(Callback):
    def __init__(self, after_epoch: int):
        self.after_epoch = after_epoch

    def on_epoch_end(self, epoch, logs):
        if epoch == self.after_epoch:
            raise KeyboardInterrupt


def _data(seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(48) % 3
    return torch.randn(48, 1, 12, 12, generator=g) + y.view(-1, 1, 1, 1).float(), y


def _run(strategy_name, config, state_dir=None, interrupt_after=None, resume=False):
    torch.manual_seed(0)
    model = create_model("cnn", (1, 12, 12), 3, widths=[4, 8])
    best = BestWeights(model)
    callbacks = [best] + ([Interrupt(interrupt_after)] if interrupt_after else [])
    history = fit(model, create_strategy(strategy_name), _data(0), _data(1), config, device=torch.device("cpu"),
                  generator=torch.Generator().manual_seed(0), callbacks=callbacks, state_dir=state_dir,
                  resume=resume)
    return model, history


@pytest.mark.parametrize("strategy_name, interrupt_after", [("lp-ft", 3), ("gradual-unfreeze", 4), ("full", 2)])
def test_resumed_run_equals_the_uninterrupted_one(strategy_name, interrupt_after, tmp_path):
    config = TrainConfig(epochs=5, batch_size=8, optimizer="adamw", schedule="cosine", lr=3e-3)
    straight, straight_history = _run(strategy_name, config)
    with pytest.raises(KeyboardInterrupt):
        _run(strategy_name, config, state_dir=tmp_path, interrupt_after=interrupt_after)
    resumed, resumed_history = _run(strategy_name, config, state_dir=tmp_path, resume=True)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    strip = lambda h: [{k: v for k, v in e.items() if k != "epoch_time_s"} for e in h.epochs]  # noqa: E731
    assert strip(resumed_history) == strip(straight_history)
    assert resumed_history.summary["best_epoch"] == straight_history.summary["best_epoch"]


def test_resume_without_state_or_with_mismatched_files_is_a_clear_error(tmp_path):
    config = TrainConfig(epochs=2, batch_size=8)
    with pytest.raises(WarmstartError, match="no training state to resume from"):
        _run("full", config, state_dir=tmp_path, resume=True)
    _run("full", TrainConfig(epochs=1, batch_size=8), state_dir=tmp_path / "a")
    _run("full", TrainConfig(epochs=2, batch_size=8), state_dir=tmp_path / "b")
    (tmp_path / "b" / "trainer.pt").replace(tmp_path / "a" / "trainer.pt")  # epoch 2 trainer, epoch 1 weights
    with pytest.raises(WarmstartError, match="weights are from epoch 1 but the trainer state from epoch 2"):
        _run("full", config, state_dir=tmp_path / "a", resume=True)
