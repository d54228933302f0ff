"""Deep CORAL (Sun & Saenko, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation", ECCV 2016 workshops).

The loss aligns the second-order statistics of source and target features:

    L_CORAL = ||C_S - C_T||²_F / (4 d²)

with C the (unbiased) covariance of a batch's d-dimensional features. It is zero when the covariances are equal,
whatever the means.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import ADAPTATIONS, Adaptation, check_weight


def covariance(features: torch.Tensor) -> torch.Tensor:
    centred = features - features.mean(0, keepdim=True)
    return centred.T @ centred / (len(features) - 1)


class CorrelationAlignmentLoss(nn.Module):
    """``loss(f_s, f_t)`` = ||cov(f_s) - cov(f_t)||²_F / (4 d²). Each batch needs at least two examples."""

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        d = f_s.shape[1]
        return (covariance(f_s) - covariance(f_t)).pow(2).sum() / (4 * d * d)


@ADAPTATIONS.register("coral")
class Coral(Adaptation):
    """Deep CORAL (Sun & Saenko, 2016): align the source and target feature covariances."""

    name = "coral"
    aligns_features = True

    def __init__(self, weight: float = 1.0):
        self.weight = check_weight(self.name, weight)

    def loss_module(self, num_features: int) -> nn.Module:
        return CorrelationAlignmentLoss()
