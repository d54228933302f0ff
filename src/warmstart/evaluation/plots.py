"""Plots, kept apart from the metrics: the confusion matrix as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..io import atomic_write
from .report import EvaluationResult

if TYPE_CHECKING:
    from ..engine.lr_find import LrFindResult


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


def plot_lr_find(result: "LrFindResult", path: str | Path, *, title: str = "") -> Path:
    """The loss against the learning rate (log scale), the suggestion and the other candidate marked; a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lrs, smoothed = np.asarray(result.lrs), np.asarray(result.smoothed)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(lrs, result.losses, color="0.75", linewidth=0.8, label="loss")
    ax.plot(lrs, smoothed, color="C0", label="smoothed loss")
    at = int(np.argmin(np.abs(np.log(lrs) - np.log(result.suggestion))))
    ax.axvline(result.suggestion, color="C3", linestyle="--", linewidth=1)
    ax.plot([result.suggestion], [smoothed[at]], "o", color="C3",
            label=f"suggestion {result.suggestion:.2g} ({result.suggested_by})")
    ax.axvline(result.min_loss_lr_over_10, color="C2", linestyle=":", linewidth=1,
               label=f"min loss / 10: {result.min_loss_lr_over_10:.2g}")
    ax.set_xscale("log")
    # the smoothed curve without its divergence (the last 5 points) sets the scale; what diverges runs off the top
    shown = slice(0, max(len(smoothed) - 5, 1))
    low = min(float(smoothed.min()), float(np.min(result.losses[shown])))
    high = float(smoothed[shown].max())
    margin = 0.1 * (high - low) + 1e-6
    ax.set_ylim(low - margin, high + margin)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(title or "learning-rate range test")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)
