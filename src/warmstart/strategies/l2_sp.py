"""L2-SP: fine-tuning pulled back towards the pretrained weights instead of towards zero.

Li, Grandvalet & Davoine, "Explicit Inductive Bias for Transfer Learning with Convolutional Networks", ICML 2018.
Weight decay pulls every weight towards zero, which forgets what pretraining learnt; L2-SP pulls the backbone towards
its starting point (SP) instead, and keeps a plain L2 penalty on the new head, which has no meaningful start.
"""

from __future__ import annotations

import torch

from ..config import is_number
from ..models import TransferModel
from ..search_space import SearchParam
from .base import STRATEGIES, Strategy, check_option


# strategies whose layers train and can be pulled towards their start (a frozen backbone has nothing to pull)
COMBINABLE = ("full", "gradual-unfreeze", "lp-ft", "layerwise-lr")


@STRATEGIES.register("l2-sp")
class L2StartingPoint(Strategy):
    """Every layer trains, with the backbone held near its pretrained weights by an L2 penalty (L2-SP, ICML 2018).

    The loss gains::

        alpha / 2 * ||w_backbone - w_backbone_0||^2  +  beta / 2 * ||w_head||^2

    over every backbone parameter (``w_backbone_0`` is recorded by ``prepare``, at the start of training) and every
    head parameter. The penalty replaces weight decay, as in the paper: the optimizer's weight decay is off for
    every group, the head's L2 term being the beta one. Defaults: ``alpha=0.01``, ``beta=0.01``,
    a mild pull suited to the small models here; both are worth tuning per target, and a larger alpha keeps the
    backbone closer to its start.

    ``base`` combines the penalty with another strategy's schedule of what trains and at which rate:
    ``base="gradual-unfreeze"`` unfreezes from the top as that strategy does, with every unfrozen layer pulled
    towards its start; ``base="layerwise-lr"`` keeps its per-layer rates. Without it, every layer trains (``full``).
    """

    name = "l2-sp"
    search_space = Strategy.search_space + (SearchParam("alpha", 1e-4, 1.0, log=True),)

    def __init__(self, *, alpha: float = 0.01, beta: float = 0.01, base: str = "full"):
        from . import create_strategy

        check_option(is_number(alpha) and alpha >= 0, "alpha", "a number >= 0", alpha)
        check_option(is_number(beta) and beta >= 0, "beta", "a number >= 0", beta)
        check_option(base in COMBINABLE, "base", f"one of {', '.join(COMBINABLE)}", base)
        self.alpha = alpha
        self.beta = beta
        self.base = base
        self.base_ = create_strategy(base)

    def trainable(self, model: TransferModel, epoch: int) -> list[str]:
        return self.base_.trainable(model, epoch)

    def lr_scale(self, group: str, index: int, num_groups: int) -> float:
        return self.base_.lr_scale(group, index, num_groups)

    def group_weight_decay(self, group: str, index: int, num_groups: int, weight_decay: float) -> float:
        return 0.0  # the penalty is the regulariser

    def prepare(self, model: TransferModel, epochs: int = 1) -> None:
        self.base_.prepare(model, epochs)  # the base's own settings (phase boundaries, ...) are checked and set
        super().prepare(model, epochs)
        self.starting_point_ = [p.detach().clone() for p in _backbone_parameters(model)]

    def penalty(self, model: TransferModel) -> torch.Tensor:
        if not hasattr(self, "starting_point_"):
            raise RuntimeError("L2-SP has no starting point yet: call prepare(model) before penalty(model)")
        distance = sum(((p - p0) ** 2).sum()
                       for p, p0 in zip(_backbone_parameters(model), self.starting_point_, strict=True))
        size = sum((p ** 2).sum() for p in model.layer_groups()[-1][1].parameters())  # the head always has some
        return self.alpha / 2 * distance + self.beta / 2 * size


def _backbone_parameters(model: TransferModel) -> list[torch.nn.Parameter]:
    return [p for _, module in model.layer_groups()[:-1] for p in module.parameters()]
