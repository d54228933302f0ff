"""finetune --adapt-on (issue 17): the stage resumes from its own state and is never trained twice, and it combines
with --from auto, compare and lr-find."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig, api
from warmstart.config import AdaptConfig
from warmstart.engine import Callback, loop
from warmstart.errors import WarmstartError

CNN = ModelConfig("cnn", {"widths": [4, 8]})
STAGE = AdaptConfig("self", epochs=3, batch_size=32, lr=1e-3)
TRAIN = TrainConfig(epochs=3, batch_size=16, progress=False, trackers=())


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
    assert saves == [("adapt", 2), ("adapt", 3), ("supervised", 1), ("supervised", 2), ("supervised", 3)]
    assert same_weights(resumed, whole)
    assert resumed.info.extra["self_supervised"] == whole.info.extra["self_supervised"]
    assert any("resumed from its saved state" in n for n in resumed.notes)
    assert not (out / "adapt").exists() and not (out / "state").exists()  # a finished run leaves nothing


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
    assert saves == [("supervised", 2), ("supervised", 3)]  # no epoch of the stage ran again
    assert same_weights(resumed, whole)
    assert resumed.info.extra["self_supervised"] == whole.info.extra["self_supervised"]
