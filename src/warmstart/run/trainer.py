"""The trainer ``pretrain`` and ``finetune`` call: from a resolved starting point to a scored, saved run.

It prepares what training needs (the strategy ``auto`` resolves to, the learning rate, the callbacks, the tensors,
the run folder), hands the training itself to :func:`warmstart.run.training.train_model`, then scores the test
split and lets the run folder (:mod:`warmstart.run.folder`, the one owner of its layout) save the result.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch

from .._version import __version__
from ..adaptation import Adaptation
from ..adaptation.target import TargetAdaptation
from ..config import DEFAULT_EPOCHS, AdaptConfig, DataConfig, ModelConfig, TrainConfig, to_dict
from ..data import DataSplits, Dataset
from ..data.augment import BatchAugmentation
from ..data.fit import model_kind
from ..data.preprocess import Normalization
from ..engine import BestWeights, Callback, EarlyStopping, JsonLinesLogger, ProgressBar, resolve_device
from ..engine.device import seed_everything
from ..engine.threads import AdaptiveThreads
from ..engine import distributed
from ..engine.loop import History, with_default_lr
from ..errors import WarmstartError
from ..evaluation import EvaluationResult
from ..models import CheckpointInfo, TransferModel
from ..registry import option_defaults
from ..strategies import Strategy, create_strategy
from ..strategies.auto import Auto, measure_step_seconds, time_estimate_note
from ..tracking import Tracker, open_trackers
from .fingerprint import data_fingerprint, replayed_data_note
from .averaging import WeightAveraging
from .folder import (RunFolder, began, check_one_of_resume_and_overwrite, check_resumable, check_sources_kept,
                     working_directory)
from .scoring import predict_and_score
from .starting_point import Preprocessing, StartingPoint, data_config, note, resolve_starting_point
from .training import train_model

if TYPE_CHECKING:  # it imports this module
    from .self_supervised import FinishedStage

log = logging.getLogger("warmstart")


@dataclass(frozen=True)
class RunResult:
    """What ``pretrain`` and ``finetune`` return."""

    metrics: EvaluationResult | None  # on the test split; None after self-supervised pretraining (no labels)
    history: list[dict[str, Any]]
    train_time_s: float
    wall_time_s: float
    run_dir: Path | None
    checkpoint: Path | None
    info: CheckpointInfo
    notes: tuple[str, ...] = ()
    model: TransferModel | None = field(default=None, repr=False, compare=False)


def open_run_folder(out: str | Path | None, *, resume: bool, overwrite: bool,
                    reads: Sequence[str | Path | None] = ()) -> RunFolder | None:
    """The run folder, checked before any work (an existing run is refused unless ``resume`` or ``overwrite``;
    ``overwrite`` is refused when the folder holds one of ``reads``, the checkpoints and files the run reads)."""
    check_one_of_resume_and_overwrite(resume, overwrite)
    if out is not None and overwrite:
        check_sources_kept(out, reads)
    if out is None:
        if resume:
            raise WarmstartError("resume needs the run folder (--out) of the interrupted run",
                                 hint="pass --out with the interrupted run's folder")
        return None
    # under torchrun every rank runs this; only rank 0 writes the run folder (engine/distributed.py)
    return RunFolder.for_training(out, resume=resume, overwrite=overwrite,
                                  writes=int(os.environ.get("RANK", "0")) == 0)


def train_run(kind: str, checkpoint: str | Path | None, data: DataConfig, *, strategy: str | Strategy,
              model: ModelConfig | str | None, train: TrainConfig | None, out: str | Path | None,
              callbacks: tuple[Callback, ...] = (), resume: bool = False, overwrite: bool = False,
              keep_head: bool = False, adaptation: Adaptation | None = None, target_unlabeled=None,
              selection: dict[str, Any] | None = None, notes: tuple[str, ...] = (),
              input_pipeline: str | Path | None = None, strict: bool = True,
              averaging: WeightAveraging | None = None, adapt_on: AdaptConfig | FinishedStage | None = None
              ) -> RunResult:
    """A whole training run, ``finetune``'s (and ``pretrain``'s) work: checks first, then the starting point, the
    strategy, and :func:`train_and_save`. ``selection`` and ``notes`` come from ``--from auto``'s ranking;
    ``averaging`` (``--average``, run/averaging.py) replaces the trained weights before they are scored.
    ``adapt_on``: a self-supervised stage on unlabelled inputs first (:mod:`warmstart.run.self_supervised`), or
    a stage already trained (``FinishedStage``: tune's, run once for all its trials), whose weights are loaded."""
    started = time.perf_counter()
    train = train or TrainConfig.for_command(kind)  # the command's preset, as the CLI uses it
    strategy = create_strategy(strategy) if isinstance(strategy, str) else strategy  # fail before any work
    if train.early_stopping is not None and data.resolved_val_fraction == 0 and \
            train.early_stopping_monitor.startswith("val_"):
        raise WarmstartError("early stopping needs a validation split, and this run holds none out",
                             hint="set --val-fraction (for example 0.2), or drop --early-stopping")
    stage_data = adapt_on.data if isinstance(adapt_on, AdaptConfig) else None
    folder = open_run_folder(out, resume=resume, overwrite=overwrite,
                             reads=(checkpoint, input_pipeline, data, stage_data, target_unlabeled))
    if resume:
        folder.check_resumed_stage(stage_data)
    start = resolve_starting_point(checkpoint, data, model, train, keep_head=keep_head, input_pipeline=input_pipeline,
                                   strict=strict)
    start.notes[:0] = notes
    check_trainable(data, start.splits, train)
    if averaging is not None:
        averaging.check(start.splits, pretrained=start.pretrained or adapt_on is not None)
    if adapt_on is not None:
        adapt_first(start, adapt_on, data, train, folder, resume)
        # killed in the stage: the supervised run has not begun, and starts now
        resume = resume and began(folder.state_dir)
    requested = train
    strategy, train = resolve_strategy(strategy, start, train)
    note_unused_settings(start, strategy, requested, TrainConfig.for_command(kind))
    target = None
    if adaptation is not None:
        target = TargetAdaptation.load(adaptation, data_config(target_unlabeled), start.model, start.preprocessing,
                                       strategy)
        start.lineage = {**start.lineage, "adaptation": target.describe()}
    return train_and_save(kind, start, strategy, data, train, folder=folder, callbacks=callbacks, started=started,
                          resume=resume, adaptation=target, selection=selection, averaging=averaging)


def adapt_first(start: StartingPoint, adapt_on: AdaptConfig | FinishedStage, data: DataConfig,
                train: TrainConfig, folder: RunFolder | None, resume: bool) -> None:
    """``--adapt-on``: the self-supervised stage before fine-tuning, resumed from its own state (``adapt/state/``)
    when the run is (a finished one's weights loaded); an overwriting run's partial folder goes if the stage fails."""
    from .self_supervised import FinishedStage, adapt_before_finetuning

    try:
        if isinstance(adapt_on, FinishedStage):
            adapt_on.apply(start)
        else:
            adapt_before_finetuning(start, adapt_on, data, train, folder=folder, resume=resume)
    except BaseException as error:
        if folder is not None:
            folder.abandon(error)
        raise
    # the supervised run starts from one random state whether the stage trained here (drawing dropout masks from
    # it) or its weights were loaded (tune's winner, a resumed run): else `finetune --config best_config.yaml`
    # replayed tune --adapt-on's winner differently
    seed_everything(train.seed)


def check_trainable(data: DataConfig, splits: DataSplits, train: TrainConfig) -> None:
    """What no training can do anything sensible with, refused before any work."""
    if splits.train.num_classes < 2:
        raise WarmstartError(f"--data {data.source!r}: training needs at least two classes, and the training split "
                             f"holds {splits.train.num_classes} ({', '.join(splits.train.class_names)}); a model of "
                             "one class scores accuracy 1.0 and has learnt nothing",
                             hint="use data with two or more labels (check --classes and --label-column)")
    if train.early_stopping is not None and splits.val is None and train.early_stopping_monitor.startswith("val_"):
        raise WarmstartError("early stopping needs a validation split, and this run holds none out",
                             hint="set --val-fraction (for example 0.2), or drop --early-stopping")


def note_unused_settings(start: StartingPoint, strategy: Strategy, train: TrainConfig, preset: TrainConfig) -> None:
    """A note for each setting given (unlike the command's ``preset``, or the strategy's own default) that the
    strategy never reads (:meth:`Strategy.unused_settings`): ``--label-smoothing 0.1`` with setfit, or
    ``--strategy-option C=2`` with linear-probe's loop solver, was accepted and changed nothing."""
    unused, defaults = strategy.unused_settings(), option_defaults(type(strategy))
    given = [(f"--{name.replace('_', '-')}", name) for name in unused if hasattr(train, name)
             and getattr(train, name) != getattr(preset, name)
             and not (name == "epochs" and train.epochs == DEFAULT_EPOCHS)]  # tune's winner: the budget's default
    given += [(f"--strategy-option {name}={getattr(strategy, name)}", name) for name in unused
              if name in defaults and getattr(strategy, name, defaults[name]) != defaults[name]]
    for why in dict.fromkeys(unused[name] for _, name in given):
        note(start.notes, f"{', '.join(flag for flag, name in given if unused[name] == why)} set, and not read: {why}")


def resolve_strategy(strategy: Strategy, start: StartingPoint,
                     train: TrainConfig) -> tuple[Strategy, TrainConfig]:
    """The strategy and the budget a run trains with: ``auto`` becomes the strategy it chooses for this training set
    and model, and a run that sets no ``epochs`` gets auto's budget scaled to the data (:meth:`Auto.epochs`) or
    :data:`~warmstart.config.DEFAULT_EPOCHS`; whatever is given stays."""
    if not isinstance(strategy, Auto):
        return strategy, (train if train.epochs is not None else replace(train, epochs=DEFAULT_EPOCHS))
    # the choice reads the labelled examples only: the ones written from the class names say nothing of how many
    # examples a class has; the epochs still count every example trained on
    dataset = start.splits.labelled_train
    text = model_kind(start.model.arch, start.model.input_shape) == "text"
    epochs, budget_note = strategy.epochs(len(start.splits.train), train.batch_size, text=text, given=train.epochs)
    chosen, reason = strategy.choose(int(dataset.class_counts().min()), pretrained=start.pretrained, text=text,
                                     classes=dataset.num_classes, epochs=epochs,
                                     class_counts=dataset.class_counts().tolist(), class_names=dataset.class_names)
    note(start.notes, f"auto chose {chosen.name}: {reason}")
    if budget_note is not None:
        note(start.notes, budget_note)
    return chosen, replace(train, epochs=epochs)


def announce_long_run(start: StartingPoint, strategy: Strategy, train: TrainConfig, device: torch.device) -> None:
    """Before a long run, say how long it should take: one training step timed on a real batch (the model is left
    as it was, :func:`~warmstart.strategies.auto.measure_step_seconds`), times the steps planned. Runs on cached
    features are quick after the extraction, which reports itself."""
    if strategy.uses_feature_cache or len(start.splits.train) == 0:
        return
    x, y = _tensors(start.splits.train, start.preprocessing)
    batch = slice(0, min(train.batch_size, len(y)))
    model = start.model.to(device)
    seconds = measure_step_seconds(model, x[batch].to(device), y[batch].to(device))
    message = time_estimate_note(seconds, len(y), train.batch_size, train.epochs)
    if message is not None:
        note(start.notes, message)


def run_config(kind: str, start: StartingPoint, strategy: Strategy, data: DataConfig, train: TrainConfig,
               device: torch.device, processes: int) -> dict[str, Any]:
    """The resolved configuration: what state/config.json (resume) and config.json record."""
    splits = start.splits
    return {"command": kind, "data": to_dict(data), "train": to_dict(train), "strategy": strategy.describe(),
            "model": {"arch": start.model.arch, "arch_args": start.model.arch_args}, **start.lineage,
            "resolved": {"val_fraction": data.resolved_val_fraction, "device": str(device),
                         "train_examples": len(splits.train) - splits.synthetic,
                         **({"written_examples": splits.synthetic} if splits.synthetic else {}),
                         "val_examples": 0 if splits.val is None else len(splits.val),
                         "test_examples": len(splits.test), "processes": processes},
            "data_fingerprint": data_fingerprint(splits), **working_directory(), "warmstart_version": __version__}


def warn_if_not_replayed_data(config: dict[str, Any], notes: list[str]) -> None:
    """Before training: a ``--config`` replay on other data than the replayed run's says so, and its notes keep it."""
    message = replayed_data_note(config["data_fingerprint"])
    if message is not None:
        notes.append(message)
        log.warning(message)


def train_and_save(kind: str, start: StartingPoint, strategy: Strategy, data: DataConfig, train: TrainConfig, *,
                   folder: RunFolder | None, callbacks: tuple[Callback, ...], started: float, resume: bool = False,
                   adaptation=None, selection: dict[str, Any] | None = None,
                   averaging: WeightAveraging | None = None) -> RunResult:
    """Train ``start.model`` with ``strategy``, score it on the test split and, with a folder, save the run."""
    ranks, device = distributed.setup(resolve_device(train.device))
    if train.lr is None:  # the strategy's default for this model, recorded in the run's config like a given one
        train = with_default_lr(train, start.model, strategy)
        note(start.notes, f"learning rate {train.lr:g}: {strategy.name}'s default for the {start.model.arch} model "
                          "(set --lr to choose another)")
    if ranks.is_main and not resume:
        announce_long_run(start, strategy, train, device)
    config = run_config(kind, start, strategy, data, train, device, ranks.world_size)
    if resume:
        check_resumable(folder.state_dir, config)
    warn_if_not_replayed_data(config, start.notes)
    try:
        return _train_in(folder, kind, start, strategy, data, train, config, ranks, device, callbacks, started,
                         resume, adaptation, selection, averaging)
    except BaseException as error:
        if folder is not None:
            folder.abandon(error)  # an overwriting run's partial folder goes; the previous run is untouched
        raise


def _train_in(folder: RunFolder | None, kind: str, start: StartingPoint, strategy: Strategy, data: DataConfig,
              train: TrainConfig, config: dict[str, Any], ranks, device: torch.device,
              callbacks: tuple[Callback, ...], started: float, resume: bool, adaptation,
              selection: dict[str, Any] | None, averaging: WeightAveraging | None = None) -> RunResult:
    model, splits, norm, notes = start.model, start.splits, start.preprocessing, start.notes
    generator = torch.Generator().manual_seed(train.seed)
    if folder is not None:
        folder.start(config, resume=resume)
    extra_callbacks, trackers = _callbacks(kind, folder, config, model, splits, train, callbacks, ranks.is_main,
                                           strategy.loss_name)
    train_xy = _tensors(splits.train, norm)
    batch_transform = batch_augmentation(splits.train, norm, train, strategy, generator)
    # augmentation works on the images as they are, then normalises: the loop gets them un-normalised
    prepare = norm.apply if batch_transform is None else torch.from_numpy
    loop_x = train_xy[0] if batch_transform is None else prepare(splits.train.x)
    loop_xy = (strategy.training_inputs(splits.train.x, loop_x, prepare), train_xy[1])
    val_xy = None if splits.val is None else _tensors(splits.val, norm)
    if averaging is not None:
        averaging.before_training(model)
    history, disk = train_model(model, strategy, train, train_xy=train_xy, loop_xy=loop_xy, val_xy=val_xy,
                                batch_transform=batch_transform, device=device, generator=generator,
                                extra_callbacks=extra_callbacks,
                                state_dir=None if folder is None else folder.kept_state_dir, resume=resume,
                                adaptation=adaptation, notes=notes, written=splits.synthetic)
    strategy.finalize(model)  # LoRA merges its adapters here: what is evaluated is what is saved
    if adaptation is not None:
        adaptation.after_training(model, device, notes)
    _history_notes(history, train, notes)
    averaged = {} if averaging is None else {  # the setting (replayed by --config) and what it chose
        "average": averaging.name,
        "averaging": averaging.after_training(model, train_x=train_xy[0], val=val_xy, device=device, notes=notes)}
    metrics, test_logits = predict_and_score(model, splits.test, norm, device, cache=strategy.uses_feature_cache,
                                             disk=disk)
    info = checkpoint_info(model, splits, norm, data, train, strategy, metrics, start.lineage)
    wall = time.perf_counter() - started
    checkpoint = None
    if folder is not None:
        # written only after training succeeded: a failed rerun leaves the last good run's files as they were
        timing = {"train_time_s": history.summary["train_time_s"], "wall_time_s": wall,
                  **{k: history.summary[k] for k in ("feature_time_s",) if k in history.summary}}
        summary, selection = _selection_files(selection, metrics, notes)
        checkpoint, reports = folder.finish(model, info, {**config, "notes": notes, **summary, **averaged}, metrics,
                                            data=data, timing=timing, test_set=splits.test, test_logits=test_logits,
                                            selection=selection)
        for tracker in trackers:
            tracker.finish(_scalar_metrics(metrics), reports)
        folder.commit()
        checkpoint = None if checkpoint is None else folder.path / checkpoint.relative_to(folder.work)
    return RunResult(metrics=metrics, history=history.epochs, train_time_s=history.summary["train_time_s"],
                     wall_time_s=wall, run_dir=None if folder is None else folder.path, checkpoint=checkpoint,
                     info=info, notes=tuple(notes), model=model)


def _selection_files(selection: dict[str, Any] | None, metrics: EvaluationResult,
                     notes: list[str]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``--from auto``: the choice in config.json, and selection.json (the ranking, the choice, why, the result)."""
    if selection is None:
        return {}, None
    summary = {"rank_score": selection["rank_score"], "chosen": selection["chosen"],
               "candidates": [c["candidate"] for c in selection["candidates"]]}
    return {"selection": summary}, {**selection, "fine_tuned_test_accuracy": metrics.accuracy, "notes": list(notes)}


def _callbacks(kind: str, folder: RunFolder | None, config: dict[str, Any], model: TransferModel,
               splits: DataSplits, train: TrainConfig, given: tuple[Callback, ...],
               is_main: bool, loss_name: str = "train_loss") -> tuple[list[Callback], list[Tracker]]:
    """The user's callbacks, then the log, the trackers, best weights, early stopping and progress.
    ``loss_name``: what the strategy or objective logs its training loss as (``distill_loss``, ``pair_loss``,
    ``pretext_loss``), which early stopping on ``train_loss`` watches."""
    from ..config import json_ready

    extra: list[Callback] = list(given)
    trackers: list[Tracker] = []
    if folder is not None and folder.writes:
        extra.append(JsonLinesLogger(folder.train_log, phase=kind))
        trackers = open_trackers(train.trackers, folder.work, json_ready(config))
        extra.extend(trackers)
    if splits.val is not None:
        extra.append(BestWeights(model, monitor="val_accuracy"))
    if train.early_stopping is not None:
        monitor = loss_name if train.early_stopping_monitor == "train_loss" else train.early_stopping_monitor
        extra.append(EarlyStopping(train.early_stopping, monitor=monitor,
                                   mode="max" if train.early_stopping_monitor.endswith("accuracy") else "min",
                                   min_delta=train.early_stopping_min_delta))
    if train.progress and is_main:
        extra.append(ProgressBar(kind))
    extra.append(AdaptiveThreads())  # fewer threads while other processes hold cores (engine/threads.py)
    return extra, trackers


def _history_notes(history: History, train: TrainConfig, notes: list[str]) -> None:
    if "stopped_epoch" in history.summary:
        monitored = train.early_stopping_monitor.replace("val_", "validation ").replace("train_", "training ")
        note(notes, f"early stopping after epoch {history.summary['stopped_epoch']}: {monitored} had not "
                    f"improved for {train.early_stopping} epochs")
    if "best_epoch" in history.summary:
        note(notes, f"kept the weights of epoch {history.summary['best_epoch']} (best validation accuracy "
                    f"{history.summary['best_val_accuracy']:.4f})")


def checkpoint_info(model: TransferModel, splits: DataSplits, norm: Preprocessing, data: DataConfig,
                    train: TrainConfig, strategy: Strategy, metrics: EvaluationResult,
                    lineage: dict[str, Any]) -> CheckpointInfo:
    """What the checkpoint records: the input pipeline, the classes, and how it was trained."""
    feature_names = splits.train.feature_names
    return CheckpointInfo(arch=model.arch, arch_args=model.arch_args, input_shape=model.input_shape,
                          class_names=splits.train.class_names, preprocessing=norm.to_dict(), kind=splits.train.kind,
                          extra={"data": to_dict(data), "training": {**to_dict(train), "strategy": strategy.describe()},
                                 "metrics": {k: v for k, v in metrics.to_dict().items()
                                             if k not in ("per_class", "confusion_matrix")},
                                 # a CSV's feature column names, so that predict selects the columns by name
                                 **({} if feature_names is None else {"feature_names": list(feature_names)}),
                                 **lineage})


def _tensors(dataset: Dataset, norm: Preprocessing) -> tuple[torch.Tensor, torch.Tensor]:
    return norm.apply(dataset.x), torch.from_numpy(dataset.y)


def training_tensors(start: StartingPoint) -> tuple[torch.Tensor, torch.Tensor]:
    """The training split as the model's preprocessed inputs and labels (lr-find's data)."""
    return _tensors(start.splits.train, start.preprocessing)


def _scalar_metrics(metrics: EvaluationResult) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.to_dict().items() if isinstance(v, (int, float))}


def batch_augmentation(dataset: Dataset, norm: Preprocessing, train: TrainConfig, strategy: Strategy,
                       generator: torch.Generator) -> BatchAugmentation | None:
    """The loop's batch transform for ``train.augment`` and ``train.mix`` (None for neither): images are augmented
    un-normalised, then normalised with ``norm``, the model's recorded preprocessing."""
    if train.augment == "none" and train.mix == "none":
        return None
    asked = " and ".join(f"--{k} {v}" for k, v in (("augment", train.augment), ("mix", train.mix)) if v != "none")
    if dataset.kind != "image" or not isinstance(norm, Normalization):
        raise WarmstartError(f"{asked}: augmentation applies to images, but {dataset.name} holds {dataset.kind} data",
                             hint="drop --augment and --mix for vector and text data")
    if strategy.uses_feature_cache:
        raise WarmstartError(f"{asked}: {strategy.name} trains the head on backbone features computed once, so "
                             "images cannot be augmented batch by batch",
                             hint="augment the cached way: --strategy-option views=4 (and augment=PRESET), or use "
                                  "a strategy that runs the backbone on every batch (freeze, full, ...)")
    return BatchAugmentation(train.augment, train.mix, train.mix_alpha, dataset.num_classes, normalizer(norm),
                             generator)


def normalizer(norm: Normalization) -> Callable[[torch.Tensor], torch.Tensor]:
    """Un-normalised images (N, C, H, W) in [0, 1] -> the model's inputs: what augmentation ends with."""
    mean = torch.tensor(norm.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(norm.std, dtype=torch.float32).view(1, -1, 1, 1)
    return lambda x: (x - mean) / std
