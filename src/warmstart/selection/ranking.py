"""Ranking candidate pretrained models on a target task before fine-tuning any of them, and fine-tuning the best.

Each candidate is resolved exactly as ``finetune --from`` resolves its starting point (a warmstart checkpoint
folder, ``minilm``, ``hf:FOLDER``, ``timm:NAME`` once that backbone family is registered), on the target's
training split, with the candidate's own preprocessing. Its backbone embeds the training split once (through the
feature cache of :mod:`warmstart.engine.features`: the same features a linear probe of that candidate would
train on), and every requested score reads those features, or, for LEEP and NCE, the source classifier's
softmax over them. A candidate without its source classifier (a pretrained encoder, a timm backbone given a new
head) gets ``None`` for LEEP and NCE, with the reason.

Scores within a tolerance of each other are ties (:func:`tie_groups`), never ordered by their float noise: tied
candidates keep the order they were given in, share a rank in the table (``=2``), and a score on which every
candidate ties is reported as uninformative (H-score does so whenever examples <= feature dimension: it equals
C - 1 for every extractor; ``shrinkage-hscore`` is the remedy).

Times are per candidate: ``feature_time_s`` (building the model and embedding the training split) and
``scoring_time_s`` (all scores), so the cost of ranking can be set against the cost of fine-tuning.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from ..config import DataConfig, TrainConfig, json_ready, to_dict
from ..engine import resolve_device
from ..engine.features import cached_features
from ..errors import WarmstartError
from ..io import write_json
from .base import FEATURES, SCORES

log = logging.getLogger("warmstart")

# Two scores are a tie when they differ by at most TIE_ATOL + TIE_RTOL * |the better one|. Float noise in a score
# of order 1 is ~1e-12 (H-score's saturated C - 1 comes out as 3.99999999999997 or 4.000000000000002), and the
# benchmarks' real differences between candidates are 1e-3 and above (benchmarks/results/transferability.md): 1e-6
# is far from both.
TIE_RTOL = 1e-6
TIE_ATOL = 1e-9


def tie_groups(values: Sequence[float], *, rtol: float = TIE_RTOL, atol: float = TIE_ATOL) -> list[list[int]]:
    """The positions of ``values`` grouped best (highest) first; a group holds the values within ``atol + rtol *
    |top|`` of its top value, in their given order, so that a tie is never broken by noise."""
    order = sorted(range(len(values)), key=lambda i: -values[i])  # stable: given order among exact ties
    groups: list[list[int]] = []
    for i in order:
        if groups and values[groups[-1][0]] - values[i] <= atol + rtol * abs(values[groups[-1][0]]):
            groups[-1].append(i)
        else:
            groups.append([i])
    return [sorted(group) for group in groups]


@dataclass(frozen=True)
class CandidateScores:
    """One candidate's scores on the target (``None``: the score does not apply to it, see ``not_applicable``)."""

    candidate: str
    arch: str
    num_features: int
    source_classes: tuple[str, ...] | None  # the classes of its source head, when it has one
    scores: dict[str, float | None]
    not_applicable: dict[str, str]
    feature_time_s: float
    scoring_time_s: float
    score_time_s: dict[str, float]
    features_cached: bool

    def to_dict(self) -> dict[str, Any]:
        return json_ready({**self.__dict__, "source_classes": None if self.source_classes is None
                           else list(self.source_classes)})


