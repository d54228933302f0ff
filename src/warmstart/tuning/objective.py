"""A search's trial: the settings it suggests, trained in the one loop, scored on validation only.

:class:`Objective` is what Optuna calls once per trial. It is a frozen, picklable description of the run (the
starting point, the data, the strategy, the base training settings and the space), so that worker processes
(``--workers``) rebuild exactly the same trials. Each trial resolves the starting point as ``finetune`` does (same
seed, same splits), sets the suggested values, and trains with :func:`warmstart.run.trial.train_trial`, reporting
each epoch's validation accuracy to the pruner (:class:`PruneOnValidation`). A trial that diverges is pruned (a
learning rate too high is a poor setting, not a failure of the search). The test split is never read.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..config import DataConfig, ModelConfig, TrainConfig, is_number
from ..engine import Callback
from ..errors import TrainingDiverged, WarmstartError
from ..models import save_weights
from ..registry import option_names
from ..run.self_supervised import FinishedStage
from ..run.starting_point import StartingPoint, notes_unlogged, resolve_starting_point
from ..run.trainer import resolve_strategy
from ..run.trial import on_folds, train_trial
from ..search_space import SearchParam
from ..strategies import Strategy, create_strategy

log = logging.getLogger("warmstart")

# Training fields a search may set: everything that shapes training, not where or how it runs, nor the seed (the
# trials of one search share the data split and the initial head, so that they differ only in what is searched).
NOT_SEARCHED = frozenset({"device", "progress", "trackers", "seed", "precision", "grad_accumulation", "channels_last",
                          "compile", "early_stopping_monitor"})
TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in NOT_SEARCHED)
# a trial whose suggested warm-up was cut (below its epochs, or 0 under one-cycle) records the one it trained with
TRAINED_WARMUP = "warmup_epochs_trained"


def searchable(strategy: Strategy) -> tuple[str, ...]:
    """What a space may name for this strategy: the training fields and the strategy's own options."""
    return (*TRAIN_FIELDS, *option_names(type(strategy)))


def own_value(name: str, train: TrainConfig, strategy: Strategy, start: StartingPoint) -> Any:
    """The run's own value of a searched name, which a ``relative`` range multiplies."""
    if name == "lr" and train.lr is None:
        return strategy.default_lr(start.model)
    return getattr(train, name) if name in TRAIN_FIELDS else getattr(strategy, name)


def apply(params: Mapping[str, Any], train: TrainConfig, strategy: Strategy) -> tuple[TrainConfig, Strategy]:
    """The training settings and a fresh strategy with ``params`` set. Warm-up is kept below the epochs (and off
    under one-cycle, which warms up by itself): the two are searched independently."""
    fields = {k: v for k, v in params.items() if k in TRAIN_FIELDS}
    options = {**strategy.describe(), **{k: v for k, v in params.items() if k not in TRAIN_FIELDS}}
    name = options.pop("name")
    merged = {**dataclasses.asdict(train), **fields}
    epochs = merged["epochs"]
    if merged["schedule"] == "one-cycle":
        merged["warmup_epochs"] = 0
    elif isinstance(epochs, int) and isinstance(merged["warmup_epochs"], int):  # else TrainConfig names the bad one
        merged["warmup_epochs"] = min(merged["warmup_epochs"], epochs - 1)
    return replace(train, **{k: merged[k] for k in (*fields, "warmup_epochs")}), create_strategy(name, **options)


