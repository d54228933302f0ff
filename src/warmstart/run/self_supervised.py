"""Self-supervised runs: pretraining a source without labels (``pretrain --objective simclr|simcse``), and the short
task-adaptive stage that ``finetune --adapt-on`` runs before fine-tuning.

Both train an objective (:mod:`warmstart.objectives`) with :func:`train_objective`, which hands it to the one
training loop through :func:`warmstart.engine.trainer.train`, as every strategy is: progress, resume (the
pretraining run's, and the ``--adapt-on`` stage's own, in the run's ``adapt/state/``), DDP, precision and the
trackers come with it. The stage is recorded in the lineage, under ``self_supervised``
(the objective with its options, the data, the examples, epochs and optimizer steps), which the checkpoint, its
config.json and the model card carry.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import DEFAULT_EPOCHS, AdaptConfig, DataConfig, ModelConfig, TrainConfig, json_ready, to_dict
from ..data import DataSplits, Dataset
from ..data.fit import Preprocessing, fit_splits, model_kind
from ..data.preprocess import Normalization
from ..data.unlabelled import load_unlabelled, without_labels
from ..engine import Callback, ProgressBar, distributed, resolve_device, trainer as engine_trainer
from ..engine.loop import History, with_default_lr
from ..engine.state import has_training_state
from ..errors import WarmstartError
from ..io import write_json
from ..models import CheckpointInfo, TransferModel, save_weights
from ..objectives import Objective, create_objective
from .fingerprint import inputs_fingerprint
from .folder import RunFolder, check_resumable, working_directory
from .starting_point import StartingPoint, note, resolve_starting_point
from .trainer import RunResult, _callbacks, normalizer, open_run_folder, run_config

SELF = "self"  # --adapt-on self: the run's own training inputs


def check_objective_fits(objective: Objective, dataset: Dataset, source: str, flag: str = "--objective") -> None:
    """Refuses an objective for another kind of data; ``flag``: the option that chose it (``pretrain --objective``
    or ``finetune --adapt-objective``)."""
    if dataset.kind not in objective.kinds:
        others = {"image": "simclr", "text": "simcse"}
        other = others.get(dataset.kind, "supervised" if flag == "--objective" else None)
        raise WarmstartError(f"{flag} {objective.name} trains on {' or '.join(objective.kinds)} data, and "
                             f"{source} holds {dataset.kind} data",
                             hint=f"use {flag} {other} for {dataset.kind} data" if other else
                             f"no self-supervised stage is offered for {dataset.kind} data: drop --adapt-on")
    if len(dataset) < 2:
        raise WarmstartError(f"{source}: {len(dataset)} example(s); a contrastive objective needs at least two",
                             hint="use more data")


def train_objective(model: TransferModel, objective: Objective, dataset: Dataset, norm: Preprocessing,
                    train: TrainConfig, *, device: torch.device, callbacks: list[Callback],
                    state_dir: Path | None = None, resume: bool = False, notes: list[str] | None = None) -> History:
    """Train ``model``'s backbone with ``objective`` on ``dataset``'s inputs (fitted to the model already) in the one
    training loop; the objective's projection head is dropped at the end (``finalize``)."""
    generator = torch.Generator().manual_seed(train.seed)
    inputs = (norm.apply(dataset.x), torch.from_numpy(dataset.y))
    views = objective.views_transform(normalizer(norm), generator) if isinstance(norm, Normalization) else None
    raw = None if views is None else torch.from_numpy(dataset.x)  # augmented un-normalised, then normalised
    history = engine_trainer.train(model, objective, inputs, None, train, device=device, generator=generator,
                                   callbacks=callbacks, state_dir=state_dir, resume=resume, batch_transform=views,
                                   transform_inputs=raw, notes=notes)
    objective.finalize(model)
    return history


def stage_lineage(objective: Objective, data: DataConfig | str, dataset: Dataset, train: TrainConfig,
                  history: History) -> dict[str, Any]:
    """What the lineage records of a self-supervised stage."""
    last = history.epochs[-1] if history.epochs else {}
    return {"objective": objective.describe(), "data": data if isinstance(data, str) else to_dict(data),
            "examples": len(dataset), "epochs": len(history.epochs), "steps": history.summary.get("steps"),
            "batch_size": train.batch_size, "lr": train.lr, "final_loss": last.get(objective.loss_name)}


# --- pretrain --objective --------------------------------------------------------------------------------------------

