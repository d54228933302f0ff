"""Plots, kept apart from the metrics: the confusion matrix as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

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


# ---------------------------------------------------------------------------------------------------------------
# The report page's figures (reporting/html.py), each returned as a base64 PNG. Every plot warmstart draws lives in
# this module: matplotlib is imported nowhere else.


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig) -> str:
    import base64
    import io

    plt = _pyplot()
    fig.tight_layout()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=90)  # tight_layout fitted it already: no second, "tight" draw
    finally:
        plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def learning_curves(epochs: Sequence[dict[str, Any]]) -> str:
    """Loss and accuracy per epoch, training and validation; the strategy's phases (which layer groups train)
    are shaded and labelled where the log records them."""
    plt = _pyplot()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    x = [e["epoch"] for e in epochs]
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        for split, style in (("train", "-o"), ("val", "-s")):
            key = f"{split}_{metric}"
            points = [(e["epoch"], e[key]) for e in epochs if e.get(key) is not None]
            if points:
                ax.plot(*zip(*points), style, markersize=3, label=f"{'validation' if split == 'val' else split}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(loc="best", fontsize=8)
        else:  # e.g. a self-supervised run records no accuracy: say so instead of an empty legend's warning
            ax.text(0.5, 0.5, f"no {metric} recorded", transform=ax.transAxes, ha="center", va="center",
                    fontsize=9, color="#777777")
        for start, end, name, shade in phases(epochs):
            ax.axvspan(start - 0.5, end + 0.5, color="#dde6f5" if shade else "#f3f3f3", zorder=0)
            ax.text((start + end) / 2, 1.0, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                    fontsize=7)
    if x:
        from matplotlib.ticker import MaxNLocator

        for ax in (loss_ax, acc_ax):
            ax.set_xlim(min(x) - 0.5, max(x) + 0.5)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure_png(fig)


def phases(epochs: Sequence[dict[str, Any]]) -> list[tuple[int, int, str, bool]]:
    """``(first epoch, last epoch, label, shade)`` of each run of epochs training the same groups; nothing when the
    log does not say, or when every epoch trains the same groups (one phase needs no shading)."""
    runs: list[list[Any]] = []
    for e in epochs:
        label = e.get("trainable")
        if label is None:
            return []
        if runs and runs[-1][2] == label:
            runs[-1][1] = e["epoch"]
        else:
            runs.append([e["epoch"], e["epoch"], label])
    if len(runs) < 2:
        return []
    return [(s, t, f"phase {i + 1}: {label}", i % 2 == 0) for i, (s, t, label) in enumerate(runs)]


def reliability_diagram(bins: dict[str, np.ndarray], ece: float) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    edges = bins["edges"]
    width = edges[1] - edges[0]
    filled = bins["count"] > 0
    ax.bar(edges[:-1][filled], bins["accuracy"][filled], width=width, align="edge", color="#4c72b0",
           edgecolor="white", label="accuracy")
    ax.bar(edges[:-1][filled], (bins["confidence"] - bins["accuracy"])[filled], bottom=bins["accuracy"][filled],
           width=width, align="edge", color="#dd8452", alpha=0.45, edgecolor="white", label="gap to confidence")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability: ECE {ece:.3f}")
    ax.legend(loc="upper left", fontsize=8)
    return figure_png(fig)


def accuracy_against_shots(cells: Sequence[dict[str, Any]]) -> str:
    """Mean test accuracy per strategy against shots per class, with its 95% confidence band over seeds."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(c["strategy"] for c in cells):
        arm = sorted((c for c in cells if c["strategy"] == name), key=lambda c: c["shots"])
        shots = [c["shots"] for c in arm]
        mean = np.array([c["accuracy_mean"] for c in arm])
        line, = ax.plot(shots, mean, marker="o", markersize=4, label=name, linestyle="--" if name == "scratch" else "-")
        low = [c["accuracy_ci_low"] for c in arm]
        high = [c["accuracy_ci_high"] for c in arm]
        if all(v is not None for v in low + high):
            # a t interval from few seeds can pass 0 or 1; accuracy cannot, so the band stops there
            ax.fill_between(shots, np.clip(low, 0, 1), np.clip(high, 0, 1), color=line.get_color(), alpha=0.18)
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    ax.set_xticks(sorted({c["shots"] for c in cells}))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("shots (training examples per class)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure_png(fig)


def confusion_matrix_png(confusion: Sequence[Sequence[int]], class_names: Sequence[str], title: str) -> str:
    plt = _pyplot()
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(class_names)
    size = max(4.0, 0.6 * n + 2.5)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay(np.asarray(confusion), display_labels=list(class_names)).plot(
        ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45, include_values=n <= 30)
    ax.set_title(title)
    return figure_png(fig)


# ---------------------------------------------------------------------------------------------------------------
# compare's figure (compare.png)


def plot_compare(cells: Sequence[Mapping[str, Any]], path: str | Path, *, baseline: str, arms: Sequence[str],
                 title: str) -> Path:
    """Accuracy against shots, one line per arm (``baseline`` first and dashed), with the confidence bands.
    ``cells`` are compare's cells as dicts (``strategy``, ``shots``, ``accuracy_mean``, ``accuracy_ci_low``, ...)."""
    plt = _pyplot()
    shots = sorted({c["shots"] for c in cells})
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name in (baseline, *arms):
        arm = sorted((c for c in cells if c["strategy"] == name), key=lambda c: c["shots"])
        x = [c["shots"] for c in arm]
        y = [c["accuracy_mean"] for c in arm]
        style = {"color": "black", "linestyle": "--"} if name == baseline else {}
        line, = ax.plot(x, y, marker="o", label=f"{baseline} (same budget)" if name == baseline else name, **style)
        if all(c["accuracy_ci_low"] is not None for c in arm):
            ax.fill_between(x, [c["accuracy_ci_low"] for c in arm], [c["accuracy_ci_high"] for c in arm],
                            color=line.get_color(), alpha=0.15, linewidth=0)
    if max(shots) >= 10 * min(shots):
        ax.set_xscale("log")
    ax.set_xticks(shots)
    ax.set_xticklabels([str(k) for k in shots])
    ax.minorticks_off()
    ax.set_xlabel("labelled examples per class (shots)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
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


# The search's figures (warmstart tune): drawn from trials.json's rows, as Optuna's own plots are, with matplotlib.


def optimization_history(trials: Sequence[Mapping[str, Any]]) -> str:
    """Each trial's validation accuracy by trial number (pruned trials at their last reported epoch's, as x), and
    the best so far."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    done = [(t["number"], t["value"]) for t in trials if t["state"] == "complete"]
    pruned = [(t["number"], t["curve"][-1]) for t in trials if t["state"] == "pruned" and t.get("curve")]
    if done:
        ax.plot(*zip(*done), "o", color="#1f77b4", markersize=4, label="finished")
        best, running = [], float("-inf")
        for number, value in sorted(done):
            running = max(running, value)
            best.append((number, running))
        ax.step(*zip(*best), where="post", color="#d62728", label="best so far")
    if pruned:
        ax.plot(*zip(*pruned), "x", color="#888888", label="pruned (last epoch reported)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return figure_png(fig)


def parameter_importances(importances: Mapping[str, float]) -> str:
    """Horizontal bars: each parameter's share of the variance of the objective (fANOVA)."""
    plt = _pyplot()
    items = sorted(importances.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(items) + 1.2))
    ax.barh([k for k, _ in items], [v for _, v in items], color="#1f77b4")
    for index, (_, value) in enumerate(items):
        ax.text(value, index, f" {value:.2f}", va="center", fontsize=8)
    ax.set_xlabel("importance (fANOVA)")
    ax.set_xlim(0, max([v for _, v in items] + [0.01]) * 1.2)
    return figure_png(fig)


def parallel_coordinates(trials: Sequence[Mapping[str, Any]], log_scale: Sequence[str] = ()) -> str:
    """One line per finished trial across an axis per parameter (scaled to its range; ``log_scale`` ones in log)
    and the validation accuracy, coloured by accuracy."""
    plt = _pyplot()
    done = [t for t in trials if t["state"] == "complete"]
    names = sorted({k for t in done for k in t["params"]})
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * (len(names) + 1)), 3.8))
    columns, labels = [], []
    for name in names:
        raw = [t["params"].get(name) for t in done]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
            values = np.log10(np.asarray(raw, float)) if name in log_scale else np.asarray(raw, float)
            ticks = (f"{min(raw):.3g}", f"{max(raw):.3g}")
        else:  # choices: placed evenly, in the order first seen
            order = list(dict.fromkeys(map(str, raw)))
            values = np.asarray([order.index(str(v)) for v in raw], float)
            ticks = (order[0], order[-1])
        columns.append(values)
        labels.append(f"{name}\n{ticks[0]} .. {ticks[1]}")
    accuracy = np.asarray([t["value"] for t in done], float)
    columns.append(accuracy)
    labels.append(f"accuracy\n{accuracy.min():.3f} .. {accuracy.max():.3f}" if len(done) else "accuracy")
    if done:
        table = np.stack(columns, axis=1)
        span = np.ptp(table, axis=0)
        scaled = (table - table.min(axis=0)) / np.where(span > 0, span, 1.0)
        colours = plt.get_cmap("viridis")((accuracy - accuracy.min()) / (np.ptp(accuracy) or 1.0))
        for row, colour in sorted(zip(scaled, colours), key=lambda rc: rc[0][-1]):  # the best drawn last, on top
            ax.plot(range(len(labels)), row, color=colour, alpha=0.8, linewidth=1.2)
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_yticks([])
    for x in range(len(labels)):
        ax.axvline(x, color="#cccccc", linewidth=0.8, zorder=0)
    return figure_png(fig)
