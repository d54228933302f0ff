"""What a fine-tuning strategy is: a rule for which layer groups train, and how, phrased on the backbone contract.

A strategy sees only :class:`~warmstart.models.TransferModel`'s ``layer_groups()``; it never names layers of a
particular architecture. Its parameter groups are data (name, parameters, ``lr_scale``, weight decay) and the
scheduler multiplies each group's own learning rate, so per-group scales survive every schedule. A strategy may
also add a regulariser to the training loss (``penalty``), as L2-SP does.

Options are keyword arguments of the strategy's constructor, checked when it is built:
``create_strategy("layerwise-lr", layer_decay=0.7)``.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from ..errors import WarmstartError
from ..models import TransferModel
from ..registry import Registry


class Strategy:
    """Base class: subclasses say which groups train (``trainable``) and may scale their learning rates."""

    name = "base"

    def trainable(self, model: TransferModel) -> list[str]:
        raise NotImplementedError

    def lr_scale(self, group: str, index: int, num_groups: int) -> float:
        return 1.0

    def group_weight_decay(self, group: str, index: int, num_groups: int, weight_decay: float) -> float:
        """The weight decay of a group's weights (1-D parameters never decay); the configured one by default."""
        return weight_decay

    def prepare(self, model: TransferModel) -> None:
        """Freeze everything that does not train, so that no gradient is computed for it."""
        trainable = set(self.trainable(model))
        for name, module in model.layer_groups():
            for p in module.parameters():
                p.requires_grad_(name in trainable)

    def param_groups(self, model: TransferModel, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Optimizer groups: per layer group, weights with decay and 1-D parameters (biases, norms) without."""
        trainable = set(self.trainable(model))
        groups = model.layer_groups()
        out = []
        for index, (name, module) in enumerate(groups):
            if name not in trainable:
                continue
            scale = self.lr_scale(name, index, len(groups))
            group_decay = self.group_weight_decay(name, index, len(groups), weight_decay)
            params = [p for p in module.parameters() if p.requires_grad]
            decay = [p for p in params if p.ndim > 1]
            no_decay = [p for p in params if p.ndim <= 1]
            for suffix, members, wd in (("", decay, group_decay), (".no_decay", no_decay, 0.0)):
                if members:
                    out.append({"params": members, "name": name + suffix, "lr": lr * scale, "lr_scale": scale,
                                "weight_decay": wd})
        return out

    def penalty(self, model: TransferModel) -> torch.Tensor | None:
        """A term the training loop adds to the loss (a scalar tensor), or None for none."""
        return None

    def train_mode(self, model: nn.Module) -> None:
        """Training mode for the parts that train; frozen parts stay in eval mode, so BatchNorm statistics of a
        frozen backbone keep their pretrained values."""
        model.train()
        trainable = set(self.trainable(model))  # type: ignore[arg-type]
        for name, module in model.layer_groups():  # type: ignore[operator]
            if name not in trainable:
                module.eval()

    def describe(self) -> dict[str, Any]:
        """The name and the options, as stored by the constructor (each option is an attribute of its name)."""
        return {"name": self.name, **{option: getattr(self, option) for option in _option_names(type(self))}}


STRATEGIES: Registry[type[Strategy]] = Registry("strategy")


def _option_names(strategy_class: type[Strategy]) -> list[str]:
    return [p.name for p in inspect.signature(strategy_class).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def create_strategy(name: str, **options: Any) -> Strategy:
    """Build a registered strategy with its options: ``create_strategy("l2-sp", alpha=0.1)``."""
    strategy_class = STRATEGIES.get(name, parameter="--strategy")
    accepted = _option_names(strategy_class)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise WarmstartError(f"strategy {name!r} has no option {', '.join(unknown)}",
                             hint=f"{name} takes {', '.join(accepted) or 'no options'}")
    return strategy_class(**options)
