"""The commands that choose a starting point: rank (transferability scores), zoo (local checkpoints) and list (what
is registered)."""

from __future__ import annotations

from typing import List, Optional

from . import build, render
from .app import app
from .command import Given, command
from .options import DATA_OPTIONS, OUTPUT_OPTIONS, SCALING_OPTIONS, SELECTION, SELECTION_OPTIONS, TRAINING_OPTIONS, \
    TRAINING_DATA, Group, Opt

RANK_OPTIONS = Group(
    SELECTION_OPTIONS.pick("candidates")[0].with_(type=List[str], default=..., help="Models to rank: checkpoint "
                                                  "folders, minilm, hf:FOLDER, timm:NAME."),
    Opt("scores", ("--scores",), Optional[List[str]], "Scores to compute (default: all; `warmstart list scores`).",
        None, SELECTION, spread=True),
    *SELECTION_OPTIONS.pick("rank_score"),
    OUTPUT_OPTIONS.pick("out")[0].with_(type=Optional[str], default=None, help="Folder for ranking.json."),
    *OUTPUT_OPTIONS.pick("as_json"),
)


@command(app, "rank", DATA_OPTIONS.without("corruption", *TRAINING_DATA), RANK_OPTIONS, TRAINING_OPTIONS.pick("seed"),
         SCALING_OPTIONS.pick("device"))
def rank(given: Given) -> None:
    """Rank candidate pretrained models for a target with transferability scores (LogME, H-score, LEEP, NCE, k-NN),
    before fine-tuning any of them."""
    from .. import api

    result = api.rank(build.data_config(given), build.listed(given.candidates), scores=build.listed(given.scores),
                      rank_score=given.rank_score, train=build.train_config(given), out=given.out)
    if given.as_json:
        render.print_json(result)
    else:
        render.print_ranking(result)


@command(app, "zoo", Group(Opt("folders", (), Optional[List[str]], "Folders to search (default: runs/ and "
                               "$WARMSTART_ZOO).", None, argument=True)), OUTPUT_OPTIONS.pick("as_json"))
def zoo(given: Given) -> None:
    """List the local pretrained checkpoints with their source data, classes, architecture, metrics and size, read
    from their safetensors headers."""
    from .. import api

    listing = api.zoo(given.folders or None)
    if given.as_json:
        render.print_json(listing)
    else:
        render.print_zoo(listing)


@command(app, "list", Group(Opt("family", (), str, "models, strategies, datasets, augmentations, scores, adaptations, "
                                "corruptions, shift-measures, optimizers or schedules", ..., argument=True)))
def list_(given: Given) -> None:
    """List the registered models, strategies, datasets, augmentations, transferability scores, adaptations,
    corruptions, shift measures, optimizers or schedules."""
    from .. import api

    for name, description in api.list_registered(given.family).items():
        print(f"{name:16s} {description}")
