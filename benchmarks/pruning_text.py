"""Pruned search against the full grid of the same space, on text: how much compute does a pruned search need to get
within 0.5 points of the grid's best validation accuracy?

For each dataset and seed (each seed draws its own K labelled texts per class, a quarter of them held out as the
validation split every trial is scored on; the test split is never read), all-MiniLM-L6-v2 fine-tuned with the
README's recipe for a few dozen texts per class (``full``, weight decay 0.01, linear decay, batch 16) over a grid:

- ``grid``: every setting of the grid (``--lrs`` x ``--head-lr-scales`` x ``--label-smoothings`` at ``--epochs``
  epochs) trained in full, through the same
  :class:`warmstart.tuning.objective.Objective` that ``warmstart tune`` calls, with pruning off. Its optimizer steps
  are the compute of the full grid; its best validation accuracy is the target.
- The searches on the same choices, ``--trials`` trials each, with Optuna's samplers and pruners as ``warmstart
  tune`` builds them (``make_sampler``, ``make_pruner``): ``tpe+median`` (tune's default), ``tpe+halving``, and
  ``random`` (no pruning, the baseline a search has to beat). Compute: the steps each trial trained before it
  finished or was pruned, counted until the first finished trial within 0.5 points of the grid's best.

A search's trials are settings the grid already trained, and training is deterministic for a seed (each trial starts
from the same seed and split), so a search is *replayed* on the grid's recorded per-epoch validation curves: each
trial reports the curve of its setting epoch by epoch to the real pruner and stops where it would have stopped. The
replay is checked, not assumed: ``--check N`` trains the first N settings of the first ``tpe+median`` search for
real and requires their curves to equal the grid's (the script fails otherwise). Replaying lets each search run
under ``--repeats`` sampler seeds, so that the table reports the distribution of its compute, not one draw.

Accuracy and steps only (one torch thread; the machine may be loaded):

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/pruning_text.py --data trec --seeds 0 1 2

Writes benchmarks/results/NAME.{json,md} (rows also to NAME.partial.json as each seed finishes).
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import time
from pathlib import Path
from typing import Any

import optuna

from warmstart import DataConfig, TrainConfig
from warmstart.search_space import SearchParam
from warmstart.strategies import create_strategy
from warmstart.tuning.objective import Objective, suggest
from warmstart.tuning.study import make_pruner, make_sampler

from _common import RESULTS, command_line, machine_info, write_results
from tuning_text import HEAD_LR_SCALE, QUIET, RECIPE, SHARED

LRS = (2e-5, 5e-5, 1e-4, 2e-4)
HEAD_LR_SCALES = (1.0, 10.0, 100.0)
LABEL_SMOOTHINGS = (0.0,)
SEARCHES = ("tpe+median", "tpe+halving", "random")
WITHIN = 0.005  # the "within 0.5 points"


def grid_axes(args: dict[str, Any]) -> dict[str, tuple]:
    """The grid's choices per parameter (older results, from before the axes were arguments, used the defaults)."""
    return {"lr": tuple(args.get("lrs", LRS)), "head_lr_scale": tuple(args.get("head_lr_scales", HEAD_LR_SCALES)),
            "label_smoothing": tuple(args.get("label_smoothings", LABEL_SMOOTHINGS)),
            "epochs": (args["epochs"],)}


def grid_space(axes: dict[str, tuple]) -> tuple[SearchParam, ...]:
    return tuple(SearchParam(name, choices=values) for name, values in axes.items())


def key(params: dict[str, Any]) -> tuple[float, ...]:
    return tuple(float(params[name]) for name in ("lr", "head_lr_scale", "label_smoothing"))


def cell_name(setting: tuple[float, ...]) -> str:
    lr, head, smoothing = setting
    return f"lr={lr:g}, head_lr_scale={head:g}" + (f", label_smoothing={smoothing:g}" if smoothing else "")


def grid_size(axes: dict[str, tuple]) -> int:
    return math.prod(len(values) for values in axes.values())


def curve_of(trial: optuna.trial.FrozenTrial) -> list[float]:
    return [trial.intermediate_values[e] for e in sorted(trial.intermediate_values)]


def train_grid(objective: Objective, axes: dict[str, tuple]) -> dict[tuple[float, ...], dict[str, Any]]:
    """Every setting of the grid trained in full: its per-epoch validation curve and its steps."""
    grid = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner(),
                               sampler=optuna.samplers.GridSampler({k: list(v) for k, v in axes.items()}))
    grid.optimize(objective, n_trials=grid_size(axes))
    cells = {}
    for trial in grid.trials:
        if trial.state != optuna.trial.TrialState.COMPLETE:
            raise SystemExit(f"grid trial {trial.params} ended {trial.state.name}: the grid must train in full")
        curve = curve_of(trial)
        cells[key(trial.params)] = {"curve": curve, "steps": trial.user_attrs["steps"], "value": trial.value,
                                    "steps_per_epoch": trial.user_attrs["steps"] // len(curve)}
    return cells


def make_search(name: str, seed: int, trials: int) -> optuna.Study:
    if name == "random":
        return optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed),
                                   pruner=optuna.pruners.NopPruner())
    return optuna.create_study(direction="maximize", sampler=make_sampler(seed, trials),
                               pruner=make_pruner(name.split("+")[1]))


