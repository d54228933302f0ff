"""The training dispatch: which path trains a strategy, moved here verbatim from ``api.py`` so that it can be
replaced in one piece by the single engine loop (issue 13, item 1). The trainer (:mod:`warmstart.run.trainer`)
prepares everything around it (data tensors, callbacks, the run folder) and calls :func:`train_model`;
``lr_find`` calls :func:`lr_range`.

Today's paths: a frozen backbone's cached features with the head trained by the loop or solved by L-BFGS; the
contrastive-pairs loop (SetFit); the main loop, after an L-BFGS probe for lp-ft.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig
from ..data import Dataset
from ..data.augment import augment
from ..engine import Callback, fit
from ..engine.contrastive import fit_contrastive
from ..engine.distributed import gather_rows
from ..engine.features import cached_features, default_cache_dir
from ..engine.logistic import fit_linear_head
from ..engine.loop import History
from ..engine.lr_find import LrFindResult, lr_range_test
from ..errors import WarmstartError
from ..models import TransferModel
from ..strategies import Strategy

log = logging.getLogger("warmstart")


def _note(notes: list[str], message: str) -> None:
    notes.append(message)
    log.info(message)


def train_model(model: TransferModel, strategy: Strategy, splits, train: TrainConfig, *, train_xy, loop_xy, val_xy,
                batch_transform, device: torch.device, generator: torch.Generator, extra_callbacks: list[Callback],
                state_dir: Path | None, resume: bool, adaptation, distributed_run: bool,
                notes: list[str]) -> tuple[History, Path | None]:
    """Train ``model`` with ``strategy``; returns the history and the feature cache's disk folder (None: memory),
    which scoring the test split reuses."""
    disk = default_cache_dir() if getattr(strategy, "cache", "memory") == "disk" else None
    if strategy.uses_feature_cache:
        # the backbone is frozen: run it once, then train the head alone on its features
        started_features = time.perf_counter()
        train_xy = _probe_training_features(model, strategy, train_xy, device, disk)
        if val_xy is not None:
            val_xy = (backbone_features(model, val_xy[0], device, disk), val_xy[1])
        feature_time = time.perf_counter() - started_features
        views = getattr(strategy, "views", 1)
        counted = f"{len(splits.train)} training examples" + (f" x {views} views" if views > 1 else "")
        _note(notes, f"{strategy.name}: backbone features of {counted} ready in {feature_time:.2f} s; the head "
                     "trains on them")
        if getattr(strategy, "solver", "loop") == "lbfgs":
            history = _fit_head_to_convergence(model, strategy, train_xy, val_xy, train, extra_callbacks, notes)
        else:
            history = fit(_head_only(model), strategy, train_xy, val_xy, train, device=device,
                          generator=generator, callbacks=extra_callbacks, state_dir=state_dir, resume=resume)
        # the extraction is part of what this strategy costs to train
        history.summary["feature_time_s"] = feature_time
        history.summary["train_time_s"] += feature_time
    elif strategy.objective == "contrastive-pairs":  # setfit: pairs train the encoder, then the head is fitted
        _check_contrastive(strategy, splits.train, train, distributed_run, resume, adaptation, batch_transform)
        history = fit_contrastive(model, strategy, train_xy, val_xy, train, device=device, generator=generator,
                                  callbacks=extra_callbacks)
    else:
        if getattr(strategy, "probe", None) == "lbfgs" and not resume:  # lp-ft, as the paper ran it
            _probe_head_first(model, strategy, train_xy, train, device, notes)
        history = fit(model, strategy, loop_xy, val_xy, train, device=device, generator=generator,
                      callbacks=extra_callbacks, state_dir=state_dir, resume=resume, batch_transform=batch_transform,
                      alignment=None if adaptation is None else adaptation.alignment(model, train.seed))
    return history, disk


def lr_range(model: TransferModel, strategy: Strategy, train_xy: tuple[torch.Tensor, torch.Tensor],
             train: TrainConfig, device: torch.device, start_lr: float, end_lr: float, steps: int) -> LrFindResult:
    """lr-find's range test from the starting point (see :mod:`warmstart.engine.lr_find`)."""
    if strategy.objective != "cross-entropy":
        raise WarmstartError(f"lr-find runs the cross-entropy loop, and {strategy.name} trains on {strategy.objective}",
                             hint=f"run {strategy.name} at its default rate ({strategy.default_lr(model):g}, without "
                                  "--lr), or compare a few rates with `warmstart compare`")
    return lr_range_test(model, strategy, train_xy, train, device, torch.Generator().manual_seed(train.seed),
                         start_lr, end_lr, steps)


