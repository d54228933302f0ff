"""Mixed precision, memory format and compilation of the training steps: settings around the loop, not a new loop.

- ``bf16``: the forward pass runs under ``torch.autocast`` with bfloat16 (CPU and CUDA). bfloat16 keeps float32's
  exponent range, so no loss scaling is needed; weights, gradients and optimizer state stay float32.
- ``fp16``: float16 autocast with a ``torch.amp.GradScaler``, which scales the loss up so small gradients do not
  underflow to zero in float16, unscales before clipping, and skips steps whose gradients overflowed (Micikevicius
  et al., "Mixed Precision Training", ICLR 2018). CUDA only: CPU autocast has no float16 kernels worth having.
- ``channels_last``: convolution weights and image batches in NHWC order, which cuDNN and oneDNN convolutions
  prefer; 2-D inputs (vectors, cached features, token ids) are left as they are.
- ``compile``: ``torch.compile`` on the model; the first steps are slow while it compiles.

Evaluation (validation, test, features) runs in float32, so metrics do not depend on the training precision.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from ..config import TrainConfig
from ..errors import WarmstartError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    def __init__(self, config: TrainConfig, device: torch.device):
        if config.precision == "fp16" and device.type != "cuda":
            raise WarmstartError(f"--precision fp16 needs a CUDA device, and this run is on {device.type}",
                                 hint="use --precision bf16 on a CPU, or run on a GPU (--device cuda)")
        self.device, self.config = device, config
        self.dtype = DTYPES.get(config.precision)
        self.scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """The module that runs training steps: ``model`` itself (its weights moved channels-last if asked), or
        its ``torch.compile`` wrapper, which shares its parameters."""
        if self.config.channels_last:
            model.to(memory_format=torch.channels_last)
        return torch.compile(model) if self.config.compile else model

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.channels_last and x.ndim == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def step(self, optimizer: torch.optim.Optimizer, model: nn.Module, grad_clip_norm: float | None) -> None:
        """Clip (on the true, unscaled gradients) and step; with a scaler, a step with inf/NaN gradients is skipped
        and the scale lowered."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        if grad_clip_norm is not None:
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], grad_clip_norm)
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()
