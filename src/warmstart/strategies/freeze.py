"""Frozen backbone: the pretrained features are kept as they are and only a new head trains."""

from __future__ import annotations

from ..models import TransferModel
from .base import STRATEGIES, Strategy


@STRATEGIES.register("freeze")
class FrozenBackbone(Strategy):
    """The backbone is frozen (BatchNorm statistics included); only the head trains."""

    name = "freeze"

    def trainable(self, model: TransferModel, epoch: int) -> list[str]:
        return ["head"]