@dataclass(frozen=True)
class RankingResult:
    """Every candidate's scores on one target; ``ranked(score)`` orders them best first."""

    data: DataConfig
    score_names: tuple[str, ...]
    rank_score: str
    candidates: tuple[CandidateScores, ...]  # in the order given
    train_examples: int
    num_classes: int
    out: Path | None = None

    def ranked(self, score: str | None = None) -> list[CandidateScores]:
        """Best first by ``score`` (default: ``rank_score``); tied candidates (:func:`tie_groups`) in the order
        given; candidates it does not apply to come last."""
        return [c for group in self.tied(score) for c in group] + \
            [c for c in self.candidates if c.scores.get(score or self.rank_score) is None]

    def tied(self, score: str | None = None) -> list[list[CandidateScores]]:
        """The scored candidates in groups of equal ``score`` (within the tolerance), best group first."""
        score = score or self.rank_score
        scored = [c for c in self.candidates if c.scores.get(score) is not None]
        return [[scored[i] for i in group] for group in tie_groups([c.scores[score] for c in scored])]

    def uninformative(self, score: str | None = None) -> bool:
        """Whether ``score`` cannot tell the candidates apart: at least two are scored and all of them tie."""
        groups = self.tied(score)
        return len(groups) == 1 and len(groups[0]) > 1

    def best(self, score: str | None = None) -> CandidateScores:
        score = score or self.rank_score
        ranked = self.ranked(score)
        if not ranked or ranked[0].scores.get(score) is None:
            reasons = "; ".join(f"{c.candidate}: {c.not_applicable.get(score, 'not computed')}"
                                for c in self.candidates)
            raise WarmstartError(f"no candidate has a {score} score ({reasons})",
                                 hint="rank by a feature score (logme, hscore, knn), which every candidate has")
        return ranked[0]

    def to_dict(self) -> dict[str, Any]:
        return json_ready({
            "data": to_dict(self.data), "scores": list(self.score_names), "rank_score": self.rank_score,
            "train_examples": self.train_examples, "num_classes": self.num_classes,
            "higher_is_better": True,
            "ranking": [c.candidate for c in self.ranked()],
            "rankings": {s: [c.candidate for c in self.ranked(s) if c.scores.get(s) is not None]
                         for s in self.score_names},
            "ties": {s: [[c.candidate for c in group] for group in self.tied(s) if len(group) > 1]
                     for s in self.score_names},
            "uninformative": [s for s in self.score_names if self.uninformative(s)],
            "candidates": [c.to_dict() for c in self.candidates],
            "total_feature_time_s": sum(c.feature_time_s for c in self.candidates),
            "total_scoring_time_s": sum(c.scoring_time_s for c in self.candidates)})


def as_names(value: Any, parameter: str) -> list[str]:
    """A parameter that names things: one name (a string or a path) or a sequence of them; a lone string is one
    name, never its characters."""
    if isinstance(value, (str, PathLike)):
        return [str(value)]
    items = list(value) if isinstance(value, Iterable) and not isinstance(value, (bytes, dict)) else None
    if items is not None and all(isinstance(v, (str, PathLike)) for v in items):
        return [str(v) for v in items]
    raise WarmstartError(f"parameter {parameter}: expected a name or a list of names, got {value!r}",
                         hint=f"pass {parameter}=['a', 'b'] (or one name as a string)")


def check_scores(scores: Sequence[str] | str | None) -> tuple[str, ...]:
    """The requested score names, each checked against the registry (all of them when none are given)."""
    names = tuple(as_names(scores, "scores")) if scores else tuple(SCORES.names())
    for name in names:
        SCORES.get(name, parameter="--scores")
    if len(set(names)) != len(names):
        raise WarmstartError(f"--scores: {' '.join(names)} names a score twice",
                             hint="name each score once")
    return names


def same_checkpoint(candidates: Sequence[str]) -> list[tuple[str, str]]:
    """Pairs of candidates that name one checkpoint by different paths (a run folder, its ``model/``, the weights
    file, a link to one of them), in the order given. Pretrained names and imported weights are not compared, and
    a path that names no checkpoint is left to the scoring, which reports it."""
    from ..models.checkpoint import resolve_path
    from ..models.imported import imported_weights
    from ..models.sources import pretrained_spec

    seen: dict[Path, str] = {}
    pairs = []
    for candidate in candidates:
        if pretrained_spec(candidate) is not None or imported_weights(candidate) is not None:
            continue
        try:
            file = resolve_path(candidate).resolve()
        except WarmstartError:
            continue
        if file in seen:
            pairs.append((seen[file], candidate))
        seen.setdefault(file, candidate)
    return pairs


