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


def test_a_kill_between_the_two_state_files_leaves_a_resumable_run(tmp_path, monkeypatch):
    """Saving epoch 2 dies after the new weights are in place but before the trainer state is: the previous epoch's
    weights are kept beside them, so the run resumes from epoch 1 and ends as the uninterrupted run does."""
    import warmstart.engine.state as state_module

    config = TrainConfig(epochs=3, batch_size=8, optimizer="adamw", lr=3e-3)
    straight, _ = _run("full", config)
    real_write = state_module.atomic_write

    def killed_at_epoch_2(path, write):
        if state_module.TRAINER in str(path) and (tmp_path / state_module.WEIGHTS).is_file():
            from safetensors import safe_open

            with safe_open(str(tmp_path / state_module.WEIGHTS), framework="pt") as f:
                if f.metadata()["epoch"] == "2":
                    raise KeyboardInterrupt  # the process dies here
        return real_write(path, write)

    monkeypatch.setattr(state_module, "atomic_write", killed_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        _run("full", config, state_dir=tmp_path)
    monkeypatch.setattr(state_module, "atomic_write", real_write)
    assert torch.load(tmp_path / state_module.TRAINER, weights_only=True)["epoch"] == 1  # weights: epoch 2
    resumed, history = _run("full", config, state_dir=tmp_path, resume=True)
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3]
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))


class _Refused:
    """A class weights_only=True refuses to build: a pickle that would run code on load."""

    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize("damage, message", [
    (lambda d: torch.save({"epoch": 1, "evil": _Refused()}, d / "trainer.pt"), "trainer.pt: UnpicklingError"),
    (lambda d: (d / "trainer.pt").write_bytes(bytes(range(256)) * 4), "trainer.pt"),
    (lambda d: (d / "trainer.pt").write_bytes((d / "trainer.pt").read_bytes()[:300]), "trainer.pt"),
    (lambda d: torch.save({k: v for k, v in torch.load(d / "trainer.pt", weights_only=True).items()
                           if k != "optimizer"}, d / "trainer.pt"), "'optimizer' should be a dict, found nothing"),
    (lambda d: (d / "weights.safetensors").write_bytes(b"\x00" * 64), "weights.safetensors"),
    (lambda d: torch.save(["not", "a", "dict"], d / "trainer.pt"), "holds a list"),
])
def test_a_damaged_or_hostile_state_is_a_clear_error(tmp_path, damage, message, capsys):
    config = TrainConfig(epochs=2, batch_size=8)
    _run("full", TrainConfig(epochs=1, batch_size=8), state_dir=tmp_path)
    damage(tmp_path)
    with pytest.raises(WarmstartError, match=message) as error:
        _run("full", config, state_dir=tmp_path, resume=True)
    assert error.value.hint and "--resume" in error.value.hint
    assert "this must never run" not in capsys.readouterr().out


def test_a_state_that_does_not_fit_the_model_is_a_clear_error(tmp_path):
    _run("full", TrainConfig(epochs=1, batch_size=8), state_dir=tmp_path)
    torch.manual_seed(0)
    other = create_model("cnn", (1, 12, 12), 3, widths=[4, 4])  # another width: the weights do not fit
    with pytest.raises(WarmstartError, match="does not fit this run's model"):
        fit(other, create_strategy("full"), _data(0), None, TrainConfig(epochs=2, batch_size=8),
            device=torch.device("cpu"), generator=torch.Generator().manual_seed(0), state_dir=tmp_path, resume=True)
