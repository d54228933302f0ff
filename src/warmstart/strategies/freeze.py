"""Frozen backbone: the pretrained features are kept as they are and only a new head trains."""

from __future__ import annotations

from ..config import is_number
from ..models import TransferModel
from .base import STRATEGIES, Strategy, check_option


@STRATEGIES.register("freeze")
class FrozenBackbone(Strategy):
    """The backbone is frozen (BatchNorm statistics included); only the head trains, at head_lr_scale x lr.

    A linear head on fixed features is a convex problem that tolerates, and needs, a larger step than fine-tuning
    a whole network: by default it trains at 10x the configured learning rate, so one ``--lr`` suits every strategy
    in a comparison. ``head_lr_scale=1`` turns that off.
    """

    name = "freeze"
    transformer_lr = 1e-3  # only the head trains, whatever the backbone

    def __init__(self, *, head_lr_scale: float = 10.0):
        check_option(is_number(head_lr_scale) and head_lr_scale > 0, "head_lr_scale", "a positive number",
                     head_lr_scale)
        self.head_lr_scale = head_lr_scale

    def trainable(self, model: TransferModel, epoch: int) -> list[str]:
        return ["head"]

    def lr_scale(self, group: str, index: int, num_groups: int) -> float:
        return self.head_lr_scale
