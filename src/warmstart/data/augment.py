"""Image augmentation, built on torchvision.transforms.v2, applied example by example to in-memory tensors.

Each preset is a function of the image size that returns a v2 transform; ``augment`` draws every example's own
random parameters from a seeded generator, so a given seed always gives the same augmented views (which is what
lets the linear probe cache them).
"""

from __future__ import annotations

from typing import Callable

import torch
from torchvision.transforms import v2

from ..errors import WarmstartError
from ..registry import Registry

AUGMENTATIONS: Registry[Callable[[tuple[int, int]], v2.Transform]] = Registry("augmentation")


@AUGMENTATIONS.register("light")
def light(size: tuple[int, int]) -> v2.Transform:
    """A random crop of 80-100% of the area, resized back, and a horizontal flip half of the time."""
    return v2.Compose([v2.RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(0.9, 1.1), antialias=True),
                       v2.RandomHorizontalFlip()])


def augment(x: torch.Tensor, preset: str, seed: int) -> torch.Tensor:
    """``x`` (N, C, H, W) with every image transformed by ``preset``, reproducibly for a given ``seed``."""
    if x.ndim != 4:
        raise WarmstartError(f"augmentation {preset!r} needs images (N, C, H, W), got inputs of shape "
                             f"{tuple(x.shape)}", hint="augment image data only")
    transform = AUGMENTATIONS.get(preset, parameter="augment")(tuple(x.shape[-2:]))
    with torch.random.fork_rng(devices=[]):  # v2 draws from torch's global generator: keep it untouched
        torch.manual_seed(seed)
        return torch.stack([transform(image) for image in x])