def suggest(trial, space: tuple[SearchParam, ...], own: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's value of every parameter (Optuna's TPE chooses them)."""
    values = {}
    for param in space:
        if param.choices is not None:
            values[param.name] = trial.suggest_categorical(param.name, list(param.choices))
            continue
        low, high = param.bounds(own.get(param.name))
        if param.integer:
            values[param.name] = trial.suggest_int(param.name, int(low), int(high), log=param.log)
        else:
            values[param.name] = trial.suggest_float(param.name, float(low), float(high), log=param.log)
    return values


class PruneOnValidation(Callback):
    """Reports each epoch's validation accuracy to the trial; stops the loop when the pruner says so (the
    objective then raises ``TrialPruned``)."""

    def __init__(self, trial, monitor: str = "val_accuracy"):
        self.trial, self.monitor = trial, monitor
        self.pruned_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.trial.report(float(logs[self.monitor]), epoch)
        if self.trial.should_prune():
            self.stop_training, self.pruned_epoch = True, epoch


@dataclass(frozen=True)
class Objective:
    """One search's trials, as data (see the module's docstring). ``weights_dir``: where finished trials save their
    weights (``--average soup``); ``adapted``: the ``--adapt-on`` stage, run once before the search, whose weights
    every trial starts from."""

    checkpoint: str | None
    data: DataConfig
    strategy: Strategy
    model: ModelConfig | None
    train: TrainConfig
    space: tuple[SearchParam, ...]
    folds: int
    keep_head: bool = False
    weights_dir: Path | None = None
    adapted: FinishedStage | None = None

    def start(self) -> StartingPoint:
        start = resolve_starting_point(self.checkpoint, self.data, self.model, self.train, keep_head=self.keep_head)
        if self.adapted is not None:
            self.adapted.load(start)
        return start

    def resolved(self, start: StartingPoint) -> tuple[Strategy, TrainConfig]:
        """The strategy (``auto`` resolved) and the training settings with the budget set, as finetune would."""
        return resolve_strategy(self.strategy, start, self.train)

    def own_values(self, start: StartingPoint, strategy: Strategy, train: TrainConfig) -> dict[str, Any]:
        """The run's own values of the relative parameters (the bounds of their ranges scale with them)."""
        return {p.name: own_value(p.name, train, strategy, start) for p in self.space if p.relative}

    def recipe(self, start: StartingPoint, strategy: Strategy, train: TrainConfig) -> dict[str, Any] | None:
        """The run's own value of every searched parameter, or None when one lies outside its range or choices."""
        own = self.own_values(start, strategy, train)
        values = {}
        for param in self.space:
            value = own_value(param.name, train, strategy, start)
            if param.choices is not None:
                if value not in param.choices:
                    return None
            else:
                low, high = param.bounds(own.get(param.name))
                if not (isinstance(value, (int, float)) and low <= value <= high):
                    return None
            values[param.name] = value
        return values

    def __call__(self, trial) -> float:
        import optuna

        with notes_unlogged():  # the search announced its starting point once
            start = self.start()
        strategy, train = self.resolved(start)
        params = suggest(trial, self.space, self.own_values(start, strategy, train))
        train, _ = apply(params, train, strategy)
        if "warmup_epochs" in params and params["warmup_epochs"] != train.warmup_epochs:
            trial.set_user_attr(TRAINED_WARMUP, train.warmup_epochs)  # what the trial table reports: what trained
        parts = [start] if start.splits.val is not None else on_folds(start, self.folds, self.train.seed)
        scores, steps, epochs = [], 0, 0
        for index, part in enumerate(parts):
            pruning = PruneOnValidation(trial) if index == 0 else None  # the pruner compares the first fold's curves
            _, fresh = apply(params, train, strategy)  # a strategy keeps per-run state: one per fold
            try:
                result = train_trial(part, fresh, train, callbacks=() if pruning is None else (pruning,))
            except TrainingDiverged as exc:
                trial.set_user_attr("diverged", exc.message)
                raise optuna.TrialPruned(f"diverged: {exc.message}") from None
            steps += result.steps
            epochs += len(result.history)
            # stopped before its last epoch (a trial told to stop after its last one simply finished)
            if pruning is not None and pruning.pruned_epoch is not None and pruning.pruned_epoch < train.epochs:
                trial.set_user_attr("steps", steps)
                trial.set_user_attr("epochs_run", epochs)
                raise optuna.TrialPruned(f"pruned after epoch {pruning.pruned_epoch}")
            scores.append(result.val_accuracy)
        trial.set_user_attr("steps", steps)
        trial.set_user_attr("epochs_run", epochs)
        if len(parts) > 1:
            trial.set_user_attr("fold_accuracies", scores)
        if self.weights_dir is not None and len(parts) == 1:
            save_weights(parts[0].model, self.weights_dir / f"trial_{trial.number:05d}.safetensors")
        value = sum(scores) / len(scores)
        if not math.isfinite(value):
            raise WarmstartError(f"trial {trial.number}: validation accuracy {value}", hint="check the data")
        return value


def check_space(space: tuple[SearchParam, ...], train: TrainConfig, strategy: Strategy, own: Mapping[str, Any],
                source: str) -> None:
    """Every choice and both ends of every range build valid settings, checked before any trial trains: an error
    names the space's key (``source``: where the space came from)."""
    for param in space:
        values = param.choices if param.choices is not None else param.bounds(own.get(param.name))
        for value in values:
            try:
                apply({param.name: value}, train, strategy)
            except WarmstartError as exc:
                whole = param.choices is None and not param.integer and float(value).is_integer() and \
                    "integer" in exc.message  # a whole-number setting handed a float by a range without `int`
                hint = (f"if {param.name} takes whole numbers, add `int: true` to its range: {param.name}: "
                        f"{{low: {int(param.low)}, high: {int(param.high)}, int: true}}" if whole else
                        f"change {param.name}'s range or choices in the space ({exc.hint})")
                raise WarmstartError(f"{source}: key {param.name!r}: the value {value!r} is refused: {exc.message}",
                                     hint=hint) from None
    check_warmup_fits(space, train, own, source)  # after each key alone: epochs' own range is valid



def check_warmup_fits(space: tuple[SearchParam, ...], train: TrainConfig, own: Mapping[str, Any],
                      source: str) -> None:
    """Refuses a warm-up range that no trial could train: warm-up is kept below a trial's epochs (:func:`apply`), so
    a range starting at or above the most epochs any trial runs would be cut in every trial."""
    params = {p.name: p for p in space}
    warmup = params.get("warmup_epochs")
    if warmup is None:
        return
    lowest = min(warmup.choices) if warmup.choices is not None else warmup.bounds(own.get(warmup.name))[0]
    epochs = params.get("epochs")
    most = train.epochs if epochs is None else (
        max(epochs.choices) if epochs.choices is not None else epochs.bounds(own.get(epochs.name))[1])
    if not (is_number(lowest) and is_number(most)) or train.schedule == "one-cycle":
        return
    if lowest >= most:
        raise WarmstartError(f"{source}: key 'warmup_epochs': its lowest value {lowest:g} is not below the most epochs "
                             f"a trial trains ({most:g}); warm-up is kept below a trial's epochs, so every trial would "
                             "train another warm-up than the one recorded",
                             hint=f"search warmup_epochs below {most:g} (for example {{low: 0, high: "
                                  f"{max(0, int(most) - 1)}, int: true}}), or search more epochs")
