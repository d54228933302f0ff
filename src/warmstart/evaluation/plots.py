"""Plots, kept apart from the metrics: the confusion matrix as a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import atomic_write
from .report import EvaluationResult


def plot_confusion_matrix(result: EvaluationResult, path: str | Path, *, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    cm = np.asarray(result.confusion_matrix)
    n = len(result.class_names)
    size = max(4.0, 0.6 * n + 2.5)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay(cm, display_labels=list(result.class_names)).plot(
        ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45, include_values=n <= 30)
    ax.set_title(title or f"accuracy {result.accuracy:.3f}, macro F1 {result.macro_f1:.3f}")
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)