def pretrain_self_supervised(data: DataConfig, objective: Objective, *, checkpoint: str | Path | None,
                             model: ModelConfig | str | None, train: TrainConfig | None, out: str | Path | None,
                             callbacks: tuple[Callback, ...] = (), resume: bool = False, overwrite: bool = False,
                             ignore_labels: bool = False) -> RunResult:
    """``pretrain`` with a self-supervised objective: the unlabelled inputs of ``data``, the model from
    ``checkpoint`` (a pretrained model such as ``minilm``, or a checkpoint) or ``model`` from scratch, trained by
    ``objective``; saved as an ordinary checkpoint (``finetune --from`` it). There is no test split to score: the
    result's ``metrics`` is None and the run folder holds ``pretext.json`` instead."""
    started = time.perf_counter()
    train = train or TrainConfig.for_command("pretrain")
    if train.early_stopping is not None and train.early_stopping_monitor != "train_loss":
        raise WarmstartError(f"--objective {objective.name} holds no validation split out (it has no labels to "
                             f"score), so early stopping cannot watch {train.early_stopping_monitor}",
                             hint="pass --early-stopping-monitor train_loss (it watches the pretext loss), or drop "
                                  "--early-stopping")
    folder = open_run_folder(out, resume=resume, overwrite=overwrite, reads=(checkpoint, data))
    dataset = load_unlabelled(data, ignore_labels=ignore_labels)
    check_objective_fits(objective, dataset, data.source)
    if checkpoint is None and dataset.kind == "text" and (model is None or str(getattr(model, "name", model)) != "hf"):
        raise WarmstartError(f"--objective {objective.name} trains a text encoder, and --model "
                             f"{getattr(model, 'name', model)} is not one",
                             hint="start from a pretrained encoder (--from minilm, --from hf:SOURCE), or from "
                                  "scratch with --model hf --model-option pretrained=false")
    empty = dataset.subset(np.arange(0))
    start = resolve_starting_point(checkpoint, data, model, train, splits=DataSplits(dataset, None, empty))
    objective.check_model(start.model)
    if train.epochs is None:
        train = replace(train, epochs=DEFAULT_EPOCHS)
    ranks, device = distributed.setup(resolve_device(train.device))
    if train.lr is None:
        train = with_default_lr(train, start.model, objective)
        note(start.notes, f"learning rate {train.lr:g}: {objective.name}'s default for the {start.model.arch} model "
                          "(set --lr to choose another)")
    inputs = (torch.empty(0), torch.from_numpy(dataset.y))
    objective.check(train, train=inputs, distributed=ranks.enabled, resume=resume, aligned=False, augmented=False)
    config = run_config("pretrain", start, objective, data, train, device, ranks.world_size)
    config["objective"] = objective.describe()
    if resume:
        check_resumable(folder.state_dir, config)
    try:
        if folder is not None:
            folder.start(config, resume=resume)
        extra, trackers = _callbacks("pretrain", folder, config, start.model, start.splits, train, callbacks,
                                     ranks.is_main, objective.loss_name)
        history = train_objective(start.model, objective, start.splits.train, start.preprocessing, train,
                                  device=device, callbacks=extra,
                                  state_dir=None if folder is None else folder.kept_state_dir, resume=resume,
                                  notes=start.notes)
        lineage = {**start.lineage, "self_supervised": stage_lineage(objective, data, dataset, train, history)}
        info = _checkpoint_info(start, data, train, objective, lineage)
        wall = time.perf_counter() - started
        checkpoint_path = None
        if folder is not None:
            summary = {"objective": objective.describe(), objective.loss_name: lineage["self_supervised"]["final_loss"],
                       "examples": len(dataset), "train_time_s": history.summary["train_time_s"], "wall_time_s": wall}
            checkpoint_path, reports = folder.finish_unlabelled(
                start.model, info, {**config, "self_supervised": lineage["self_supervised"], "notes": start.notes},
                summary=summary)
            for tracker in trackers:
                tracker.finish({objective.loss_name: float(summary[objective.loss_name] or 0.0)}, reports)
            folder.commit()
            checkpoint_path = None if checkpoint_path is None else \
                folder.path / checkpoint_path.relative_to(folder.work)
    except BaseException as error:
        if folder is not None:
            folder.abandon(error)
        raise
    return RunResult(metrics=None, history=history.epochs, train_time_s=history.summary["train_time_s"],
                     wall_time_s=wall, run_dir=None if folder is None else folder.path, checkpoint=checkpoint_path,
                     info=info, notes=tuple(start.notes), model=start.model)


