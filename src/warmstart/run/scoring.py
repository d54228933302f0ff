"""Scoring a model on a split: the logits and the metrics they give (used by training runs and ``evaluate``)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data import Dataset
from ..data.fit import Preprocessing
from ..engine import predict_logits
from ..engine.distributed import gather_rows
from ..evaluation import EvaluationResult, evaluate_predictions
from ..models import TransferModel
from .training import backbone_features


def predict_and_score(model: TransferModel, dataset: Dataset, norm: Preprocessing, device: torch.device, *,
                      cache: bool = False, disk: Path | None = None) -> tuple[EvaluationResult, torch.Tensor]:
    """Test metrics and the logits they come from; with ``cache`` (a frozen backbone), the test split's features
    come from the feature cache, so repeated runs on one split (seeds, strategies, shot counts) embed it once."""
    x = norm.apply(dataset.x)
    if cache:
        features = backbone_features(model, x, device, disk)
        with torch.no_grad():
            logits = model.eval().forward_head(features.to(device)).float().cpu()
    else:  # under DDP each rank predicts its share of the rows
        logits = gather_rows(lambda rows: predict_logits(model, rows, device), x)
    return evaluate_predictions(dataset.y, logits.argmax(1).numpy(), dataset.class_names), logits
