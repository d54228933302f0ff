"""``evaluate``: a checkpoint scored on a split of a dataset, fitted to the model's input by the one policy of
:mod:`warmstart.data.fit`, and written (with ``out``) by the run folder's owner into a folder of its own; and
``predict_proba``'s probabilities for inputs held in memory. Either takes a checkpoint or a run's in-memory model."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._version import __version__
from ..adaptation import create_adaptation
from ..adaptation.target import TargetAdaptation
from ..config import DataConfig, to_dict
from ..data import Dataset, evaluation_split
from ..data.fit import check_kind, fit_to_model
from ..data.memory import unlabelled
from ..data.preprocess import preprocessing_from_dict
from ..engine import predict_logits, resolve_device
from ..errors import WarmstartError
from ..evaluation import EvaluationResult
from ..models import CheckpointInfo, TransferModel, load_checkpoint
from .folder import evaluation_folder, working_directory, write_evaluation
from .scoring import predict_and_score
from .starting_point import data_config
from .trainer import RunResult

log = logging.getLogger("warmstart")


@dataclass(frozen=True)
class SplitEvaluation(EvaluationResult):
    """An evaluation's metrics, and which rows it scored: the split (``num_examples`` rows) and why that split."""

    split: str = "test"
    split_reason: str = ""

    @property
    def note(self) -> str:
        return f"scored {self.num_examples} rows: split {self.split}, {self.split_reason}"


def model_and_info(checkpoint: "str | Path | RunResult") -> tuple[TransferModel, CheckpointInfo, str]:
    """A checkpoint's model and what it records, and how to name it; a :class:`RunResult` (a run without ``out``)
    gives its model as it is in memory."""
    if isinstance(checkpoint, RunResult):
        if checkpoint.model is None:
            raise WarmstartError("this RunResult holds no model", hint="pass the result of pretrain or finetune")
        return checkpoint.model, checkpoint.info, "the trained model (in memory)"
    net, info = load_checkpoint(checkpoint)
    return net, info, f"checkpoint {checkpoint}"


def evaluate_checkpoint(checkpoint: "str | Path | RunResult", data: DataConfig, *, split: str | None,
                        out: str | Path | None, device: str, target_unlabeled: DataConfig | str | None,
                        overwrite: bool) -> SplitEvaluation:
    """``checkpoint`` scored on ``split`` of ``data`` (None: see :func:`warmstart.data.evaluation_split`)."""
    folder = None if out is None else evaluation_folder(out, overwrite=overwrite)  # refused before any work
    net, info, name = model_and_info(checkpoint)
    norm = preprocessing_from_dict(info.preprocessing)
    if target_unlabeled is not None:  # AdaBN on the loaded model; the checkpoint file stays as it is
        target = TargetAdaptation.load(create_adaptation("adabn"), data_config(target_unlabeled), net, norm,
                                       strategy=None)
        target.after_training(net, resolve_device(device), notes=[])
    if split == "val":  # the split this checkpoint's run held out, not seed 0's
        held_out, seed, whose = validation_config(data, info, name)
        dataset, split, why = evaluation_split(held_out, split, seed=seed)
        why += whose
    else:
        dataset, split, why = evaluation_split(data, split)
    check_kind(dataset, norm, model_name=name)  # before the classes: a kind mismatch is the clearer message
    if tuple(dataset.class_names) != tuple(info.class_names):
        dataset = _onto_model_classes(dataset, info, name, selected=data.classes is not None)
    dataset = fit_to_model(dataset, net.input_shape, norm, model_name=name, resize=data.resize,
                           feature_names=info.extra.get("feature_names"))
    metrics, logits = predict_and_score(net, dataset, norm, resolve_device(device))
    result = SplitEvaluation(**{f.name: getattr(metrics, f.name) for f in fields(metrics)}, split=split,
                             split_reason=why)
    log.info(result.note)
    if folder is not None:
        source = name if isinstance(checkpoint, RunResult) else str(checkpoint)
        config = {"command": "evaluate", "checkpoint": source, "split": split, "data": to_dict(data),
                  "notes": [result.note], **working_directory(), "warmstart_version": __version__,
                  **({} if target_unlabeled is None else {"adaptation": {
                      "name": "adabn", "target_unlabeled": to_dict(data_config(target_unlabeled))}})}
        write_evaluation(folder, config, result, split=split, data=data, dataset=dataset, logits=logits,
                         extra={"rows_scored": result.num_examples})
    return result


