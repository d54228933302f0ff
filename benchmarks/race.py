"""The starting-point race against LogME's top-1 on the transferability zoo: 10 sources, 4 targets.

The zoo and the targets are benchmarks/transferability.py's (CNNs and MLPs pretrained on Fashion-MNIST class subsets
within 0-4, two of them random; targets Fashion-MNIST 5-9, 5,7,9, 6,8 and digits resized to 28x28). For each target
and seed (each seed draws its own ``--shots`` labelled images per class), every source is fine-tuned with
``finetune``'s default budget (``full``; the truth: which source ends best on the test split), then
``warmstart.tuning.race.race`` chooses one: LogME ranks the sources, the top half (or LogME's top ``--top``) race
short fine-tunes on stratified folds of the training images (``--folds``, 3 by default; several values of either
race once each), successive halving promotes the best, and the winner gets the full budget.

Reported per target and seed: the top-1 regret (the best source's test accuracy minus the chosen one's, in points)
of LogME's first choice, of the race's winner and of the size-only baseline (the most parameters), and the race's
compute (its short fine-tunes' optimizer steps plus the winner's full run) as a share of fine-tuning every
candidate. The issue's goal: regret under 1 point at under 30% of fine-tuning every candidate.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/race.py [--seeds 3] [--shots 20] [--targets ...]

Writes benchmarks/results/NAME.{json,md} (rows also to NAME.partial.json as each target and seed finish).
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
from warmstart import TrainConfig

import transferability
from _common import RESULTS, command_line, machine_info, write_results

QUIET = dict(progress=False, trackers=())


def steps_of(history: list[dict[str, Any]]) -> int:
    return sum(e.get("steps_per_epoch", 0) for e in history)


FULL = -1  # --top's value for every candidate raced in one rung at the full budget (the validation signal's ceiling)


def race_label(folds: int, top: int) -> str:
    if top == FULL:
        return f"{folds} fold{'s' if folds > 1 else ''}, all at the full budget"
    return f"{folds} fold{'s' if folds > 1 else ''}, top {top if top else 'half'}"


def one(target: str, seed: int, shots: int, fashion: str, zoo: dict[str, Any], folds: list[int],
        tops: list[int]) -> dict[str, Any]:
    from warmstart.tuning.race import race

    data = transferability.target_data(target, fashion, shots)
    train = TrainConfig.for_command("finetune", seed=seed, **QUIET)
    names = list(zoo)
    accuracy, steps = {}, {}
    started = time.perf_counter()
    for name in names:
        run = warmstart.finetune(zoo[name]["path"], data, train=train)
        accuracy[name], steps[name] = run.metrics.accuracy, steps_of(run.history)
    row: dict[str, Any] = {"target": target, "seed": seed, "accuracy": accuracy,
                           "best": max(accuracy, key=accuracy.get), "finetune_all_steps": sum(steps.values()),
                           "finetune_all_s": time.perf_counter() - started, "races": {}}
    best = max(accuracy.values())
    name_of = {zoo[n]["path"]: n for n in names}
    for k, top in ((k, top) for top in tops for k in folds):
        # min_epochs above the run's epochs: race() caps the rung at the full budget, so one rung decides
        full = dict(top=len(names), min_epochs=10**6) if top == FULL else dict(top=top or None)
        record = race([zoo[n]["path"] for n in names], data, train=train, rank_score="logme", folds=k, **full)
        logme, chosen, size = (name_of[record[key]] for key in ("score_top1", "chosen", "size_top1"))
        row.update(logme_top1=logme, size_top1=size, logme_ranking=[name_of[p] for p in record["ranking"]],
                   logme_regret_points=100 * (best - accuracy[logme]), size_regret_points=100 * (best - accuracy[size]))
        row["races"][race_label(k, top)] = {
            "winner": chosen, "regret_points": 100 * (best - accuracy[chosen]),
            "steps": record["race_steps"] + steps[chosen],
            "fraction": (record["race_steps"] + steps[chosen]) / sum(steps.values()),
            "rungs": [{"epochs": r["epochs"], "validation_accuracy": {name_of[p]: v for p, v in
                                                                      r["validation_accuracy"].items()}}
                      for r in record["rungs"]],
            "wall_s": {"ranking": record["ranking_time_s"], "race": record["race_time_s"]}}
    return row


def to_markdown(report: dict[str, Any]) -> str:
    rows, s = report["rows"], report["settings"]
    races = list(rows[0]["races"]) if rows else []
    lines = [f"# The starting-point race against LogME's top-1 ({len(report['zoo'])} sources, "
             f"{len(s['targets'])} targets, {s['shots']} per class)", "",
             f"Command: `{report['command']}`" + (f" (total {report['total_s']:.0f} s)" if "total_s" in report else "")
             + ".", "",
             f"Zoo: benchmarks/transferability.py's sources pretrained on {s['train_per_class']} images per class "
             f"(test accuracy: " + ", ".join(f"{n} {z['source_test_accuracy']:.3f}" if z["source_test_accuracy"]
                                             else f"{n} random" for n, z in report["zoo"].items()) + ").", "",
             "Regret: the best source's test accuracy minus the chosen one's, in points. Compute: the race's optimizer "
             "steps (its short fine-tunes on the folds, and the winner's full run) over those of fine-tuning every "
             "candidate.", "",
             "| target | seed | best source (test acc) | LogME top-1 regret | size-only regret | "
             + " | ".join(f"race ({k}): regret, compute" for k in races) + " |",
             "|---|---|---|---|---|" + "---|" * len(races)]
    for r in rows:
        lines.append(f"| {r['target']} | {r['seed']} | {r['best']} ({r['accuracy'][r['best']]:.3f}) | "
                     f"{r['logme_regret_points']:.1f} ({r['logme_top1']}) | {r['size_regret_points']:.1f} "
                     f"({r['size_top1']}) | "
                     + " | ".join(f"{r['races'][k]['regret_points']:.1f} ({r['races'][k]['winner']}), "
                                  f"{r['races'][k]['fraction']:.2f}" for k in races) + " |")
    if rows:
        mean = statistics.mean
        lines.append(f"| **mean** | | | {mean(r['logme_regret_points'] for r in rows):.2f} | "
                     f"{mean(r['size_regret_points'] for r in rows):.2f} | "
                     + " | ".join(f"{mean(r['races'][k]['regret_points'] for r in rows):.2f}, "
                                  f"{mean(r['races'][k]['fraction'] for r in rows):.2f}" for k in races) + " |")
        lines += ["", "Each row's rungs (validation accuracy, mean over the folds) and every source's fine-tuned test "
                  "accuracy are in the JSON."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--shots", type=int, default=20)
    parser.add_argument("--targets", nargs="+", default=list(transferability.TARGETS),
                        choices=list(transferability.TARGETS))
    parser.add_argument("--train-per-class", type=int, default=500, help="the zoo's Fashion-MNIST subset")
    parser.add_argument("--test-per-class", type=int, default=200)
    parser.add_argument("--folds", type=int, nargs="+", default=[3],
                        help="race once per value, with that many stratified folds per short fine-tune")
    parser.add_argument("--top", type=int, nargs="+", default=[0],
                        help="race once per value (crossed with --folds), with LogME's top N candidates (0: the "
                             "race's default, half of them; -1: every candidate fine-tuned on the folds at the full "
                             "budget, one rung: the best any race on these folds can do)")
    parser.add_argument("--name", default="race")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    report: dict[str, Any] = {"command": command_line("benchmarks/race.py"),
                              "settings": {k: v for k, v in vars(args).items() if k != "out"}, "rows": []}
    with tempfile.TemporaryDirectory(prefix="warmstart-bench-race-") as folder:
        tmp = Path(folder)
        fashion = transferability.fashion_subset(tmp, args.train_per_class, args.test_per_class)
        report["zoo"] = transferability.build_zoo(tmp / "zoo", fashion, quick=False)
        for target in args.targets:
            for seed in range(args.seeds):
                row = one(target, seed, args.shots, fashion, report["zoo"], args.folds, args.top)
                report["rows"].append(row)
                print(f"{target} seed {seed}: regret LogME {row['logme_regret_points']:.1f}, size "
                      f"{row['size_regret_points']:.1f}; " + ", ".join(
                          f"race ({k}) {r['regret_points']:.1f} at {r['fraction']:.2f} of the compute"
                          for k, r in row["races"].items()), flush=True)
                write_results(args.out, f"{args.name}.partial", report)
    report["total_s"] = time.perf_counter() - started
    report["machine"] = machine_info()
    write_results(args.out, args.name, report, to_markdown(report))
    print(to_markdown(report))


if __name__ == "__main__":
    main()