def _checkpoint_info(start: StartingPoint, data: DataConfig, train: TrainConfig, objective: Objective,
                     lineage: dict[str, Any]) -> CheckpointInfo:
    model, dataset = start.model, start.splits.train
    return CheckpointInfo(arch=model.arch, arch_args=model.arch_args, input_shape=model.input_shape,
                          class_names=dataset.class_names, preprocessing=start.preprocessing.to_dict(),
                          kind=dataset.kind,
                          extra={"data": to_dict(data), "training": {**to_dict(train),
                                                                     "strategy": objective.describe()},
                                 **lineage})


# --- finetune --adapt-on ---------------------------------------------------------------------------------------------

def adaptation_objective(adapt: AdaptConfig, model: TransferModel) -> Objective:
    """The objective of ``--adapt-on``: the one named, or (``auto``) SimCLR for images, and for text masked-language
    modelling where the encoder has an MLM head, SimCSE otherwise."""
    options = {} if adapt.temperature is None else {"temperature": adapt.temperature}
    name = adapt.objective
    if name == "auto":
        kind = model_kind(model.arch, model.input_shape)
        name = {"image": "simclr", "text": "simcse"}.get(kind)
        if name is None:
            raise WarmstartError(f"--adapt-on: no self-supervised objective for a {model.arch} model of {kind} "
                                 "inputs", hint="drop --adapt-on (it applies to image and text models)")
        if kind == "text" and _has_mlm_head(model):
            name, options = "mlm", {}
    return create_objective(name, **options)


def _has_mlm_head(model: TransferModel) -> bool:
    from ..objectives.mlm import has_mlm_head

    return has_mlm_head(model)


@dataclass(frozen=True)
class StageInputs:
    """What an ``--adapt-on`` stage trains with, checked: its objective (for ``start.model``), the unlabelled
    inputs fitted to the model, and their source as the lineage names it."""

    objective: Objective
    dataset: Dataset
    source: str | DataConfig


def stage_inputs(start: StartingPoint, adapt: AdaptConfig, data: DataConfig) -> StageInputs:
    """The stage's objective and inputs, every check made (an objective for the model's kind of input, readable
    data of that kind, at least two inputs): what can go wrong before the stage trains goes wrong here."""
    objective = adaptation_objective(adapt, start.model)
    if adapt.data == SELF:  # the training split's inputs: never the validation or test split
        dataset, source = without_labels(start.splits.train), SELF
    else:
        # the target's hold-out too: when --adapt-on names the target's own labelled file, its test rows stay unread
        source = DataConfig(adapt.data, text_column=data.text_column, label_column=data.label_column,
                            max_length=data.max_length, image_size=data.image_size, resize=True,
                            test_fraction=data.test_fraction)
        dataset = load_unlabelled(source, ignore_labels=True, flag="--adapt-on", notes=start.notes,
                                  run_classes=data.classes)
        model_kind = start.preprocessing.kind
        if (dataset.kind == "text") != (model_kind == "text"):  # the tokenizer would be handed pixels, or vice versa
            raise WarmstartError(f"--adapt-on {adapt.data}: it holds {dataset.kind} inputs, and the model "
                                 f"({start.model.arch}) reads {model_kind} inputs",
                                 hint="pass --adapt-on data of the kind the model reads, or --adapt-on self")
        if dataset.kind == "image":  # to the model's input, as the target's images were
            fitted = fit_splits(DataSplits(dataset, None, dataset.subset(np.arange(0))), start.model.input_shape,
                                start.preprocessing, model_name="the model", resize=True)
            dataset = fitted.train
    check_objective_fits(objective, dataset, adapt.data, flag="--adapt-objective")
    objective.check_model(start.model, flag="--adapt-objective")
    return StageInputs(objective, dataset, source)


