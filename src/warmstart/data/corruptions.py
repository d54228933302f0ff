"""Target sets with a known shift, built deterministically from any image dataset.

In the spirit of CIFAR-10-C (Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions
and Perturbations", ICLR 2019) and MNIST-C (Mu & Gilmer, 2019): one corruption, at a severity from 1 (mild) to 5
(harsh), applied to every image. The severity tables of ``noise`` and ``contrast`` are CIFAR-10-C's.

A corruption is named ``NAME:SEVERITY`` (``rotate:3``; a bare ``NAME`` means severity 3) and is set on the data with
``DataConfig.corruption`` (``--corruption`` on the command line). Images are expected in [0, 1], as every loader
makes them; the result stays in [0, 1]. Random corruptions (rotation angles, noise) draw from a generator seeded by
the corruption, its severity and the split, so a given dataset always yields the same corrupted set.
"""

from __future__ import annotations

import math
import zlib
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from ..errors import WarmstartError
from ..registry import Registry
from .dataset import Dataset

SEVERITIES = (1, 2, 3, 4, 5)
DEFAULT_SEVERITY = 3

# (images (N, C, H, W) float32 in [0, 1], severity 1-5, seeded generator) -> corrupted images in [0, 1]
Corruption = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]
CORRUPTIONS: Registry[Corruption] = Registry("corruption")


@CORRUPTIONS.register("invert")
def invert(x: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Inverted contrast: x -> a(1 - x) + (1 - a)x with a = 0.6, 0.7, 0.8, 0.9, 1.0 (5: the photographic negative)."""
    a = 0.5 + 0.1 * severity
    return a * (1.0 - x) + (1.0 - a) * x


@CORRUPTIONS.register("rotate")
def rotate(x: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Rotation about the centre by a random angle of 15, 30, 45, 60 or 75 degrees +-5 either way; zero fill."""
    magnitude = 15.0 * severity + 10.0 * torch.rand(len(x), generator=generator) - 5.0
    sign = torch.where(torch.rand(len(x), generator=generator) < 0.5, -1.0, 1.0)
    angle = torch.deg2rad(magnitude * sign)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zeros = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp(0.0, 1.0)


@CORRUPTIONS.register("blur")
def blur(x: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Gaussian blur with sigma 0.5, 0.75, 1.0, 1.5 or 2.0 pixels (kernel +-3 sigma, reflected borders)."""
    sigma = (0.5, 0.75, 1.0, 1.5, 2.0)[severity - 1]
    size = 2 * math.ceil(3 * sigma) + 1
    size = min(size, 2 * (min(x.shape[-2:]) // 2) - 1)  # reflection padding needs the kernel inside the image
    return TF.gaussian_blur(x, [size, size], [sigma, sigma])


@CORRUPTIONS.register("noise")
def noise(x: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Additive Gaussian noise of standard deviation 0.08, 0.12, 0.18, 0.26 or 0.38 (CIFAR-10-C's), clipped."""
    std = (0.08, 0.12, 0.18, 0.26, 0.38)[severity - 1]
    return (x + std * torch.randn(x.shape, generator=generator)).clamp(0.0, 1.0)


@CORRUPTIONS.register("contrast")
def contrast(x: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Lowered contrast: each image pulled towards its mean, keeping 75, 50, 40, 30 or 15% (CIFAR-10-C's)."""
    keep = (0.75, 0.5, 0.4, 0.3, 0.15)[severity - 1]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * keep + mean


def parse_corruption(spec: str, *, parameter: str = "corruption") -> tuple[str, int]:
    """``"rotate:3"`` -> ("rotate", 3); ``"rotate"`` -> ("rotate", 3). Unknown names or severities raise a clear
    error naming ``parameter``."""
    if not isinstance(spec, str) or not spec.strip():
        raise WarmstartError(f"{parameter}: expected NAME or NAME:SEVERITY, got {spec!r}",
                             hint=f"e.g. rotate:3; names: {', '.join(CORRUPTIONS.names())}")
    name, _, level = spec.strip().partition(":")
    CORRUPTIONS.get(name, parameter=parameter)
    if not level:
        return name, DEFAULT_SEVERITY
    if not level.isdigit() or int(level) not in SEVERITIES:
        raise WarmstartError(f"{parameter} {spec!r}: the severity must be a whole number from 1 to 5, got {level!r}",
                             hint=f"e.g. {name}:3")
    return name, int(level)


def _seed(name: str, severity: int, split: str) -> int:
    return zlib.crc32(f"{name}:{severity}:{split}".encode())


def corrupt(dataset: Dataset, spec: str, *, split: str = "train", batch_size: int = 2048) -> Dataset:
    """``dataset`` with the corruption ``spec`` applied to every image; deterministic for a dataset and split.

    Raises a clear error for data that are not images. The labels and class names are unchanged; the name gains
    the corruption (``fashion-mnist[rotate:3]``)."""
    name, severity = parse_corruption(spec)
    if dataset.kind != "image":
        raise WarmstartError(f"corruption {spec!r} applies to images, but {dataset.name} holds {dataset.kind} data",
                             hint="drop the corruption option that names it (--corruption, --source-corruption or "
                                  "--target-corruption), or use image data")
    generator = torch.Generator().manual_seed(_seed(name, severity, split))
    function = CORRUPTIONS.get(name)
    x = torch.from_numpy(np.ascontiguousarray(dataset.x, dtype=np.float32))
    # in batches: bounded memory, and the same draws whatever the dataset's size up to each batch
    parts = [function(x[i:i + batch_size], severity, generator) for i in range(0, len(x), batch_size)]
    corrupted = torch.cat(parts).numpy() if parts else dataset.x
    return Dataset(corrupted.astype(np.float32, copy=False), dataset.y, dataset.class_names, dataset.kind,
                   f"{dataset.name}[{name}:{severity}]", dataset.feature_names)
