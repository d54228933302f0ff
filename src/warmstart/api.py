"""The high-level Python API: ``pretrain``, ``finetune``, ``evaluate``, ``lr_find`` and ``predict``. The CLI is a thin
layer over these.

Each call takes typed configs (or plain strings where a name is enough, as in Keras), returns a typed result, and,
given ``out``, writes a run folder::

    out/config.json          the resolved configuration
    out/train_log.jsonl      one JSON object per epoch
    out/model/               model.safetensors (weights + metadata header) and metadata.json
    out/metrics.json         test-split metrics
    out/confusion_matrix.png
    out/predictions.npz      test labels and probabilities; examples.json: misclassified examples
    out/report.html          the self-contained report (``warmstart report``); MODEL_CARD.md: the model card
    out/tensorboard/         TensorBoard events (by default; ``TrainConfig.trackers``), out/mlflow/ with mlflow

``lr_find`` writes ``out/lr_find.json`` and ``out/lr_find.png`` and leaves every checkpoint as it was.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ._version import __version__
from .adaptation import Adaptation, create_adaptation
from .adaptation.target import TargetAdaptation, check_adaptation as _check_adaptation
from .config import DataConfig, ModelConfig, TrainConfig, json_ready, to_dict
from .data import DATASETS, DataSplits, Dataset, load_split, load_splits, select_classes
from .data.augment import BatchAugmentation, augment
from .data.preprocess import (Normalization, Tokenization, adapt_inputs, align_features, fit_preprocessing,
                              preprocessing_from_dict, resizes_inputs)
from .engine import (BestWeights, Callback, EarlyStopping, JsonLinesLogger, ProgressBar, fit, predict_logits,
                     resolve_device, seed_everything)
from .engine import distributed
from .engine.distributed import gather_rows
from .engine.contrastive import fit_contrastive
from .engine.features import cached_features, default_cache_dir
from .engine.logistic import fit_linear_head
from .engine.loop import History, with_default_lr
from .engine.lr_find import DIVERGENCE_FACTOR, LrFindResult, check_range, lr_range_test, plot_lr_find
from .errors import WarmstartError
from .evaluation import EvaluationResult, evaluate_predictions, plot_confusion_matrix
from .io import write_json
from .models import MODELS, CheckpointInfo, TransferModel, create_model, load_checkpoint, save_checkpoint
from .prediction import PredictionResult, predict as _predict_csv
from .strategies import STRATEGIES, Strategy, create_strategy
from .strategies.auto import Auto
from .reporting import finish_run_folder
from .tracking import Tracker, open_trackers

log = logging.getLogger("warmstart")


@dataclass(frozen=True)
class RunResult:
    """What ``pretrain`` and ``finetune`` return."""

    metrics: EvaluationResult  # on the test split
    history: list[dict[str, Any]]
    train_time_s: float
    wall_time_s: float
    run_dir: Path | None
    checkpoint: Path | None
    info: CheckpointInfo
    notes: tuple[str, ...] = ()
    model: TransferModel | None = field(default=None, repr=False, compare=False)


def _as_data(data: DataConfig | str) -> DataConfig:
    return DataConfig(data) if isinstance(data, str) else data


def _as_model(model: ModelConfig | str) -> ModelConfig:
    return ModelConfig(model) if isinstance(model, str) else model


Preprocessing = Normalization | Tokenization
DEFAULT_MODELS = {"image": "cnn", "vector": "mlp", "text": "hf"}  # what --from none trains without --model


def _tensors(dataset: Dataset, norm: Preprocessing) -> tuple[torch.Tensor, torch.Tensor]:
    return norm.apply(dataset.x), torch.from_numpy(dataset.y)


def _note(notes: list[str], message: str) -> None:
    notes.append(message)
    log.info(message)


def _train_and_save(kind: str, model: TransferModel, strategy: Strategy, data: DataConfig, train: TrainConfig,
                    splits, norm: Preprocessing, out: str | Path | None, lineage: dict[str, Any],
                    notes: list[str], callbacks: tuple[Callback, ...], started: float,
                    resume: bool = False, adaptation: "TargetAdaptation | None" = None) -> RunResult:
    # under torchrun every rank runs this; only rank 0 writes the run folder (engine/distributed.py)
    ranks, device = distributed.setup(resolve_device(train.device))
    if train.lr is None:  # the strategy's default for this model, recorded in the run's config like a given one
        train = with_default_lr(train, model, strategy)
        _note(notes, f"learning rate {train.lr:g}: {strategy.name}'s default for the {model.arch} model (set --lr to "
                     "choose another)")
    generator = torch.Generator().manual_seed(train.seed)
    run_dir = Path(out) if out is not None else None
    writes = run_dir is not None and ranks.is_main
    config = {"command": kind, "data": to_dict(data), "train": to_dict(train), "strategy": strategy.describe(),
              "model": {"arch": model.arch, "arch_args": model.arch_args}, **lineage,
              "resolved": {"val_fraction": data.resolved_val_fraction, "device": str(device),
                           "train_examples": len(splits.train),
                           "val_examples": 0 if splits.val is None else len(splits.val),
                           "test_examples": len(splits.test), "processes": ranks.world_size},
              "warmstart_version": __version__}
    extra_callbacks: list[Callback] = list(callbacks)
    trackers: list[Tracker] = []
    state_dir = None if run_dir is None else run_dir / "state"
    if resume:
        if state_dir is None:
            raise WarmstartError("resume needs the run folder (--out) of the interrupted run")
        _check_resumable(state_dir, config)
    if writes:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resume:  # the log records this run, epoch by epoch; a resumed run carries on with it
            (run_dir / "train_log.jsonl").unlink(missing_ok=True)
            write_json(state_dir / "config.json", json_ready(config))
        extra_callbacks.append(JsonLinesLogger(run_dir / "train_log.jsonl", phase=kind))
        trackers = open_trackers(train.trackers, run_dir, json_ready(config))
        extra_callbacks.extend(trackers)
    if splits.val is not None:
        extra_callbacks.append(BestWeights(model, monitor="val_accuracy"))
    if train.early_stopping is not None:
        if splits.val is None:
            raise WarmstartError("early stopping needs a validation split, and this run holds none out",
                                 hint="set --val-fraction (for example 0.2), or drop --early-stopping")
        extra_callbacks.append(EarlyStopping(train.early_stopping, monitor="val_accuracy"))
    if train.progress and ranks.is_main:
        extra_callbacks.append(ProgressBar(kind))

    train_xy = _tensors(splits.train, norm)
    batch_transform = _batch_augmentation(splits.train, norm, train, strategy, generator)
    # augmentation works on the images as they are, then normalises: the loop gets them un-normalised
    loop_xy = train_xy if batch_transform is None else (torch.from_numpy(splits.train.x), train_xy[1])
    val_xy = None if splits.val is None else _tensors(splits.val, norm)
    disk = default_cache_dir() if getattr(strategy, "cache", "memory") == "disk" else None
    if strategy.uses_feature_cache:
        # the backbone is frozen: run it once, then train the head alone on its features
        started_features = time.perf_counter()
        train_xy = _probe_training_features(model, strategy, train_xy, device, disk)
        if val_xy is not None:
            val_xy = (_features(model, val_xy[0], device, disk), val_xy[1])
        feature_time = time.perf_counter() - started_features
        views = getattr(strategy, "views", 1)
        counted = f"{len(splits.train)} training examples" + (f" x {views} views" if views > 1 else "")
        _note(notes, f"{strategy.name}: backbone features of {counted} ready in {feature_time:.2f} s; the head "
                     "trains on them")
        if getattr(strategy, "solver", "loop") == "lbfgs":
            history = _fit_head_to_convergence(model, strategy, train_xy, val_xy, train, extra_callbacks, notes)
        else:
            history = fit(_head_only(model), strategy, train_xy, val_xy, train, device=device,
                          generator=generator, callbacks=extra_callbacks, state_dir=state_dir, resume=resume)
        # the extraction is part of what this strategy costs to train
        history.summary["feature_time_s"] = feature_time
        history.summary["train_time_s"] += feature_time
    elif strategy.objective == "contrastive-pairs":  # setfit: pairs train the encoder, then the head is fitted
        _check_contrastive(strategy, splits.train, train, ranks.enabled, resume, adaptation, batch_transform)
        history = fit_contrastive(model, strategy, train_xy, val_xy, train, device=device, generator=generator,
                                  callbacks=extra_callbacks)
    else:
        if getattr(strategy, "probe", None) == "lbfgs" and not resume:  # lp-ft, as the paper ran it
            _probe_head_first(model, strategy, train_xy, train, device, notes)
        history = fit(model, strategy, loop_xy, val_xy, train, device=device, generator=generator,
                      callbacks=extra_callbacks, state_dir=state_dir, resume=resume, batch_transform=batch_transform,
                      alignment=None if adaptation is None else adaptation.alignment(model, train.seed))
    strategy.finalize(model)  # LoRA merges its adapters here: what is evaluated is what is saved
    if adaptation is not None:
        adaptation.after_training(model, device, notes)
    if "stopped_epoch" in history.summary:
        _note(notes, f"early stopping after epoch {history.summary['stopped_epoch']}: validation accuracy had not "
                     f"improved for {train.early_stopping} epochs")
    if "best_epoch" in history.summary:
        _note(notes, f"kept the weights of epoch {history.summary['best_epoch']} (best validation accuracy "
                     f"{history.summary['best_val_accuracy']:.4f})")
    metrics, test_logits = _predict_and_score(model, splits.test, norm, device, cache=strategy.uses_feature_cache,
                                              disk=disk)
    info = CheckpointInfo(arch=model.arch, arch_args=model.arch_args, input_shape=model.input_shape,
                          class_names=splits.train.class_names, preprocessing=norm.to_dict(), kind=splits.train.kind,
                          extra={"data": to_dict(data), "training": {**to_dict(train), "strategy": strategy.describe()},
                                 "metrics": {k: v for k, v in metrics.to_dict().items()
                                             if k not in ("per_class", "confusion_matrix")},
                                 **_feature_names(splits.train), **lineage})
    checkpoint = None
    wall = time.perf_counter() - started
    if writes:
        # written only after training succeeded: a failed rerun leaves the last good run's files as they were
        checkpoint = save_checkpoint(model, run_dir / "model", info)
        write_json(run_dir / "config.json", json_ready({**config, "notes": notes}))
        shutil.rmtree(state_dir, ignore_errors=True)  # the run is complete: nothing left to resume
        _write_metrics(run_dir, metrics, split="test", data=data,
                       timing={"train_time_s": history.summary["train_time_s"], "wall_time_s": wall,
                               **{k: history.summary[k] for k in ("feature_time_s",) if k in history.summary}})
        reports = finish_run_folder(run_dir, splits.test, test_logits)  # predictions, model card, report.html
        for tracker in trackers:
            tracker.finish(_scalar_metrics(metrics), reports)
    return RunResult(metrics=metrics, history=history.epochs, train_time_s=history.summary["train_time_s"],
                     wall_time_s=wall, run_dir=run_dir, checkpoint=checkpoint, info=info, notes=tuple(notes),
                     model=model)


def _scalar_metrics(metrics: EvaluationResult) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.to_dict().items() if isinstance(v, (int, float))}


def _batch_augmentation(dataset: Dataset, norm: Preprocessing, train: TrainConfig, strategy: Strategy,
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
    mean = torch.tensor(norm.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(norm.std, dtype=torch.float32).view(1, -1, 1, 1)
    return BatchAugmentation(train.augment, train.mix, train.mix_alpha, dataset.num_classes,
                             lambda x: (x - mean) / std, generator)


def _feature_names(dataset: Dataset) -> dict[str, Any]:
    """A CSV's feature column names, so that ``predict`` can select the columns by name; nothing for other data."""
    return {} if dataset.feature_names is None else {"feature_names": list(dataset.feature_names)}


