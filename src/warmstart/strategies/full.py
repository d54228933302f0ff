"""Full fine-tuning: every layer trains from the pretrained weights."""

from __future__ import annotations

from ..config import is_number
from ..models import TransferModel
from ..search_space import SearchParam
from .base import STRATEGIES, Strategy, check_option


@STRATEGIES.register("full")
class FullFineTuning(Strategy):
    """Every layer trains, starting from the pretrained weights (with --from none: training from scratch).

    ``head_lr_scale`` multiplies the new head's learning rate. A fresh head on a pretrained encoder needs to move
    much further than the encoder: on L2-normalised sentence embeddings its logits start near zero, and at a
    transformer's usual rate (5e-5) it barely moves in a few-shot budget.
    """

    name = "full"
    search_space = Strategy.search_space + (SearchParam("head_lr_scale", 1.0, 100.0, log=True),)

    def __init__(self, *, head_lr_scale: float = 1.0):
        check_option(is_number(head_lr_scale) and head_lr_scale > 0, "head_lr_scale", "a positive number",
                     head_lr_scale)
        self.head_lr_scale = head_lr_scale

    def trainable(self, model: TransferModel, epoch: int) -> list[str]:
        return [name for name, _ in model.layer_groups()]
