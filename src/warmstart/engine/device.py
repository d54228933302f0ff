"""Choosing the device, and making runs repeatable."""

from __future__ import annotations

import random

import numpy as np
import torch

from ..errors import WarmstartError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when it is there, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise WarmstartError(f"--device {name}: CUDA is not available on this machine", hint="use --device cpu or auto")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; returns a generator for the run's own shuffling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
