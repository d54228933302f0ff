"""BitFit: only the bias terms of the backbone train, with the new head.

Ben Zaken, Goldberg & Ravfogel, "BitFit: Simple Parameter-efficient Fine-tuning for Transformer-based Masked
Language-models", ACL 2022: training the biases alone (about 0.1% of BERT's parameters) came close to full
fine-tuning on GLUE with small and medium training sets, since fine-tuning mostly exposes what pretraining learnt
rather than learning new features. Every weight stays as pretrained, so one backbone serves many tasks.
"""

from __future__ import annotations

from torch import nn

from ..models import TransferModel
from .base import STRATEGIES, Strategy


@STRATEGIES.register("bitfit")
class BitFit(Strategy):
    """Backbone biases (of linear, convolution and normalisation layers) and the whole head train; nothing else.

    A parameter is a bias when its name ends in ``bias``: the ``b`` of every ``Wx + b`` and the shift (beta) of
    LayerNorm and BatchNorm, as in the paper. Every layer group holding one trains, so on a CNN whose convolutions
    have no bias it is the BatchNorm shifts that move (and BatchNorm's statistics follow the target's batches).
    The paper found larger learning rates than full fine-tuning's suit it (1e-4 to 1e-3 for BERT).
    """

    name = "bitfit"
    transformer_lr = 5e-4  # biases alone need larger steps (Ben Zaken et al. searched 1e-4 .. 1e-3)

    def trains_parameter(self, group: str, name: str, parameter: nn.Parameter) -> bool:
        return group == "head" or name.rsplit(".", 1)[-1] == "bias"

    def trainable(self, model: TransferModel, epoch: int) -> list[str]:
        return [group for group, module in model.layer_groups()
                if any(self.trains_parameter(group, name, p) for name, p in module.named_parameters())]
