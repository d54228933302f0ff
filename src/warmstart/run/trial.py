"""One trial of a search (``warmstart tune``, the starting-point race): train on the training split, score on the
validation split, and nothing else: no run folder, no checkpoint, and the test split is never read.

The training is the run's own (:func:`warmstart.run.training.train_model`, so the one loop), with the same seeds as
``finetune``: a trial with the winner's settings trains the model the winner's run trains. Without a validation
split (few shots: ``--shots`` holds none out by default), :func:`fold_splits` cuts stratified folds out of the
training examples and the trial's score is the mean over the folds.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
import torch

from ..config import TrainConfig
from ..data import DataSplits
from ..engine import BestWeights, Callback, resolve_device
from ..engine.loop import with_default_lr
from ..errors import WarmstartError
from ..strategies import Strategy
from .starting_point import StartingPoint
from .trainer import _tensors, batch_augmentation
from .training import train_model


@dataclass(frozen=True)
class TrialResult:
    """The best validation accuracy over the epochs (whose weights the model keeps), and the per-epoch logs."""

    val_accuracy: float
    history: list[dict[str, Any]]
    steps: int


def check_folds(splits: DataSplits, folds: int) -> None:
    """Refuses ``folds`` that :func:`fold_splits` cannot cut: fewer than 2, or more than the smallest class's
    labelled training examples. A search checks it before it begins, so that a refusal leaves no study behind."""
    smallest = int(splits.labelled_train.class_counts().min())
    if folds < 2 or smallest < folds:
        raise WarmstartError(f"folds={folds}: the search validates on stratified folds of the training examples "
                             f"(this run holds no validation split out), and the smallest class has {smallest}",
                             hint="use 2 <= folds <= examples of the smallest class, or hold a validation split out "
                                  "with --val-fraction")


def fold_splits(splits: DataSplits, folds: int, seed: int) -> list[DataSplits]:
    """``folds`` stratified folds of the training examples, each a training and a validation split (the test split
    stays out: ``None``). Refused when a class has fewer examples than folds."""
    from sklearn.model_selection import StratifiedKFold

    check_folds(splits, folds)
    # the examples written from the class names train every fold and are never scored
    train = splits.labelled_train
    written = np.arange(len(train), len(splits.train))
    cut = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [DataSplits(train=splits.train.subset(np.concatenate([np.sort(fit), written])),
                       val=train.subset(np.sort(held)), test=None, synthetic=len(written))
            for fit, held in cut.split(np.zeros(len(train.y)), train.y)]


def train_trial(start: StartingPoint, strategy: Strategy, train: TrainConfig, *,
                callbacks: Sequence[Callback] = ()) -> TrialResult:
    """Train ``start.model`` in place on ``start.splits.train`` and score it on ``start.splits.val`` each epoch;
    the model ends on its best epoch's weights. ``callbacks`` see every epoch's logs (a pruner stops the trial)."""
    splits, norm, model = start.splits, start.preprocessing, start.model
    if splits.val is None:
        raise ValueError("a trial needs a validation split; see fold_splits")
    train = with_default_lr(train, model, strategy)
    device = resolve_device(train.device)
    generator = torch.Generator().manual_seed(train.seed)
    train_xy = _tensors(splits.train, norm)
    transform = batch_augmentation(splits.train, norm, train, strategy, generator)
    loop_xy = train_xy if transform is None else (torch.from_numpy(splits.train.x), train_xy[1])
    best = BestWeights(model, monitor="val_accuracy")
    history, _ = train_model(model, strategy, train, train_xy=train_xy, loop_xy=loop_xy,
                             val_xy=_tensors(splits.val, norm), batch_transform=transform, device=device,
                             generator=generator, extra_callbacks=[*callbacks, best], state_dir=None, resume=False,
                             adaptation=None, notes=[], written=splits.synthetic)
    strategy.finalize(model)
    return TrialResult(val_accuracy=float(best.best), history=history.epochs, steps=history.summary["steps"])


def on_folds(start: StartingPoint, folds: int, seed: int) -> list[StartingPoint]:
    """The starting point once per fold: the same initial model (copied), the fold's splits."""
    return [replace(start, model=copy.deepcopy(start.model), splits=fold)
            for fold in fold_splits(start.splits, folds, seed)]
