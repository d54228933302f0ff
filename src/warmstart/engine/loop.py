"""The training loop: short enough to read in one sitting. Strategies decide what trains; callbacks observe."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
from torch import nn

from ..config import TrainConfig
from ..errors import WarmstartError
from ..models import TransferModel
from ..strategies import Strategy
from .batches import TensorBatches
from .callbacks import Callback
from .distributed import DataParallel, StepBatches, gather_rows, sum_across_ranks
from .distributed import current as distributed_state
from .optim import build_optimizer, build_scheduler
from .precision import Precision
from .state import load_training_state, save_training_state

if TYPE_CHECKING:
    from ..adaptation import FeatureAlignment

log = logging.getLogger("warmstart")


@dataclass
class History:
    epochs: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


# Inference batches of 128: on a CPU, 512 ran about 2x slower (the activations no longer fit the caches).
@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 128) -> torch.Tensor:
    model.eval()
    outputs = [model(x[i:i + batch_size].to(device, non_blocking=True)).float().cpu()
               for i in range(0, len(x), batch_size)]
    return torch.cat(outputs) if outputs else torch.empty(0)


def training_batches_and_loss(train: tuple[torch.Tensor, torch.Tensor], num_classes: int, config: TrainConfig,
                              device: torch.device, generator: torch.Generator) -> tuple[TensorBatches, nn.Module]:
    """The shuffled (or class-balanced) batches and the training loss that ``config`` asks for."""
    counts = torch.bincount(train[1], minlength=num_classes).float()
    balanced = counts.sum() / (len(counts) * counts.clamp(min=1))  # n / (C * n_c), scikit-learn's "balanced"
    batches = TensorBatches(*train, config.batch_size, shuffle=True, generator=generator,
                            weights=balanced[train[1]] if config.class_balance == "sampler" else None)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing,
                                  weight=balanced.to(device) if config.class_balance == "weights" else None)
    return batches, loss_fn


def with_default_lr(config: TrainConfig, model: TransferModel, strategy: Strategy) -> TrainConfig:
    """``config``, with the strategy's default learning rate for ``model`` when it sets none."""
    return config if config.lr is not None else replace(config, lr=strategy.default_lr(model))


def optimization_step(model: nn.Module, strategy: Strategy, optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                      config: TrainConfig) -> None:
    """Backpropagate ``loss`` plus the strategy's penalty (L2-SP's, say), clip if asked, and step."""
    penalty = strategy.penalty(model)
    optimizer.zero_grad(set_to_none=True)
    (loss if penalty is None else loss + penalty).backward()
    if config.grad_clip_norm is not None:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], config.grad_clip_norm)
    optimizer.step()


