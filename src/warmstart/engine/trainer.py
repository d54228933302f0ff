"""What the run layer calls to train a model with a strategy: :func:`train`.

Around the one training loop (:func:`warmstart.engine.loop.fit`) it does what a strategy declares it needs before
the steps begin: a frozen backbone run once over the data into the feature cache (the head then trains alone on the
features, or is solved by L-BFGS), the head fitted first by L-BFGS (LP-FT's probe), and the one place where a
strategy refuses settings (``Strategy.check``). It asks the strategy only what ``strategies/base.py`` declares.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch

from ..config import TrainConfig
from ..models import TransferModel
from ..strategies import Strategy
from .callbacks import Callback
from .distributed import Transform
from .distributed import current as distributed_state
from .features import default_cache_dir, shared_features
from .logistic import fit_linear_head
from .loop import History, fit

if TYPE_CHECKING:
    from ..adaptation import FeatureAlignment

log = logging.getLogger("warmstart")


def _note(notes: list[str], message: str) -> None:
    notes.append(message)
    log.info(message)


def feature_cache_dir(strategy: Strategy) -> Path | None:
    """Where the strategy's cached features are kept across runs: a folder for ``feature_cache="disk"``, else None
    (memory only)."""
    return default_cache_dir() if strategy.feature_cache == "disk" else None


def head_only(model: TransferModel) -> TransferModel:
    """A model whose input is ``model``'s features and whose head *is* ``model``'s head (shared, not copied)."""
    probe = TransferModel(torch.nn.Identity(), model.num_features, model.num_classes, arch=model.arch,
                          arch_args=model.arch_args, input_shape=(model.num_features,))
    probe.head = model.head
    return probe


def train(model: TransferModel, strategy: Strategy, train: tuple[torch.Tensor, torch.Tensor],
          val: tuple[torch.Tensor, torch.Tensor] | None, config: TrainConfig, *, device: torch.device,
          generator: torch.Generator, callbacks: Sequence[Callback] = (), state_dir: Path | None = None,
          resume: bool = False, batch_transform: Transform | None = None,
          transform_inputs: torch.Tensor | None = None, alignment: "FeatureAlignment | None" = None,
          notes: list[str] | None = None, written: int = 0) -> History:
    """Train ``model`` in place with ``strategy`` on ``train`` (the model's inputs, preprocessed, and the labels);
    returns the history, whose summary also holds ``feature_time_s`` when a feature cache was filled.

    ``batch_transform`` (augmentation, mixing) takes ``transform_inputs`` (the un-normalised images) in the loop;
    what runs outside the loop (a probe, cached features) sees ``train``'s clean inputs. ``alignment``: domain
    adaptation in the loop. What happens along the way is added to ``notes`` and logged. ``written``: the last
    rows of ``train`` are examples written from the class names, which a probe's cross-validation never scores.
    """
    notes = [] if notes is None else notes
    strategy.check(config, train=train, distributed=distributed_state().enabled, resume=resume,
                   aligned=alignment is not None, augmented=batch_transform is not None)
    common = dict(device=device, generator=generator, callbacks=callbacks, state_dir=state_dir, resume=resume,
                  written=written)
    if strategy.uses_feature_cache:
        return _train_head_on_features(model, strategy, train, val, config, notes, **common)
    if strategy.probe_first and not resume:  # a resumed run's weights already hold the probed head
        _probe_head_first(model, strategy, train, config, device, notes, written)
    inputs = train if transform_inputs is None else (transform_inputs, train[1])
    return fit(model, strategy, inputs, val, config, batch_transform=batch_transform, alignment=alignment, **common)


def _train_head_on_features(model: TransferModel, strategy: Strategy, train: tuple[torch.Tensor, torch.Tensor],
                            val: tuple[torch.Tensor, torch.Tensor] | None, config: TrainConfig, notes: list[str],
                            *, device: torch.device, **loop) -> History:
    """The backbone is frozen: run it once (per view), then train or solve the head alone on its features."""
    disk, views = feature_cache_dir(strategy), strategy.feature_views()
    counted = f"{len(train[1])} training examples" + (f" x {len(views)} views" if len(views) > 1 else "")
    log.info("%s: computing the backbone features of %s", strategy.name, counted)  # a long phase: say so first
    started = time.perf_counter()
    features = torch.cat([shared_features(model, train[0], device, disk=disk, view=name, transform=transform)
                          for name, transform in views])
    train_features = (features, train[1].repeat(len(views)))
    if val is not None:
        val = (shared_features(model, val[0], device, disk=disk), val[1])
    feature_time = time.perf_counter() - started
    _note(notes, f"{strategy.name}: backbone features of {counted} ready in {feature_time:.2f} s; the head trains "
                 "on them")
    history = fit(head_only(model), strategy, train_features, val, config, device=device, **loop)
    if strategy.head_solver == "lbfgs" and history.epochs:
        fitted = history.epochs[-1]
        how = "chosen by cross-validation" if strategy.C == "auto" else "given"
        _note(notes, f"{strategy.name}: head fitted by L-BFGS to convergence in {fitted['iterations']} iterations, "
                     f"C={fitted['C']:.4g} ({how})")
    # the extraction is part of what this strategy costs to train
    history.summary["feature_time_s"] = feature_time
    history.summary["train_time_s"] += feature_time
    return history


def _probe_head_first(model: TransferModel, strategy: Strategy, train: tuple[torch.Tensor, torch.Tensor],
                      config: TrainConfig, device: torch.device, notes: list[str], written: int = 0) -> None:
    """Fit the head to convergence on the frozen backbone's features, before any layer fine-tunes."""
    started = time.perf_counter()
    log.info("%s: fitting a linear probe by L-BFGS on the frozen backbone's features first", strategy.name)
    features = shared_features(model, train[0], device)
    logs, _ = fit_linear_head(model.head, (features, train[1]), None, C=strategy.C, seed=config.seed,
                              written=written)
    _note(notes, f"{strategy.name}: linear probe fitted by L-BFGS first (C={logs['C']:.4g} by cross-validation, "
                 f"training accuracy {logs['train_accuracy']:.3f}, {time.perf_counter() - started:.2f} s); then every "
                 "layer trains")
