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
    if isinstance(hidden, (str, bytes)) or not all(isinstance(h, int) and not isinstance(h, bool) for h in hidden) \
            or not hidden or min(hidden) < 1:
        raise TypeError(f"hidden must list one or more positive integer layer widths, got {hidden!r}")
    hidden = list(hidden)
    # a bool is not a rate: YAML reads dropout=yes as True, which nn.Dropout takes as p = 1 (nothing learnt)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise TypeError(f"dropout must be a number in [0, 1), got {dropout!r}")
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    return MLP(nn.Sequential(*layers), width, num_classes, arch="mlp",
               arch_args={"hidden": hidden, "dropout": dropout}, input_shape=input_shape)
