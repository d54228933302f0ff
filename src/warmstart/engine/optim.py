"""Optimizers and learning-rate schedules, each registered by name (``warmstart list optimizers``, ``... schedules``).

An optimizer factory takes the parameter groups, the optimizer-wide learning rate and the :class:`TrainConfig`.
A schedule factory takes the config and the steps per epoch and returns the factor on the initial learning rate
after ``step`` optimizer steps, warm-up excluded. Schedules are ``LambdaLR`` multipliers of each parameter group's
*own* initial learning rate, stepped once per optimizer step, so per-group scales set by a strategy (discriminative
learning rates) hold under every schedule.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ..config import TrainConfig
from ..registry import Registry

OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")
SCHEDULES: Registry[Callable[[TrainConfig, int], Callable[[int], float]]] = Registry("schedule")


def build_optimizer(param_groups: list[dict[str, Any]], config: TrainConfig) -> torch.optim.Optimizer:
    # every group carries its own rate; the optimizer-wide one is only a default that no group falls back on
    lr = config.lr if config.lr is not None else max((g["lr"] for g in param_groups), default=1e-3)
    return OPTIMIZERS.create(config.optimizer, param_groups, lr, config, parameter="optimizer")


@OPTIMIZERS.register("sgd")
def sgd(param_groups: list[dict[str, Any]], lr: float, config: TrainConfig) -> torch.optim.Optimizer:
    """Stochastic gradient descent with momentum (``momentum``, ``nesterov``) and weight decay."""
    return torch.optim.SGD(param_groups, lr=lr, momentum=config.momentum, nesterov=config.nesterov,
                           weight_decay=config.weight_decay)


@OPTIMIZERS.register("adam")
def adam(param_groups: list[dict[str, Any]], lr: float, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam (Kingma & Ba, 2015), weight decay added to the gradient (L2)."""
    return torch.optim.Adam(param_groups, lr=lr, weight_decay=config.weight_decay, fused=_can_fuse(param_groups))


@OPTIMIZERS.register("adamw")
def adamw(param_groups: list[dict[str, Any]], lr: float, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay; the default."""
    return torch.optim.AdamW(param_groups, lr=lr, weight_decay=config.weight_decay, fused=_can_fuse(param_groups))


def _can_fuse(param_groups: list[dict[str, Any]]) -> bool | None:
    """Adam's fused kernels (one kernel for the whole update) when every parameter allows them. The Hugging Face
    Trainer uses them by default; on 2 CPU cores a MiniLM step at batch 32 took 0.57 s with them against 0.66-0.71 s
    on the default multi-tensor path (../shared/BASELINES.md)."""
    try:  # a private helper of torch's: if it ever moves, fall back to torch's default kernels
        from torch.optim.optimizer import _get_fused_kernels_supported_devices

        devices = set(_get_fused_kernels_supported_devices())
    except ImportError:
        return None
    params = [p for group in param_groups for p in group["params"]]
    fusable = bool(params) and all(p.is_floating_point() and p.device.type in devices for p in params)
    return True if fusable else None


def lr_multiplier(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """The factor on the initial learning rate after ``step`` optimizer steps: the warm-up, then the schedule."""
    warmup = config.warmup_epochs * steps_per_epoch
    schedule = SCHEDULES.create(config.schedule, config, steps_per_epoch, parameter="schedule")

    def factor(step: int) -> float:
        if step < warmup:
            return 0.1 + 0.9 * step / warmup
        return schedule(step)

    return factor


@SCHEDULES.register("constant")
def constant(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """The initial rate throughout."""
    return lambda step: 1.0


@SCHEDULES.register("step")
def step_decay(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Times ``gamma`` every ``step_size`` epochs (by default a third of the epochs)."""
    warmup = config.warmup_epochs * steps_per_epoch
    step_every = (config.step_size or max(1, config.epochs // 3)) * steps_per_epoch
    return lambda step: config.gamma ** ((step - warmup) // step_every)


@SCHEDULES.register("exponential")
def exponential(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Times ``gamma`` per epoch, smoothly step by step."""
    warmup = config.warmup_epochs * steps_per_epoch
    return lambda step: config.gamma ** ((step - warmup) / steps_per_epoch)


@SCHEDULES.register("cosine")
def cosine(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Cosine annealing to zero over the epochs after the warm-up; the default."""
    total, warmup = config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch
    return lambda step: _cosine(1.0, 0.0, min((step - warmup) / max(1, total - warmup), 1.0))


@SCHEDULES.register("linear")
def linear(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Linear decay to zero (transformers' get_linear_schedule_with_warmup, the Hugging Face Trainer's default)."""
    total, warmup = config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch
    return lambda step: max(0.0, (total - step) / max(1, total - warmup))


@SCHEDULES.register("one-cycle")
def one_cycle(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """One-cycle (Smith & Topin, 2019): from lr/25 up to lr over 30% of the steps, then down to lr/250,000."""
    total = config.epochs * steps_per_epoch
    return lambda step: _one_cycle(step, total)


def _cosine(start: float, end: float, progress: float) -> float:
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _one_cycle(step: int, total: int, peak_at: float = 0.3, div: float = 25.0, final_div: float = 1e4) -> float:
    """Smith & Topin's one-cycle policy with cosine phases, step for step as torch's OneCycleLR defaults."""
    peak = peak_at * total - 1
    if step <= peak:
        return _cosine(1.0 / div, 1.0, step / peak) if peak > 0 else 1.0
    return _cosine(1.0, 1.0 / (div * final_div), min((step - peak) / max(total - 1 - peak, 1e-9), 1.0))


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig,
                    steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(config, steps_per_epoch))
