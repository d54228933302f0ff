"""The backbone contract every model keeps, so that strategies never need to know the architecture.

A :class:`TransferModel` is a backbone (input -> feature vector) and a head (features -> logits):
``forward_features``, ``forward_head``, ``reset_classifier`` and ``layer_groups`` (ordered from the input to the
head) are all a fine-tuning strategy may use. This follows timm's transfer contract.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..registry import Registry


class TransferModel(nn.Module):
    # What a pretrained backbone family records about its weights (timm's and torchvision's set both): the
    # preprocessing they expect (mean, std, input size, interpolation) and where they came from. None elsewhere.
    pretrained_preprocessing: dict[str, Any] | None = None
    weights_source: str | None = None

    def __init__(self, backbone: nn.Module, num_features: int, num_classes: int, *,
                 arch: str, arch_args: dict[str, Any], input_shape: tuple[int, ...]):
        super().__init__()
        self.backbone = backbone
        self.num_features = num_features
        self.head = nn.Linear(num_features, num_classes)
        self.arch = arch
        self.arch_args = dict(arch_args)
        self.input_shape = tuple(input_shape)

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """A freshly initialised head for ``num_classes`` (PyTorch's default Linear init), on the old head's device
        and in its dtype."""
        weight = self.head.weight
        self.head = nn.Linear(self.num_features, num_classes).to(device=weight.device, dtype=weight.dtype)

    def backbone_groups(self) -> list[tuple[str, nn.Module]]:
        """The backbone's layer groups from input to output; architectures override this."""
        return [("backbone", self.backbone)]

    def layer_groups(self) -> list[tuple[str, nn.Module]]:
        """Named groups from the input to the head; gradual unfreezing and layer-wise decay walk this list."""
        return [*self.backbone_groups(), ("head", self.head)]


def _signature(factory: Any) -> str:
    import inspect

    params = list(inspect.signature(factory).parameters.values())[2:]  # after input_shape, num_classes
    return ", ".join(str(p) for p in params) or "no options"


ModelFactory = Any  # (input_shape, num_classes, **options) -> TransferModel
MODELS: Registry[ModelFactory] = Registry("model")


def create_model(name: str, input_shape: tuple[int, ...], num_classes: int, /, **options: Any) -> TransferModel:
    """Build a registered architecture, as ``timm.create_model`` does: ``create_model("cnn", (1, 28, 28), 5)``.
    The first three arguments are positional-only, so that an option may be called ``name`` (timm's model name)."""
    from ..errors import WarmstartError

    factory = MODELS.get(name, parameter="--model")
    try:
        return MODELS.create(name, tuple(input_shape), num_classes, parameter="--model", **options)
    except (TypeError, ValueError) as exc:  # an option of the wrong type or range (int("abc"), a rate of 2)
        raise WarmstartError(f"model {name!r} cannot be built for input shape {tuple(input_shape)} with options "
                             f"{options}: {exc}", hint=f"see `warmstart list models`; {name} takes "
                             f"{_signature(factory)}") from None
