"""``warmstart tune``: finetune's options, plus the search's budget, space and averaging."""

from __future__ import annotations

import json
from typing import Optional

from ..config import json_ready
from . import build, render
from .app import app
from .command import Given, command
from .defaults import from_api
from .options import (DATA_OPTIONS, MODEL_OPTIONS, OUTPUT_OPTIONS, SCALING_OPTIONS, SELECTION_OPTIONS, START,
                      STRATEGY_OPTIONS, TRACKING_OPTIONS, TRAINING_OPTIONS, Group, Opt)
from .train import ADAPT_OPTIONS, KEEP_HEAD, adapt_config

SEARCH = "Search"

TUNE_OPTIONS = Group(
    Opt("trials", ("--trials",), int, "Trials in the study in all (a resumed study runs the rest).",
        from_api("trials"), SEARCH, min=1),
    Opt("time_limit", ("--time-limit",), Optional[float], "Seconds after which no new trial starts.",
        from_api("time_limit"), SEARCH),
    Opt("workers", ("--workers",), int, "Worker processes sharing the study (Spark tasks with --launcher spark).",
        from_api("workers"), SEARCH, min=1),
    Opt("launcher", ("--launcher",), str, "Where the workers run: local (processes on this machine) or spark (Spark "
        "tasks; pip install 'warmstart[spark]').", from_api("launcher"), SEARCH),
    Opt("space", ("--space",), Optional[str], "YAML file changing the strategy's search space, key by key.",
        from_api("space"), SEARCH),
    Opt("pruner", ("--pruner",), str, "median, halving (successive halving) or none.", from_api("pruner"), SEARCH),
    Opt("folds", ("--folds",), int, "Without a validation split (few shots): stratified folds of the training "
        "examples.", from_api("folds"), SEARCH),
    Opt("average", ("--average",), Optional[str], "wise-ft, or soup (the winner with the next-best trials).",
        from_api("average"), SEARCH),
)


@command(app, "tune", Group(START.with_(help=START.help + " `auto` races --candidates first.")), DATA_OPTIONS,
         MODEL_OPTIONS, Group(KEEP_HEAD), STRATEGY_OPTIONS, TRAINING_OPTIONS, SCALING_OPTIONS, TUNE_OPTIONS,
         ADAPT_OPTIONS, SELECTION_OPTIONS, TRACKING_OPTIONS, OUTPUT_OPTIONS)
def tune(given: Given) -> None:
    """Search the strategy's settings on validation (Optuna), then train the best and score it once on the test
    split: trials.csv, best_config.yaml (replay with finetune --config), best/ and report.html in --out."""
    from .. import api

    result = api.tune(build.starting_checkpoint(given), build.data_config(given), out=given.out,
                      strategy=build.strategy(given), model=build.starting_model(given),
                      train=build.train_config(given), trials=given.trials, time_limit=given.time_limit,
                      workers=given.workers, space=given.space, pruner=given.pruner, folds=given.folds,
                      average=given.average, candidates=build.listed(given.candidates), rank_score=given.rank_score,
                      keep_head=given.keep_head, resume=given.resume, overwrite=given.overwrite,
                      launcher=given.launcher, adapt_on=adapt_config(given))
    if given.as_json:  # the winner's test metrics, as finetune --json prints them, and what the search chose
        states = [t["state"] for t in result.trials]
        print(json.dumps(json_ready({**result.metrics.to_dict(), "tune": {
            "best_value": result.best_value, "best_params": result.best_params,
            "trials": {state: states.count(state) for state in sorted(set(states))},
            "folder": str(result.run_dir), "winner_run": str(result.run.run_dir)}})))
        return
    print(f"best of {len(result.trials)} trials: validation accuracy {result.best_value:.4f} with "
          + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.best_params.items()))
    render.print_metrics(result.metrics, f"tune winner test ({given.data})", False, result.run.run_dir)
