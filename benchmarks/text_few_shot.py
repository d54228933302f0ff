"""Few-shot text classification with all-MiniLM-L6-v2 on the shared datasets, against the peers' baseline.

For TREC-6, SST-2, emotion (8 and 64 labelled examples per class) and Banking77 (8 per class), 3 sampling seeds:
warmstart's `linear-probe` from the `minilm` alias (the encoder runs once per dataset split; the head trains on
the cached embeddings) and `full` fine-tuning at 8 per class. The peers' figures, from ../shared/BASELINES.md (frozen
encoder + scikit-learn LogisticRegression, same model, same seeds protocol), are printed beside ours.
Writes benchmarks/results/text_few_shot.{md,json}.

    .venv/bin/python benchmarks/text_few_shot.py [--seeds 3] [--datasets trec sst2 emotion banking77]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

import warmstart
from warmstart import DataConfig, TrainConfig
from warmstart.io import write_json, write_text

RESULTS = Path(__file__).parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASETS = {"trec": {"label_column": "label"}, "sst2": {"label_column": "label"},
            "emotion": {"label_column": "label"}, "banking77": {"label_column": "category"}}
SHOTS = {"trec": (8, 64), "sst2": (8, 64), "emotion": (8, 64), "banking77": (8,)}
# ../shared/BASELINES.md: frozen encoder + LogisticRegression, mean ± std over 3 sampling seeds
PEERS = {("sst2", 8): "0.607 ± 0.023", ("sst2", 64): "0.746 ± 0.003", ("emotion", 8): "0.329 ± 0.020",
         ("emotion", 64): "0.464 ± 0.005", ("trec", 8): "0.544 ± 0.018", ("trec", 64): "0.760 ± 0.021",
         ("banking77", 8): "0.802 ± 0.005"}
PROBE = TrainConfig(epochs=100, batch_size=32, lr=1e-3, progress=False)  # the head trains at 10x: 1e-2
FULL = TrainConfig(epochs=10, batch_size=16, lr=5e-5, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--full", action="store_true", help="also full fine-tuning at 8 per class (slower)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = time.perf_counter()
    cells = []
    for name in args.datasets:
        arms = [("linear-probe", PROBE, SHOTS[name])] + ([("full", FULL, (8,))] if args.full else [])
        for strategy, train, shots_list in arms:
            for shots in shots_list:
                runs = []
                for seed in range(args.seeds):
                    data = DataConfig(str(SHARED / name), shots=shots, **DATASETS[name])
                    result = warmstart.finetune("minilm", data, strategy=strategy,
                                                train=TrainConfig(**{**train.__dict__, "seed": seed}))
                    runs.append({"seed": seed, "accuracy": result.metrics.accuracy,
                                 "macro_f1": result.metrics.macro_f1, "train_time_s": result.train_time_s,
                                 "wall_time_s": result.wall_time_s})
                    print(f"{name} {strategy} K={shots} seed {seed}: {result.metrics.accuracy:.4f} "
                          f"({result.train_time_s:.1f} s train, {result.wall_time_s:.1f} s in all)", flush=True)
                acc = [r["accuracy"] for r in runs]
                cells.append({"dataset": name, "strategy": strategy, "shots": shots, "runs": runs,
                              "accuracy_mean": statistics.mean(acc),
                              "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                              "train_time_s": statistics.median(r["train_time_s"] for r in runs),
                              "wall_time_s": statistics.median(r["wall_time_s"] for r in runs),
                              "peer": PEERS.get((name, shots)) if strategy == "linear-probe" else None})
    report = {"command": "python benchmarks/text_few_shot.py " + " ".join(sys.argv[1:]),
              "machine": {"cpu_count": os.cpu_count(), "torch": torch.__version__},
              "settings": {"linear-probe": {**PROBE.__dict__, "head_lr": PROBE.lr * 10},
                           "full": FULL.__dict__, "max_length": 64},
              "cells": cells, "total_time_s": time.perf_counter() - started}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "text_few_shot.json", report)
    write_text(args.out / "text_few_shot.md", to_markdown(report))
    print(to_markdown(report))


def to_markdown(report: dict) -> str:
    lines = ["# Few-shot text classification: all-MiniLM-L6-v2 (`minilm`)", "",
             f"Command: `{report['command'].strip()}` (total {report['total_time_s']:.0f} s on "
             f"{report['machine']['cpu_count']} CPU cores). Test split of each dataset; mean ± std over 3 sampling "
             "seeds. `linear-probe`: the encoder runs once, the head trains 100 epochs on the cached mean-pooled, "
             "L2-normalised embeddings (AdamW, head lr 1e-2). Peers: ../shared/BASELINES.md, frozen encoder + scikit-learn "
             "LogisticRegression on normalised embeddings.", "",
             "| dataset | K per class | strategy | accuracy | peers (frozen + LogReg) | train s (median) | "
             "wall s (median) |", "|---|---|---|---|---|---|---|"]
    for c in report["cells"]:
        lines.append(f"| {c['dataset']} | {c['shots']} | {c['strategy']} | {c['accuracy_mean']:.3f} ± "
                     f"{c['accuracy_std']:.3f} | {c['peer'] or '-'} | {c['train_time_s']:.1f} | "
                     f"{c['wall_time_s']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
