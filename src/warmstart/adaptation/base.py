"""What an unsupervised domain adaptation method is, phrased so that it never needs to know the training loop.

A method either brings a loss module that takes the backbone's features of a labelled source batch and of an
unlabelled target batch, ``loss(f_s, f_t)`` (DANN, Deep CORAL), or changes the trained model afterwards from the
target's inputs alone (AdaBN); see :mod:`warmstart.adaptation.alignment` for how the loop uses the loss modules.

Options are keyword arguments of the method's constructor, checked when it is built:
``create_adaptation("dann", weight=0.5)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import WarmstartError
from ..models import TransferModel
from ..registry import Registry, option_names


class Adaptation:
    """Base class. ``weight`` multiplies the loss module's loss before it is added to the classification loss."""

    name = "base"
    weight = 1.0
    aligns_features = False  # True: a loss module on source and target features, trained with the model

    def loss_module(self, num_features: int) -> nn.Module | None:
        """The module ``(source_features, target_features) -> scalar loss`` to add in training; None for none."""
        return None

    def begin_step(self, loss_module: nn.Module, progress: float) -> None:
        """Called before each training step; ``progress`` runs from 0 (first step) towards 1 (the last)."""

    def after_training(self, model: TransferModel, target_inputs: torch.Tensor, device: torch.device) -> None:
        """Called once after training, with the preprocessed unlabelled target inputs; nothing by default."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **{option: getattr(self, option) for option in option_names(type(self))}}


ADAPTATIONS: Registry[type[Adaptation]] = Registry("adaptation")


def create_adaptation(name: str, **options: Any) -> Adaptation:
    """Build a registered adaptation method with its options: ``create_adaptation("coral", weight=10)``."""
    return ADAPTATIONS.create(name, parameter="--adaptation", **options)


def check_weight(name: str, weight: Any) -> float:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
        raise WarmstartError(f"adaptation {name}: option weight must be a number >= 0, got {weight!r}",
                             hint="e.g. --adaptation-option weight=1.0")
    return float(weight)
