"""The training loop: short enough to read in one sitting. Strategies decide what trains; callbacks observe."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
from torch import nn

from ..config import DEFAULT_EPOCHS, TrainConfig
from ..errors import TrainingDiverged, WarmstartError
from ..models import TransferModel
from ..strategies import Strategy
from .batches import CycledBatches, TensorBatches
from .callbacks import Callback
from .features import extract_features
from .logistic import fit_linear_head
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


def with_default_epochs(config: TrainConfig) -> TrainConfig:
    """``config``, with :data:`~warmstart.config.DEFAULT_EPOCHS` when it sets no budget (the run layer resolves
    ``auto``'s scaled budget before training; this is the loop's own fallback)."""
    return config if config.epochs is not None else replace(config, epochs=DEFAULT_EPOCHS)


def solve_head(model: TransferModel, strategy: Strategy, train: tuple[torch.Tensor, torch.Tensor],
               device: torch.device, seed: int, written: int = 0) -> dict[str, Any]:
    """Fit ``model``'s head to convergence by L-BFGS on the backbone's embeddings of the training inputs (each rank
    embeds its share of the rows); returns the fit's logs (train loss and accuracy, C, iterations)."""
    features = gather_rows(lambda rows: extract_features(model, rows, device), train[0])
    logs, _ = fit_linear_head(model.head, (features, train[1]), None, C=strategy.C, seed=seed, written=written)
    return {k: v for k, v in logs.items() if k not in ("epoch", "epoch_time_s")}


def parameters_finite(model: nn.Module) -> bool:
    """Whether every trainable parameter is finite (one device sync for all of them)."""
    checks = [p.detach().isfinite().all() for p in model.parameters() if p.requires_grad]
    return not checks or bool(torch.stack(checks).all())


def _diverged(epoch: int, loss: float, lr: float) -> TrainingDiverged:
    return TrainingDiverged(f"training diverged in epoch {epoch}: the training loss is {loss} at learning rate {lr:g}; "
                          f"the weights of epoch {epoch - 1} were restored and the run stopped without a result",
                          hint=f"lower the learning rate (--lr {lr / 10:g}, or find one with `warmstart lr-find`), "
                               "or clip gradients with --grad-clip-norm 1.0")


def _interrupted_note(epoch: int, state_dir: Path | None, saved: int) -> str:
    if state_dir is None:  # what the caller keeps (an --overwrite run's earlier run, a search's study) it says
        return f"interrupted in epoch {epoch}; this training keeps no state to resume from"
    if saved < 1:
        return f"interrupted in epoch {epoch}, before any epoch's state was saved: run the command again to start over"
    return (f"interrupted in epoch {epoch}; the training state after epoch {saved} is saved in {state_dir}: run the "
            "same command again with --resume to continue from there")


def _stop_requested(callbacks: Sequence[Callback]) -> bool:
    return any(cb.stop_training for cb in callbacks)


