"""Mini-batches from tensors already in memory.

Small transfer datasets fit in memory, and slicing a tensor is far cheaper than a DataLoader collating examples
one by one; shuffling uses the run's own seeded generator.
"""

from __future__ import annotations

import itertools
import math
from typing import Iterator

import torch


class TensorBatches:
    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool,
                 generator: torch.Generator | None = None, weights: torch.Tensor | None = None):
        """``weights``: draw each epoch's ``len(y)`` examples with these probabilities, with replacement."""
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.weights = weights

    @property
    def num_examples(self) -> int:
        return len(self.y)

    def __len__(self) -> int:
        n = len(self.y)
        batches = math.ceil(n / self.batch_size)
        # a last batch of one example would break BatchNorm in training mode: it is dropped instead
        if self.shuffle and n > 1 and n % self.batch_size == 1:
            batches -= 1
        return batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.y)
        if self.weights is not None:
            order = torch.multinomial(self.weights, n, replacement=True, generator=self.generator)
        elif self.shuffle:
            order = torch.randperm(n, generator=self.generator)
        else:
            order = torch.arange(n)
        for b in range(len(self)):
            index = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.x[index], self.y[index]


class CycledBatches:
    """Exactly ``steps`` batches, going through ``batches`` again (a new epoch of it) as often as that needs: an
    epoch of a chosen length (lr-find's range test)."""

    def __init__(self, batches, steps: int):
        self.batches, self.steps = batches, steps
        self.batch_size, self.num_examples = batches.batch_size, batches.num_examples

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        if len(self.batches) == 0:
            return iter(())
        return itertools.islice(itertools.chain.from_iterable(itertools.repeat(self.batches)), self.steps)