def fit(model: TransferModel, strategy: Strategy, train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor] | None, config: TrainConfig, *, device: torch.device,
        generator: torch.Generator, callbacks: Sequence[Callback] = (), state_dir: Path | None = None,
        resume: bool = False,
        batch_transform: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
        alignment: "FeatureAlignment | None" = None,
        ) -> History:
    """Train ``model`` in place with ``strategy``; returns the per-epoch logs.

    ``batch_transform(x, y) -> (inputs, targets)`` turns each training batch into the model's inputs and the loss
    targets (class indices or probabilities): augmentation and mixup hook in here (see ``data.augment``).

    With ``state_dir``, the full training state is saved there after every epoch; with ``resume``, training
    continues from the state saved there (same model, strategy and config), exactly as if never interrupted.
    With ``alignment`` (unsupervised domain adaptation, :mod:`warmstart.adaptation`), each step also aligns the
    backbone's features of the source batch with those of an unlabelled target batch.
    Under torchrun the same loop runs in every process (see :mod:`warmstart.engine.distributed`); only rank 0
    saves the state. Mixed precision, gradient accumulation, channels-last and compile: :mod:`.precision`.
    """
    model.to(device)
    config = with_default_lr(config, model, strategy)
    strategy.prepare(model, config.epochs)
    optimizer = build_optimizer(strategy.param_groups(model, config.lr, config.weight_decay), config)
    global_batches, loss_fn = training_batches_and_loss(train, model.num_classes, config, device, generator)
    ranks, precision = distributed_state(), Precision(config, device)
    # one item per optimizer step; batch_transform runs on each whole batch before it is shared out
    batches = StepBatches(global_batches, config.grad_accumulation, ranks, transform=batch_transform)
    parallel, runner = DataParallel(ranks, device), precision.prepare_model(model)
    if alignment is not None:
        if resume:
            raise ValueError("resuming a run with domain adaptation is not supported")
        if ranks.enabled:  # its loss runs the bare model, outside the DDP wrapper: gradients would not be averaged
            raise WarmstartError("domain adaptation (--adaptation) does not run under DDP yet",
                                 hint="run it in one process (drop --nproc / torchrun)")
        alignment.attach(optimizer, config, device)  # its parameters (DANN's discriminator) train too
    scheduler = build_scheduler(optimizer, config, len(batches))
    val_loss_fn = nn.CrossEntropyLoss()  # plain, so validation losses compare across settings
    history = History()
    first_epoch = 1
    if resume:
        if state_dir is None:
            raise ValueError("resume needs the state_dir to resume from")
        done, history.epochs = load_training_state(state_dir, model=model, optimizer=optimizer, scheduler=scheduler,
                                                   generator=generator, callbacks=callbacks)
        first_epoch = done + 1
        log.info("resuming after epoch %d of %d", done, config.epochs)
    begin = {"epochs": config.epochs, "steps_per_epoch": len(batches), "first_epoch": first_epoch}
    for cb in callbacks:
        cb.on_train_begin(begin)

    step, start = (first_epoch - 1) * len(batches), time.perf_counter()
    try:
        for epoch in range(first_epoch, config.epochs + 1):
            note = strategy.begin_epoch(model, epoch)
            if note:
                log.info(note)
            strategy.train_mode(model, frozen_batchnorm=config.frozen_batchnorm)
            train_model = parallel.for_phase(model, runner)
            epoch_start = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen = 0
            for micro_batches in batches:
                optimizer.zero_grad(set_to_none=True)
                for index, (xb, targets, yb, weight) in enumerate(micro_batches):
                    xb, yb = precision.inputs(xb.to(device, non_blocking=True)), yb.to(device, non_blocking=True)
                    targets = targets.to(device, non_blocking=True)
                    with parallel.gradient_sync(train_model, sync=index == len(micro_batches) - 1):
                        with precision.autocast():
                            if alignment is None:
                                logits = train_model(xb)
                                loss = loss_fn(logits.float(), targets)
                            else:  # domain adaptation: source and target through the backbone, plus the alignment
                                progress = step / (config.epochs * len(batches))  # no resume here: step from 0
                                logits, loss = alignment.step(model, xb, targets, loss_fn, progress)
                        penalty = strategy.penalty(model)
                        precision.backward((loss.float() if penalty is None else loss.float() + penalty) * weight)
                    # accumulate on the device; reading a value back every step would stall a GPU
                    loss_sum += loss.detach().float() * len(yb)
                    correct += (logits.detach().argmax(1) == yb).sum()
                    seen += len(yb)
                precision.step(optimizer, model, config.grad_clip_norm)
                scheduler.step()
                step += 1
                for cb in callbacks:
                    cb.on_batch_end(step, {"loss": lambda: float(loss.detach())})
            loss_sum, correct, seen = sum_across_ranks(loss_sum, correct, torch.tensor(seen))
            logs: dict[str, Any] = {"epoch": epoch, "train_loss": float(loss_sum) / int(seen),
                                    "train_accuracy": float(correct) / int(seen),
                                    "lr": optimizer.param_groups[0]["lr"], "steps_per_epoch": len(batches)}
            # the layer groups this epoch trained: a strategy's phases (lp-ft, gradual-unfreeze) show in the logs
            training_now = getattr(strategy, "current_", None) or ()
            logs["trainable"] = "+".join(name for name, _ in model.layer_groups() if name in training_now)
            if alignment is not None:
                logs.update(alignment.epoch_logs())
            if val is not None:
                logits = gather_rows(lambda rows: predict_logits(model, rows, device), val[0])
                logs["val_loss"] = float(val_loss_fn(logits, val[1]))
                logs["val_accuracy"] = float((logits.argmax(1) == val[1]).float().mean())
            logs["epoch_time_s"] = time.perf_counter() - epoch_start
            history.epochs.append(logs)
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if state_dir is not None and ranks.is_main:
                save_training_state(state_dir, epoch=epoch, model=model, optimizer=optimizer, scheduler=scheduler,
                                    generator=generator, history=history.epochs, callbacks=callbacks)
            if any(getattr(cb, "stop_training", False) for cb in callbacks):
                break
    finally:  # on an error or interrupt too: the log is closed and the progress bar stopped
        history.summary = {"train_time_s": time.perf_counter() - start, "steps": step}
        for cb in callbacks:
            cb.on_train_end(history.summary)
    return history
