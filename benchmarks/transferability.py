"""Do transferability scores predict which source model fine-tunes best? And how much cheaper is asking them?

A zoo of source models is built here (the ``SOURCES`` table): residual CNNs and MLPs pretrained on Fashion-MNIST
class subsets within 0-4 (T-shirt/top, Trouser, Pullover, Dress, Coat) for different lengths and widths, and two
randomly initialised ones. Each target task is disjoint from every source's classes: Fashion-MNIST 5-9, the
footwear 5,7,9 (Sandal, Sneaker, Ankle boot), 6,8 (Shirt, Bag), and scikit-learn's 8x8 digits resized to 28x28.
Each target is few-shot (``--shots`` labelled images per class, drawn per seed).

For every target and seed, ``warmstart.rank`` scores every source with every registered score on that seed's
training draw, and every source is then trained on the same draw two ways, each with the same budget for all
sources, and tested on the target's test split: fine-tuned (strategy ``full``, the accuracy a user wants) and
linear-probed (strategy ``linear-probe``: a new head on the frozen features, what LogME and H-score model). Per
target, each source's score and accuracy are averaged over the seeds, and Kendall's tau and weighted tau
(``scipy.stats.kendalltau``, ``scipy.stats.weightedtau``, which weighs the top of the ranking most) between score
and accuracy are reported, with their mean over targets, and the accuracy lost by training the score's top choice
instead of the best source (top-1 regret). As a noise ceiling, the tau between the accuracies of two seeds (mean
over seed pairs) says how well the seeds' own rankings agree with each other. Anchors: TLlib's reproduction on
10 ImageNet models and 8 datasets, mean weighted tau 0.665 (LogME) and 0.670 (H-score); the LogME paper reports up
to 3000x less time than fine-tuning every candidate.

Times: ranking (feature extraction + scoring, all candidates) against fine-tuning all candidates (RunResult
wall time: data, training and test evaluation), per target and seed, in the same process, interleaved, with the
``uptime`` load average recorded before and after, since the machine may be shared.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/transferability.py [--seeds 3] [--shots 20] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau, weightedtau

import warmstart
from warmstart import DataConfig, ModelConfig, TrainConfig
from warmstart.data import fashion_mnist
from warmstart.data.preprocess import Normalization
from warmstart.models import CheckpointInfo, create_model, save_checkpoint
from warmstart.selection import SCORES

from _common import RESULTS, command_line, uptime, write_results

NAME = "transferability"

# name: (architecture, options, source classes, pretraining epochs; 0 = random initialisation)
SOURCES: dict[str, tuple[str, dict[str, Any], str, int]] = {
    "cnn-0to4-8ep": ("cnn", {}, "0-4", 8),
    "cnn-0to4-1ep": ("cnn", {}, "0-4", 1),
    "cnn-01-4ep": ("cnn", {}, "0,1", 4),
    "cnn-234-4ep": ("cnn", {}, "2,3,4", 4),
    "cnn-small-0to4-4ep": ("cnn", {"widths": [8, 16]}, "0-4", 4),
    "mlp-0to4-8ep": ("mlp", {}, "0-4", 8),
    "mlp-wide-0to4-8ep": ("mlp", {"hidden": [256, 128]}, "0-4", 8),
    "mlp-01-4ep": ("mlp", {}, "0,1", 4),
    "cnn-random": ("cnn", {}, "0-4", 0),
    "mlp-random": ("mlp", {}, "0-4", 0),
}
# name: (data source, classes, resize to 28x28)
TARGETS: dict[str, tuple[str, str | None, bool]] = {
    "fashion 5-9": ("fashion", "5-9", False),
    "fashion 5,7,9 (footwear)": ("fashion", "5,7,9", False),
    "fashion 6,8": ("fashion", "6,8", False),
    "digits 8x8 -> 28x28": ("digits", None, True),
}


def fashion_subset(folder: Path, train_per_class: int, test_per_class: int) -> str:
    """A stratified subset of the real Fashion-MNIST as an .npz, so that each run reads a small file."""
    train, test = fashion_mnist.load()
    rng = np.random.default_rng(0)

    def take(ds, per_class):
        idx = np.sort(np.concatenate([rng.choice(np.flatnonzero(ds.y == c), per_class, replace=False)
                                      for c in range(10)]))
        return (ds.x[idx, 0] * 255).round().astype(np.uint8), ds.y[idx]

    x, y = take(train, train_per_class)
    x_test, y_test = take(test, test_per_class)
    path = folder / "fashion_subset.npz"
    np.savez(path, x=x, y=y, x_test=x_test, y_test=y_test, class_names=np.array(fashion_mnist.CLASS_NAMES))
    return str(path)


def build_zoo(folder: Path, fashion: str, quick: bool) -> dict[str, dict[str, Any]]:
    zoo = {}
    for name, (arch, options, classes, epochs) in SOURCES.items():
        out = folder / name
        started = time.perf_counter()
        data = DataConfig(fashion, classes=classes)
        if epochs == 0:  # random initialisation, saved as a checkpoint with the source data's normalisation
            from warmstart.data import load_splits

            torch.manual_seed(0)
            splits = load_splits(data, 0)
            model = create_model(arch, splits.train.input_shape, splits.train.num_classes, **options)
            info = CheckpointInfo(arch=model.arch, arch_args=model.arch_args, input_shape=model.input_shape,
                                  class_names=splits.train.class_names,
                                  preprocessing=Normalization.fit(splits.train).to_dict(), kind="image",
                                  extra={"data": {"source": fashion, "classes": classes}, "random_init": True})
            save_checkpoint(model, out / "model", info)
            accuracy = None
        else:
            result = warmstart.pretrain(data, model=ModelConfig(arch, options),
                                        train=TrainConfig(epochs=1 if quick else epochs, batch_size=64, lr=2e-3,
                                                          progress=False), out=out)
            accuracy = result.metrics.accuracy
        zoo[name] = {"path": str(out), "arch": arch, "options": options, "classes": classes, "epochs": epochs,
                     "source_test_accuracy": accuracy, "build_time_s": time.perf_counter() - started}
        print(f"source {name}: test accuracy {accuracy}, {zoo[name]['build_time_s']:.1f} s", file=sys.stderr)
    return zoo


def target_data(target: str, fashion: str, shots: int) -> DataConfig:
    source, classes, resize = TARGETS[target]
    return DataConfig(fashion if source == "fashion" else source, classes=classes, shots=shots, resize=resize)


STRATEGIES = ("full", "linear-probe")


def run(seeds: int, shots: int, epochs: int, probe_epochs: int, quick: bool) -> dict[str, Any]:
    torch.set_num_threads(1)
    load_before = uptime()
    started_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="warmstart-transferability-") as tmp:
        folder = Path(tmp)
        fashion = fashion_subset(folder, 200 if quick else 500, 60 if quick else 200)
        zoo = build_zoo(folder / "zoo", fashion, quick)
        candidates = [zoo[name]["path"] for name in SOURCES]
        names_by_path = {zoo[name]["path"]: name for name in SOURCES}
        score_names = SCORES.names()
        cells = []  # one per (target, seed)
        for target in TARGETS:
            for seed in range(seeds):
                data = target_data(target, fashion, shots)
                trains = {"full": TrainConfig(epochs=epochs, batch_size=16, lr=1e-3, seed=seed, progress=False),
                          "linear-probe": TrainConfig(epochs=probe_epochs, batch_size=16, lr=1e-3, seed=seed,
                                                      progress=False)}
                tick = time.perf_counter()
                ranking = warmstart.rank(data, candidates, train=trains["full"])
                rank_wall = time.perf_counter() - tick
                accuracies = {strategy: {} for strategy in STRATEGIES}
                times = {strategy: {} for strategy in STRATEGIES}
                for path in candidates:
                    for strategy in STRATEGIES:
                        result = warmstart.finetune(path, data, strategy=strategy, train=trains[strategy])
                        accuracies[strategy][names_by_path[path]] = result.metrics.accuracy
                        times[strategy][names_by_path[path]] = result.wall_time_s
                cells.append({
                    "target": target, "seed": seed, "train_examples": ranking.train_examples,
                    "scores": {names_by_path[c.candidate]: c.scores for c in ranking.candidates},
                    "feature_time_s": {names_by_path[c.candidate]: c.feature_time_s for c in ranking.candidates},
                    "scoring_time_s": {names_by_path[c.candidate]: c.score_time_s for c in ranking.candidates},
                    "rank_wall_s": rank_wall, "accuracy": accuracies, "train_wall_s": times,
                    "train_total_s": {strategy: sum(t.values()) for strategy, t in times.items()}})
                full = accuracies["full"]
                print(f"{target} seed {seed}: ranking {rank_wall:.1f} s, fine-tuning "
                      f"{sum(times['full'].values()):.1f} s; best {max(full, key=full.get)}", file=sys.stderr)
        load_after = uptime()
    return {"cells": cells, "zoo": zoo, "score_names": score_names,
            "settings": {"seeds": seeds, "shots": shots, "finetune_epochs": epochs, "probe_epochs": probe_epochs,
                         "strategies": list(STRATEGIES), "batch_size": 16, "lr": 1e-3, "quick": quick,
                         "fashion_subset": "500 train / 200 test images per class" if not quick else "200 / 60"},
            "total_wall_s": time.perf_counter() - started_all, "uptime_before": load_before,
            "uptime_after": load_after}


def analyse(raw: dict[str, Any]) -> dict[str, Any]:
    result = {strategy: correlations(raw, strategy) for strategy in STRATEGIES}
    return {"by_strategy": result, "timing": timing(raw)}


def correlations(raw: dict[str, Any], strategy: str) -> dict[str, Any]:
    sources = list(SOURCES)
    per_target = {}
    for target in TARGETS:
        cells = [c for c in raw["cells"] if c["target"] == target]
        accuracy = {s: statistics.mean(c["accuracy"][strategy][s] for c in cells) for s in sources}
        best_accuracy = max(accuracy.values())
        seed_agreement = [float(kendalltau([a["accuracy"][strategy][s] for s in sources],
                                           [b["accuracy"][strategy][s] for s in sources]).statistic)
                          for a, b in itertools.combinations(cells, 2)]
        row: dict[str, Any] = {"mean_accuracy": accuracy,
                               "seed_agreement_tau": statistics.mean(seed_agreement) if seed_agreement else None}
        for score in raw["score_names"]:
            values = {s: [c["scores"][s][score] for c in cells] for s in sources}
            usable = [s for s in sources if all(v is not None for v in values[s])]
            if len(usable) < 3:
                row[score] = None
                continue
            x = np.array([statistics.mean(values[s]) for s in usable])
            y = np.array([accuracy[s] for s in usable])
            top = usable[int(x.argmax())]
            row[score] = {"kendall_tau": float(kendalltau(x, y).statistic),
                          "weighted_tau": float(weightedtau(x, y).statistic),
                          "top_choice": top, "top_choice_accuracy": accuracy[top],
                          "top1_regret_points": 100 * (max(accuracy[s] for s in usable) - accuracy[top]),
                          "mean_score": dict(zip(usable, x.tolist())), "candidates": len(usable)}
        row["best_source"] = max(accuracy, key=accuracy.get)
        row["best_accuracy"] = best_accuracy
        per_target[target] = row
    summary = {}
    for score in raw["score_names"]:
        rows = [per_target[t][score] for t in TARGETS if per_target[t][score] is not None]
        summary[score] = {"mean_kendall_tau": statistics.mean(r["kendall_tau"] for r in rows),
                          "mean_weighted_tau": statistics.mean(r["weighted_tau"] for r in rows),
                          "mean_top1_regret_points": statistics.mean(r["top1_regret_points"] for r in rows)}
    agreements = [per_target[t]["seed_agreement_tau"] for t in TARGETS
                  if per_target[t]["seed_agreement_tau"] is not None]
    return {"per_target": per_target, "summary": summary,
            "mean_seed_agreement_tau": statistics.mean(agreements) if agreements else None}


def timing(raw: dict[str, Any]) -> dict[str, Any]:
    cells = raw["cells"]
    feature = [sum(c["feature_time_s"].values()) for c in cells]
    scoring = [sum(sum(t.values()) for t in c["scoring_time_s"].values()) for c in cells]
    finetune = [c["train_total_s"]["full"] for c in cells]
    per_score_time = {score: statistics.median(sum(c["scoring_time_s"][s].get(score, 0.0) for s in SOURCES)
                                               for c in cells) for score in raw["score_names"]}
    figures = {"median_ranking_s": statistics.median(a + b for a, b in zip(feature, scoring)),
              "median_feature_extraction_s": statistics.median(feature),
              "median_scoring_s": statistics.median(scoring),
              "median_scoring_s_per_score": per_score_time,
              "median_finetune_all_s": statistics.median(finetune),
              "median_ratio_finetune_over_ranking": statistics.median(
                  f / (a + b) for f, a, b in zip(finetune, feature, scoring)),
              "median_ratio_finetune_over_logme_ranking": statistics.median(
                  f / (a + sum(c["scoring_time_s"][s].get("logme", 0.0) for s in SOURCES))
                  for f, a, c in zip(finetune, feature, cells)),
              "median_linear_probe_all_s": statistics.median(c["train_total_s"]["linear-probe"] for c in cells)}
    return figures


TITLES = {"full": "fine-tuned (`full`)", "linear-probe": "linear-probed (`linear-probe`, frozen features)"}


def to_markdown(raw: dict[str, Any], analysis: dict[str, Any], command: str) -> str:
    s = raw["settings"]
    lines = [f"# Transferability scores against trained accuracy ({len(SOURCES)} sources, {len(TARGETS)} targets)",
             "", f"Command: `{command}`", "",
             f"Sources: {len(SOURCES)} models pretrained on Fashion-MNIST class subsets within 0-4 "
             f"({s['fashion_subset']}); targets disjoint from every source's classes, {s['shots']} labelled images "
             f"per class, {s['seeds']} seeds (draw + training seed). Every source is trained on every target with "
             f"strategy `full` for {s['finetune_epochs']} epochs and with `linear-probe` for {s['probe_epochs']} "
             f"epochs (batch {s['batch_size']}, lr {s['lr']}; the probe's head at 10x). The scores are computed on "
             "the same training draw before any training. Score and accuracy are averaged over seeds per source, "
             "then Kendall's tau and weighted tau (scipy) are taken over the sources, per target. Seed agreement: "
             "the tau between two seeds' accuracies over the sources (mean over seed pairs), the ceiling noise puts "
             "on any score.", "",
             "| source | arch | classes | pretrain epochs | source test acc |", "|---|---|---|---|---|"]
    for name, z in raw["zoo"].items():
        acc = "random init" if z["source_test_accuracy"] is None else f"{z['source_test_accuracy']:.3f}"
        lines.append(f"| {name} | {z['arch']} {z['options'] or ''} | {z['classes']} | {z['epochs']} | {acc} |")
    for strategy in STRATEGIES:
        result = analysis["by_strategy"][strategy]
        lines += ["", f"## Correlation with {TITLES[strategy]} accuracy (1 = the score orders the sources exactly "
                  "as training does)", "",
                  "| score | " + " | ".join(f"{t}: tau / w-tau" for t in TARGETS) + " | mean tau | mean weighted "
                  "tau | mean top-1 regret (points) |", "|---|" + "---|" * (len(TARGETS) + 3)]
        for score in raw["score_names"]:
            cells = []
            for t in TARGETS:
                r = result["per_target"][t][score]
                cells.append("n/a" if r is None else f"{r['kendall_tau']:.2f} / {r['weighted_tau']:.2f}")
            m = result["summary"][score]
            lines.append(f"| {score} | " + " | ".join(cells) + f" | {m['mean_kendall_tau']:.3f} | "
                         f"{m['mean_weighted_tau']:.3f} | {m['mean_top1_regret_points']:.1f} |")
        agreement = [result["per_target"][t]["seed_agreement_tau"] for t in TARGETS]
        lines.append("| *seed agreement* | " + " | ".join("n/a" if a is None else f"{a:.2f}" for a in agreement)
                     + " | " + ("n/a" if result["mean_seed_agreement_tau"] is None
                                else f"{result['mean_seed_agreement_tau']:.3f}") + " | | |")
        lines += ["", f"{TITLES[strategy].capitalize()} test accuracy, mean over seeds:", "",
                  "| source | " + " | ".join(TARGETS) + " |", "|---|" + "---|" * len(TARGETS)]
        for name in SOURCES:
            lines.append(f"| {name} | " + " | ".join(f"{result['per_target'][t]['mean_accuracy'][name]:.3f}"
                                                  for t in TARGETS) + " |")
        lines.append("| **best** | " + " | ".join(result["per_target"][t]["best_source"] for t in TARGETS) + " |")
    lines += ["", "Anchors: TLlib's reproduction (10 ImageNet models, 8 datasets, fine-tuned accuracy): mean "
              "weighted tau 0.665 LogME, 0.670 H-score."]
    tm = analysis["timing"]
    lines += ["", "## Time: ranking every candidate vs training every candidate (medians over target x seed)", "",
              f"- ranking, all {len(SOURCES)} candidates: {tm['median_ranking_s']:.2f} s "
              f"(feature extraction {tm['median_feature_extraction_s']:.2f} s, all scores "
              f"{tm['median_scoring_s']:.2f} s)",
              "- scoring per score, all candidates: " + ", ".join(
                  f"{k} {v:.3f} s" for k, v in tm["median_scoring_s_per_score"].items()),
              f"- fine-tuning (`full`) all {len(SOURCES)} candidates: {tm['median_finetune_all_s']:.1f} s; "
              f"linear-probing all: {tm['median_linear_probe_all_s']:.1f} s",
              f"- ratio fine-tuning / ranking with all scores: {tm['median_ratio_finetune_over_ranking']:.0f}x; "
              f"with LogME alone: {tm['median_ratio_finetune_over_logme_ranking']:.0f}x",
              f"- whole benchmark (zoo building included): {raw['total_wall_s']:.0f} s",
              f"- load: before `{raw['uptime_before']}`; after `{raw['uptime_after']}`",
              f"- machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, torch threads 1", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--shots", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=15, help="fine-tuning epochs")
    parser.add_argument("--probe-epochs", type=int, default=50, help="linear-probe epochs")
    parser.add_argument("--quick", action="store_true", help="smaller data and 1-epoch sources: a smoke test")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    command = command_line("benchmarks/transferability.py", python=".venv/bin/python")
    raw = run(args.seeds, args.shots, args.epochs, args.probe_epochs, args.quick)
    analysis = analyse(raw)
    write_results(args.out, NAME, {"command": command, **raw, **analysis}, to_markdown(raw, analysis, command))
    print(to_markdown(raw, analysis, command))


if __name__ == "__main__":
    main()
