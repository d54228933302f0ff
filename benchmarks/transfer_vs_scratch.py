"""Transfer versus scratch on the demo's scenario, for K in {5, 10, 50, 100} labelled images per class.

One CNN is pretrained on Fashion-MNIST classes 0-4 (as `warmstart demo` does); for each K and each of 3 seeds, it is
fine-tuned on classes 5-9 (all layers, and with the backbone frozen) and the same architecture is trained from
scratch on the same K images with the same budget. Accuracy and macro-F1 are on all 5,000 test images of classes
5-9. Writes benchmarks/results/transfer_vs_scratch.{json,md}.

    .venv/bin/python benchmarks/transfer_vs_scratch.py [--shots 5 10 50 100] [--seeds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


from warmstart.demo import compare_with_scratch

from _common import RESULTS, command_line, machine_info, pretrain_source, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, nargs="+", default=[5, 10, 50, 100])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pretrain-epochs", type=int, default=6)
    parser.add_argument("--finetune-epochs", type=int, default=40)
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="warmstart-bench-") as tmp:
        source = pretrain_source(Path(tmp) / "source", data=args.data, epochs=args.pretrain_epochs)
        print(f"source: accuracy {source.metrics.accuracy:.4f} on classes 0-4, {source.train_time_s:.1f} s",
              flush=True)
        cells = []
        for shots in args.shots:
            result = compare_with_scratch(source, data=args.data, target_classes="5-9", shots=shots,
                                          seeds=args.seeds, finetune_epochs=args.finetune_epochs, model="cnn",
                                          out=Path(tmp) / f"k{shots}", plateau=False)
            cells.append(result.to_dict() | {"run_dir": None})
            print(f"K={shots}: gain {result.gain_points_mean:+.2f} ± {result.gain_points_std:.2f} points", flush=True)

    report = {
        "command": command_line("benchmarks/transfer_vs_scratch.py"),
        "machine": machine_info(),
        "settings": {"pretrain_epochs": args.pretrain_epochs, "finetune_epochs": args.finetune_epochs,
                     "finetune_batch_size": 16, "optimizer": "adamw", "lr": 1e-3, "schedule": "cosine",
                     "freeze_head_lr": 1e-2, "seeds": args.seeds},
        "source": {"accuracy": source.metrics.accuracy, "train_time_s": source.train_time_s},
        "cells": cells,
        "total_time_s": time.perf_counter() - started,
    }
    write_results(args.out, "transfer_vs_scratch", report, to_markdown(report))
    print(to_markdown(report))


def to_markdown(report: dict) -> str:
    s = report["settings"]
    lines = ["# Transfer vs scratch: Fashion-MNIST classes 0-4 -> 5-9", "",
             f"Command: `{report['command'].strip()}` (total {report['total_time_s']:.0f} s; "
             f"{report['machine']['cpu_count']} CPU cores, torch {report['machine']['torch']}).", "",
             f"Source: `cnn` pretrained {s['pretrain_epochs']} epochs on classes 0-4 (test accuracy "
             f"{report['source']['accuracy']:.4f}, {report['source']['train_time_s']:.0f} s, once). Each target run: "
             f"{s['finetune_epochs']} epochs, batch {s['finetune_batch_size']}, AdamW lr {s['lr']} with cosine decay "
             f"(frozen backbone: its head at lr {s['freeze_head_lr']}, the `freeze` default of 10x); test on all 5,000 "
             "images of classes 5-9; mean ± std over "
             f"{s['seeds']} seeds, each seed drawing its own K images per class, shared by the three arms.", "",
             "| K per class | transfer: full | transfer: frozen backbone | scratch | gain (points) | wins | "
             "train s (full / scratch) |",
             "|---|---|---|---|---|---|---|"]
    for cell in report["cells"]:
        rows = {r["method"]: r for r in cell["rows"]}
        full, frozen, scratch = (rows["transfer: full fine-tuning"], rows["transfer: frozen backbone"],
                                 rows["scratch (same budget)"])
        fmt = lambda r: f"{r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f}"  # noqa: E731
        lines.append(f"| {cell['shots']} | {fmt(full)} | {fmt(frozen)} | {fmt(scratch)} | "
                     f"{cell['gain_points_mean']:+.2f} ± {cell['gain_points_std']:.2f} | "
                     f"{cell['transfer_wins']}/{len(cell['seeds'])} | "
                     f"{full['train_time_s']:.1f} / {scratch['train_time_s']:.1f} |")
    lines += ["", "Macro-F1 and per-run wall times are in transfer_vs_scratch.json.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