HELD_OUT_FIELDS = ("shots", "val_fraction", "test_fraction", "classes")  # what chooses a run's validation rows


def validation_config(data: DataConfig, info: CheckpointInfo, name: str) -> tuple[DataConfig, int, str]:
    """How to draw the validation split ``name``'s run held out: its training seed, and, when ``data`` is the data it
    trained on, its shots, fractions and classes; with the end of the reason ``evaluate`` gives. On other data, or
    for a checkpoint that records no seed, the split is one its run never saw, and the reason says so."""
    seed = (info.extra.get("training") or {}).get("seed")
    recorded = info.extra.get("data") or {}
    if not isinstance(seed, int) or isinstance(seed, bool):
        return data, 0, f"; {name} records no training seed, so it is not the split its run held out"
    if not _same_source(recorded.get("source"), data.source):
        return data, seed, (f"; {name} was trained on {recorded.get('source')!r}, so this is not a split its run "
                            "held out")
    held_out = {key: recorded[key] for key in HELD_OUT_FIELDS if key in recorded}
    try:
        return replace(data, **held_out), seed, f"; the rows the run of {name} held out"
    except (TypeError, ValueError, WarmstartError):  # a hand-edited record: the data as given
        return data, seed, f"; {name}'s record of its data cannot be read, so it may not be the split its run held out"


def _same_source(recorded: object, given: object) -> bool:
    """Whether a recorded data source and the one given name the same data (a path, however written)."""
    if not isinstance(recorded, str) or not isinstance(given, str):
        return False
    if recorded == given:
        return True
    try:
        return Path(recorded).expanduser().resolve() == Path(given).expanduser().resolve() and Path(given).exists()
    except OSError:
        return False


def _onto_model_classes(dataset: Dataset, info: CheckpointInfo, model_name: str, *, selected: bool) -> Dataset:
    """The data relabelled with the model's classes, matched by name. A file may hold only some of them (a test
    file of the classes at hand: each row is scored, macro averages over the classes it holds or that are
    predicted); rows of classes the model does not know are dropped and counted in a note, unless ``--classes``
    chose them (``selected``), which is an error."""
    known = {n: i for i, n in enumerate(info.class_names)}
    unknown = [n for n in dataset.class_names if n not in known]
    if unknown and selected:
        raise WarmstartError(f"{model_name} predicts the classes {', '.join(info.class_names)}, but --classes "
                             f"selected {', '.join(unknown)}, which it does not predict",
                             hint="pass --classes naming the model's classes")
    if len(unknown) == len(dataset.class_names):
        raise WarmstartError(f"{model_name} predicts the classes {', '.join(info.class_names)}, and the data holds "
                             f"none of them (its classes: {', '.join(dataset.class_names)})",
                             hint="evaluate on data labelled with the model's classes")
    mapping = np.asarray([known.get(n, -1) for n in dataset.class_names], dtype=np.int64)
    y = mapping[dataset.y]
    keep = np.flatnonzero(y >= 0)
    if unknown:
        log.info("%s: dropped %d row(s) of the class(es) %s, which %s does not predict; %d row(s) scored",
                 dataset.name, len(y) - len(keep), ", ".join(unknown), model_name, len(keep))
    missing = [n for n in info.class_names if n not in dataset.class_names]
    if missing:
        log.info("%s holds %d of the %d classes of %s (none of %s): accuracy is over its rows, macro averages over "
                 "the classes it holds or that are predicted", dataset.name, len(info.class_names) - len(missing),
                 len(info.class_names), model_name, ", ".join(missing))
    if not unknown and not missing:
        log.info("matched the data's classes to the model's order: %s", ", ".join(info.class_names))
    return Dataset(dataset.x[keep], y[keep], tuple(info.class_names), dataset.kind, dataset.name,
                   dataset.feature_names)


def predict_probabilities(checkpoint: "str | Path | RunResult", x: Any, *, device: str) -> np.ndarray:
    """Class probabilities (softmax), one row per example of ``x`` (arrays, texts or a DataFrame, as
    :mod:`warmstart.data.memory` reads them), fitted to the model's input by the one policy."""
    net, info, name = model_and_info(checkpoint)
    norm = preprocessing_from_dict(info.preprocessing)
    dataset = fit_to_model(unlabelled(x, info.class_names), net.input_shape, norm, model_name=name,
                           feature_names=info.extra.get("feature_names"))
    logits = predict_logits(net, norm.apply(dataset.x), resolve_device(device))
    return torch.softmax(logits, dim=1).numpy()