def adapt_before_finetuning(start: StartingPoint, adapt: AdaptConfig, data: DataConfig, train: TrainConfig, *,
                            folder: RunFolder | None = None, resume: bool = False,
                            then: str = "fine-tuning", inputs: StageInputs | None = None) -> None:
    """``finetune --adapt-on``: train ``start.model``'s backbone on the unlabelled inputs ``adapt`` names, in place,
    before the supervised run; records the stage in ``start.lineage``.

    With a run ``folder``, the stage saves its own training state after every epoch (``adapt/state/``,
    :attr:`RunFolder.adapt_state_dir`), as every run of the loop does. ``resume`` carries on from it: a run
    killed in the stage continues it from its last saved epoch, and one killed after it reloads the finished stage
    (no epoch left to train) for the adapted weights. The state goes when the whole run finishes. ``then``: what
    follows the stage, for its note (lr-find's range test). ``inputs``: :func:`stage_inputs` made earlier for
    ``start`` (tune checks them before its study exists)."""
    inputs = inputs or stage_inputs(start, adapt, data)
    objective, dataset, source = inputs.objective, inputs.dataset, inputs.source
    stage = replace(train, epochs=adapt.epochs, batch_size=adapt.batch_size, lr=adapt.lr, schedule="linear",
                    warmup_epochs=0, early_stopping=None, augment="none", mix="none", class_balance="none",
                    label_smoothing=0.0, grad_accumulation=1, step_size=None)
    stage = with_default_lr(stage, start.model, objective)
    ranks, device = distributed.setup(resolve_device(train.device))
    state_dir, resumed = None, False
    if folder is not None:
        state_dir = folder.adapt_state_dir
        config = {"command": "adapt", "data": to_dict(adapt), "train": to_dict(stage),
                  "strategy": objective.describe(),
                  "model": {"arch": start.model.arch, "arch_args": start.model.arch_args}, **start.lineage,
                  "data_fingerprint": inputs_fingerprint(dataset), **working_directory()}
        # a stage killed before its first epoch was saved has nothing to resume: it starts again
        resumed = resume and has_training_state(state_dir)
        if resumed:
            check_resumable(state_dir, config)
        else:
            folder.start_stage(config)
    callbacks: list[Callback] = [ProgressBar("adapt")] if train.progress and ranks.is_main else []
    history = train_objective(start.model, objective, dataset, start.preprocessing, stage, device=device,
                              callbacks=callbacks, state_dir=state_dir, resume=resumed, notes=start.notes)
    lineage = stage_lineage(objective, source if isinstance(source, str) else source.source, dataset, stage, history)
    start.lineage = {**start.lineage, "self_supervised": lineage}
    note(start.notes, f"task-adaptive pretraining: {objective.name} on {len(dataset)} unlabelled "
                      f"{dataset.kind} inputs of {lineage['data']}, {lineage['epochs']} epoch(s), {lineage['steps']} "
                      f"steps at lr {stage.lr:g} (final {objective.loss_name} {lineage['final_loss']:.4f}"
                      + (", resumed from its saved state" if resumed else "") + f"); then {then}")


# --- tune --adapt-on: the stage once, for every trial ----------------------------------------------------------------

STAGE_WEIGHTS, STAGE_RECORD = "weights.safetensors", "stage.json"


@dataclass(frozen=True)
class FinishedStage:
    """An ``--adapt-on`` stage already trained: ``tune`` runs it once, on the starting point every trial resolves,
    and each trial and the winner start from its weights instead of training it again (picklable, for the search's
    worker processes). ``lineage``: what :func:`stage_lineage` recorded of it."""

    weights: Path
    lineage: dict[str, Any]

    def load(self, start: StartingPoint) -> None:
        """Put the adapted weights in ``start.model`` (the same model the stage trained: same starting point, same
        seed, so the same new head) and record the stage in its lineage; silently (each of tune's trials does)."""
        from safetensors.torch import load_file

        start.model.load_state_dict(load_file(str(self.weights)))
        start.lineage = {**start.lineage, "self_supervised": self.lineage}

    def apply(self, start: StartingPoint) -> None:
        """:meth:`load`, and the note a run that trained the stage would have made (the winner's run)."""
        self.load(start)
        note(start.notes, f"task-adaptive pretraining: {self.lineage['objective']['name']} on "
                          f"{self.lineage['examples']} unlabelled inputs of {self.lineage['data']}, "
                          f"{self.lineage['steps']} steps, run once before the search ({self.weights.parent})")


def adapt_once(start: StartingPoint, adapt: AdaptConfig, data: DataConfig, train: TrainConfig, folder: Path, *,
               resume: bool, inputs: StageInputs | None = None) -> FinishedStage:
    """``tune --adapt-on``: the stage on ``start`` (trained in place), its weights and lineage saved in ``folder``
    (``weights.safetensors``, then ``stage.json``, each written atomically: the record's presence means the stage
    finished). ``resume`` reloads a finished stage (the study refuses a resume with other stage settings or seed
    before this runs); a search killed inside the stage trains it again from its start (the stage is short: one or a
    few epochs). ``inputs``: :func:`stage_inputs` for ``start``, checked already."""
    record_path, weights = folder / STAGE_RECORD, folder / STAGE_WEIGHTS
    if resume and record_path.is_file():
        return FinishedStage(weights, json.loads(record_path.read_text(encoding="utf-8"))["lineage"])
    adapt_before_finetuning(start, adapt, data, train, then="the search's trials", inputs=inputs)
    save_weights(start.model, weights)
    lineage = json_ready(start.lineage["self_supervised"])
    write_json(record_path, {"lineage": lineage})
    return FinishedStage(weights, lineage)
