"""The evaluation result of a model on a dataset, and its rendering as a table."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from .metrics import accuracy, average, confusion_matrix, per_class_scores


@dataclass(frozen=True)
class ClassScores:
    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvaluationResult:
    """Every metric warmstart reports for a classifier on one dataset split."""

    accuracy: float
    macro_f1: float
    weighted_f1: float
    precision_macro: float
    recall_macro: float
    precision_weighted: float
    recall_weighted: float
    num_examples: int
    class_names: tuple[str, ...]
    per_class: tuple[ClassScores, ...]
    confusion_matrix: tuple[tuple[int, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        d["per_class"] = {c.name: {k: v for k, v in asdict(c).items() if k != "name"} for c in self.per_class}
        d["confusion_matrix"] = [list(row) for row in self.confusion_matrix]
        return d


def evaluate_predictions(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> EvaluationResult:
    cm = confusion_matrix(y_true, y_pred, num_classes=len(class_names))
    s = per_class_scores(cm)
    per_class = tuple(ClassScores(name, float(p), float(r), float(f), int(n))
                      for name, p, r, f, n in zip(class_names, s["precision"], s["recall"], s["f1"], s["support"]))
    return EvaluationResult(
        accuracy=accuracy(y_true, y_pred),
        macro_f1=average(s["f1"], s["support"], "macro", s["present"]),
        weighted_f1=average(s["f1"], s["support"], "weighted"),
        precision_macro=average(s["precision"], s["support"], "macro", s["present"]),
        recall_macro=average(s["recall"], s["support"], "macro", s["present"]),
        precision_weighted=average(s["precision"], s["support"], "weighted"),
        recall_weighted=average(s["recall"], s["support"], "weighted"),
        num_examples=int(len(y_true)),
        class_names=tuple(class_names),
        per_class=per_class,
        confusion_matrix=tuple(tuple(int(v) for v in row) for row in cm),
    )


def render_report(result: EvaluationResult, title: str = "evaluation") -> "Any":
    """A rich renderable: the summary metrics, the per-class table and the confusion matrix."""
    from rich.console import Group
    from rich.table import Table

    summary = Table(title=f"{title}: {result.num_examples} examples", show_header=True)
    for column in ("accuracy", "macro F1", "weighted F1", "precision (macro)", "recall (macro)"):
        summary.add_column(column, justify="right")
    summary.add_row(*(f"{v:.4f}" for v in (result.accuracy, result.macro_f1, result.weighted_f1,
                                            result.precision_macro, result.recall_macro)))
    per_class = Table(title="per class")
    per_class.add_column("class")
    for column in ("precision", "recall", "F1", "support"):
        per_class.add_column(column, justify="right")
    for c in result.per_class:
        per_class.add_row(c.name, f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}", str(c.support))
    matrix = Table(title="confusion matrix (rows: true, columns: predicted)")
    matrix.add_column("")
    for i, _ in enumerate(result.class_names):
        matrix.add_column(str(i), justify="right")
    for i, (name, row) in enumerate(zip(result.class_names, result.confusion_matrix)):
        matrix.add_row(name if name == str(i) else f"{i} {name}", *(str(v) for v in row))
    return Group(summary, per_class, matrix)