def _probe_training_features(model: TransferModel, strategy: Strategy, train_xy: tuple[torch.Tensor, torch.Tensor],
                             device: torch.device, disk: Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached features of the training set: the clean view, and ``strategy.views - 1`` augmented views."""
    x, y = train_xy
    views = getattr(strategy, "views", 1)
    if views > 1 and x.ndim != 4:
        raise WarmstartError(f"{strategy.name}: views={views} augments images, but the inputs are vectors of shape "
                             f"{tuple(x.shape[1:])}", hint="use views=1 for vector data")
    features = [backbone_features(model, x, device, disk)]
    for view in range(1, views):
        tag = f"{strategy.augment}:{view}"
        features.append(backbone_features(model, x, device, disk, view=tag,
                                  transform=lambda x, v=view: augment(x, strategy.augment, seed=v)))
    return torch.cat(features), y.repeat(views)


def _fit_head_to_convergence(model: TransferModel, strategy: Strategy, train_xy, val_xy, train: TrainConfig,
                             callbacks: list[Callback], notes: list[str]) -> History:
    """The probe's head as a logistic regression solved by L-BFGS: one "epoch" in the logs, callbacks told so."""
    history = History()
    for cb in callbacks:
        cb.on_train_begin({"epochs": 1, "steps_per_epoch": 1, "first_epoch": 1})
    try:
        logs, history.summary = fit_linear_head(model.head, train_xy, val_xy, C=strategy.C, seed=train.seed)
        history.epochs.append(logs)
        for cb in callbacks:
            cb.on_epoch_end(1, logs)
    finally:
        for cb in callbacks:
            cb.on_train_end(history.summary)
    how = "chosen by cross-validation" if strategy.C == "auto" else "given"
    _note(notes, f"{strategy.name}: head fitted by L-BFGS to convergence in {logs['iterations']} iterations, "
                 f"C={logs['C']:.4g} ({how})")
    return history


def _check_contrastive(strategy: Strategy, dataset: Dataset, train: TrainConfig, distributed_run: bool,
                       resume: bool, adaptation, batch_transform) -> None:
    """What the contrastive-pairs loop does not support yet, refused up front with the way out."""
    refusals = [(resume, "cannot be resumed", "start the run again without --resume"),
                (distributed_run, "runs in one process only", "drop --nproc / torchrun"),
                (adaptation is not None, "does not combine with --adaptation", "drop --adaptation"),
                (batch_transform is not None, "does not combine with --augment or --mix", "drop them"),
                (train.grad_accumulation != 1, "does not accumulate gradients", "use --grad-accumulation 1 "
                 "and set --batch-size to the pairs per step"),
                (dataset.num_classes < 2, "needs at least two classes", "use data with two or more labels")]
    for refused, what, hint in refusals:
        if refused:
            raise WarmstartError(f"--strategy {strategy.name} {what}", hint=hint)


def _probe_head_first(model: TransferModel, strategy: Strategy, train_xy, train: TrainConfig, device: torch.device,
                      notes: list[str]) -> None:
    """Fit the head to convergence on the frozen backbone's features, before any layer fine-tunes."""
    started = time.perf_counter()
    features = backbone_features(model, train_xy[0], device, None)
    logs, _ = fit_linear_head(model.head, (features, train_xy[1]), None, seed=train.seed)
    _note(notes, f"{strategy.name}: linear probe fitted by L-BFGS first (C={logs['C']:.4g} by cross-validation, "
                 f"training accuracy {logs['train_accuracy']:.3f}, {time.perf_counter() - started:.2f} s); then every "
                 "layer trains")


def backbone_features(model: TransferModel, x: torch.Tensor, device: torch.device, disk: Path | None,
              **view: Any) -> torch.Tensor:
    """Cached backbone features of ``x``; under DDP each rank extracts (and caches) its share of the rows, and
    the shares are gathered, so the backbone runs over the data once in all."""
    return gather_rows(lambda rows: cached_features(model, rows, device, disk=disk, **view)[0], x)


def _head_only(model: TransferModel) -> TransferModel:
    """A model whose input is ``model``'s features and whose head *is* ``model``'s head (shared, not copied)."""
    probe = TransferModel(torch.nn.Identity(), model.num_features, model.num_classes, arch=model.arch,
                          arch_args=model.arch_args, input_shape=(model.num_features,))
    probe.head = model.head
    return probe
