"""DANN: domain-adversarial training (Ganin et al., "Domain-Adversarial Training of Neural Networks", JMLR 2016).

A domain discriminator D learns to tell source features from target features,

    L_d = BCE(D(f_s), 1) + BCE(D(f_t), 0)     (averaged, as TLlib's DomainAdversarialLoss does),

while the backbone receives that loss's gradient through a gradient reversal layer: the identity going forward,
-λ times the gradient going back. So one backward pass trains D to separate the domains and the backbone to make
them inseparable. λ follows Ganin's schedule λ_p = 2 / (1 + exp(-γ p)) - 1 (γ = 10, p the training progress from 0
to 1), which keeps the discriminator's early noise away from the backbone; ``schedule="constant"`` keeps λ = 1.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WarmstartError
from .base import ADAPTATIONS, Adaptation, check_weight


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coefficient * grad_output, None


class GradientReversal(nn.Module):
    """Identity forward; multiplies the gradient by ``-coefficient`` backward."""

    def __init__(self, coefficient: float = 1.0):
        super().__init__()
        self.coefficient = coefficient

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ReverseGradient.apply(x, self.coefficient)


def domain_discriminator(num_features: int, hidden: int) -> nn.Sequential:
    """Two hidden layers with BatchNorm and ReLU, one logit (source = 1), as TLlib's DomainDiscriminator."""
    return nn.Sequential(nn.Linear(num_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                         nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                         nn.Linear(hidden, 1))


class DomainAdversarialLoss(nn.Module):
    """``loss(f_s, f_t)``: the discriminator's domain loss on gradient-reversed features; ``domain_accuracy`` is
    the share of the last batch it classified right (0.5 means the features no longer give the domain away)."""

    def __init__(self, discriminator: nn.Module, coefficient: float = 1.0):
        super().__init__()
        self.discriminator = discriminator
        self.reversal = GradientReversal(coefficient)
        self.domain_accuracy: float | None = None

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        logits = self.discriminator(self.reversal(torch.cat([f_s, f_t]))).squeeze(1)
        domains = torch.cat([torch.ones(len(f_s)), torch.zeros(len(f_t))]).to(logits)
        with torch.no_grad():
            self.domain_accuracy = float(((logits > 0).to(domains.dtype) == domains).float().mean())
        # the mean of each domain's loss, so a smaller target batch weighs as much as the source batch
        return 0.5 * (F.binary_cross_entropy_with_logits(logits[:len(f_s)], domains[:len(f_s)])
                      + F.binary_cross_entropy_with_logits(logits[len(f_s):], domains[len(f_s):]))


def ganin_lambda(progress: float, gamma: float = 10.0) -> float:
    """λ_p = 2 / (1 + exp(-γ p)) - 1: 0 at the start of training, close to 1 by its end."""
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


@ADAPTATIONS.register("dann")
class Dann(Adaptation):
    """DANN (Ganin et al., 2016): a domain discriminator trained through a gradient reversal layer."""

    name = "dann"
    aligns_features = True

    def __init__(self, weight: float = 1.0, hidden: int = 256, schedule: str = "ganin"):
        self.weight = check_weight(self.name, weight)
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise WarmstartError(f"adaptation dann: option hidden must be a positive integer, got {hidden!r}",
                                 hint="pass --adaptation-option hidden=VALUE with VALUE 1 or more, e.g. 256")
        if schedule not in ("ganin", "constant"):
            raise WarmstartError(f"adaptation dann: option schedule must be ganin or constant, got {schedule!r}",
                                 hint="pass --adaptation-option schedule=ganin or schedule=constant")
        self.hidden, self.schedule = hidden, schedule

    def loss_module(self, num_features: int) -> nn.Module:
        return DomainAdversarialLoss(domain_discriminator(num_features, self.hidden))

    def begin_step(self, loss_module: nn.Module, progress: float) -> None:
        loss_module.reversal.coefficient = ganin_lambda(progress) if self.schedule == "ganin" else 1.0
