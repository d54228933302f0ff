"""Reports of runs: the self-contained HTML page (``report.html``), the model card (``MODEL_CARD.md``), and the
test predictions and examples they are built from."""

from __future__ import annotations

from pathlib import Path

from .distillation import DISTILLATION
from .html import REPORT, render_report, write_report
from .model_card import MODEL_CARD, render_model_card, write_model_card
from .predictions import EXAMPLES, PREDICTIONS, load_predictions, save_predictions

__all__ = ["REPORT", "MODEL_CARD", "EXAMPLES", "PREDICTIONS", "render_report", "write_report", "render_model_card",
           "write_model_card", "load_predictions", "save_predictions", "write_run_reports", "finish_run_folder"]
__all__ += ["DISTILLATION"]


def write_run_reports(run_dir: str | Path) -> list[Path]:
    """The model card (for a folder holding a model) and then ``report.html``, which links to the card."""
    run_dir = Path(run_dir)
    written = []
    if (run_dir / "model" / "metadata.json").is_file():
        written.append(write_model_card(run_dir))
    written.append(write_report(run_dir))
    return written


def finish_run_folder(run_dir: str | Path, dataset, logits) -> list[Path]:
    """After a run scored its test split (``dataset``, with the model's ``logits``): save the predictions and the
    examples, then write the model card and the report. Returns the card and report paths."""
    import torch

    probabilities = torch.softmax(torch.as_tensor(logits).float(), dim=1).numpy()
    save_predictions(run_dir, dataset.x, dataset.y, probabilities, tuple(dataset.class_names), dataset.kind)
    return write_run_reports(run_dir)
