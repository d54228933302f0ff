"""The run layer's two calls into the engine: training a model with a strategy, and lr-find's range test.

Everything a strategy needs around the steps (a feature cache, an L-BFGS probe first, its refusals) is declared on
the strategy and handled by :func:`warmstart.engine.trainer.train`; every step runs in the one loop,
:func:`warmstart.engine.loop.fit`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import TrainConfig
from ..engine import Callback
from ..engine import trainer
from ..engine.loop import History
from ..engine.lr_find import LrFindResult, lr_range_test
from ..models import TransferModel
from ..strategies import Strategy


def train_model(model: TransferModel, strategy: Strategy, train: TrainConfig, *, train_xy, loop_xy, val_xy,
                batch_transform, device: torch.device, generator: torch.Generator, extra_callbacks: list[Callback],
                state_dir: Path | None, resume: bool, adaptation, notes: list[str],
                written: int = 0) -> tuple[History, Path | None]:
    """Train ``model`` with ``strategy``; returns the history and the feature cache's disk folder (None: memory),
    which scoring the test split reuses."""
    history = trainer.train(model, strategy, train_xy, val_xy, train, device=device, generator=generator,
                            callbacks=extra_callbacks, state_dir=state_dir, resume=resume,
                            batch_transform=batch_transform, transform_inputs=loop_xy[0], notes=notes, written=written,
                            alignment=None if adaptation is None else adaptation.alignment(model, train.seed))
    return history, trainer.feature_cache_dir(strategy)


def lr_range(model: TransferModel, strategy: Strategy, train_xy: tuple[torch.Tensor, torch.Tensor],
             train: TrainConfig, device: torch.device, start_lr: float, end_lr: float, steps: int) -> LrFindResult:
    """lr-find's range test from the starting point (see :mod:`warmstart.engine.lr_find`)."""
    return lr_range_test(model, strategy, train_xy, train, device, torch.Generator().manual_seed(train.seed),
                         start_lr, end_lr, steps)
