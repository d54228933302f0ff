"""Does weight averaging pay on text? WiSE-FT (and optionally a greedy soup) against the single fine-tuned MiniLM.

For each dataset and seed (each seed draws its own K labelled texts per class, a quarter of them held out for
validation: both averages choose on it), on the whole test split:

- ``single``: the README's recipe for a few dozen texts per class (``full``, the new head at 100x the rate, weight
  decay 0.01, linear decay, 4 epochs, batch 16; benchmarks/tuning_text.py's RECIPE).
- ``wise-ft``: the same run with ``average="wise-ft"``: the fine-tuned encoder mixed with all-MiniLM-L6-v2's own
  weights, the mixing weight chosen on validation over 0.0, 0.1, ..., 1.0 (1.0 is the single model: never worse
  on validation by construction). Training is deterministic for a seed, so its alpha-1 point is ``single`` itself:
  the script records whether both report the same validation accuracy there (``alpha_one_matches_single``).
- ``soup`` (``--soup-trials N``, 0 skips it): ``warmstart tune`` with ``average="soup"`` over N trials of
  ``full``'s space, scored on the same validation split. ``tuned winner``: the study's best trial alone (its weights
  as the trial saved them, which the retrained winner reproduces: training is deterministic for a seed), scored on
  the same test split; it is the best single model the soup must beat.

- ``equal`` (``--trials N``): the default recipe at equal compute. ``warmstart tune`` over N trials as for the soup
  (without averaging; with ``soup`` among the arms, the soup's own search), then ``single``'s recipe given the
  search's whole compute (every trial's optimizer steps, pruned ones up to where they stopped, and the winner's
  retraining) as epochs, on the same training and validation texts. ``tuned``: the retrained winner on test.

``--arms single soup`` skips WiSE-FT (for a soup-only run; the single arm is the default recipe the table compares
against).

Accuracy only (one torch thread; the machine may be loaded):

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/averaging_text.py --data trec sst2 emotion --seeds 0 1 2

Writes benchmarks/results/NAME.{json,md} (rows also to NAME.partial.json as each seed finishes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import warmstart
from warmstart import DataConfig, TrainConfig
from warmstart.strategies import create_strategy

from _common import RESULTS, command_line, machine_info, write_results
from tuning_text import HEAD_LR_SCALE, QUIET, RECIPE, SHARED, steps_of


def averaging_record(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "config.json").read_text())["averaging"]


def winner_alone(tuned: Path, data: DataConfig, folder: Path) -> dict[str, Any]:
    """The study's best trial scored alone on the test split: its saved weights in the soup checkpoint's model."""
    from safetensors.torch import load_file

    from warmstart.models.checkpoint import load_checkpoint, save_checkpoint

    best = json.loads((tuned / "tuning.json").read_text())["best"]
    model, info = load_checkpoint(tuned / "best")
    model.load_state_dict(load_file(str(tuned / "trials" / f"trial_{best['number']:05d}.safetensors")))
    save_checkpoint(model, folder, info)
    return {"trial": best["number"], "validation": best["value"], "test": warmstart.evaluate(folder, data).accuracy}


def one_seed(name: str, shots: int, seed: int, soup_trials: int, arms: list[str], folder: Path) -> dict[str, Any]:
    data = DataConfig(str(SHARED / name), shots=shots, val_fraction=0.25)
    train = TrainConfig.for_command("finetune", seed=seed, **RECIPE, **QUIET)
    row: dict[str, Any] = {"data": name, "seed": seed, "wall_s": {}}
    runs = {}
    for arm, average in (("single", None), ("wise-ft", "wise-ft")):
        if arm not in arms:
            continue
        started = time.perf_counter()
        run = warmstart.finetune("minilm", data, strategy=create_strategy("full", head_lr_scale=HEAD_LR_SCALE),
                                 train=train, out=folder / f"{name}-{arm}{seed}", overwrite=True,
                                 **({} if average is None else {"average": average}))
        row["wall_s"][arm] = time.perf_counter() - started
        runs[arm] = run
        row[arm] = {"test": run.metrics.accuracy, "validation": run.history[-1].get("val_accuracy"),
                    "steps": steps_of(run.history)}
    if "wise-ft" in arms:
        record = averaging_record(folder / f"{name}-wise-ft{seed}")
        row["wise-ft"]["alpha"] = record["alpha"]
        row["wise-ft"]["validation_by_alpha"] = {r["alpha"]: r["accuracy"] for r in record["validation"]}
    if soup_trials and "soup" in arms:
        started = time.perf_counter()
        soup = warmstart.tune("minilm", data, strategy=create_strategy("full", head_lr_scale=HEAD_LR_SCALE),
                              train=TrainConfig.for_command("tune", seed=seed, **RECIPE, **QUIET),
                              out=folder / f"{name}-soup{seed}", trials=soup_trials, average="soup",
                              overwrite=True)
        row["wall_s"]["soup"] = time.perf_counter() - started
        record = averaging_record(soup.run.run_dir)
        row["soup"] = {"test": soup.metrics.accuracy, "ingredients": len(record["ingredients"]),
                       "fell_back": record["fell_back"], "validation": record["accuracy"],
                       "winner_validation": record["validation"][0]["accuracy"]}
        row["tuned winner"] = winner_alone(folder / f"{name}-soup{seed}", data, folder / f"{name}-winner{seed}")
    if soup_trials and "equal" in arms:
        started = time.perf_counter()
        tuned = soup if "soup" in arms else warmstart.tune(
            "minilm", data, strategy=create_strategy("full", head_lr_scale=HEAD_LR_SCALE),
            train=TrainConfig.for_command("tune", seed=seed, **RECIPE, **QUIET), out=folder / f"{name}-tune{seed}",
            trials=soup_trials, overwrite=True)
        search_steps = sum(t["steps"] or 0 for t in tuned.trials) + steps_of(tuned.run.history)
        epochs = max(1, round(search_steps / runs["single"].history[0]["steps_per_epoch"]))
        equal = warmstart.finetune("minilm", data, strategy=create_strategy("full", head_lr_scale=HEAD_LR_SCALE),
                                   train=TrainConfig.for_command("finetune", seed=seed, **{**RECIPE, "epochs": epochs},
                                                                 **QUIET),
                                   out=folder / f"{name}-equal{seed}", overwrite=True)
        row["wall_s"]["equal"] = time.perf_counter() - started
        winner_test = row["tuned winner"]["test"] if "soup" in arms else tuned.metrics.accuracy
        row["tuned"] = {"test": winner_test, "validation": tuned.best_value, "steps": search_steps,
                        "params": tuned.best_params,
                        "trials": {s: sum(t["state"] == s for t in tuned.trials) for s in ("complete", "pruned")}}
        row["equal"] = {"test": equal.metrics.accuracy, "validation": equal.history[-1].get("val_accuracy"),
                        "epochs": epochs, "steps": steps_of(equal.history)}
    return row


def equal_table(rows: list[dict[str, Any]], name: str) -> list[str]:
    rows = [r for r in rows if r["data"] == name and "equal" in r]
    if not rows:
        return []
    lines = [f"### {name}: the default recipe at equal compute", "",
             "| seed | default: validation / test | tuned winner: validation / test | default at equal compute: "
             "validation / test | steps: default / search total (equal-compute epochs) | trials complete / pruned | "
             "tuned winner's settings |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        s, t, e = r["single"], r["tuned"], r["equal"]
        settings = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["params"].items())
        lines.append(f"| {r['seed']} | {s['validation']:.4f} / {s['test']:.4f} | {t['validation']:.4f} / "
                     f"{t['test']:.4f} | {e['validation']:.4f} / {e['test']:.4f} | {s['steps']} / {t['steps']} "
                     f"({e['epochs']}) | {t['trials']['complete']} / {t['trials']['pruned']} | {settings} |")
    lines.append(f"| mean ± std | {summarise([r['single']['test'] for r in rows])} | "
                 f"{summarise([r['tuned']['test'] for r in rows])} | {summarise([r['equal']['test'] for r in rows])} "
                 "| | | |")
    tuned_minus = [100 * (r["tuned"]["test"] - r["single"]["test"]) for r in rows]
    equal_minus = [100 * (r["tuned"]["test"] - r["equal"]["test"]) for r in rows]
    return [*lines, "", f"Tuned minus default: {statistics.mean(tuned_minus):+.2f} points in the mean (per seed: "
            f"{', '.join(f'{x:+.1f}' for x in tuned_minus)}); tuned minus the default at equal compute: "
            f"{statistics.mean(equal_minus):+.2f} (per seed: {', '.join(f'{x:+.1f}' for x in equal_minus)})."]


def summarise(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.4f}"


def table(rows: list[dict[str, Any]], name: str) -> list[str]:
    rows = [r for r in rows if r["data"] == name]
    wise = all("wise-ft" in r for r in rows)
    soup = all("soup" in r for r in rows)
    header = "| seed | single: validation / test |"
    if wise:
        header += " wise-ft: alpha, validation / test | wise-ft minus single (test, points) |"
    if soup:
        header += (" tuned winner alone: validation / test | soup: ingredients, validation / test | soup minus winner "
                   "(test, points) |")
    lines = [f"## {name}", "", header, "|---|---|" + "---|---|" * wise + "---|---|---|" * soup]
    for r in rows:
        s = r["single"]
        line = f"| {r['seed']} | {s['validation']:.4f} / {s['test']:.4f} |"
        if wise:
            w = r["wise-ft"]
            line += (f" {w['alpha']:g}, {w['validation_by_alpha'][w['alpha']]:.4f} / {w['test']:.4f} | "
                     f"{100 * (w['test'] - s['test']):+.1f} |")
        if soup:
            p, t = r["soup"], r["tuned winner"]
            line += (f" {t['validation']:.4f} / {t['test']:.4f} | {p['ingredients']}"
                     f"{' (fell back)' if p['fell_back'] else ''}, {p['validation']:.4f} / {p['test']:.4f} | "
                     f"{100 * (p['test'] - t['test']):+.1f} |")
        lines.append(line)
    line = f"| mean ± std | {summarise([r['single']['test'] for r in rows])} |"
    if wise:
        line += (f" {summarise([r['wise-ft']['test'] for r in rows])} | "
                 f"{statistics.mean(100 * (r['wise-ft']['test'] - r['single']['test']) for r in rows):+.2f} |")
    if soup:
        line += (f" {summarise([r['tuned winner']['test'] for r in rows])} | "
                 f"{summarise([r['soup']['test'] for r in rows])} | "
                 f"{statistics.mean(100 * (r['soup']['test'] - r['tuned winner']['test']) for r in rows):+.2f} |")
    return [*lines, line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["trec"], choices=["trec", "sst2", "emotion"])
    parser.add_argument("--shots", type=int, default=64)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the seeds to run")
    parser.add_argument("--trials", "--soup-trials", dest="soup_trials", type=int, default=0,
                        help="trials of the tune behind the soup and the equal arm (0: neither)")
    parser.add_argument("--arms", nargs="+", default=["single", "wise-ft", "soup"],
                        choices=["single", "wise-ft", "soup", "equal"],
                        help="single is always run: the others compare to it")
    parser.add_argument("--name", default="averaging_text")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="warmstart-bench-average-text-") as tmp:
        for name in args.data:
            for seed in args.seeds:
                row = one_seed(name, args.shots, seed, args.soup_trials, ["single", *args.arms], Path(tmp))
                if "wise-ft" in row:
                    at_one = row["wise-ft"]["validation_by_alpha"][1.0]
                    row["alpha_one_matches_single"] = abs(at_one - row["single"]["validation"]) < 1e-6
                    if not row["alpha_one_matches_single"]:
                        print(f"note: {name} seed {seed}: WiSE-FT's alpha 1 scored {at_one:.4f} on validation, the "
                              f"single run's last epoch {row['single']['validation']:.4f}", flush=True)
                rows.append(row)
                print(f"{name} seed {seed}: single {row['single']['test']:.4f}"
                      + (f", wise-ft {row['wise-ft']['test']:.4f} (alpha {row['wise-ft']['alpha']:g})"
                         if "wise-ft" in row else "")
                      + (f", tuned winner {row['tuned winner']['test']:.4f}, soup {row['soup']['test']:.4f}"
                         if "soup" in row else "")
                      + (f", tuned {row['tuned']['test']:.4f}, default at equal compute {row['equal']['test']:.4f}"
                         f" ({row['equal']['epochs']} epochs)" if "equal" in row else ""), flush=True)
                write_results(args.out, f"{args.name}.partial", {"rows": rows})
    report = {"command": command_line("benchmarks/averaging_text.py"),
              "arguments": {k: v for k, v in vars(args).items() if k != "out"}, "rows": rows,
              "total_s": time.perf_counter() - started, "machine": machine_info()}
    lines = [f"# Weight averaging on text (MiniLM, {args.shots} per class, a quarter held out for validation)", "",
             f"Command: `{report['command']}` (total {report['total_s']:.0f} s; load average "
             f"{report['machine']['load_average'][0]:.1f} at the end).", ""]
    for name in args.data:
        lines += [*table(rows, name), ""]
        extra = equal_table(rows, name)
        lines += [*extra, ""] if extra else []
    write_results(args.out, args.name, report, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