def fit(model: TransferModel, strategy: Strategy, train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor] | None, config: TrainConfig, *, device: torch.device,
        generator: torch.Generator, callbacks: Sequence[Callback] = (), state_dir: Path | None = None,
        resume: bool = False,
        batch_transform: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
        alignment: "FeatureAlignment | None" = None, steps_per_epoch: int | None = None,
        written: int = 0) -> History:
    """Train ``model`` in place with ``strategy``; returns the per-epoch logs. Every training step of warmstart
    happens here.

    The strategy decides what a step minimises (``compute_loss`` on ``training_module``), where the batches come
    from (``training_batches``: SetFit's pairs) and whether the head is solved by L-BFGS after each epoch
    (``head_solver``); a head-only strategy whose head is solved so takes one closed-form "epoch" and no gradient
    steps. ``batch_transform(x, y) -> (inputs, targets)`` turns each training batch into the model's inputs and the
    loss targets (class indices or probabilities): augmentation and mixup hook in here (see ``data.augment``).
    ``steps_per_epoch`` makes every epoch exactly that many steps, cycling through the data (lr-find).

    With ``state_dir``, the full training state is saved there after every epoch; with ``resume``, training
    continues from the state saved there (same model, strategy and config), exactly as if never interrupted.
    With ``alignment`` (unsupervised domain adaptation, :mod:`warmstart.adaptation`), each step also aligns the
    backbone's features of the source batch with those of an unlabelled target batch.
    Under torchrun the same loop runs in every process (see :mod:`warmstart.engine.distributed`); only rank 0
    saves the state. Mixed precision, gradient accumulation, channels-last and compile: :mod:`.precision`.

    A callback stops training by setting ``stop_training``: the loop checks after every step and every epoch. An
    epoch whose training loss or weights are not finite (a learning rate too high) restores the weights of the
    epoch before and raises :class:`WarmstartError`, unless a callback stopped it (lr-find stops on divergence).
    """
    model.to(device)
    config = with_default_epochs(with_default_lr(config, model, strategy))
    strategy.prepare(model, config.epochs)
    optimizer = build_optimizer(strategy.param_groups(model, config.lr, config.weight_decay), config)
    global_batches, loss_fn = training_batches_and_loss(train, model.num_classes, config, device, generator)
    own_batches = strategy.training_batches(train, config, generator)
    global_batches = global_batches if own_batches is None else own_batches
    if steps_per_epoch is not None:
        global_batches = CycledBatches(global_batches, steps_per_epoch)
    ranks, precision = distributed_state(), Precision(config, device)
    gradient_steps = strategy.trains_by_gradient
    epochs = config.epochs if gradient_steps else 1  # a head solved in closed form: nothing to repeat
    # one item per optimizer step; batch_transform runs on each whole batch before it is shared out
    batches = StepBatches(global_batches, config.grad_accumulation, ranks, transform=batch_transform) \
        if gradient_steps else ()
    steps_per_epoch = len(batches) if gradient_steps else 1
    parallel, runner = DataParallel(ranks, device), precision.prepare_model(strategy.training_module(model))
    if alignment is not None:
        if resume:
            raise ValueError("resuming a run with domain adaptation is not supported")
        if ranks.enabled:  # its loss runs the bare model, outside the DDP wrapper: gradients would not be averaged
            raise WarmstartError("domain adaptation (--adaptation) does not run under DDP yet",
                                 hint="run it in one process (drop --nproc / torchrun)")
        alignment.attach(optimizer, config, device)  # its parameters (DANN's discriminator) train too
    scheduler = build_scheduler(optimizer, config, steps_per_epoch)
    for cb in callbacks:
        cb.on_optimizer(optimizer)
    val_loss_fn = nn.CrossEntropyLoss()  # plain, so validation losses compare across settings
    history = History()
    first_epoch = 1
    if resume:
        if state_dir is None:
            raise ValueError("resume needs the state_dir to resume from")
        done, history.epochs = load_training_state(state_dir, model=model, optimizer=optimizer, scheduler=scheduler,
                                                   generator=generator, callbacks=callbacks)
        first_epoch = done + 1
        log.info("resuming after epoch %d of %d", done, epochs)
    begin = {"epochs": epochs, "steps_per_epoch": steps_per_epoch, "first_epoch": first_epoch}
    for cb in callbacks:
        cb.on_train_begin(begin)

    step, start, epoch = (first_epoch - 1) * steps_per_epoch, time.perf_counter(), first_epoch
    saved = first_epoch - 1  # the last epoch whose state is on disk
    try:
        for epoch in range(first_epoch, epochs + 1):
            note = strategy.begin_epoch(model, epoch)
            if note:
                log.info(note)
            strategy.train_mode(model, frozen_batchnorm=config.frozen_batchnorm)
            train_model = parallel.for_phase(model, runner)
            epoch_start = time.perf_counter()
            last_good = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen, predicted = 0, False
            for micro_batches in batches:
                optimizer.zero_grad(set_to_none=True)
                for index, (xb, targets, yb, weight) in enumerate(micro_batches):
                    xb, yb = precision.inputs(xb.to(device, non_blocking=True)), yb.to(device, non_blocking=True)
                    targets = targets.to(device, non_blocking=True)
                    with parallel.gradient_sync(train_model, sync=index == len(micro_batches) - 1):
                        with precision.autocast():
                            if alignment is None:
                                loss, logits = strategy.compute_loss(train_model, xb, targets, loss_fn)
                            else:  # domain adaptation: source and target through the backbone, plus the alignment
                                progress = step / (config.epochs * len(batches))  # no resume here: step from 0
                                logits, loss = alignment.step(model, xb, targets, loss_fn, progress)
                        penalty = strategy.penalty(model)
                        precision.backward((loss.float() if penalty is None else loss.float() + penalty) * weight)
                    # accumulate on the device; reading a value back every step would stall a GPU
                    loss_sum += loss.detach().float() * len(yb)
                    if logits is not None:
                        correct += (logits.detach().argmax(1) == yb).sum()
                        predicted = True
                    seen += len(yb)
                precision.step(optimizer, model, config.grad_clip_norm)
                scheduler.step()
                step += 1
                for cb in callbacks:
                    cb.on_batch_end(step, {"loss": lambda: float(loss.detach())})
                if _stop_requested(callbacks):
                    break
            logs: dict[str, Any] = {"epoch": epoch}
            if gradient_steps:
                loss_sum, correct, seen = sum_across_ranks(loss_sum, correct, torch.tensor(seen))
                logs[strategy.loss_name] = float(loss_sum) / int(seen)
                if predicted:
                    logs["train_accuracy"] = float(correct) / int(seen)
                logs.update(strategy.epoch_logs(int(seen)))
                if not (math.isfinite(logs[strategy.loss_name]) and parameters_finite(model)) \
                        and not _stop_requested(callbacks):
                    model.load_state_dict(last_good)
                    raise _diverged(epoch, logs[strategy.loss_name], config.lr)  # the rate --lr sets
            if strategy.head_solver == "lbfgs":
                if not gradient_steps:
                    log.info("%s: fitting the head by L-BFGS on %d examples", strategy.name, len(train[1]))
                logs.update(solve_head(model, strategy, train, device, config.seed, written))
                if not gradient_steps:  # the fit was the epoch's one step
                    step += 1
                    for cb in callbacks:
                        cb.on_batch_end(step, {"loss": lambda: logs["train_loss"]})
            logs.update(lr=optimizer.param_groups[0]["lr"], steps_per_epoch=steps_per_epoch)
            # the layer groups this epoch trained: a strategy's phases (lp-ft, gradual-unfreeze) show in the logs
            logs["trainable"] = "+".join(name for name, _ in model.layer_groups() if name in strategy.current_)
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
                saved = epoch
            if _stop_requested(callbacks):
                break
    except KeyboardInterrupt:  # Ctrl-C: say how to carry on, then stop as asked
        if ranks.is_main:
            log.warning(_interrupted_note(epoch, state_dir, saved))
        raise
    finally:  # on an error or interrupt too: the log is closed and the progress bar stopped
        history.summary = {"train_time_s": time.perf_counter() - start, "steps": step}
        for cb in callbacks:
            cb.on_train_end(history.summary)
    return history
