"""A multi-layer perceptron for feature vectors, or for images flattened to vectors."""

from __future__ import annotations

import math
from typing import Sequence

from torch import nn

from .base import MODELS, TransferModel


class MLP(TransferModel):
    def backbone_groups(self) -> list[tuple[str, nn.Module]]:
        layers = [m for m in self.backbone if isinstance(m, nn.Linear)]
        return [(f"layer{i}", layer) for i, layer in enumerate(layers, start=1)]


@MODELS.register("mlp")
def mlp(input_shape: tuple[int, ...], num_classes: int, hidden: Sequence[int] = (64, 32),
        dropout: float = 0.0) -> MLP:
    """Multi-layer perceptron (hidden layers 64 and 32 by default) for vectors or flattened images of any size."""
    hidden = [int(h) for h in hidden]
    if not hidden or min(hidden) < 1:
        raise TypeError(f"hidden must list one or more positive layer widths, got {hidden}")
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    return MLP(nn.Sequential(*layers), width, num_classes, arch="mlp",
               arch_args={"hidden": hidden, "dropout": dropout}, input_shape=input_shape)
