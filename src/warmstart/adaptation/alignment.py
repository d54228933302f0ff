"""How the training loop uses an adaptation loss: the one place that joins a method to the loop.

Each training step draws a batch of unlabelled target inputs (as many as the source batch, reshuffled with the
run's seeded generator whenever the target set is used up), runs the backbone once on source and target together
(as TLlib does, so BatchNorm sees both domains), classifies the source part, and adds
``weight * loss(f_s, f_t)`` to the classification loss.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..config import TrainConfig
from ..errors import WarmstartError
from ..models import TransferModel
from .base import Adaptation


class FeatureAlignment:
    """An adaptation method's loss module with the unlabelled target inputs it aligns the source to."""

    def __init__(self, method: Adaptation, model: TransferModel, target_inputs: torch.Tensor,
                 generator: torch.Generator):
        if len(target_inputs) < 2:
            raise WarmstartError(f"adaptation {method.name} needs unlabelled target inputs (at least 2), got "
                                 f"{len(target_inputs)}", hint="pass a non-empty --target-unlabeled dataset")
        if tuple(target_inputs.shape[1:]) != tuple(model.input_shape):
            raise WarmstartError(f"adaptation {method.name}: the unlabelled target inputs have shape "
                                 f"{tuple(target_inputs.shape[1:])}, the model takes {tuple(model.input_shape)}",
                                 hint="use target data of the source's shape, or pass --resize")
        module = method.loss_module(model.num_features)
        if module is None:
            raise ValueError(f"adaptation {method.name} has no loss module to train with")
        self.method, self.module, self.target_inputs = method, module, target_inputs
        self.generator = generator
        self._order = torch.empty(0, dtype=torch.long)
        self._position = 0
        self._loss_sum, self._steps = 0.0, 0

    def attach(self, optimizer: torch.optim.Optimizer, config: TrainConfig, device: torch.device) -> None:
        """Move the loss module to ``device`` and give its parameters (DANN's discriminator) an optimizer group at
        the base learning rate; before the scheduler is built, so the schedule applies to it too."""
        self.module.to(device)
        parameters = [p for p in self.module.parameters() if p.requires_grad]
        if parameters:
            optimizer.add_param_group({"params": parameters, "name": f"adaptation.{self.method.name}",
                                       "lr": config.lr, "lr_scale": 1.0, "weight_decay": config.weight_decay})

    def _target_batch(self, size: int) -> torch.Tensor:
        size = min(size, len(self.target_inputs))
        if self._position + size > len(self._order):
            self._order = torch.randperm(len(self.target_inputs), generator=self.generator)
            self._position = 0
        index = self._order[self._position:self._position + size]
        self._position += size
        return self.target_inputs[index]

    def step(self, model: TransferModel, xb: torch.Tensor, yb: torch.Tensor, loss_fn: nn.Module,
             progress: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(source logits, classification loss + weighted adaptation loss) for one training step."""
        self.method.begin_step(self.module, progress)
        self.module.train()
        target = self._target_batch(len(xb)).to(xb.device, non_blocking=True)
        features = model.forward_features(torch.cat([xb, target]))
        source_features, target_features = features[:len(xb)], features[len(xb):]
        logits = model.forward_head(source_features)
        adaptation_loss = self.module(source_features, target_features)
        self._loss_sum += float(adaptation_loss.detach())
        self._steps += 1
        return logits, loss_fn(logits, yb) + self.method.weight * adaptation_loss

    def epoch_logs(self) -> dict[str, Any]:
        """The epoch's mean adaptation loss (and DANN's last domain accuracy); resets the running sums."""
        logs: dict[str, Any] = {"adaptation_loss": self._loss_sum / max(self._steps, 1)}
        if getattr(self.module, "domain_accuracy", None) is not None:
            logs["domain_accuracy"] = self.module.domain_accuracy
        self._loss_sum, self._steps = 0.0, 0
        return logs
