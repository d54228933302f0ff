"""The strategy table: every fine-tuning strategy against scratch on Fashion-MNIST classes 0-4 -> 5-9.

One CNN is pretrained on classes 0-4 (as `warmstart demo` does). For K in {5, 10, 50} labelled images per class
(40 epochs, batch 16) and for all 6,000 per class (3 epochs, batch 128), each strategy fine-tunes it and the same
architecture trains from scratch, over 3 seeds, through `warmstart.compare`. Test: all 5,000 test images of 5-9.
This table is the evidence for the rule of the `auto` strategy. Writes benchmarks/results/strategies.{md,json,csv}.

    .venv/bin/python benchmarks/strategies.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


import warmstart
from warmstart import DataConfig, TrainConfig
from warmstart.reporting.compare_tables import to_csv
from warmstart.io import write_text

from _common import RESULTS, command_line, machine_info, pretrain_source, write_results


STRATEGIES = ("full", "linear-probe", "lp-ft", "gradual-unfreeze", "layerwise-lr", "l2-sp")
FEW = TrainConfig(epochs=40, batch_size=16, lr=1e-3, progress=False)
ALL = TrainConfig(epochs=3, batch_size=128, lr=1e-3, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--shots", type=int, nargs="+", default=[5, 10, 50])
    parser.add_argument("--all-shots", type=int, default=6000, help="K that takes every training image")
    parser.add_argument("--pretrain-epochs", type=int, default=6)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    started = time.perf_counter()
    data = DataConfig("fashion-mnist", classes="5-9")
    with tempfile.TemporaryDirectory(prefix="warmstart-strategies-") as tmp:
        source = pretrain_source(Path(tmp) / "src", epochs=args.pretrain_epochs)
        print(f"source: accuracy {source.metrics.accuracy:.4f}, {source.train_time_s:.0f} s", flush=True)
        parts = []
        for shots, train in ((args.shots, FEW), ([args.all_shots], ALL)):
            result = warmstart.compare(source.checkpoint, data, strategies=STRATEGIES, shots=shots,
                                       seeds=args.seeds, train=train, out=Path(tmp) / f"k{shots[0]}", plateau=False)
            parts.append((train, result))
            print(to_csv(result), flush=True)

    cells = [dict(cell.__dict__, epochs=train.epochs, batch_size=train.batch_size)
             for train, result in parts for cell in result.cells]
    report = {"command": command_line("benchmarks/strategies.py"), "machine": machine_info(),
              "source_accuracy": source.metrics.accuracy, "source_train_time_s": source.train_time_s,
              "cells": cells, "total_time_s": time.perf_counter() - started}
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(args.out, "strategies", report, to_markdown(report, args.all_shots))
    write_text(args.out / "strategies.csv", "".join(to_csv(result) for _, result in parts))
    print(to_markdown(report, args.all_shots))


def to_markdown(report: dict, all_shots: int) -> str:
    cells = report["cells"]
    shots = sorted({c["shots"] for c in cells})
    label = {k: ("all" if k == all_shots else str(k)) for k in shots}
    arms = ["scratch", *STRATEGIES]
    lines = ["# Fine-tuning strategies: Fashion-MNIST classes 0-4 -> 5-9", "",
             f"Command: `{report['command'].strip()}` (total {report['total_time_s'] / 60:.0f} min on "
             f"{report['machine']['cpu_count']} CPU cores). Source `cnn`: test accuracy "
             f"{report['source_accuracy']:.4f} on classes 0-4. K per class: 40 epochs at batch 16; all "
             f"({all_shots} per class): 3 epochs at batch 128; AdamW, lr 1e-3, cosine; `linear-probe` trains its "
             "head at 10x. Test accuracy on all 5,000 test images of classes 5-9, mean ± std over "
             f"{cells[0]['seeds']} seeds; gain over scratch in points, paired by seed, * where p < 0.05.", "",
             "| strategy | " + " | ".join(f"K={label[k]}" for k in shots) + " |",
             "|---|" + "---|" * len(shots)]
    by = {(c["strategy"], c["shots"]): c for c in cells}
    for arm in arms:
        row = []
        for k in shots:
            c = by[(arm, k)]
            text = f"{c['accuracy_mean']:.4f} ± {c['accuracy_std']:.4f}"
            if c["gain_points_mean"] is not None:
                text += f" ({c['gain_points_mean']:+.1f}{'*' if c['significant'] else ''})"
            row.append(text)
        lines.append(f"| {arm} | " + " | ".join(row) + " |")
    lines += ["", "Mean train time per run (s):", "",
              "| strategy | " + " | ".join(f"K={label[k]}" for k in shots) + " |", "|---|" + "---|" * len(shots)]
    for arm in arms:
        lines.append(f"| {arm} | " + " | ".join(f"{by[(arm, k)]['train_time_s']:.1f}" for k in shots) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
