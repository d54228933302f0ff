"""``evaluate``: a checkpoint scored on a split of a dataset, fitted to the model's input by the one policy of
:mod:`warmstart.data.fit`, and written (with ``out``) by the run folder's owner into a folder of its own."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path

from .._version import __version__
from ..adaptation import create_adaptation
from ..adaptation.target import TargetAdaptation
from ..config import DataConfig, to_dict
from ..data import Dataset, evaluation_split, select_classes
from ..data.fit import fit_to_model
from ..data.preprocess import preprocessing_from_dict
from ..engine import resolve_device
from ..errors import WarmstartError
from ..evaluation import EvaluationResult
from ..models import CheckpointInfo, load_checkpoint
from .folder import evaluation_folder, write_evaluation
from .scoring import predict_and_score
from .starting_point import data_config

log = logging.getLogger("warmstart")


@dataclass(frozen=True)
class SplitEvaluation(EvaluationResult):
    """An evaluation's metrics, and which rows it scored: the split (``num_examples`` rows) and why that split."""

    split: str = "test"
    split_reason: str = ""

    @property
    def note(self) -> str:
        return f"scored {self.num_examples} rows: split {self.split}, {self.split_reason}"


def evaluate_checkpoint(checkpoint: str | Path, data: DataConfig, *, split: str | None, out: str | Path | None,
                        device: str, target_unlabeled: DataConfig | str | None,
                        overwrite: bool) -> SplitEvaluation:
    """``checkpoint`` scored on ``split`` of ``data`` (None: see :func:`warmstart.data.evaluation_split`)."""
    folder = None if out is None else evaluation_folder(out, overwrite=overwrite)  # refused before any work
    net, info = load_checkpoint(checkpoint)
    norm = preprocessing_from_dict(info.preprocessing)
    if target_unlabeled is not None:  # AdaBN on the loaded model; the checkpoint file stays as it is
        target = TargetAdaptation.load(create_adaptation("adabn"), data_config(target_unlabeled), net, norm,
                                       strategy=None)
        target.after_training(net, resolve_device(device), notes=[])
    dataset, split, why = evaluation_split(data, split)
    if data.classes is None and dataset.class_names != info.class_names:
        dataset = _match_model_classes(dataset, info, checkpoint)
    if tuple(dataset.class_names) != tuple(info.class_names):
        raise WarmstartError(f"checkpoint {checkpoint} predicts the classes {', '.join(info.class_names)}, but the "
                             f"selected data has {', '.join(dataset.class_names)}",
                             hint="pass --classes naming the model's classes, in its order")
    dataset = fit_to_model(dataset, net.input_shape, norm, model_name=f"checkpoint {checkpoint}",
                           resize=data.resize, feature_names=info.extra.get("feature_names"))
    metrics, logits = predict_and_score(net, dataset, norm, resolve_device(device))
    result = SplitEvaluation(**{f.name: getattr(metrics, f.name) for f in fields(metrics)}, split=split,
                             split_reason=why)
    log.info(result.note)
    if folder is not None:
        config = {"command": "evaluate", "checkpoint": str(checkpoint), "split": split, "data": to_dict(data),
                  "notes": [result.note], "warmstart_version": __version__,
                  **({} if target_unlabeled is None else {"adaptation": {
                      "name": "adabn", "target_unlabeled": to_dict(data_config(target_unlabeled))}})}
        write_evaluation(folder, config, result, split=split, data=data, dataset=dataset, logits=logits,
                         extra={"rows_scored": result.num_examples})
    return result


def _match_model_classes(dataset: Dataset, info: CheckpointInfo, checkpoint: str | Path) -> Dataset:
    """Without --classes, select the model's classes from the data by name, when the data has them all."""
    missing = [name for name in info.class_names if name not in dataset.class_names]
    if missing:
        raise WarmstartError(f"checkpoint {checkpoint} predicts classes the data does not have: "
                             f"{', '.join(missing)}", hint="evaluate on data with the model's classes")
    ids = [dataset.class_names.index(name) for name in info.class_names]
    log.info("selected the model's classes from the data: %s", ", ".join(info.class_names))
    return select_classes(dataset, ids)