def replay(name: str, seed: int, trials: int, cells: dict, space: tuple[SearchParam, ...],
           target: float) -> dict[str, Any]:
    """One search on the grid's recorded curves: the steps it spends until a finished trial reaches ``target``."""
    study = make_search(name, seed, trials)
    spent, reached, settings = 0, None, []

    def objective(trial: optuna.Trial) -> float:
        nonlocal spent
        params = suggest(trial, space, {})
        cell = cells[key(params)]
        settings.append(key(params))
        for epoch, value in enumerate(cell["curve"], start=1):
            trial.report(value, epoch)
            if epoch < len(cell["curve"]) and trial.should_prune():
                spent += epoch * cell["steps_per_epoch"]
                raise optuna.TrialPruned()
        spent += cell["steps"]
        return max(cell["curve"])  # a trial's value is its best epoch's (run/trial.py keeps the best weights)

    for _ in range(trials):
        study.optimize(objective, n_trials=1)
        last = study.trials[-1]
        if reached is None and last.state == optuna.trial.TrialState.COMPLETE and last.value >= target:
            reached = spent
    return {"steps_to_target": reached, "steps_all": spent, "best": study.best_value, "settings": settings,
            "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)}


def check_replay(objective: Objective, cells: dict, settings: list[tuple[float, ...]], epochs: int) -> list[dict]:
    """Trains the given settings for real (pruning off) and requires the grid's curves: the replay's premise."""
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    checked = []
    for setting in settings:
        lr, head, smoothing = setting
        study.enqueue_trial({"lr": lr, "head_lr_scale": head, "label_smoothing": smoothing, "epochs": epochs})
        study.optimize(objective, n_trials=1)
        curve = curve_of(study.trials[-1])
        same = curve == cells[setting]["curve"]
        checked.append({"setting": list(setting), "curve": curve, "same": same})
        if not same:
            raise SystemExit(f"setting {cell_name(setting)} trained again gave {curve}, the grid "
                             f"{cells[setting]['curve']}: training is not deterministic here, so the replay is "
                             "not valid")
    return checked


def one_seed(name: str, shots: int, seed: int, axes: dict[str, tuple], trials: int, repeats: int,
             check: int) -> dict[str, Any]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space, epochs = grid_space(axes), axes["epochs"][0]
    train = TrainConfig.for_command("tune", seed=seed, **{**RECIPE, "epochs": epochs}, **QUIET)
    objective = Objective("minilm", DataConfig(str(SHARED / name), shots=shots, val_fraction=0.25),
                          create_strategy("full", head_lr_scale=HEAD_LR_SCALE), None, train, space, folds=3)
    started = time.perf_counter()
    cells = train_grid(objective, axes)
    grid_s = time.perf_counter() - started
    grid_steps = sum(c["steps"] for c in cells.values())
    best = max(c["value"] for c in cells.values())
    searches = {s: [replay(s, r, trials, cells, space, best - WITHIN) for r in range(repeats)] for s in SEARCHES}
    first = searches["tpe+median"][0]["settings"]
    checked = check_replay(objective, cells, list(dict.fromkeys(first))[:check], epochs) if check else []
    return {"data": name, "seed": seed, "grid_steps": grid_steps, "grid_best": best, "grid_s": grid_s,
            "cells": {cell_name(setting): c for setting, c in cells.items()},
            "searches": searches, "replay_checked": checked}


def fraction_summary(runs: list[dict[str, Any]], grid_steps: int) -> dict[str, Any]:
    """Over a search's repeats: how often it reached the target within 30% of the grid's steps, and the median
    fraction it needed, a repeat that never reached it counted as needing more than any that did (so the median is
    "never" when half of them never did; a median over the successes alone would flatter a search that often misses)."""
    fractions = sorted(math.inf if r["steps_to_target"] is None else r["steps_to_target"] / grid_steps for r in runs)
    return {"repeats": len(runs), "reached": sum(f < math.inf for f in fractions),
            "within_30_percent": sum(f <= 0.30 for f in fractions), "median_fraction": statistics.median(fractions),
            "all_trials_fraction": statistics.median(r["steps_all"] / grid_steps for r in runs),
            "median_best": statistics.median(r["best"] for r in runs)}


def summary_rows(report: dict[str, Any]) -> list[str]:
    lines = ["| data | seed | grid best (val) | grid steps | search | reached within 0.30 | median fraction | "
             "reached at all | median fraction of all its trials | median best found (val) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        for search in SEARCHES:
            s = fraction_summary(row["searches"][search], row["grid_steps"])
            median = "never" if s["median_fraction"] == math.inf else f"{s['median_fraction']:.2f}"
            lines.append(f"| {row['data']} | {row['seed']} | {row['grid_best']:.4f} | {row['grid_steps']} | {search} | "
                         f"{s['within_30_percent']} / {s['repeats']} | {median} | {s['reached']} / {s['repeats']} | "
                         f"{s['all_trials_fraction']:.2f} | {s['median_best']:.4f} |")
    totals = {search: [fraction_summary(row["searches"][search], row["grid_steps"]) for row in report["rows"]]
              for search in SEARCHES}
    overall = [f"{search} reached the target within 0.30 of the grid's steps in "
               f"{sum(s['within_30_percent'] for s in t)} of {sum(s['repeats'] for s in t)} repeats, at all in "
               f"{sum(s['reached'] for s in t)}" for search, t in totals.items()]
    lines += ["", "Over every dataset and seed: " + "; ".join(overall) + "."]
    return lines


def to_markdown(report: dict[str, Any]) -> str:
    a = report["arguments"]
    axes = grid_axes(a)
    smoothing = (f" x label_smoothing in {', '.join(f'{x:g}' for x in axes['label_smoothing'])}"
                 if axes["label_smoothing"] != (0.0,) else "")
    lines = [f"# Pruned search against the full grid (text, MiniLM, {a['shots']} per class, a quarter held out for "
             "validation)", "",
             f"Command: `{report['command']}` (total {report['total_s']:.0f} s; load average "
             f"{report['machine']['load_average'][0]:.1f} at the end).", "",
             f"Grid: lr in {', '.join(f'{x:g}' for x in axes['lr'])} x head_lr_scale in "
             f"{', '.join(f'{x:g}' for x in axes['head_lr_scale'])}{smoothing}, {a['epochs']} epochs "
             f"({grid_size(axes)} settings, trained in full). Each search: {a['trials']} trials on the same "
             f"choices, replayed under {a['repeats']} sampler seeds on the grid's recorded curves (see the script's "
             f"docstring; the first search's first {a['check']} settings were trained again for real and matched). "
             "Fraction: the search's optimizer steps until its first finished trial within 0.5 points of the grid's "
             "best validation accuracy, over the grid's steps (a repeat that never got there counts as never). Goal: "
             "at most 0.30.",
             "", *summary_rows(report), "",
             "Each grid setting's validation accuracy (a trial's value: its best epoch's), best first:", ""]
    for row in report["rows"]:
        cells = ", ".join(f"{name} {c['value']:.3f}" for name, c in sorted(row["cells"].items(),
                                                                            key=lambda item: -item[1]["value"]))
        lines.append(f"- {row['data']} seed {row['seed']}: {cells}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["trec"], choices=["trec", "sst2", "emotion"])
    parser.add_argument("--shots", type=int, default=64)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=8, help="every grid setting's epochs")
    parser.add_argument("--lrs", type=float, nargs="+", default=list(LRS))
    parser.add_argument("--head-lr-scales", type=float, nargs="+", default=list(HEAD_LR_SCALES))
    parser.add_argument("--label-smoothings", type=float, nargs="+", default=list(LABEL_SMOOTHINGS))
    parser.add_argument("--trials", type=int, help="each search's trials (default: as many as the grid has settings)")
    parser.add_argument("--repeats", type=int, default=20, help="sampler seeds each search is replayed under")
    parser.add_argument("--check", type=int, default=2, help="settings of the first search trained again for real")
    parser.add_argument("--name", default="pruning_text")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    axes = grid_axes(vars(args))
    args.trials = args.trials or grid_size(axes)

    started = time.perf_counter()
    rows = []
    for name, seed in itertools.product(args.data, args.seeds):
        rows.append(one_seed(name, args.shots, seed, axes, args.trials, args.repeats, args.check))
        tpe = fraction_summary(rows[-1]["searches"]["tpe+median"], rows[-1]["grid_steps"])
        print(f"{name} seed {seed}: grid best {rows[-1]['grid_best']:.4f} in {rows[-1]['grid_steps']} steps; "
              f"tpe+median median fraction {tpe['median_fraction']}", flush=True)
        write_results(args.out, f"{args.name}.partial", {"rows": rows})
    report = {"command": command_line("benchmarks/pruning_text.py"),
              "arguments": {k: v for k, v in vars(args).items() if k != "out"}, "rows": rows,
              "total_s": time.perf_counter() - started, "machine": machine_info()}
    markdown = to_markdown(report)
    write_results(args.out, args.name, report, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
