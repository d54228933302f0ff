"""Image augmentation, built on torchvision.transforms.v2, applied example by example to in-memory tensors.

Two kinds, both applied to *un-normalised* images in [0, 1] (the colour and intensity operations assume that range),
before the checkpoint's recorded normalisation:

- presets (``AUGMENTATIONS``): a function of the image size that returns a v2 transform, applied to every image with
  its own random parameters: none, light, strong, randaugment (Cubuk et al., 2020), trivialaugment (Muller & Hutter,
  2021);
- batch mixes (``MIXES``): mixup (Zhang et al., 2018: x = lam x_i + (1 - lam) x_j, y likewise, lam ~ Beta(a, a)) and
  cutmix (Yun et al., 2019: a box of x_j pasted into x_i, y mixed by the box's area), which turn the labels into soft
  targets (probabilities) that CrossEntropyLoss takes directly.

Every random draw comes from a seed, so a given seed always gives the same augmented images: ``augment`` takes the
seed, and :class:`BatchAugmentation` draws one seed per batch from the run's own generator, which makes training runs
reproducible (and resumable: that generator's state is saved with the run).
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torchvision.transforms import v2

from ..errors import WarmstartError
from ..registry import Registry

AUGMENTATIONS: Registry[Callable[[tuple[int, int]], v2.Transform]] = Registry("augmentation")
MIXES: Registry[Callable[[float, int], v2.Transform]] = Registry("mix", plural="augmentations")


@AUGMENTATIONS.register("none")
def none(size: tuple[int, int]) -> v2.Transform:
    """No augmentation: every image as it is."""
    return v2.Identity()


@AUGMENTATIONS.register("light")
def light(size: tuple[int, int]) -> v2.Transform:
    """A random crop of 80-100% of the area, resized back, and a horizontal flip half of the time."""
    return v2.Compose([v2.RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(0.9, 1.1), antialias=True),
                       v2.RandomHorizontalFlip()])


@AUGMENTATIONS.register("strong")
def strong(size: tuple[int, int]) -> v2.Transform:
    """A crop of 35-100% of the area, a flip, brightness/contrast jitter, a small rotation and random erasing."""
    return v2.Compose([v2.RandomResizedCrop(size, scale=(0.35, 1.0), antialias=True),
                       v2.RandomHorizontalFlip(),
                       v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4),
                       v2.RandomRotation(15),
                       v2.RandomErasing(p=0.25, scale=(0.02, 0.2))])


@AUGMENTATIONS.register("randaugment")
def randaugment(size: tuple[int, int]) -> v2.Transform:
    """RandAugment (Cubuk et al., 2020): 2 of 14 operations at magnitude 9 of 31, then a horizontal flip."""
    return v2.Compose([v2.RandAugment(num_ops=2, magnitude=9), v2.RandomHorizontalFlip()])


@AUGMENTATIONS.register("trivialaugment")
def trivialaugment(size: tuple[int, int]) -> v2.Transform:
    """TrivialAugment (Muller & Hutter, 2021): one operation at a uniformly drawn strength, then a flip."""
    return v2.Compose([v2.TrivialAugmentWide(), v2.RandomHorizontalFlip()])


@AUGMENTATIONS.register("simclr")
def simclr(size: tuple[int, int]) -> v2.Transform:
    """SimCLR's views (Chen et al. 2020): a crop of 20-100% of the area, a flip, strong colour jitter, sometimes grey."""
    # The paper crops 8-100% of 224-pixel images; on 28-32 pixels that leaves a few pixels, so 20% (as common
    # CIFAR reproductions do). Its Gaussian blur is left out for the same reason: it suits large images only.
    return v2.Compose([v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True),
                       v2.RandomHorizontalFlip(),
                       v2.RandomApply([v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)], p=0.8),
                       v2.RandomGrayscale(p=0.2)])


@MIXES.register("mixup")
def mixup(alpha: float, num_classes: int) -> v2.Transform:
    """Batch-level (--mix mixup): convex combinations of image pairs and of their labels (Zhang et al., 2018)."""
    return v2.MixUp(alpha=alpha, num_classes=num_classes)


@MIXES.register("cutmix")
def cutmix(alpha: float, num_classes: int) -> v2.Transform:
    """Batch-level (--mix cutmix): a box of one image pasted into another, labels mixed by area (Yun et al., 2019)."""
    return v2.CutMix(alpha=alpha, num_classes=num_classes)