def rank(data: DataConfig | str, candidates: Sequence[str] | str, *, scores: Sequence[str] | str | None = None,
         rank_score: str = "logme", train: TrainConfig | None = None, out: str | Path | None = None,
         disk_cache: Path | None = None) -> RankingResult:
    """Score every candidate with every score on ``data``'s training split; write ``out/ranking.json`` if asked.

    ``data.resize`` resizes images to a candidate's input shape where they differ (else a clear error);
    ``train`` gives the seed (few-shot draw and validation split, as ``finetune`` would make them) and device.
    """
    from ..run.starting_point import data_config, resolve_starting_point  # the very resolution `finetune --from` uses

    data, train = data_config(data), train or TrainConfig(progress=False)
    candidates = as_names(candidates, "candidates")
    if not candidates:
        raise WarmstartError("--candidates: no candidate models given",
                             hint="name checkpoint folders, minilm, hf:FOLDER or timm:NAME; `warmstart zoo` lists "
                                  "the local checkpoints")
    if len(set(candidates)) != len(candidates):
        raise WarmstartError(f"--candidates: {' '.join(candidates)} names a candidate twice",
                             hint="name each candidate once")
    for first, second in same_checkpoint(candidates):
        raise WarmstartError(f"--candidates: {first} and {second} are one checkpoint (the same weights file), which "
                             "would be scored twice", hint=f"name it once: drop {second}")
    names = check_scores(scores)
    if out is not None:  # before any scoring: ranking.json beside a run's files would be read as part of it
        from ..run.folder import check_not_a_results_folder

        check_not_a_results_folder(out, "rank", hint="pass another --out (a folder of its own for ranking.json)")
    if rank_score not in names:
        SCORES.get(rank_score, parameter="--rank-score")
        raise WarmstartError(f"--rank-score {rank_score}: not among the computed --scores ({', '.join(names)})",
                             hint=f"add {rank_score} to --scores")
    device = resolve_device(train.device)
    results = []
    splits = None
    # scores read the labelled examples only: copies written from the class names would score as perfectly
    # separable (LogME 11.9 where the labelled texts gave -0.5)
    data = replace(data, class_name_examples=0)
    for candidate in candidates:
        started = time.perf_counter()
        # LEEP and NCE read the source model's own classifier: asked for explicitly, whatever the target's classes
        start = resolve_starting_point(candidate, data, None, train, source_classifier=True)
        net, splits, norm, lineage = start.model, start.splits, start.preprocessing, start.lineage
        with torch.no_grad():
            features, cached = cached_features(net, norm.apply(splits.train.x), device, disk=disk_cache)
        feature_time = time.perf_counter() - started
        parent = lineage.get("parent") or {}
        source_classes = tuple(parent["class_names"]) if "checkpoint" in parent else None
        probabilities = None
        if source_classes is not None:
            with torch.no_grad():
                logits = net.eval().forward_head(features.to(device)).float().cpu()
            probabilities = torch.softmax(logits.double(), dim=1).numpy()
        values, not_applicable, times = {}, {}, {}
        labels = splits.train.y
        for name in names:
            score = SCORES.get(name)
            if score.input != FEATURES and probabilities is None:
                values[name] = None
                not_applicable[name] = ("needs the source model's classifier; this candidate has none (only "
                                        "warmstart checkpoints keep theirs)")
                continue
            tick = time.perf_counter()
            values[name] = score(features.numpy() if score.input == FEATURES else probabilities, labels)
            times[name] = time.perf_counter() - tick
        results.append(CandidateScores(candidate=candidate, arch=net.arch, num_features=net.num_features,
                                       source_classes=source_classes, scores=values, not_applicable=not_applicable,
                                       feature_time_s=feature_time, scoring_time_s=sum(times.values()),
                                       score_time_s=times, features_cached=cached))
        log.info("ranked %s: features %.2f s%s, scores %.2f s", candidate, feature_time,
                 " (cached)" if cached else "", sum(times.values()))
    result = RankingResult(data=data, score_names=names, rank_score=rank_score, candidates=tuple(results),
                           train_examples=len(splits.train), num_classes=splits.train.num_classes,
                           out=None if out is None else Path(out))
    if out is not None:
        write_json(Path(out) / "ranking.json", result.to_dict())
    return result


def explain_choice(ranking: RankingResult) -> str:
    """Why the best candidate was chosen, in one sentence with the runner-up's margin and the other scores' view."""
    score = ranking.rank_score
    groups = ranking.tied(score)
    best = groups[0][0]
    if len(groups[0]) > 1:
        reason = (f"{len(groups[0])} candidates tie for the highest {score} ({best.scores[score]:.4g}: "
                  f"{', '.join(c.candidate for c in groups[0])}), so {score} cannot choose among them"
                  + (" (it tells no candidate apart)" if len(groups) == 1 else "")
                  + f"; {best.candidate} is taken as the first given")
    else:
        reason = f"{best.candidate} has the highest {score} ({best.scores[score]:.4g}) of {len(ranking.candidates)}"
        if len(groups) > 1:
            reason += f"; runner-up {groups[1][0].candidate} ({groups[1][0].scores[score]:.4g})"
    # another score agrees when the chosen candidate is alone at its top; a tie at its top agrees with nothing
    others = [s for s in ranking.score_names if s != score and ranking.tied(s)]
    agree = [s for s in others if [c.candidate for c in ranking.tied(s)[0]] == [best.candidate]]
    if others:
        reason += f"; {len(agree)} of {len(others)} other scores ({', '.join(others)}) also rank it first"
    return reason


