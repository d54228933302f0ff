"""What a shift measure is: a pure function of a source and a target sample, registered by name.

A measure takes two :class:`Sample` objects (the backbone's features of each domain and their labels) and returns a
flat dict of JSON-ready numbers; ``warmstart list shift-measures`` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..registry import Registry


@dataclass(frozen=True)
class Sample:
    """One domain: features (N, D), labels (N,) as class ids, and the names those ids index."""

    features: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]


ShiftMeasure = Callable[..., dict[str, Any]]  # (source: Sample, target: Sample, *, seed: int) -> dict
SHIFT_MEASURES: Registry[ShiftMeasure] = Registry("shift measure", plural="shift-measures")