# What must match for a run to be resumed: everything that shapes training, not where or how loudly it runs.
_RUN_ONLY = {"progress", "device", "trackers"}


def _check_resumable(state_dir: Path, config: dict[str, Any]) -> None:
    saved_file = state_dir / "config.json"
    if not saved_file.is_file():
        raise WarmstartError(f"{state_dir.parent}: nothing to resume (no {saved_file.relative_to(state_dir.parent)})",
                             hint="the run finished, or never started; run without --resume")
    saved = json.loads(saved_file.read_text())
    now = json_ready(config)
    differences = []
    for section in ("command", "data", "train", "strategy", "model", "parent"):
        before, after = saved.get(section), now.get(section)
        if isinstance(before, dict) and isinstance(after, dict):
            differences += [f"{section}.{k}: {before.get(k)!r} then, {after.get(k)!r} now"
                            for k in sorted(set(before) | set(after))
                            if k not in _RUN_ONLY and before.get(k) != after.get(k)]
        elif before != after:
            differences.append(f"{section}: {before!r} then, {after!r} now")
    if differences:
        raise WarmstartError(f"cannot resume {state_dir.parent}: the settings differ from the interrupted run's: "
                             + "; ".join(differences), hint="resume with the same settings, or start a new run")


def _probe_training_features(model: TransferModel, strategy: Strategy, train_xy: tuple[torch.Tensor, torch.Tensor],
                             device: torch.device, disk: Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached features of the training set: the clean view, and ``strategy.views - 1`` augmented views."""
    x, y = train_xy
    views = getattr(strategy, "views", 1)
    if views > 1 and x.ndim != 4:
        raise WarmstartError(f"{strategy.name}: views={views} augments images, but the inputs are vectors of shape "
                             f"{tuple(x.shape[1:])}", hint="use views=1 for vector data")
    features = [_features(model, x, device, disk)]
    for view in range(1, views):
        tag = f"{strategy.augment}:{view}"
        features.append(_features(model, x, device, disk, view=tag,
                                  transform=lambda x, v=view: augment(x, strategy.augment, seed=v)))
    return torch.cat(features), y.repeat(views)


def _fit_head_to_convergence(model: TransferModel, strategy: Strategy, train_xy, val_xy, train: TrainConfig,
                             callbacks: list[Callback], notes: list[str]) -> History:
    """The probe's head as a logistic regression solved by L-BFGS: one "epoch" in the logs, callbacks told so."""
    history = History()
    for cb in callbacks:
        cb.on_train_begin({"epochs": 1, "steps_per_epoch": 1, "first_epoch": 1})
    try:
        logs, history.summary = fit_linear_head(model.head, train_xy, val_xy, C=strategy.C, seed=train.seed)
        history.epochs.append(logs)
        for cb in callbacks:
            cb.on_epoch_end(1, logs)
    finally:
        for cb in callbacks:
            cb.on_train_end(history.summary)
    how = "chosen by cross-validation" if strategy.C == "auto" else "given"
    _note(notes, f"{strategy.name}: head fitted by L-BFGS to convergence in {logs['iterations']} iterations, "
                 f"C={logs['C']:.4g} ({how})")
    return history


def _check_contrastive(strategy: Strategy, dataset: Dataset, train: TrainConfig, distributed_run: bool,
                       resume: bool, adaptation, batch_transform) -> None:
    """What the contrastive-pairs loop does not support yet, refused up front with the way out."""
    refusals = [(resume, "cannot be resumed", "start the run again without --resume"),
                (distributed_run, "runs in one process only", "drop --nproc / torchrun"),
                (adaptation is not None, "does not combine with --adaptation", "drop --adaptation"),
                (batch_transform is not None, "does not combine with --augment or --mix", "drop them"),
                (train.grad_accumulation != 1, "does not accumulate gradients", "use --grad-accumulation 1 "
                 "and set --batch-size to the pairs per step"),
                (dataset.num_classes < 2, "needs at least two classes", "use data with two or more labels")]
    for refused, what, hint in refusals:
        if refused:
            raise WarmstartError(f"--strategy {strategy.name} {what}", hint=hint)


def _probe_head_first(model: TransferModel, strategy: Strategy, train_xy, train: TrainConfig, device: torch.device,
                      notes: list[str]) -> None:
    """Fit the head to convergence on the frozen backbone's features, before any layer fine-tunes."""
    started = time.perf_counter()
    features = _features(model, train_xy[0], device, None)
    logs, _ = fit_linear_head(model.head, (features, train_xy[1]), None, seed=train.seed)
    _note(notes, f"{strategy.name}: linear probe fitted by L-BFGS first (C={logs['C']:.4g} by cross-validation, "
                 f"training accuracy {logs['train_accuracy']:.3f}, {time.perf_counter() - started:.2f} s); then every "
                 "layer trains")


def _features(model: TransferModel, x: torch.Tensor, device: torch.device, disk: Path | None,
              **view: Any) -> torch.Tensor:
    """Cached backbone features of ``x``; under DDP each rank extracts (and caches) its share of the rows, and
    the shares are gathered, so the backbone runs over the data once in all."""
    return gather_rows(lambda rows: cached_features(model, rows, device, disk=disk, **view)[0], x)


def _head_only(model: TransferModel) -> TransferModel:
    """A model whose input is ``model``'s features and whose head *is* ``model``'s head (shared, not copied)."""
    probe = TransferModel(torch.nn.Identity(), model.num_features, model.num_classes, arch=model.arch,
                          arch_args=model.arch_args, input_shape=(model.num_features,))
    probe.head = model.head
    return probe


def _predict_and_score(model: TransferModel, dataset: Dataset, norm: Preprocessing, device: torch.device, *,
                       cache: bool = False, disk: Path | None = None) -> tuple[EvaluationResult, torch.Tensor]:
    """Test metrics and the logits they come from; with ``cache`` (a frozen backbone), the test split's features
    come from the feature cache, so repeated runs on one split (seeds, strategies, shot counts) embed it once."""
    x = norm.apply(dataset.x)
    if cache:
        features = _features(model, x, device, disk)
        with torch.no_grad():
            logits = model.eval().forward_head(features.to(device)).float().cpu()
    else:  # under DDP each rank predicts its share of the rows
        logits = gather_rows(lambda rows: predict_logits(model, rows, device), x)
    return evaluate_predictions(dataset.y, logits.argmax(1).numpy(), dataset.class_names), logits


def _write_metrics(run_dir: Path, metrics: EvaluationResult, *, split: str, data: DataConfig,
                   timing: dict[str, float] | None = None) -> None:
    write_json(run_dir / "metrics.json", {**metrics.to_dict(), "split": split, "data": to_dict(data),
                                          **(timing or {})})
    plot_confusion_matrix(metrics, run_dir / "confusion_matrix.png",
                          title=f"{data.source} ({split}): accuracy {metrics.accuracy:.3f}")


def pretrain(data: DataConfig | str, *, model: ModelConfig | str = "cnn", train: TrainConfig | None = None,
             out: str | Path | None = None, callbacks: tuple[Callback, ...] = (), resume: bool = False) -> RunResult:
    """Train ``model`` from random initialisation on a source dataset; save it to ``out/model`` as a checkpoint."""
    return finetune(None, data, model=model, train=train, out=out, callbacks=callbacks, resume=resume,
                    _command="pretrain")


def finetune(checkpoint: str | Path | None, data: DataConfig | str, *, strategy: str | Strategy = "full",
             model: ModelConfig | str | None = None, train: TrainConfig | None = None,
             out: str | Path | None = None, callbacks: tuple[Callback, ...] = (), resume: bool = False,
             candidates: tuple[str, ...] | list[str] = (), rank_score: str = "logme",
             target_unlabeled: DataConfig | str | None = None, adaptation: "str | Adaptation | None" = None,
             _command: str = "finetune") -> RunResult:
    """Fine-tune a checkpoint on a target dataset; with ``checkpoint=None``, train ``model`` from scratch.

    The target's classes get a new head when they differ from the checkpoint's (reported in ``notes``). Inputs are
    preprocessed with the checkpoint's recorded statistics, as the backbone saw them in pretraining. With ``out``,
    the training state is saved there after every epoch; ``resume=True`` continues an interrupted run from it,
    given the same settings.

    ``checkpoint="auto"`` ranks ``candidates`` on the target's training split by ``rank_score`` (see
    :func:`warmstart.selection.ranking.rank`), fine-tunes the best one, and writes the ranking and the reason for
    the choice to ``out/selection.json``.

    Unsupervised domain adaptation: with ``target_unlabeled`` (a dataset whose train split's inputs are used, never
    its labels) and ``adaptation`` (``dann``, ``coral`` or ``adabn``; ``warmstart list adaptations``), the model is
    trained on the labelled ``data`` while adapting to the target; see :mod:`warmstart.adaptation`. The test
    metrics stay those of ``data``'s test split: evaluate the checkpoint on the target to see the effect.
    """
    if checkpoint == "auto":
        from .selection.ranking import finetune_best

        if model is not None:
            raise WarmstartError("--model names an architecture for training from scratch; --from auto starts "
                                 "from the best of --candidates", hint="drop --model")
        if adaptation is not None or target_unlabeled is not None:
            raise WarmstartError("--adaptation and --target-unlabeled do not combine with --from auto",
                                 hint="run `warmstart rank` first, then finetune --from the chosen model with "
                                      "--adaptation")

        return finetune_best(candidates, data, rank_score=rank_score, strategy=strategy, train=train, out=out,
                             callbacks=callbacks, resume=resume)
    if candidates:
        raise WarmstartError("--candidates only applies with --from auto", hint="drop --candidates, or use --from auto")
    started = time.perf_counter()
    data, train = _as_data(data), train or TrainConfig.for_command(_command)
    strategy = create_strategy(strategy) if isinstance(strategy, str) else strategy  # fail before any work
    if train.early_stopping is not None and data.resolved_val_fraction == 0:
        raise WarmstartError("early stopping needs a validation split, and this run holds none out",
                             hint="set --val-fraction (for example 0.2), or drop --early-stopping")
    if resume and (out is None or not (Path(out) / "state" / "config.json").is_file()):
        raise WarmstartError(f"{out}: nothing to resume (no state/config.json)",
                             hint="the run finished, or never started; run without --resume")
    method = _check_adaptation(target_unlabeled, adaptation, resume)
    net, splits, norm, lineage, notes = _starting_point(checkpoint, data, model, train)
    strategy = _resolve_auto(strategy, splits, net, train, pretrained=checkpoint is not None, notes=notes)
    target = None
    if method is not None:
        target = TargetAdaptation.load(method, _as_data(target_unlabeled), net, norm, strategy)
        lineage = {**lineage, "adaptation": target.describe()}
    return _train_and_save(_command, net, strategy, data, train, splits, norm, out, lineage, notes, callbacks,
                           started, resume=resume, adaptation=target)


def _resolve_auto(strategy: Strategy, splits: DataSplits, net: TransferModel, train: TrainConfig, *, pretrained: bool,
                  notes: list[str]) -> Strategy:
    """``auto`` becomes the strategy it chooses for this training set and model; any other strategy stays."""
    if not isinstance(strategy, Auto):
        return strategy
    per_class = int(splits.train.class_counts().min())
    chosen, reason = strategy.choose(per_class, pretrained=pretrained, text=net.arch == "hf",
                                     classes=splits.train.num_classes, epochs=train.epochs)
    _note(notes, f"auto chose {chosen.name}: {reason}")
    return chosen


def _pretrained_model(checkpoint: str | Path | None, model: ModelConfig | str | None) -> ModelConfig | None:
    """The architecture and options of a pretrained source in ``--from`` (``minilm``, ``hf:``, ``timm:``,
    ``torchvision:``), with the options of ``model`` (``weights=PATH``, say); None for a checkpoint or scratch."""
    from .models.sources import pretrained_spec

    options = None
    if model is not None:
        model = _as_model(model)
        expected = pretrained_spec(checkpoint)
        if expected is not None and model.name != expected.name:
            raise WarmstartError(f"--from {checkpoint} builds a {expected.name} model; --model {model.name} "
                                 "cannot change that", hint="drop --model; --model-option still applies")
        options = model.options
    return pretrained_spec(checkpoint, options)


def _pretrained_lineage(checkpoint: str | Path, spec: ModelConfig, net: TransferModel) -> dict[str, Any]:
    """``{"pretrained": "timm:resnet18", "weights": where they came from}``; an encoder's source as it was named."""
    if spec.name == "hf":
        return {"pretrained": str(spec.options["source"])}
    weights = getattr(net, "weights_source", None)
    return {"pretrained": str(checkpoint), **({} if weights is None else {"weights": weights})}


def _input_note(net: TransferModel, norm: Preprocessing) -> str:
    if not isinstance(norm, Normalization) or norm.input_size is None:
        return ""
    return (f"; inputs resized to {'x'.join(map(str, net.input_shape[1:]))} ({norm.interpolation}) and normalised "
            f"with its mean {[round(m, 4) for m in norm.mean]} and std {[round(v, 4) for v in norm.std]}")


def _adapt_splits(splits: DataSplits, net: TransferModel, norm: Preprocessing, name: str, *,
                  resize: bool) -> DataSplits:
    """Every split fitted to the model's input shape; a model whose recorded preprocessing names an input size
    (a pretrained timm or torchvision model) is always resized to it, with its own interpolation."""
    interpolation = getattr(norm, "interpolation", None) or "bilinear"
    resize = resize or resizes_inputs(norm)
    return type(splits)(*(None if s is None else adapt_inputs(s, net.input_shape, resize=resize, model_name=name,
                                                               interpolation=interpolation)
                          for s in (splits.train, splits.val, splits.test)))


def _starting_point(checkpoint: str | Path | None, data: DataConfig, model: ModelConfig | str | None,
                    train: TrainConfig, *, keep_source_head: bool = False
                    ) -> tuple[TransferModel, DataSplits, Preprocessing, dict[str, Any], list[str]]:
    """What fine-tuning starts from: the seeded splits, the model (the checkpoint with a new head for the target's
    classes, or ``model`` from scratch), the normalisation its inputs get, its lineage, and notes on what changed.
    ``keep_source_head`` leaves a checkpoint's own classifier in place (transferability ranking reads it)."""
    check_backbone_family(checkpoint)
    seed_everything(train.seed)
    notes: list[str] = []
    splits = load_splits(data, train.seed)
    text = splits.train.kind == "text"
    input_shape = (data.max_length,) if text else splits.train.input_shape
    pretrained = _pretrained_model(checkpoint, model)
    if pretrained is not None and (pretrained.name == "hf") != text:
        kind = "text encoder" if pretrained.name == "hf" else "image model"
        raise WarmstartError(f"{checkpoint!r}: a pretrained {kind}, but {data.source} holds {splits.train.kind} data",
                             hint="start from a checkpoint or pretrained model of the same kind, or from none")
    if checkpoint is None or pretrained is not None:
        spec = pretrained or _as_model(model or DEFAULT_MODELS[splits.train.kind])
        net = create_model(spec.name, input_shape, splits.train.num_classes, **dict(spec.options))
        norm = fit_preprocessing(splits.train, net.arch_args, data.max_length,
                                 getattr(net, "pretrained_preprocessing", None))
        if not text and net.input_shape != tuple(input_shape):  # a pretrained image model's own input size
            splits = _adapt_splits(splits, net, norm, f"{spec.name} model {spec.options.get('name')}", resize=True)
        lineage: dict[str, Any] = {"parent": None if pretrained is None else _pretrained_lineage(checkpoint, spec, net)}
        if pretrained is not None:
            named = (f"encoder {pretrained.options['source']!r}" if pretrained.name == "hf"
                     else f"model {str(checkpoint)!r}")
            _note(notes, f"starting from the pretrained {named} with a new "
                         f"{splits.train.num_classes}-class head" + _input_note(net, norm))
    else:
        if model is not None:
            raise WarmstartError("--model names an architecture for training from scratch (--from none); "
                                 f"the checkpoint {checkpoint} already fixes it", hint="drop --model")
        net, parent = load_checkpoint(checkpoint)
        norm = preprocessing_from_dict(parent.preprocessing)
        name = f"checkpoint {checkpoint}"
        feature_names = parent.extra.get("feature_names")
        splits = type(splits)(*(None if s is None else align_features(s, feature_names, name)
                                for s in (splits.train, splits.val, splits.test)))
        splits = _adapt_splits(splits, net, norm, name, resize=data.resize)
        if tuple(parent.class_names) != splits.train.class_names and not keep_source_head:
            torch.manual_seed(train.seed)
            net.reset_classifier(splits.train.num_classes)
            _note(notes, f"new head: the checkpoint predicts {len(parent.class_names)} classes "
                         f"({', '.join(parent.class_names)}); the target has {splits.train.num_classes} "
                         f"({', '.join(splits.train.class_names)}), so the classifier was re-initialised")
        lineage = {"parent": {"checkpoint": str(checkpoint), "data": parent.extra.get("data"),
                              "class_names": list(parent.class_names), "arch": parent.arch}}
    return net, splits, norm, lineage, notes


# ``--from`` prefixes served by a registered backbone family, and the models that family needs in MODELS
BACKBONE_PREFIXES = {"timm:": ("timm",), "torchvision:": ("torchvision", "timm")}


def check_backbone_family(checkpoint: str | Path | None) -> None:
    """A clear error for ``timm:NAME`` / ``torchvision:NAME`` when no registered model serves that family."""
    if not isinstance(checkpoint, str):
        return
    for prefix, families in BACKBONE_PREFIXES.items():
        if checkpoint.startswith(prefix) and not any(f in MODELS for f in families):
            raise WarmstartError(f"{checkpoint!r}: no model {' or '.join(map(repr, families))} is registered "
                                 f"to build {prefix[:-1]} backbones (registered: {', '.join(MODELS.names())})",
                                 hint="install a warmstart with the timm/torchvision backbones, or pass a checkpoint "
                                      "folder, minilm or hf:FOLDER")


def lr_find(checkpoint: str | Path | None, data: DataConfig | str, *, strategy: str | Strategy = "full",
            model: ModelConfig | str | None = None, train: TrainConfig | None = None, start_lr: float = 1e-7,
            end_lr: float = 10.0, steps: int = 100, out: str | Path | None = None) -> LrFindResult:
    """A learning-rate range test (Smith, WACV 2017; fastai's ``lr_find``) from where ``finetune`` would start.

    The same starting point as ``finetune`` with these arguments (the checkpoint with a new head for the target's
    classes, or ``model`` from scratch; the same splits, preprocessing and seed) trains with ``strategy``'s parameter
    groups, in the strategy's first phase, while the base learning rate grows exponentially from ``start_lr`` to
    ``end_lr`` over ``steps`` mini-batches of ``train.batch_size``; see :mod:`warmstart.engine.lr_find` for the
    smoothing, the stopping rule and the suggestion. The trained model is thrown away: no checkpoint changes. With
    ``out``, writes ``lr_find.json`` (the curve, the suggestion and the settings) and ``lr_find.png``.
    """
    data, train = _as_data(data), train or TrainConfig.for_command("lr-find")
    strategy = create_strategy(strategy) if isinstance(strategy, str) else strategy  # fail before any work
    check_range(start_lr, end_lr, steps)
    net, splits, norm, lineage, notes = _starting_point(checkpoint, data, model, train)
    strategy = _resolve_auto(strategy, splits, net, train, pretrained=checkpoint is not None, notes=notes)
    if strategy.objective != "cross-entropy":
        raise WarmstartError(f"lr-find runs the cross-entropy loop, and {strategy.name} trains on {strategy.objective}",
                             hint=f"run {strategy.name} at its default rate ({strategy.default_lr(net):g}, without "
                                  "--lr), or compare a few rates with `warmstart compare`")
    device = resolve_device(train.device)
    result = lr_range_test(net, strategy, _tensors(splits.train, norm), train, device,
                           torch.Generator().manual_seed(train.seed), start_lr, end_lr, steps)
    if result.stopped_early:
        _note(notes, f"lr-find stopped after {result.steps_run} of {steps} steps, at lr {result.lrs[-1]:.3g}: the "
                     f"loss diverged (the smoothed loss passed {DIVERGENCE_FACTOR:g}x its minimum)")
    result = replace(result, notes=tuple(notes))
    if out is not None:
        run_dir = Path(out)
        write_json(run_dir / "lr_find.json", json_ready({
            **result.to_dict(), "command": "lr-find", "data": to_dict(data), "train": to_dict(train),
            "strategy": strategy.describe(), "model": {"arch": net.arch, "arch_args": net.arch_args}, **lineage,
            "resolved": {"device": str(device), "train_examples": len(splits.train)},
            "warmstart_version": __version__}))
        plot_lr_find(result, run_dir / "lr_find.png",
                     title=f"lr-find: {strategy.name} on {Path(data.source).name}, suggestion {result.suggestion:.2g}")
    return result


def evaluate(checkpoint: str | Path, data: DataConfig | str, *, split: str = "test", out: str | Path | None = None,
             device: str = "auto", target_unlabeled: DataConfig | str | None = None) -> EvaluationResult:
    """Score a checkpoint on a dataset split; with ``out``, write ``metrics.json`` and ``confusion_matrix.png``.

    With ``target_unlabeled``, AdaBN first re-estimates the model's BatchNorm statistics on that dataset's train
    split inputs (labels unused); the checkpoint on disk is not changed."""
    data = _as_data(data)
    net, info = load_checkpoint(checkpoint)
    if target_unlabeled is not None:  # AdaBN on the loaded model; the checkpoint file stays as it is
        target = TargetAdaptation.load(create_adaptation("adabn"), _as_data(target_unlabeled), net,
                                       preprocessing_from_dict(info.preprocessing), strategy=None)
        target.after_training(net, resolve_device(device), notes=[])
    dataset = load_split(data, split)
    if data.classes is None and dataset.class_names != info.class_names:
        dataset = _match_model_classes(dataset, info, checkpoint)
    if tuple(dataset.class_names) != tuple(info.class_names):
        raise WarmstartError(f"checkpoint {checkpoint} predicts the classes {', '.join(info.class_names)}, but the "
                             f"selected data has {', '.join(dataset.class_names)}",
                             hint="pass --classes naming the model's classes, in its order")
    name = f"checkpoint {checkpoint}"
    norm = preprocessing_from_dict(info.preprocessing)
    dataset = adapt_inputs(align_features(dataset, info.extra.get("feature_names"), name), net.input_shape,
                           resize=data.resize or resizes_inputs(norm), model_name=name,
                           interpolation=getattr(norm, "interpolation", None) or "bilinear")
    result, logits = _predict_and_score(net, dataset, norm, resolve_device(device))
    if out is not None:
        run_dir = Path(out)
        write_json(run_dir / "config.json", {"command": "evaluate", "checkpoint": str(checkpoint), "split": split,
                                             "data": to_dict(data), "warmstart_version": __version__,
                                             **({} if target_unlabeled is None else {"adaptation": {
                                                 "name": "adabn",
                                                 "target_unlabeled": to_dict(_as_data(target_unlabeled))}})})
        _write_metrics(run_dir, result, split=split, data=data)
        finish_run_folder(run_dir, dataset, logits)  # predictions and report.html
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


def predict(checkpoint: str | Path, input: str | Path, out: str | Path, *, text_column: str = "text",
            image_column: str = "path", label_column: str = "label", batch_size: int = 128,
            device: str = "auto") -> PredictionResult:
    """Predict every row of the CSV ``input`` and write ``out``: the same rows and columns, plus ``predicted_label``
    and ``probability`` (softmax). Vector models read their recorded feature columns by name, text models
    ``text_column`` (an empty text leaves its row unpredicted, with a note), image models the image paths in
    ``image_column``; see :mod:`warmstart.prediction`. ``out`` is replaced only when every row was predicted."""
    return _predict_csv(checkpoint, input, out, text_column=text_column, image_column=image_column,
                        label_column=label_column, batch_size=batch_size, device=device)


def list_registered(family: str) -> dict[str, str]:
    """Names and one-line descriptions of ``models``, ``strategies``, ``datasets``, ``augmentations``,
    ``scores``, ``adaptations``, ``corruptions`` or ``shift-measures``."""
    from .adaptation import ADAPTATIONS
    from .data.augment import AUGMENTATIONS, MIXES
    from .data.corruptions import CORRUPTIONS
    from .selection import SCORES
    from .shift import SHIFT_MEASURES

    families = {"models": MODELS, "strategies": STRATEGIES, "datasets": DATASETS, "augmentations": AUGMENTATIONS,
                "scores": SCORES, "adaptations": ADAPTATIONS, "corruptions": CORRUPTIONS,
                "shift-measures": SHIFT_MEASURES}
    if family not in families:
        raise WarmstartError(f"nothing called {family!r} to list; expected one of {', '.join(families)}")
    if family == "augmentations":  # the per-image presets (--augment), then the batch mixes (--mix)
        return {**AUGMENTATIONS.describe(), **MIXES.describe()}
    return families[family].describe()


def report(run_dir: str | Path) -> list[Path]:
    """(Re)build a run folder's ``report.html`` (and ``MODEL_CARD.md`` when it holds a model) from its files."""
    from .reporting import write_run_reports

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise WarmstartError(f"{run_dir}: no such run folder", hint="pass the --out folder of a warmstart run")
    return write_run_reports(run_dir)


def export_model(checkpoint: str | Path, format: str, *, out: str | Path | None = None, data: str | None = None,
                 tolerance: float = 1e-4, examples: int = 32):
    """Export a checkpoint to ONNX or TorchScript and check it against PyTorch on real inputs; see
    :func:`warmstart.export.export_model` (the package ``warmstart.export`` takes the plain name)."""
    from .export import export_model as _export

    return _export(checkpoint, format, out=out, data=data, tolerance=tolerance, examples=examples)


def rank(data: DataConfig | str, candidates, *, scores=None, rank_score: str = "logme",
         train: TrainConfig | None = None, out: str | Path | None = None):
    """Score candidate pretrained models on ``data``'s training split with transferability scores, before any
    fine-tuning; see :func:`warmstart.selection.ranking.rank`."""
    from .selection.ranking import rank as _rank

    return _rank(data, candidates, scores=scores, rank_score=rank_score, train=train, out=out)


def zoo(folders=None):
    """The local warmstart checkpoints under ``folders`` (default ``runs/`` and ``$WARMSTART_ZOO``), described from
    their safetensors headers; see :func:`warmstart.selection.zoo.list_zoo`."""
    from .selection.zoo import list_zoo

    return list_zoo(folders)


def shift(source: DataConfig | str, target: DataConfig | str, model: str | Path, *, out: str | Path | None = None,
          samples: int = 1000, permutations: int = 200, seed: int = 0, device: str = "auto"):
    """How far ``target`` lies from ``source`` in ``model``'s feature space: MMD with a permutation-test p-value, the
    proxy A-distance and the label shift, on each test split (at most ``samples`` examples each), with a verdict;
    see :mod:`warmstart.shift`. With ``out``, writes ``out/shift.json``."""
    from .shift import measure_shift

    source, target = _as_data(source), _as_data(target)
    result = measure_shift(model, source, target, samples=samples, permutations=permutations, seed=seed,
                           device=device)
    if out is not None:
        write_json(Path(out) / "shift.json", json_ready({**result.to_dict(), "command": "shift",
                                                         "source_data": to_dict(source),
                                                         "target_data": to_dict(target),
                                                         "warmstart_version": __version__}))
    return result
