"""What a fine-tuning strategy is: a rule for which layer groups train, and how, phrased on the backbone contract.

A strategy sees only :class:`~warmstart.models.TransferModel`'s ``layer_groups()``; it never names layers of a
particular architecture. Its parameter groups are data (name, parameters, ``lr_scale``, weight decay) and the
scheduler multiplies each group's own learning rate, so per-group scales survive every schedule.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..models import TransferModel
from ..registry import Registry


class Strategy:
    """Base class: subclasses say which groups train (``trainable``) and may scale their learning rates."""

    name = "base"

    def trainable(self, model: TransferModel) -> list[str]:
        raise NotImplementedError

    def lr_scale(self, group: str, index: int, num_groups: int) -> float:
        return 1.0

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
            params = [p for p in module.parameters() if p.requires_grad]
            decay = [p for p in params if p.ndim > 1]
            no_decay = [p for p in params if p.ndim <= 1]
            for suffix, members, wd in (("", decay, weight_decay), (".no_decay", no_decay, 0.0)):
                if members:
                    out.append({"params": members, "name": name + suffix, "lr": lr * scale, "lr_scale": scale,
                                "weight_decay": wd})
        return out

    def train_mode(self, model: nn.Module) -> None:
        """Training mode for the parts that train; frozen parts stay in eval mode, so BatchNorm statistics of a
        frozen backbone keep their pretrained values."""
        model.train()
        trainable = set(self.trainable(model))  # type: ignore[arg-type]
        for name, module in model.layer_groups():  # type: ignore[operator]
            if name not in trainable:
                module.eval()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


STRATEGIES: Registry[type[Strategy]] = Registry("strategy")


def create_strategy(name: str) -> Strategy:
    return STRATEGIES.get(name, parameter="--strategy")()
