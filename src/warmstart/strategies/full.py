"""Full fine-tuning: every layer trains from the pretrained weights."""

from __future__ import annotations

from ..models import TransferModel
from .base import STRATEGIES, Strategy


@STRATEGIES.register("full")
class FullFineTuning(Strategy):
    """Every layer trains, starting from the pretrained weights (with --from none: training from scratch)."""

    name = "full"

    def trainable(self, model: TransferModel, epoch: int) -> list[str]:
        return [name for name, _ in model.layer_groups()]
