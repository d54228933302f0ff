"""The starting-point race: rank the candidates by a transferability score, give the top ones short fine-tunes, and
promote by successive halving on validation accuracy before the full budget goes to the winner.

Scores order sources well for a linear probe but poorly for full fine-tuning (``benchmarks/results/
transferability.md``), and short fine-tunes rank candidates more reliably than any score (Agostinelli et al., "How
stable are transferability metrics evaluations?", ECCV 2022; a ranking by model size alone beats LogME there). So the
score only picks who races (the top ``top``, half the candidates by default, at least two), and the race decides:
rung ``r`` fine-tunes every remaining candidate for ``min_epochs * eta**r`` epochs (at most the run's; by default
the rungs end at the run's epochs / eta, as successive halving's last rung is the full budget), from its
starting point, with the run's strategy and settings, and keeps the best ``1/eta`` (rounded up) by validation
accuracy (the validation split, or the mean over stratified folds of the training examples; never the test split),
until one is left (Jamieson & Talwalkar, AISTATS 2016). Every short fine-tune trains in the one loop
(:func:`warmstart.run.trial.train_trial`).

Beside each score the table reports the size-only ranking, the baseline any score must beat: the candidate's
parameter count and, for a warmstart checkpoint, its own test accuracy on its source data.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from typing import Any, Sequence

from ..config import DataConfig, TrainConfig
from ..data import load_splits
from ..errors import WarmstartError
from ..models import read_info
from ..run.starting_point import data_config, note, resolve_starting_point
from ..run.trainer import resolve_strategy
from ..run.trial import check_folds, on_folds, train_trial
from ..selection.base import SCORES
from ..strategies import Strategy, create_strategy

log = logging.getLogger("warmstart")


def size_baseline(candidate: str, start) -> dict[str, Any]:
    """The candidate's parameter count and, for a warmstart checkpoint, its recorded accuracy on its source data."""
    parameters = sum(p.numel() for p in start.model.parameters())
    parent = start.lineage.get("parent") or {}
    accuracy = None
    if "checkpoint" in parent:
        accuracy = (read_info(parent["checkpoint"])[1].extra.get("metrics") or {}).get("accuracy")
    return {"parameters": parameters, "source_accuracy": accuracy}


def short_finetune(candidate: str, data: DataConfig, strategy: Strategy, train: TrainConfig, epochs: int,
                   folds: int) -> tuple[float, int]:
    """Validation accuracy (mean over folds without a validation split) and optimizer steps of ``candidate``
    fine-tuned for ``epochs``."""
    start = resolve_starting_point(candidate, data, None, train)
    resolved, budget = resolve_strategy(strategy, start, replace(train, epochs=epochs))
    parts = [start] if start.splits.val is not None else on_folds(start, folds, train.seed)
    scores, steps = [], 0
    for part in parts:
        result = train_trial(part, create_strategy(resolved.name, **{k: v for k, v in resolved.describe().items()
                                                                     if k != "name"}), budget)
        scores.append(result.val_accuracy)
        steps += result.steps
    return sum(scores) / len(scores), steps


