"""Statistics of repeated runs: the mean, its Student t confidence interval, and the paired t-test of a gain.

Pure functions of sequences of numbers; ``tests/evaluation/test_stats.py`` checks them against scipy.

- :func:`summarize`: mean ± sample std (ddof=1) and the confidence interval of the mean, Student t with n - 1
  degrees of freedom: ``mean ± t_{(1 + confidence) / 2, n-1} · std / sqrt(n)``.
- :func:`paired_gain`: the differences ``d_s = transfer_s - scratch_s`` paired by seed, their mean ± std and the
  two-sided p-value of the paired t-test (Student, 1908; ``scipy.stats.ttest_rel``).
- :func:`gain_flag`: a short verdict; negative transfer (Rosenstein et al., "To transfer or not to transfer", 2005)
  where the mean gain is below 0, called significant when p < alpha.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

CONFIDENCE = 0.95
ALPHA = 0.05


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The Student t confidence interval of the mean of ``values``; None for fewer than 2 values."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return None
    from scipy import stats

    mean, std = float(x.mean()), float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df=x.size - 1)) * std / math.sqrt(x.size)
    return mean - half, mean + half


def summarize(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float | None,
                                                                                   float | None]:
    """``(mean, std, ci_low, ci_high)`` of a sample: sample std (ddof=1, 0 for one value) and the Student t
    confidence interval of the mean. One value has no interval: its bounds are None."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("summarize needs at least one value")
    mean = float(x.mean())
    if x.size < 2:
        return mean, 0.0, None, None
    low, high = t_interval(x, confidence)
    return mean, float(x.std(ddof=1)), low, high


def paired_gain(transfer: Sequence[float], scratch: Sequence[float]) -> tuple[float, float, float | None]:
    """``(mean, std, p_value)`` of the per-seed differences ``transfer - scratch`` (in the units given).

    p is the two-sided paired t-test (``scipy.stats.ttest_rel``); None with fewer than 2 pairs. Differences that are
    all equal have no spread: p is 1 when they are all 0 (no evidence of a difference), else 0, as scipy's t = ±inf.
    """
    t, s = np.asarray(transfer, dtype=np.float64), np.asarray(scratch, dtype=np.float64)
    if t.shape != s.shape or t.ndim != 1 or t.size == 0:
        raise ValueError(f"paired_gain needs two equally long, non-empty sequences; got {t.shape} and {s.shape}")
    d = t - s
    mean, std = float(d.mean()), float(d.std(ddof=1)) if d.size > 1 else 0.0
    if d.size < 2:
        return mean, std, None
    if np.allclose(d, d[0], rtol=0.0, atol=1e-12):
        return mean, 0.0, 1.0 if abs(mean) <= 1e-12 else 0.0
    from scipy import stats

    return mean, std, float(stats.ttest_rel(t, s).pvalue)


def is_significant(p_value: float | None, alpha: float = ALPHA) -> bool | None:
    """True when p < alpha; None when there is no p-value (fewer than 2 seeds)."""
    return None if p_value is None else p_value < alpha


def is_negative_transfer(gain_mean: float) -> bool:
    """Transfer hurts when it does worse than scratch on average."""
    return gain_mean < 0


def gain_flag(gain_mean: float, p_value: float | None, alpha: float = ALPHA) -> str:
    """A short verdict on a gain over scratch: its sign, and whether a paired t-test finds it significant."""
    if p_value is None:
        verdict = "no p-value: needs 2+ seeds"
        return f"negative transfer ({verdict})" if is_negative_transfer(gain_mean) else verdict
    significance = "significant" if p_value < alpha else "not significant"
    if is_negative_transfer(gain_mean):
        return f"negative transfer ({significance})"
    if gain_mean > 0:
        return f"gain ({significance})"
    return "no difference"
