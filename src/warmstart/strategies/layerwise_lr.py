"""Discriminative learning rates: layer-wise learning-rate decay from the head down to the input.

Howard & Ruder, "Universal Language Model Fine-tuning for Text Classification" (ULMFiT), ACL 2018, and the layer
decay of BEiT (Bao et al., ICLR 2022): layers near the input hold general features and should move less than the
layers near the task, so every layer group trains, each at its own rate.
"""

from __future__ import annotations

from ..config import is_number
from ..models import TransferModel
from ..search_space import SearchParam
from .base import STRATEGIES, Strategy, check_option


@STRATEGIES.register("layerwise-lr")
class LayerwiseLearningRateDecay(Strategy):
    """Every layer trains; each group's learning rate is the head's times layer_decay per group below it (ULMFiT).

    For group ``i`` of ``n`` in ``layer_groups()`` order (input first, head last)::

        lr_i = lr * layer_decay ** (n - 1 - i)

    so the head trains at the base rate. ``layer_decay`` is in (0, 1]; 1 is full fine-tuning. The default 0.5 suits
    the small models here (a handful of groups: the stem of the CNN gets 1/8 of the head's rate); BEiT uses 0.65-0.75
    over the 12+ blocks of a ViT. The scale is data on each parameter group (``lr_scale``) and the schedule multiplies
    each group's own rate, so the ratios hold under every schedule and warm-up.
    """

    name = "layerwise-lr"
    search_space = Strategy.search_space + (SearchParam("layer_decay", 0.3, 1.0),)

    def __init__(self, *, layer_decay: float = 0.5):
        check_option(is_number(layer_decay) and 0 < layer_decay <= 1, "layer_decay", "a number in (0, 1]",
                     layer_decay)
        self.layer_decay = layer_decay

    def trainable(self, model: TransferModel, epoch: int) -> list[str]:
        return [name for name, _ in model.layer_groups()]

    def lr_scale(self, group: str, index: int, num_groups: int) -> float:
        return self.layer_decay ** (num_groups - 1 - index)