def race(candidates: Sequence[str], data: DataConfig | str, *, strategy: str | Strategy = "full",
         train: TrainConfig | None = None, rank_score: str = "logme", top: int | None = None, eta: int = 2,
         min_epochs: int | None = None, folds: int = 3) -> dict[str, Any]:
    """Rank, then race (see the module's docstring); returns the record selection.json keeps: the ranking with
    the size baseline, every rung's validation accuracies, the winner and the compute spent."""
    from ..selection.ranking import rank

    data, train = data_config(data), replace(train or TrainConfig.for_command("finetune"), progress=False,
                                               trackers=())
    strategy = create_strategy(strategy) if isinstance(strategy, str) else strategy
    if eta < 2 or (min_epochs is not None and min_epochs < 1):
        raise WarmstartError(f"race: eta={eta}, min_epochs={min_epochs}; expected eta >= 2 and min_epochs >= 1",
                             hint="use eta=2 (keep half each rung) and min_epochs=1")
    SCORES.get(rank_score, parameter="--rank-score")  # named as the user gave it, not as rank's --scores
    if top is not None and top < 1:
        raise WarmstartError(f"race: top={top}; expected at least 1 candidate to race", hint="set top >= 1")
    splits = load_splits(data, train.seed)
    if splits.val is None:  # before the ranking: a refusal costs nothing
        check_folds(splits, folds)
    started = time.perf_counter()
    ranking = rank(data, candidates, scores=(rank_score,), rank_score=rank_score, train=train)
    ranking_time = time.perf_counter() - started
    ordered = [c.candidate for c in ranking.ranked()]
    top = min(len(ordered), max(2, math.ceil(len(ordered) / 2)) if top is None else top)
    table = []
    for c in ranking.candidates:
        start = resolve_starting_point(c.candidate, data, None, train)
        table.append({"candidate": c.candidate, "score": c.scores.get(rank_score), **size_baseline(c.candidate, start)})
    full_epochs = resolve_strategy(strategy, start, train)[1].epochs
    alive, rungs, steps = ordered[:top], [], 0
    if min_epochs is None:  # the last rung at full / eta, as successive halving's brackets end at the full budget
        min_epochs = max(1, round(full_epochs / eta ** _halvings(len(alive), eta)))
    epochs = min(min_epochs, full_epochs)
    while len(alive) > 1:
        results = {}
        for candidate in alive:
            accuracy, spent = short_finetune(candidate, data, strategy, train, epochs, folds)
            results[candidate] = accuracy
            steps += spent
            log.info("race: %s after %d epoch(s): validation accuracy %.4f", candidate, epochs, accuracy)
        keep = max(1, math.ceil(len(alive) / eta))  # 3 -> 2 -> 1: each rung halves, rounding up
        # best first; ties keep the transferability order (alive is in it)
        alive = sorted(alive, key=lambda c: -results[c])[:keep]
        rungs.append({"epochs": epochs, "validation_accuracy": results, "promoted": list(alive)})
        if epochs >= full_epochs:
            break
        epochs = min(epochs * eta, full_epochs)
    winner = alive[0]
    by_size = sorted(table, key=lambda row: -row["parameters"])
    return {"rank_score": rank_score, "ranking": ordered, "raced": ordered[:top], "rungs": rungs, "chosen": winner,
            "score_top1": ordered[0], "size_top1": by_size[0]["candidate"], "candidates": table,
            "race_steps": steps, "full_epochs": full_epochs, "ranking_time_s": ranking_time,
            "race_time_s": time.perf_counter() - started - ranking_time,
            "why": (f"{winner} is the only candidate, so there was nothing to race" if len(ordered) == 1 else
                    f"{winner} won the race of {top} (the top {top} of {len(ordered)} by {rank_score}) by validation "
                    f"accuracy after {len(rungs)} rung(s) of successive halving")}


def _halvings(candidates: int, eta: int) -> int:
    """How many rungs take ``candidates`` down to one, keeping ``ceil(n / eta)`` each time."""
    rungs = 0
    while candidates > 1:
        candidates, rungs = math.ceil(candidates / eta), rungs + 1
    return rungs


def finetune_raced(candidates: Sequence[str], data: DataConfig | str, *, strategy: str | Strategy = "full",
                   train: TrainConfig | None = None, rank_score: str = "logme", out=None, resume: bool = False,
                   overwrite: bool = False, keep_head: bool = False, averaging=None, callbacks: tuple = (),
                   adapt_on=None):
    """``finetune --from auto --race``: the race, then the full budget for its winner; selection.json keeps the
    race. ``adapt_on``: the task-adaptive stage, on the winner only (the race runs without it)."""
    from ..run.trainer import open_run_folder, train_run

    data, train = data_config(data), train or TrainConfig.for_command("finetune")
    # an existing run is refused before the race, and so is --overwrite of a folder holding a candidate or the data
    open_run_folder(out, resume=resume, overwrite=overwrite, reads=(*candidates, data))
    record = race(candidates, data, strategy=strategy, train=train, rank_score=rank_score)
    notes: list[str] = []
    note(notes, f"--from auto: {record['why']} (the score's top choice was {record['score_top1']}, the largest "
                f"model {record['size_top1']})")
    return train_run("finetune", record["chosen"], data, strategy=strategy, model=None, train=train, out=out,
                     callbacks=callbacks, resume=resume, overwrite=overwrite, keep_head=keep_head,
                     selection=record, notes=tuple(notes), averaging=averaging, adapt_on=adapt_on)
