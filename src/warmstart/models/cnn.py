"""A small residual CNN (ResNet-style basic blocks) for small grey or colour images, 16x16 to 64x64."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .base import MODELS, TransferModel


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (He et al., 2016); a 1x1 projection when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResidualCNN(TransferModel):
    def backbone_groups(self) -> list[tuple[str, nn.Module]]:
        return [(name, module) for name, module in self.backbone.named_children()
                if any(True for _ in module.parameters())]


@MODELS.register("cnn")
def cnn(input_shape: tuple[int, ...], num_classes: int, widths: Sequence[int] = (16, 32, 64),
        blocks: int = 1) -> ResidualCNN:
    """Small residual CNN: a 3x3 stem, one stage per width (each after the first halves the resolution), global
    average pooling. Any grey or colour image size; the defaults suit 28x28."""
    if len(input_shape) != 3:
        raise TypeError(f"cnn needs images (C, H, W), got input shape {input_shape}; use mlp for vectors")
    widths = [int(w) for w in widths]
    if not widths or min(widths) < 1 or int(blocks) < 1:
        raise TypeError(f"widths must list one or more positive channel counts and blocks must be at least 1, got "
                        f"widths={widths}, blocks={blocks}")
    channels = input_shape[0]
    stem = nn.Sequential(nn.Conv2d(channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                         nn.ReLU(inplace=True))
    stages: list[tuple[str, nn.Module]] = [("stem", stem)]
    previous = widths[0]
    for i, width in enumerate(widths):
        stride = 1 if i == 0 else 2
        layers = [BasicBlock(previous if b == 0 else width, width, stride if b == 0 else 1) for b in range(blocks)]
        stages.append((f"stage{i + 1}", nn.Sequential(*layers)))
        previous = width
    stages += [("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten())]
    backbone = nn.Sequential()
    for name, module in stages:
        backbone.add_module(name, module)
    return ResidualCNN(backbone, previous, num_classes, arch="cnn",
                       arch_args={"widths": widths, "blocks": blocks}, input_shape=input_shape)
