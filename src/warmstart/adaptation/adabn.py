"""AdaBN (Li, Wang, Shi, Liu & Hou, "Revisiting Batch Normalization for Practical Domain Adaptation", ICLR 2017
workshop; arXiv 1603.04779, 2016).

Every BatchNorm layer's running mean and variance are replaced by the statistics of the target's inputs at that
layer, estimated over all target inputs (a cumulative average over batches, PyTorch's ``momentum=None``). Nothing
else changes: no weight, no bias, no other buffer.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import WarmstartError
from ..models import TransferModel
from .base import ADAPTATIONS, Adaptation

_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


@torch.no_grad()
def adapt_batchnorm(model: nn.Module, inputs: torch.Tensor, device: torch.device | str = "cpu",
                    batch_size: int = 256) -> int:
    """Re-estimate the running statistics of every BatchNorm layer of ``model`` on ``inputs`` (already
    preprocessed); returns the number of layers re-estimated. Raises a clear error when there are none, or no
    inputs."""
    layers = [m for m in model.modules() if isinstance(m, _BATCHNORM) and m.track_running_stats]
    if not layers:
        raise WarmstartError("AdaBN re-estimates BatchNorm statistics, and this model has no BatchNorm layer",
                             hint="use dann or coral instead, or a model with BatchNorm (cnn)")
    if len(inputs) < 2:
        raise WarmstartError(f"AdaBN needs unlabelled target inputs (at least 2), got {len(inputs)}",
                             hint="pass a non-empty --target-unlabeled dataset")
    was_training = model.training
    momenta = [layer.momentum for layer in layers]
    model.eval().to(device)
    try:
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # a cumulative average: every target input counts equally
            layer.train()  # only the BatchNorm layers: dropout and the rest stay in eval mode
        for start in range(0, len(inputs), batch_size):
            batch = inputs[start:start + batch_size]
            if len(batch) > 1:  # a batch of one has no variance
                model(batch.to(device))
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        model.train(was_training)
    return len(layers)


@ADAPTATIONS.register("adabn")
class AdaBN(Adaptation):
    """AdaBN (Li et al., 2016): after training, BatchNorm statistics re-estimated on the unlabelled target."""

    name = "adabn"
    weight = 0.0

    def __init__(self, batch_size: int = 256):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise WarmstartError(f"adaptation adabn: option batch_size must be an integer >= 2, got {batch_size!r}",
                                 hint="pass --adaptation-option batch_size=VALUE with VALUE 2 or more, e.g. 256")
        self.batch_size = batch_size

    def after_training(self, model: TransferModel, target_inputs: torch.Tensor, device: torch.device) -> None:
        adapt_batchnorm(model, target_inputs, device, self.batch_size)
