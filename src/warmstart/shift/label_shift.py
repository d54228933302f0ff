"""The shift in label distribution between two labelled samples.

The label histograms are compared over the union of the two class-name sets (a class one domain lacks has
frequency 0 there): the total variation distance ½ Σ_c |p_c - q_c| and the Jensen-Shannon distance (base 2,
scipy's ``jensenshannon``), both 0 for equal label distributions and 1 for disjoint label sets. Whether a difference
is more than sampling noise is Pearson's chi-square test of homogeneity on the two samples' label counts
(``scipy.stats.chi2_contingency``): two samples of a few hundred drawn from one distribution differ by a total
variation of 0.05-0.15 by chance alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency

from .base import SHIFT_MEASURES, Sample


def label_histograms(source: Sample, target: Sample) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The class names of both samples (source's first) and each sample's label frequencies over them."""
    names = list(source.class_names) + [n for n in target.class_names if n not in source.class_names]

    def frequencies(sample: Sample) -> np.ndarray:
        counts = np.bincount(sample.labels, minlength=len(sample.class_names)).astype(np.float64)
        out = np.zeros(len(names))
        for name, count in zip(sample.class_names, counts):
            out[names.index(name)] += count
        return out / max(out.sum(), 1.0)

    return names, frequencies(source), frequencies(target)


@SHIFT_MEASURES.register("label-shift")
def label_shift(source: Sample, target: Sample, *, seed: int = 0) -> dict[str, Any]:
    """Total variation and Jensen-Shannon distance between the two label histograms (0 same, 1 disjoint), and the
    chi-square test's p-value that they are one distribution."""
    names, p, q = label_histograms(source, target)
    shared = sorted(set(source.class_names) & set(target.class_names))
    counts = np.stack([p * len(source.labels), q * len(target.labels)])
    counts = counts[:, counts.sum(axis=0) > 0]
    p_value = 1.0 if counts.shape[1] < 2 else float(chi2_contingency(counts).pvalue)
    return {"label_total_variation": float(0.5 * np.abs(p - q).sum()), "label_shift_p_value": p_value,
            "label_js_distance": float(jensenshannon(p, q, base=2)),
            "shared_classes": len(shared), "source_classes": len(source.class_names),
            "target_classes": len(target.class_names)}
