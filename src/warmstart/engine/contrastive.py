"""The training loop for contrastive pairs (the ``setfit`` strategy): the encoder learns that examples of one class
embed close together, then the head is fitted on the embeddings.

Each step embeds both members of ``--batch-size`` pairs in one forward pass (dynamic padding trims the batch to its
longest text) and regresses their cosine similarity on the pair's target, 1 for the same class and 0 otherwise,
with a mean squared error: sentence-transformers' ``CosineSimilarityLoss``, the loss SetFit trains with. Optimizer,
schedule, warmup, clipping and precision are the run's ``TrainConfig``, as in the cross-entropy loop.
"""

from __future__ import annotations

import math
import time
from typing import Any, Sequence

import torch
from torch import nn

from ..config import TrainConfig
from ..models import TransferModel
from .callbacks import Callback
from .logistic import fit_linear_head
from .loop import History, with_default_lr
from .optim import build_optimizer, build_scheduler
from .precision import Precision


@torch.no_grad()
def embed(model: TransferModel, x: torch.Tensor, device: torch.device, batch_size: int = 128) -> torch.Tensor:
    """The backbone's embeddings of ``x``, in eval mode and float32, on the CPU."""
    model.eval()
    parts = [model.forward_features(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(parts) if parts else torch.empty(0, model.num_features)


def fit_contrastive(model: TransferModel, strategy, train: tuple[torch.Tensor, torch.Tensor],
                    val: tuple[torch.Tensor, torch.Tensor] | None, config: TrainConfig, *, device: torch.device,
                    generator: torch.Generator, callbacks: Sequence[Callback] = ()) -> History:
    """Train ``model``'s encoder on ``strategy.draw_pairs`` for ``config.epochs`` epochs, fitting the head by
    L-BFGS after each; returns the per-epoch logs (``pair_loss``, and the head's train and validation scores)."""
    model.to(device)
    config = with_default_lr(config, model, strategy)
    strategy.prepare(model, config.epochs)
    optimizer = build_optimizer(strategy.param_groups(model, config.lr, config.weight_decay), config)
    precision = Precision(config, device)
    encoder = precision.prepare_model(model.backbone)  # itself, or its torch.compile wrapper
    x, y = train
    pairs_per_epoch = 2 * strategy.iterations * len(y)
    steps_per_epoch = math.ceil(pairs_per_epoch / config.batch_size)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch)
    history, step, start = History(), 0, time.perf_counter()
    for cb in callbacks:
        cb.on_train_begin({"epochs": config.epochs, "steps_per_epoch": steps_per_epoch, "first_epoch": 1})
    try:
        for epoch in range(1, config.epochs + 1):
            epoch_start = time.perf_counter()
            strategy.begin_epoch(model, epoch)
            strategy.train_mode(model, frozen_batchnorm=config.frozen_batchnorm)
            first, second, target = strategy.draw_pairs(y, generator)
            loss_sum = torch.zeros((), device=device)
            for b in range(steps_per_epoch):
                rows = slice(b * config.batch_size, (b + 1) * config.batch_size)
                ids = torch.cat([x[first[rows]], x[second[rows]]])
                with precision.autocast():
                    u, v = encoder(precision.inputs(ids.to(device))).float().chunk(2)
                loss = nn.functional.mse_loss(nn.functional.cosine_similarity(u, v), target[rows].to(device))
                optimizer.zero_grad(set_to_none=True)
                precision.backward(loss)
                precision.step(optimizer, model, config.grad_clip_norm)
                scheduler.step()
                step += 1
                loss_sum += loss.detach() * len(target[rows])
                for cb in callbacks:
                    cb.on_batch_end(step, {"loss": lambda: float(loss.detach())})
            features = embed(model, x, device)
            val_features = None if val is None else (embed(model, val[0], device), val[1])
            logs: dict[str, Any]
            logs, _ = fit_linear_head(model.head, (features, y), val_features, C=strategy.C, seed=config.seed)
            logs.update(epoch=epoch, pair_loss=float(loss_sum) / pairs_per_epoch, pairs=pairs_per_epoch,
                        lr=optimizer.param_groups[0]["lr"], steps_per_epoch=steps_per_epoch,
                        trainable="+".join(name for name, _ in model.layer_groups() if name in strategy.current_),
                        epoch_time_s=time.perf_counter() - epoch_start)
            history.epochs.append(logs)
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if any(getattr(cb, "stop_training", False) for cb in callbacks):
                break
    finally:
        history.summary = {"train_time_s": time.perf_counter() - start, "steps": step}
        for cb in callbacks:
            cb.on_train_end(history.summary)
    return history
