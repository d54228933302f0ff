"""Evaluation: pure metric functions, the result and its table, plots."""

from .metrics import accuracy, confusion_matrix, f1_score, per_class_scores
from .plots import plot_confusion_matrix
from .report import ClassScores, EvaluationResult, evaluate_predictions, render_report

__all__ = ["accuracy", "confusion_matrix", "f1_score", "per_class_scores", "plot_confusion_matrix", "ClassScores",
           "EvaluationResult", "evaluate_predictions", "render_report"]
