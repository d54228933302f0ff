"""Maximum mean discrepancy with a Gaussian kernel, and its permutation test.

Gretton, Borgwardt, Rasch, Schölkopf & Smola, "A Kernel Two-Sample Test", JMLR 2012. The unbiased estimate (their
eq. 3) of the squared MMD between samples X (m points) and Y (n points) is

    MMD²_u = 1/(m(m-1)) Σ_{i≠j} k(x_i, x_j) + 1/(n(n-1)) Σ_{i≠j} k(y_i, y_j) - 2/(mn) Σ_{i,j} k(x_i, y_j)

with k(a, b) = exp(-||a - b||² / (2σ²)) and σ the median pairwise distance of the pooled sample (the median
heuristic). It is zero in expectation when both samples come from one distribution (and may then be slightly
negative). The p-value is that of a permutation test: the share of random relabellings of the pooled sample whose
MMD²_u is at least the observed one, (1 + #{≥}) / (1 + permutations).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .base import SHIFT_MEASURES, Sample


@dataclass(frozen=True)
class MmdTest:
    mmd2: float
    p_value: float
    bandwidth: float
    permutations: int


def _unbiased_mmd2(kernel: torch.Tensor, in_x: torch.Tensor) -> torch.Tensor:
    """MMD²_u for each row of ``in_x`` (P, m+n) booleans marking X's members, from the pooled kernel matrix."""
    x = in_x.to(kernel.dtype)
    y = 1.0 - x
    m, n = x.sum(1), y.sum(1)
    diagonal = torch.diagonal(kernel)
    kxx = ((x @ kernel) * x).sum(1) - (x * diagonal).sum(1)
    kyy = ((y @ kernel) * y).sum(1) - (y * diagonal).sum(1)
    kxy = ((x @ kernel) * y).sum(1)
    return kxx / (m * (m - 1)) + kyy / (n * (n - 1)) - 2 * kxy / (m * n)


def mmd_permutation_test(source: np.ndarray, target: np.ndarray, *, permutations: int = 200,
                         seed: int = 0) -> MmdTest:
    """The unbiased squared MMD of ``source`` (m, D) and ``target`` (n, D) under a Gaussian kernel whose bandwidth is
    the median heuristic, and its permutation-test p-value. Needs at least two points on each side."""
    if len(source) < 2 or len(target) < 2:
        raise ValueError(f"MMD needs at least 2 points per sample, got {len(source)} and {len(target)}")
    pooled = torch.from_numpy(np.concatenate([source, target]).astype(np.float64))
    squared = torch.cdist(pooled, pooled).pow(2)
    upper = squared[torch.triu(torch.ones_like(squared, dtype=torch.bool), diagonal=1)]
    bandwidth = float(np.median(upper.sqrt().numpy()))  # numpy averages the two middle values; torch does not
    bandwidth = bandwidth if bandwidth > 0 else 1.0  # identical points: any bandwidth gives MMD 0
    kernel = torch.exp(-squared / (2 * bandwidth ** 2))
    m, total = len(source), len(pooled)
    observed_membership = torch.zeros(1, total, dtype=torch.bool)
    observed_membership[0, :m] = True
    observed = float(_unbiased_mmd2(kernel, observed_membership)[0])
    generator = torch.Generator().manual_seed(seed)
    exceed = 0
    for start in range(0, permutations, 50):  # 50 relabellings at a time bound the memory
        count = min(50, permutations - start)
        order = torch.stack([torch.randperm(total, generator=generator) for _ in range(count)])
        membership = order < m  # the first m positions of each permutation form X
        exceed += int((_unbiased_mmd2(kernel, membership) >= observed).sum())
    return MmdTest(mmd2=observed, p_value=(1 + exceed) / (1 + permutations), bandwidth=bandwidth,
                   permutations=permutations)


@SHIFT_MEASURES.register("mmd")
def mmd(source: Sample, target: Sample, *, seed: int = 0, permutations: int = 200) -> dict[str, Any]:
    """Maximum mean discrepancy (Gaussian kernel, median bandwidth, unbiased) and its permutation p-value."""
    test = mmd_permutation_test(source.features, target.features, permutations=permutations, seed=seed)
    return {"mmd2": test.mmd2, "mmd_p_value": test.p_value, "mmd_bandwidth": test.bandwidth,
            "mmd_permutations": test.permutations}
