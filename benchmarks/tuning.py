"""Does searching the recipe, averaging weights, and racing starting points pay? Fashion-MNIST 0-4 -> 5-9, a CNN.

A CNN is pretrained on Fashion-MNIST classes 0-4 (a stratified subset, ``--train-per-class`` images per class) and
fine-tuned on classes 5-9 with ``--shots`` labelled images per class (drawn per seed); accuracy is on the subset's
``--test-per-class`` test images per class of 5-9. Four parts (``--parts``):

- ``tuned``: ``warmstart tune`` (``--trials`` trials, TPE + median pruner, validated on 3 stratified folds of the
  training examples: few shots hold no validation split out) against the default recipe (``finetune``'s defaults:
  full, lr 1e-3, 10 epochs, batch 16, cosine) at its own budget and at the search's total compute (the trials' steps
  and the winner's, as epochs of the default recipe).
- ``pruned``: the same space as a grid (lr x head_lr_scale, 10 epochs) trained in full, against TPE with the median
  pruner on the same choices: the optimizer steps needed to get within 0.5 points of the grid's best validation
  accuracy.
- ``averaging``: WiSE-FT and a greedy soup of the tune's trials against the single fine-tuned model, at
  ``--average-shots`` per class with a quarter held out for validation, on the clean test split and on a corrupted
  one (``--corruption``, the out-of-distribution case).
- ``race``: a zoo of sources (``--sources``, from benchmarks/transferability.py), each fine-tuned with the full
  budget; the top-1 regret (the best source's accuracy minus the chosen one's) of LogME's choice and of the race's,
  and the race's compute against fine-tuning every candidate.

Writes benchmarks/results/tuning.{json,md}.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/tuning.py [--seeds 3] [--parts tuned pruned averaging race]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import warmstart
from warmstart import DataConfig, TrainConfig
from warmstart.search_space import SearchParam, fixed

from _common import RESULTS, command_line, machine_info, pretrain_source, write_results

QUIET = dict(progress=False, trackers=())
PARTS = ("tuned", "pruned", "averaging", "race")


def steps_of(history: list[dict[str, Any]]) -> int:
    return sum(e.get("steps_per_epoch", 0) for e in history)


def part_tuned(source: Path, fashion: str, seed: int, shots: int, trials: int, tmp: Path) -> dict[str, Any]:
    data = DataConfig(fashion, classes="5-9", shots=shots)
    train = TrainConfig.for_command("finetune", seed=seed, **QUIET)
    default = warmstart.finetune(source, data, train=train)
    tuned = warmstart.tune(source, data, train=TrainConfig.for_command("tune", seed=seed, **QUIET),
                           out=tmp / f"tune{seed}", trials=trials, overwrite=True)
    search_steps = sum(t["steps"] or 0 for t in tuned.trials) + steps_of(tuned.run.history)
    per_epoch = default.history[0]["steps_per_epoch"]
    equal = warmstart.finetune(source, data, train=TrainConfig.for_command(
        "finetune", seed=seed, epochs=max(1, round(search_steps / per_epoch)), **QUIET))
    return {"seed": seed, "default": default.metrics.accuracy, "default_steps": steps_of(default.history),
            "default_equal_compute": equal.metrics.accuracy, "equal_compute_steps": steps_of(equal.history),
            "tuned": tuned.metrics.accuracy, "tuned_steps": search_steps, "best_params": tuned.best_params,
            "best_validation": tuned.best_value,
            "trials": {s: sum(t["state"] == s for t in tuned.trials) for s in ("complete", "pruned")}}


GRID = (SearchParam("lr", choices=(3e-4, 1e-3, 3e-3, 1e-2)), SearchParam("head_lr_scale", choices=(1.0, 10.0)),
        fixed("epochs", 10))


def part_pruned(source: Path, fashion: str, seed: int, shots: int) -> dict[str, Any]:
    import optuna

    from warmstart.strategies import create_strategy
    from warmstart.tuning.objective import Objective
    from warmstart.tuning.study import make_pruner, make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    train = TrainConfig.for_command("tune", seed=seed, epochs=10, **QUIET)
    objective = Objective(str(source), DataConfig(fashion, classes="5-9", shots=shots), create_strategy("full"),
                          None, train, GRID, folds=3)
    # pruning off: Optuna's default pruner is the median pruner, which would stop the grid's own trials
    grid = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner(),
                               sampler=optuna.samplers.GridSampler({"lr": list(GRID[0].choices), "head_lr_scale": list(
                                   GRID[1].choices), "epochs": [10]}, seed=seed))
    grid.optimize(objective, n_trials=8)
    if any(t.state.name != "COMPLETE" for t in grid.trials):
        raise SystemExit(f"the grid did not train in full: {[t.state.name for t in grid.trials]}")
    grid_steps = sum(t.user_attrs["steps"] for t in grid.trials)
    target = grid.best_value - 0.005
    search = optuna.create_study(direction="maximize", sampler=make_sampler(seed, 8), pruner=make_pruner("median"))
    spent, reached = 0, None
    for _ in range(8):
        search.optimize(objective, n_trials=1)
        last = search.trials[-1]
        spent += last.user_attrs.get("steps", 0)
        if reached is None and last.value is not None and last.state.name == "COMPLETE" and last.value >= target:
            reached = spent
    return {"seed": seed, "grid_best": grid.best_value, "grid_steps": grid_steps, "pruned_best": search.best_value,
            "pruned_steps_all": spent, "steps_to_within_half_point": reached,
            "fraction": None if reached is None else reached / grid_steps,
            "pruned_trials": sum(t.state.name == "PRUNED" for t in search.trials)}


def part_averaging(source: Path, fashion: str, seed: int, shots: int, trials: int, corruption: str,
                   tmp: Path) -> dict[str, Any]:
    from warmstart.tuning.objective import apply
    from warmstart.strategies import create_strategy

    data = DataConfig(fashion, classes="5-9", shots=shots, val_fraction=0.25)
    shifted = DataConfig(fashion, classes="5-9", corruption=corruption)
    train = TrainConfig.for_command("finetune", seed=seed, **QUIET)
    out: dict[str, Any] = {"seed": seed}
    for name, average in (("single", None), ("wise-ft", "wise-ft")):
        folder = tmp / f"{name}{seed}"
        run = warmstart.finetune(source, data, train=train, out=folder, overwrite=True,
                                 **({} if average is None else {"average": average}))
        out[name] = {"test": run.metrics.accuracy, "shifted_test": warmstart.evaluate(folder, shifted).accuracy}
    soup = warmstart.tune(source, data, train=TrainConfig.for_command("tune", seed=seed, **QUIET),
                          out=tmp / f"soup{seed}", trials=trials, average="soup", overwrite=True)
    best_train, best_strategy = apply(soup.best_params, train, create_strategy("full"))
    winner = warmstart.finetune(source, data, strategy=best_strategy, train=best_train, out=tmp / f"winner{seed}",
                                overwrite=True)
    out["tuned winner"] = {"test": winner.metrics.accuracy,
                           "shifted_test": warmstart.evaluate(tmp / f"winner{seed}", shifted).accuracy}
    import json

    record = json.loads((soup.run.run_dir / "config.json").read_text())["averaging"]
    out["soup"] = {"test": soup.metrics.accuracy, "shifted_test": warmstart.evaluate(soup.run.run_dir,
                                                                                      shifted).accuracy,
                   "ingredients": len(record["ingredients"]), "fell_back": record["fell_back"]}
    wise = json.loads((tmp / f"wise-ft{seed}" / "config.json").read_text())["averaging"]
    out["wise-ft"]["alpha"] = wise["alpha"]
    return out


def part_race(fashion: str, seed: int, shots: int, sources: list[str], zoo: dict[str, Any]) -> dict[str, Any]:
    from warmstart.tuning.race import race

    data = DataConfig(fashion, classes="5-9", shots=shots)
    train = TrainConfig.for_command("finetune", seed=seed, **QUIET)
    paths = [zoo[name]["path"] for name in sources]
    accuracy, steps = {}, {}
    for name, path in zip(sources, paths):
        run = warmstart.finetune(path, data, train=train)
        accuracy[name], steps[name] = run.metrics.accuracy, steps_of(run.history)
    record = race(paths, data, train=train, rank_score="logme")
    name_of = {zoo[n]["path"]: n for n in sources}
    best = max(accuracy.values())
    logme, chosen = name_of[record["score_top1"]], name_of[record["chosen"]]
    rungs = [{"epochs": r["epochs"], "validation_accuracy": {name_of[p]: v for p, v in r["validation_accuracy"].items()}}
             for r in record["rungs"]]
    return {"seed": seed, "accuracy": accuracy, "logme_top1": logme, "race_winner": chosen,
            "logme_ranking": [name_of[p] for p in record["ranking"]], "rungs": rungs,
            "logme_regret_points": 100 * (best - accuracy[logme]), "race_regret_points": 100 * (best - accuracy[chosen]),
            "race_steps": record["race_steps"], "finetune_all_steps": sum(steps.values()),
            "race_fraction": (record["race_steps"] + steps[chosen]) / sum(steps.values()),
            "size_top1": name_of[record["size_top1"]], "size_regret_points":
                100 * (best - accuracy[name_of[record["size_top1"]]])}


def mean_std(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}" if len(values) > 1 else f"{values[0]:.4f}"


def to_markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    full = s["train_per_class"] >= 6000
    lines = ["# Tuning, weight averaging and the starting-point race" + ("" if full else " (reduced scale)"), "",
             "Commands (per part):", "", *(f"- {p}: `{c}`" for p, c in report.get("commands", {}).items()), "",
             f"Scale (CPU, one torch thread, on a loaded shared machine): source CNN pretrained on Fashion-MNIST "
             f"0-4, {s['train_per_class']} images per class, {s['pretrain_epochs']} epochs (test accuracy "
             f"{report['source_accuracy']:.4f}); targets 5-9, test on {s['test_per_class']} images per class; "
             f"seeds {s['seeds']}." + ("" if full else " The issue's scale is `--train-per-class 6000 "
                                       "--test-per-class 1000 --pretrain-epochs 6 --seeds 3`."), ""]
    if report.get("tuned"):
        rows = report["tuned"]
        lines += [f"## Tuned against the default recipe ({s['shots']} per class, {s['trials']} trials)", "",
                  "| seed | default | default at equal compute | tuned | steps: default / search total | "
                  "trials complete / pruned |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['seed']} | {r['default']:.4f} | {r['default_equal_compute']:.4f} | {r['tuned']:.4f} | "
                  f"{r['default_steps']} / {r['tuned_steps']} | {r['trials']['complete']} / {r['trials']['pruned']} |"
                  for r in rows]
        lines += [f"| mean ± std | {mean_std([r['default'] for r in rows])} | "
                  f"{mean_std([r['default_equal_compute'] for r in rows])} | {mean_std([r['tuned'] for r in rows])} "
                  "| | |", ""]
    if report.get("pruned"):
        rows = report["pruned"]
        lines += ["## Pruned TPE against the full grid (8 settings: lr x head_lr_scale, 10 epochs, 3 folds)", "",
                  "| seed | grid best (val) | grid steps | TPE+median best | steps to within 0.5 points | fraction |"
                  " pruned |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['seed']} | {r['grid_best']:.4f} | {r['grid_steps']} | {r['pruned_best']:.4f} | "
                  f"{r['steps_to_within_half_point']} | "
                  f"{'n/a' if r['fraction'] is None else format(r['fraction'], '.2f')} | {r['pruned_trials']} |"
                  for r in rows]
        lines.append("")
    if report.get("averaging"):
        rows = report["averaging"]
        lines += [f"## Weight averaging ({s['average_shots']} per class, a quarter for validation; shifted: "
                  f"{s['corruption']})", "", "| model | test | shifted test |", "|---|---|---|"]
        for name in ("single", "wise-ft", "tuned winner", "soup"):
            lines.append(f"| {name} | {mean_std([r[name]['test'] for r in rows])} | "
                         f"{mean_std([r[name]['shifted_test'] for r in rows])} |")
        lines += ["", "WiSE-FT alphas: " + ", ".join(str(r["wise-ft"]["alpha"]) for r in rows)
                  + "; soup ingredients: " + ", ".join(f"{r['soup']['ingredients']}"
                                                       + (" (fell back)" if r["soup"]["fell_back"] else "")
                                                       for r in rows), ""]
    if report.get("race"):
        rows = report["race"]
        lines += [f"## The race against LogME's top-1 ({len(s['sources'])} sources, {s['shots']} per class)", "",
                  "| seed | LogME top-1 regret (points) | race regret | size-only regret | race compute / fine-tune "
                  "all |", "|---|---|---|---|---|"]
        lines += [f"| {r['seed']} | {r['logme_regret_points']:.2f} ({r['logme_top1']}) | "
                  f"{r['race_regret_points']:.2f} ({r['race_winner']}) | {r['size_regret_points']:.2f} | "
                  f"{r['race_fraction']:.2f} |" for r in rows]
        lines += ["", "Fine-tuned test accuracy of every source (full budget), LogME's order, and the race's rungs "
                  "(validation accuracy, mean over 3 folds):", ""]
        for r in rows:
            rungs = "; ".join(f"{g['epochs']} epoch(s): " + ", ".join(f"{n} {v:.3f}" for n, v in
                                                                    g["validation_accuracy"].items())
                              for g in r.get("rungs", []))
            lines.append(f"- seed {r['seed']}: " + ", ".join(f"{n} {a:.3f}" for n, a in r["accuracy"].items())
                         + f"; LogME order: {', '.join(r.get('logme_ranking', []))}; rungs: {rungs}")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--average-shots", type=int, default=20)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--train-per-class", type=int, default=600)
    parser.add_argument("--test-per-class", type=int, default=200)
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--corruption", default="contrast:3")
    parser.add_argument("--sources", nargs="+", default=["cnn-0to4-8ep", "cnn-0to4-1ep", "cnn-01-4ep",
                                                         "cnn-small-0to4-4ep", "mlp-0to4-8ep", "cnn-random"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    command = command_line("benchmarks/tuning.py")
    report: dict[str, Any] = {"command": command, "settings": {k: v for k, v in vars(args).items() if k != "out"}}
    previous = args.out / "tuning.json"
    if previous.is_file():  # a run of some parts keeps the others' results, each with the command that made it
        import json

        kept = json.loads(previous.read_text())
        commands = kept.get("commands") or {p: kept["command"] for p in PARTS if kept.get(p)}
        report.update({p: kept[p] for p in PARTS if p not in args.parts and kept.get(p)})
        report["commands"] = {p: c for p, c in commands.items() if p not in args.parts}
    report.setdefault("commands", {}).update({p: command for p in args.parts})
    with tempfile.TemporaryDirectory(prefix="warmstart-tuning-") as folder:
        tmp = Path(folder)
        import transferability

        fashion = transferability.fashion_subset(tmp, args.train_per_class, args.test_per_class)
        source = pretrain_source(tmp / "source", epochs=args.pretrain_epochs, dataset=DataConfig(fashion,
                                                                                                 classes="0-4"))
        report["source_accuracy"] = source.metrics.accuracy
        print(f"source: accuracy {source.metrics.accuracy:.4f}", flush=True)
        zoo = None
        for part in args.parts:
            report[part] = []
            for seed in range(args.seeds if part != "pruned" else 1):
                if part == "tuned":
                    row = part_tuned(tmp / "source", fashion, seed, args.shots, args.trials, tmp)
                elif part == "pruned":
                    row = part_pruned(tmp / "source", fashion, seed, args.shots)
                elif part == "averaging":
                    row = part_averaging(tmp / "source", fashion, seed, args.average_shots, args.trials,
                                         args.corruption, tmp)
                else:
                    if zoo is None:
                        transferability.SOURCES = {k: transferability.SOURCES[k] for k in args.sources}
                        zoo = transferability.build_zoo(tmp / "zoo", fashion, quick=False)
                    row = part_race(fashion, seed, args.shots, args.sources, zoo)
                report[part].append(row)
                print(part, row, flush=True)
                # partial results survive a kill
                write_results(args.out, "tuning", {**report, "machine": machine_info()}, to_markdown(report))
    report["total_time_s"] = time.perf_counter() - started
    report["machine"] = machine_info()
    write_results(args.out, "tuning", report, to_markdown(report))
    print(to_markdown(report))


if __name__ == "__main__":
    main()
