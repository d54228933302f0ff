"""What augmentation buys in the few-shot case: Fashion-MNIST classes 0-4 -> 5-9, K images per class.

One CNN is pretrained on classes 0-4 (as `warmstart demo` does, no augmentation); for each augmentation setting and
each of 3 seeds it is fine-tuned (all layers) on K images per class of classes 5-9, and, as a reference, the same
architecture is trained from scratch with the same setting. Each seed draws its own K images, shared by every
setting. Accuracy is on all 5,000 test images of classes 5-9. Writes benchmarks/results/augmentation.{json,md}.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/augmentation.py [--shots 10] [--seeds 3]
    # a longer schedule, transfer only:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/augmentation.py --pretrain-epochs 3 --finetune-epochs 100 \
        --settings none light randaugment trivialaugment mixup --arms transfer --name augmentation_100_epochs
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


import warmstart
from warmstart import DataConfig, TrainConfig

from _common import RESULTS, command_line, machine_info, pretrain_source, write_results

TITLES = {"transfer": "transfer (fine-tuned)", "scratch": "scratch"}
# (label, --augment, --mix)
SETTINGS = [("none", "none", "none"), ("light", "light", "none"), ("strong", "strong", "none"),
            ("randaugment", "randaugment", "none"), ("trivialaugment", "trivialaugment", "none"),
            ("mixup", "none", "mixup"), ("cutmix", "none", "cutmix"), ("light + mixup", "light", "mixup")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pretrain-epochs", type=int, default=6)
    parser.add_argument("--finetune-epochs", type=int, default=40)
    parser.add_argument("--settings", nargs="+", default=[label for label, _, _ in SETTINGS],
                        help="which settings to run (their labels)")
    parser.add_argument("--arms", nargs="+", default=["transfer", "scratch"], choices=["transfer", "scratch"])
    parser.add_argument("--name", default="augmentation", help="results file name, without extension")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    settings = [s for s in SETTINGS if s[0] in args.settings]

    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="warmstart-bench-") as tmp:
        source = pretrain_source(Path(tmp) / "source", epochs=args.pretrain_epochs)
        print(f"source: accuracy {source.metrics.accuracy:.4f} on classes 0-4, {source.train_time_s:.1f} s",
              flush=True)
        target = DataConfig("fashion-mnist", classes="5-9", shots=args.shots)
        for label, augment, mix in settings:
            for start in args.arms:
                accuracies, times = [], []
                for seed in range(args.seeds):
                    train = TrainConfig(epochs=args.finetune_epochs, batch_size=16, lr=1e-3, seed=seed,
                                        augment=augment, mix=mix, progress=False)
                    result = warmstart.finetune(source.checkpoint if start == "transfer" else None, target,
                                                model=None if start == "transfer" else "cnn", train=train)
                    accuracies.append(result.metrics.accuracy)
                    times.append(result.train_time_s)
                rows.append({"setting": label, "augment": augment, "mix": mix, "start": start,
                             "accuracies": accuracies, "accuracy_mean": statistics.mean(accuracies),
                             "accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
                             "train_time_s_mean": statistics.mean(times)})
                print(f"{label:16s} {start:8s} {rows[-1]['accuracy_mean']:.4f} ± {rows[-1]['accuracy_std']:.4f} "
                      f"({rows[-1]['train_time_s_mean']:.1f} s)", flush=True)

    report = {
        "command": command_line("benchmarks/augmentation.py"),
        "machine": machine_info(),
        "settings": {"shots": args.shots, "seeds": args.seeds, "pretrain_epochs": args.pretrain_epochs,
                     "finetune_epochs": args.finetune_epochs, "batch_size": 16, "optimizer": "adamw", "lr": 1e-3,
                     "schedule": "cosine", "mix_alpha": 1.0},
        "source": {"accuracy": source.metrics.accuracy, "train_time_s": source.train_time_s},
        "rows": rows,
        "name": args.name,
        "total_time_s": time.perf_counter() - started,
    }
    write_results(args.out, args.name, report, to_markdown(report))
    print(to_markdown(report))


def to_markdown(report: dict) -> str:
    s = report["settings"]
    by = {(r["setting"], r["start"]): r for r in report["rows"]}
    arms = list(dict.fromkeys(r["start"] for r in report["rows"]))
    baseline = {start: by[("none", start)]["accuracy_mean"] for start in arms if ("none", start) in by}
    lines = [f"# Augmentation in the few-shot case: Fashion-MNIST 0-4 -> 5-9, {s['shots']} images per class", "",
             f"Command: `{report['command'].strip()}` (total {report['total_time_s']:.0f} s; "
             f"{report['machine']['cpu_count']} CPU cores shared with other jobs, load average "
             f"{report['machine']['load_average'][0]:.1f} at the end, torch {report['machine']['torch']}: times are "
             "inflated by that load; the accuracies are not).", "",
             f"Source: `cnn` pretrained {s['pretrain_epochs']} epochs on classes 0-4 without augmentation (test "
             f"accuracy {report['source']['accuracy']:.4f}). Each target run: {s['finetune_epochs']} epochs, batch "
             f"{s['batch_size']}, AdamW lr {s['lr']}, cosine decay, all layers trained; mixup/cutmix alpha "
             f"{s['mix_alpha']}. Test: all 5,000 images of classes 5-9. Mean ± std over {s['seeds']} seeds (each "
             "seed draws its own K images, shared by every setting).", "",
             "| setting | " + " | ".join(f"{TITLES[a]} | vs none (points)" for a in arms) + " |",
             "|---" * (1 + 2 * len(arms)) + "|"]
    for label in dict.fromkeys(r["setting"] for r in report["rows"]):
        cells = []
        for arm in arms:
            r = by[(label, arm)]
            gain = (f"{100 * (r['accuracy_mean'] - baseline[arm]):+.2f}" if arm in baseline else "")
            cells.append(f"{r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f} | {gain}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", f"Per-seed accuracies and training times are in {report.get('name', 'augmentation')}.json.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