def finetune_best(candidates: Sequence[str], data: DataConfig | str, *, rank_score: str = "logme",
                  scores: Sequence[str] | None = None, strategy: Any = "full", train: TrainConfig | None = None,
                  out: str | Path | None = None, callbacks: tuple = (), resume: bool = False, overwrite: bool = False,
                  keep_head: bool = False, averaging=None, adapt_on=None):
    """Rank ``candidates`` on the target's training split, fine-tune the best by ``rank_score``, and write
    ``out/selection.json``: the full ranking, the score used, the choice and why. ``adapt_on`` (an AdaptConfig):
    the task-adaptive stage, run on the chosen candidate only, after the choice."""
    from ..run.starting_point import data_config, note
    from ..run.trainer import open_run_folder, train_run

    data, train = data_config(data), train or TrainConfig.for_command("finetune")
    if rank_score not in SCORES:
        SCORES.get(rank_score, parameter="--rank-score")
    names = check_scores(scores) if scores else tuple(SCORES.names())
    if rank_score not in names:
        names = (*names, rank_score)
    # an existing run is refused before the ranking, and so is --overwrite of a folder holding a candidate or the data
    open_run_folder(out, resume=resume, overwrite=overwrite, reads=(*candidates, data))
    started = time.perf_counter()
    ranking = rank(data, candidates, scores=names, rank_score=rank_score, train=train)
    ranking_time = time.perf_counter() - started
    chosen = ranking.best()
    notes: list[str] = []
    note(notes, f"--from auto: ranked {len(candidates)} candidates by {rank_score} in {ranking_time:.2f} s "
                f"and chose {chosen.candidate}: {explain_choice(ranking)}")
    selection = {**ranking.to_dict(), "rank_score": rank_score, "chosen": chosen.candidate,
                 "why": explain_choice(ranking), "ranking_time_s": ranking_time}
    return train_run("finetune", chosen.candidate, data, strategy=strategy, model=None, train=train, out=out,
                     callbacks=callbacks, resume=resume, overwrite=overwrite, keep_head=keep_head,
                     selection=selection, notes=tuple(notes), averaging=averaging, adapt_on=adapt_on)


def rank_table_rows(ranking: RankingResult) -> list[list[str]]:
    """Rows for a table, best first: rank (``=2`` for candidates tied at rank 2), candidate, each score (n/a where
    it does not apply), the times."""
    positions: dict[str, str] = {}
    position = 1
    for group in ranking.tied():
        for c in group:
            positions[c.candidate] = f"={position}" if len(group) > 1 else str(position)
        position += len(group)
    rows = []
    for c in ranking.ranked():
        cells = ["n/a" if c.scores[s] is None else f"{c.scores[s]:.4g}" for s in ranking.score_names]
        rows.append([positions.get(c.candidate, "-"), c.candidate, c.arch, *cells, f"{c.feature_time_s:.2f}"
                     + (" (cached)" if c.features_cached else ""), f"{c.scoring_time_s:.3f}"])
    return rows


def ranking_notes(ranking: RankingResult) -> list[str]:
    """Lines to print under the ranking table: each score that cannot tell the candidates apart, and ties."""
    notes = []
    for score in ranking.score_names:
        groups = ranking.tied(score)
        if ranking.uninformative(score):
            why = ""
            if score == "hscore" and ranking.train_examples <= max(c.num_features for c in ranking.candidates) + 1:
                why = (f": with {ranking.train_examples} examples and up to "
                       f"{max(c.num_features for c in ranking.candidates)} features it equals classes - 1 = "
                       f"{ranking.num_classes - 1} for any model; shrinkage-hscore does not saturate")
            notes.append(f"uninformative: {score} is the same for every candidate ({groups[0][0].scores[score]:.4g})"
                         f"{why}; do not rank by it")
        else:
            for group in groups:
                if len(group) > 1:
                    notes.append(f"tie: {', '.join(c.candidate for c in group)} have the same {score} "
                                 f"({group[0].scores[score]:.4g}); their order is the order given")
    return notes


