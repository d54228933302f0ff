"""Gradual unfreezing: the head trains first, then one layer group after another joins, from the top down.

Howard & Ruder, "Universal Language Model Fine-tuning for Text Classification" (ULMFiT), ACL 2018: unfreezing
all layers at once risks catastrophic forgetting of what pretraining learnt; unfreezing from the last layer down
lets the new head settle before the general, lower features are asked to move.
"""

from __future__ import annotations

from typing import Sequence

from ..config import is_int
from ..errors import WarmstartError
from ..models import TransferModel
from .base import STRATEGIES, Strategy, check_option


@STRATEGIES.register("gradual-unfreeze")
class GradualUnfreezing(Strategy):
    """Head first, then one more layer group from the top at each phase boundary (ULMFiT).

    With ``n`` backbone groups and boundaries ``b_1 < b_2 < ...`` (1-based epochs), epochs before ``b_1`` train the
    head only; from ``b_k`` on, the top ``k`` backbone groups train as well. Groups beyond the last boundary stay
    frozen. By default the boundaries spread one group per step over the first half of training, so the second half
    trains every layer: for 40 epochs and 4 backbone groups, epochs 6, 11, 16 and 21.
    """

    name = "gradual-unfreeze"

    def __init__(self, *, boundaries: Sequence[int] | None = None):
        if is_int(boundaries):
            boundaries = [boundaries]  # one boundary: --strategy-option boundaries=3
        if boundaries is not None:
            check_option(isinstance(boundaries, (list, tuple)), "boundaries", "a list of epoch numbers, e.g. [3, 5]",
                         boundaries)
            boundaries = list(boundaries)
            check_option(all(is_int(b) and b >= 2 for b in boundaries), "boundaries",
                         "epoch numbers of 2 or more (epoch 1 trains the head alone)", boundaries)
            check_option(all(a < b for a, b in zip(boundaries, boundaries[1:])), "boundaries",
                         "strictly increasing epoch numbers", boundaries)
        self.boundaries = boundaries

    def prepare(self, model: TransferModel, epochs: int = 1) -> None:
        backbone_groups = len(model.layer_groups()) - 1
        if self.boundaries is None:
            half = max(epochs // 2, 1)
            # with more groups than epochs in the first half, several groups join at one boundary (a repeated
            # epoch): every group must still be training by the second half
            spread = [max(2, min(epochs, 1 + round((k + 1) * half / backbone_groups))) for k in range(backbone_groups)]
            self.boundaries_ = [b for b in spread if b <= epochs]
        else:
            if self.boundaries and self.boundaries[-1] > epochs:
                raise WarmstartError(f"parameter boundaries: {self.boundaries} runs past the last epoch ({epochs})",
                                     hint=f"use epochs between 2 and {epochs}, or train for more epochs")
            if len(self.boundaries) > backbone_groups:
                raise WarmstartError(f"parameter boundaries: {len(self.boundaries)} boundaries, but the model has "
                                     f"only {backbone_groups} backbone groups to unfreeze",
                                     hint=f"give at most {backbone_groups} epoch numbers")
            self.boundaries_ = list(self.boundaries)
        super().prepare(model, epochs)

    def trainable(self, model: TransferModel, epoch: int) -> list[str]:
        names = [name for name, _ in model.layer_groups()]
        unfrozen = sum(epoch >= b for b in self.boundaries_)
        return names[len(names) - 1 - unfrozen:]
