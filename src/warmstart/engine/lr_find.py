"""The learning-rate range test: train briefly while the learning rate grows exponentially, and read a good rate
off the loss curve.

Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017, section 3.3; the smoothing, the stopping
rule and the suggestions follow fastai's ``lr_find``:

- step ``i`` of ``n`` trains at ``lr_i = start_lr * (end_lr / start_lr) ** (i / (n - 1))``;
- the loss is smoothed by a bias-corrected exponential moving average (Kingma & Ba's correction, as in Adam)::

      avg_i = beta * avg_{i-1} + (1 - beta) * loss_i,    smoothed_i = avg_i / (1 - beta ** (i + 1)),   beta = 0.98

- the test stops once the smoothed loss exceeds 4x its minimum so far: past that the model is diverging;
- the suggestion is the rate where the smoothed loss falls fastest, ``argmin d smoothed / d log10(lr)``; the other
  candidate is the rate of the lowest smoothed loss divided by 10 (the loss still falls there, well short of the
  edge of divergence).

The pure functions take arrays; :class:`LrFinder` is the test as a callback on the training loop, and
:func:`lr_range_test` runs it on a copy of a model with a strategy's parameter groups (the plot: evaluation/plots.py).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
import torch

from ..config import TrainConfig, check_parameter, is_int, is_number
from ..errors import WarmstartError
from ..models import TransferModel
from ..strategies import Strategy
from .callbacks import Callback
from .loop import fit

SMOOTHING_BETA = 0.98
DIVERGENCE_FACTOR = 4.0
MIN_STEPS = 5
MAX_STEPS = 1_000_000  # a range test trains briefly: 100 steps by default; more is a typo, not a test


@dataclass(frozen=True)
class LrFindResult:
    """A range test's curve and what it suggests. ``suggestion`` is ``steepest_lr``; ``min_loss_lr_over_10`` is the
    other candidate. ``lrs``, ``losses`` and ``smoothed`` hold the steps that ran (fewer than ``steps`` when the
    test stopped early on divergence)."""

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    suggestion: float
    steepest_lr: float
    min_loss_lr_over_10: float
    start_lr: float
    end_lr: float
    steps: int
    stopped_early: bool
    suggested_by: str = "steepest"
    notes: tuple[str, ...] = ()

    @property
    def steps_run(self) -> int:
        return len(self.lrs)

    def to_dict(self) -> dict[str, Any]:
        return {"suggestion": self.suggestion, "suggested_by": self.suggested_by,
                "candidates": {"steepest": self.steepest_lr, "min_loss_over_10": self.min_loss_lr_over_10},
                "start_lr": self.start_lr, "end_lr": self.end_lr, "steps": self.steps, "steps_run": self.steps_run,
                "stopped_early": self.stopped_early, "smoothing_beta": SMOOTHING_BETA,
                "divergence_factor": DIVERGENCE_FACTOR, "lrs": list(self.lrs), "losses": list(self.losses),
                "smoothed": list(self.smoothed), "notes": list(self.notes)}


def check_range(start_lr: float, end_lr: float, steps: int) -> None:
    """Raise :class:`WarmstartError` naming the parameter when the range or the step count is unusable."""
    check_parameter(is_number(start_lr) and start_lr > 0, "start_lr", "a positive number", start_lr)
    check_parameter(is_number(end_lr) and end_lr > 0, "end_lr", "a positive number", end_lr)
    check_parameter(end_lr > start_lr, "end_lr", f"a number greater than start_lr={start_lr!r}", end_lr)
    check_parameter(is_int(steps) and MIN_STEPS <= steps <= MAX_STEPS, "steps",
                    f"an integer from {MIN_STEPS} to {MAX_STEPS:,}", steps)


def exponential_lrs(start_lr: float, end_lr: float, steps: int) -> np.ndarray:
    """``steps`` rates from ``start_lr`` to ``end_lr`` (both included), evenly spaced on a log scale."""
    return start_lr * (end_lr / start_lr) ** (np.arange(steps) / (steps - 1))


def smooth_losses(losses: Sequence[float], beta: float = SMOOTHING_BETA) -> np.ndarray:
    """The bias-corrected exponential moving average of ``losses`` (the first value is the first loss itself)."""
    smoothed, average = np.empty(len(losses)), 0.0
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * float(loss)
        smoothed[i] = average / (1 - beta ** (i + 1))
    return smoothed


def divergence_step(smoothed: Sequence[float], factor: float = DIVERGENCE_FACTOR) -> int | None:
    """The first index where the smoothed loss exceeds ``factor`` times its minimum up to there, or None."""
    smoothed = np.asarray(smoothed, dtype=float)
    over = np.flatnonzero(smoothed > factor * np.minimum.accumulate(smoothed))
    return int(over[0]) if len(over) else None


def steepest_descent_lr(lrs: Sequence[float], smoothed: Sequence[float]) -> float:
    """The rate where the smoothed loss falls fastest per decade: ``argmin d smoothed / d log10(lr)``.

    The slope is taken by central differences (``np.gradient``), so it belongs to the point itself rather than
    half a step to its left as a forward difference would."""
    lrs, smoothed = np.asarray(lrs, dtype=float), np.asarray(smoothed, dtype=float)
    if len(lrs) < 2:
        return float(lrs[0])
    return float(lrs[np.argmin(np.gradient(smoothed, np.log10(lrs)))])


def min_loss_lr_over_10(lrs: Sequence[float], smoothed: Sequence[float]) -> float:
    """The rate of the lowest smoothed loss, divided by 10."""
    return float(np.asarray(lrs, dtype=float)[np.argmin(smoothed)]) / 10


def suggestion_window(points: int) -> slice:
    """The part of the curve the suggestions read: without the first tenth, where the average rests on a few
    batches, and the last 5 points, the divergence (fastai's trimming). All of it when that leaves fewer than 3."""
    window = slice(points // 10, points - 5)
    return window if len(range(points)[window]) >= 3 else slice(0, points)


class LrFinder(Callback):
    """The range test as a callback on the training loop: before step ``i`` the base rate is set to
    ``exponential_lrs(start_lr, end_lr, steps)[i]`` (each group at ``lr * lr_scale``, overriding the schedule), every
    step's loss is recorded, and training stops after ``steps`` steps, at the first non-finite loss, or once the
    smoothed loss diverges (:func:`divergence_step`)."""

    def __init__(self, start_lr: float, end_lr: float, steps: int):
        check_range(start_lr, end_lr, steps)
        self.schedule = exponential_lrs(start_lr, end_lr, steps)
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.stop_training = False

    def on_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self._set_lr(0)

    def _set_lr(self, index: int) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = float(self.schedule[index]) * group["lr_scale"]

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        value = logs["loss"]()  # read every step: the stopping rule needs it
        if not math.isfinite(value):
            self.stop_training = True  # past divergence; a non-finite value has no place on the curve
            return
        self.lrs.append(float(self.schedule[step - 1]))
        self.losses.append(value)
        if step >= len(self.schedule) or divergence_step(smooth_losses(self.losses)) is not None:
            self.stop_training = True
        else:
            self._set_lr(step)


def lr_range_test(model: TransferModel, strategy: Strategy, train_tensors: tuple[torch.Tensor, torch.Tensor],
                  config: TrainConfig, device: torch.device, generator: torch.Generator, start_lr: float = 1e-7,
                  end_lr: float = 10.0, steps: int = 100, callbacks: Sequence[Callback] = ()) -> LrFindResult:
    """Train a copy of ``model`` for up to ``steps`` mini-batches at exponentially growing rates; ``model`` itself
    is left as it was, and the copy and its optimizer are thrown away.

    The run is the first stretch of ``fit`` with ``config`` (it *is* ``fit``, with :class:`LrFinder` steering the
    rate): the strategy's parameter groups in its first phase (one epoch of ``steps`` steps, cycling through the
    seeded shuffled batches as often as it needs), the configured optimizer, loss (label smoothing, class balance),
    precision and gradient clipping, and the strategy's own loss (SetFit's pairs). Each group trains at
    ``lr * lr_scale``, so a strategy's discriminative rates keep their ratios; the rates reported are the base rate
    ``lr``, the one ``--lr`` sets.
    """
    if not strategy.trains_by_gradient:
        raise WarmstartError(f"lr-find: {strategy.name} with solver={strategy.head_solver} fits its head in closed "
                             "form, without a learning rate", hint="drop --strategy-option solver=lbfgs to find the "
                                                                   "rate of the head trained in the loop")
    strategy.check(config, train=train_tensors, distributed=False, resume=False, aligned=False, augmented=False)
    finder = LrFinder(start_lr, end_lr, steps)
    fit(copy.deepcopy(model), strategy, train_tensors, None, replace(config, lr=start_lr), device=device,
        generator=generator, callbacks=[finder, *callbacks], steps_per_epoch=steps)
    lrs, losses = finder.lrs, finder.losses
    if not losses:
        raise WarmstartError(f"the loss was not finite at the first step of the range test (lr {start_lr:g})",
                             hint="lower --start-lr, or check the data and the model")
    smoothed = smooth_losses(losses)
    window = suggestion_window(len(losses))
    steepest = steepest_descent_lr(lrs[window], smoothed[window])
    return LrFindResult(lrs=tuple(lrs), losses=tuple(losses), smoothed=tuple(float(s) for s in smoothed),
                        suggestion=steepest, steepest_lr=steepest,
                        min_loss_lr_over_10=min_loss_lr_over_10(lrs[window], smoothed[window]),
                        start_lr=float(start_lr), end_lr=float(end_lr), steps=steps,
                        stopped_early=len(losses) < steps)