def _check_images(x: torch.Tensor, what: str) -> None:
    if x.ndim != 4:
        raise WarmstartError(f"augmentation {what!r} needs images (N, C, H, W), got inputs of shape "
                             f"{tuple(x.shape)}", hint="augment image data only")


def augment(x: torch.Tensor, preset: str, seed: int) -> torch.Tensor:
    """``x`` (N, C, H, W) with every image transformed by ``preset``, reproducibly for a given ``seed``."""
    _check_images(x, preset)
    transform = AUGMENTATIONS.create(preset, tuple(x.shape[-2:]), parameter="augment")
    with torch.random.fork_rng(devices=[]):  # v2 draws from torch's global generator: keep it untouched
        torch.manual_seed(seed)
        return torch.stack([transform(image) for image in x])


class BatchAugmentation:
    """The training loop's batch transform: augment each un-normalised image, mix the batch, then normalise.

    ``__call__(x, y)`` returns the model's inputs and the loss targets: class indices, or (with a mix) one
    probability row per example, all zero for a row that mixed in an unlabelled example (a negative label). One
    seed per batch is drawn from ``generator`` (the run's), so a run is reproducible and every batch differs.
    ``normalize`` maps [0, 1] images to the model's inputs (the checkpoint's recorded preprocessing).
    """

    def __init__(self, preset: str, mix: str, mix_alpha: float, num_classes: int,
                 normalize: Callable[[torch.Tensor], torch.Tensor], generator: torch.Generator):
        self.preset, self.mix = preset, mix
        self.make_transform = AUGMENTATIONS.get(preset, parameter="augment")
        self.mixer = None if mix == "none" else MIXES.create(mix, mix_alpha, num_classes, parameter="mix")
        self.normalize = normalize
        self.generator = generator
        self._transforms: dict[tuple[int, int], v2.Transform] = {}

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        transform = _transform_for(x, self.preset, self.make_transform, self._transforms)
        with _seeded_from(self.generator):
            if self.preset != "none":
                x = torch.stack([transform(image) for image in x])
            targets = y
            if self.mixer is not None:
                missing = y < 0  # unlabelled examples (distillation's transfer set): a negative placeholder
                x, targets = self.mixer(x, y.clamp(min=0))
                if bool(missing.any()):
                    # v2's MixUp and CutMix mix each image with the one before it in the batch (a roll by one): a
                    # mixed row that holds an unlabelled image has no label, an all-zero row of targets
                    targets[missing | missing.roll(1, 0)] = 0.0
        return self.normalize(x), targets


def _transform_for(x: torch.Tensor, preset: str, make_transform: Callable[[tuple[int, int]], v2.Transform],
                   cache: dict[tuple[int, int], v2.Transform]) -> v2.Transform:
    """``preset``'s transform for images of ``x``'s size, built once per size."""
    _check_images(x, preset)
    size = tuple(x.shape[-2:])
    if size not in cache:
        cache[size] = make_transform(size)
    return cache[size]


@contextlib.contextmanager
def _seeded_from(generator: torch.Generator):
    """The global RNG seeded from ``generator`` (one draw per batch) inside, and left as it was outside: the
    transforms draw from the global RNG, and a run's batches must not disturb anything else's."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class TwoViews:
    """SimCLR's batch transform: two independently augmented views of each un-normalised image, normalised.

    ``__call__(x, y)`` returns inputs of shape (N, 2, C, H, W) and ``y`` unchanged. Seeded per batch from the run's
    ``generator``, like :class:`BatchAugmentation`, so a run (and its resume) draws the same views."""

    def __init__(self, preset: str, normalize: Callable[[torch.Tensor], torch.Tensor], generator: torch.Generator):
        self.preset = preset
        self.make_transform = AUGMENTATIONS.get(preset, parameter="augment")
        self.normalize, self.generator = normalize, generator
        self._transforms: dict[tuple[int, int], v2.Transform] = {}

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        transform = _transform_for(x, self.preset, self.make_transform, self._transforms)
        with _seeded_from(self.generator):
            views = [self.normalize(torch.stack([transform(image) for image in x])) for _ in range(2)]
        return torch.stack(views, dim=1), y
