"""Self-supervised pretraining (issue 17): does a source pretrained without labels, or a short task-adaptive stage
on the target's own unlabelled inputs, help few-shot transfer?

Text (`--part text`): task-adaptive SimCSE (Gao et al. 2021; Gururangan et al. 2020's TAPT) on the unlabelled
training texts of each dataset (`--tapt-texts` of them, drawn with seed 0; labels never read, the test split never
touched), starting from `minilm`, then the best few-shot recipe of the README's table at K labelled examples per
class (`--recipes`; default: lp-ft for SST-2 at 8, setfit for emotion and TREC at 8, full at 64, lora for SST-2 at
64; the recipes are benchmarks/text_few_shot.py's ARMS) against the same recipe from `minilm` as shipped. The TAPT
checkpoint is made once per dataset (it uses no labels, so it does not depend on the sampling seed) with
`warmstart pretrain --objective simcse --from minilm`; `finetune --adapt-on DATA` runs the same objective as one
flag. Scored on each dataset's whole test split.

Images (`--part images`): Fashion-MNIST, the `cnn` source. SimCLR on `--images` unlabelled training images of
classes 0-4 (or of all classes, `--simclr-classes all`), against the supervised source on the same images of 0-4
with labels at equal pretraining compute (SimCLR runs two views per image, so the supervised source trains twice the
epochs: the same forward and backward passes), and against scratch; each then fine-tuned on 10 labelled images per
class of 5-9 (`full`, and the L-BFGS linear probe) and scored on the test images of 5-9.

    python benchmarks/self_supervised.py --part text [--datasets sst2 emotion trec] [--shots 8 64] [--seeds 3]
        [--tapt-texts N] [--tapt-epochs 1] [--tapt-batch-size 64] [--tapt-lr 3e-5] [--temperature 0.05]
    python benchmarks/self_supervised.py --part images [--images N] [--simclr-epochs E] [--seeds 3]

Writes benchmarks/results/NAME.{md,json} (`--name`; self_supervised_text / self_supervised_images).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import warmstart
from warmstart import DataConfig, TrainConfig
from warmstart.data import load_split
from warmstart.objectives import create_objective
from warmstart.strategies import create_strategy

from _common import RESULTS, command_line, machine_info, write_results
from text_few_shot import ARMS, CLASSES, DATASETS, SHARED, fine_tuning_epochs

# the best recipe of README's text table per (dataset, K): benchmarks/results/text_summary.md
BEST = {("sst2", 8): "lp-ft", ("emotion", 8): "setfit", ("trec", 8): "setfit", ("sst2", 64): "lora",
        ("emotion", 64): "full", ("trec", 64): "full"}
BEST_TODAY = {("sst2", 8): 0.677, ("emotion", 8): 0.380, ("trec", 8): 0.707, ("sst2", 64): 0.792,
              ("emotion", 64): 0.566, ("trec", 64): 0.886}
GOALS = {("sst2", 8): 0.70, ("emotion", 8): 0.42}


def quiet(**options: Any) -> TrainConfig:
    return TrainConfig(**{"progress": False, "trackers": (), **options})


# --- text ------------------------------------------------------------------------------------------------------------

def unlabelled_texts(name: str, count: int | None, folder: Path) -> Path:
    """A .txt of ``count`` training texts of ``name`` (all with None), drawn with seed 0; outside the repository."""
    data = load_split(DataConfig(str(SHARED / name), **DATASETS[name]), "train")
    texts = list(data.x)
    if count is not None and count < len(texts):
        texts = [texts[i] for i in np.random.default_rng(0).choice(len(texts), count, replace=False)]
    path = folder / f"{name}_unlabelled.txt"
    path.write_text("\n".join(t.replace("\n", " ") for t in texts) + "\n", encoding="utf-8")
    return path


def tapt(name: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    texts = unlabelled_texts(name, args.tapt_texts, folder)
    objective = create_objective("simcse", temperature=args.temperature)
    result = warmstart.pretrain(str(texts), checkpoint="minilm", objective=objective, out=folder / f"tapt-{name}",
                                train=quiet(epochs=args.tapt_epochs, batch_size=args.tapt_batch_size,
                                            lr=args.tapt_lr, schedule="linear", weight_decay=0.0, seed=0))
    print(f"{name}: TAPT SimCSE on {result.info.extra['self_supervised']['examples']} texts, "
          f"{result.train_time_s:.0f} s, losses {[round(e['pretext_loss'], 4) for e in result.history]}", flush=True)
    return {"checkpoint": str(result.run_dir), "lineage": result.info.extra["self_supervised"],
            "train_time_s": result.train_time_s}


def dataset_folder(name: str, test_examples: int | None, folder: Path) -> Path:
    """The dataset's folder, or (``test_examples``) a copy outside the repository whose test.csv holds that many test
    rows drawn with seed 0: a smaller, noisier score on a loaded machine, said so in the results."""
    if test_examples is None:
        return SHARED / name
    import csv

    copy = folder / f"{name}_data"
    copy.mkdir(exist_ok=True)
    (copy / "train.csv").write_bytes((SHARED / name / "train.csv").read_bytes())
    with open(SHARED / name / "test.csv", newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    keep = sorted(np.random.default_rng(0).choice(len(rows), min(test_examples, len(rows)), replace=False))
    with open(copy / "test.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *(rows[i] for i in keep)])
    return copy


def few_shot_run(start: str, name: str, shots: int, recipe: str, seed: int, where: Path) -> dict[str, Any]:
    strategy_name, options = ARMS[recipe]["strategy"]
    train_options = dict(ARMS[recipe]["train"])
    train_options.setdefault("epochs", fine_tuning_epochs(shots * CLASSES[name]))
    data = DataConfig(str(where), shots=shots, val_fraction=0.0, **DATASETS[name])
    result = warmstart.finetune(start, data, strategy=create_strategy(strategy_name, **options),
                                train=quiet(**train_options, seed=seed))
    return {"seed": seed, "accuracy": result.metrics.accuracy, "macro_f1": result.metrics.macro_f1,
            "train_time_s": result.train_time_s}


def text_part(args: argparse.Namespace) -> dict[str, Any]:
    cells, sources = [], {}
    with tempfile.TemporaryDirectory(prefix="warmstart-tapt-") as tmp:
        for name in args.datasets:
            sources[name] = tapt(name, args, Path(tmp))
            where = dataset_folder(name, args.test_examples, Path(tmp))
            for shots in args.shots:
                recipe = args.recipe or BEST[name, shots]
                for arm, start in (("minilm", "minilm"), ("TAPT SimCSE + minilm", sources[name]["checkpoint"])):
                    runs = []
                    for seed in range(args.seeds):
                        runs.append(few_shot_run(start, name, shots, recipe, seed, where))
                        print(f"{name} K={shots} {recipe} from {arm}, seed {seed}: {runs[-1]['accuracy']:.4f}",
                              flush=True)
                    cells.append(summarise({"dataset": name, "shots": shots, "recipe": recipe, "start": arm,
                                            "best_today": BEST_TODAY.get((name, shots)),
                                            "goal": GOALS.get((name, shots))}, runs))
                    write_report(args, {"tapt": sources, "cells": cells})
    return {"tapt": sources, "cells": cells}


# --- images ----------------------------------------------------------------------------------------------------------

def image_part(args: argparse.Namespace) -> dict[str, Any]:
    from warmstart.data import fashion_mnist

    train, _ = fashion_mnist.load()
    rng = np.random.default_rng(0)
    pool = np.flatnonzero(train.y < 5) if args.simclr_classes == "0-4" else np.arange(len(train.y))
    chosen = np.sort(rng.choice(pool, min(args.images, len(pool)), replace=False))
    supervised_pool = np.sort(rng.choice(np.flatnonzero(train.y < 5), min(args.images, int((train.y < 5).sum())),
                                         replace=False))
    cells, sources = [], {}
    with tempfile.TemporaryDirectory(prefix="warmstart-simclr-") as tmp:
        unlabelled = Path(tmp) / "unlabelled.npz"
        np.savez(unlabelled, x=(train.x[chosen, 0] * 255).round().astype(np.uint8))
        labelled = Path(tmp) / "source.npz"
        np.savez(labelled, x=(train.x[supervised_pool, 0] * 255).round().astype(np.uint8), y=train.y[supervised_pool])
        simclr = warmstart.pretrain(str(unlabelled), model="cnn", out=Path(tmp) / "simclr",
                                    objective=create_objective("simclr", temperature=args.temperature_images),
                                    train=quiet(epochs=args.simclr_epochs, batch_size=256, lr=2e-3, seed=0))
        sources["simclr"] = {"checkpoint": str(simclr.run_dir), "train_time_s": simclr.train_time_s,
                             "lineage": simclr.info.extra["self_supervised"]}
        print(f"SimCLR: {simclr.train_time_s:.0f} s, losses {[round(e['pretext_loss'], 3) for e in simclr.history]}",
              flush=True)
        supervised = warmstart.pretrain(DataConfig(str(labelled), val_fraction=0.0), model="cnn",
                                        out=Path(tmp) / "supervised",
                                        train=quiet(epochs=2 * args.simclr_epochs, batch_size=256, lr=2e-3, seed=0))
        sources["supervised"] = {"checkpoint": str(supervised.run_dir), "train_time_s": supervised.train_time_s,
                                 "source_test_accuracy": supervised.metrics.accuracy}
        print(f"supervised source: {supervised.train_time_s:.0f} s, test accuracy on 0-4 "
              f"{supervised.metrics.accuracy:.4f}", flush=True)
        target = dict(classes="5-9", shots=10, val_fraction=0.0)
        for arm, start in (("scratch", None), ("supervised 0-4", sources["supervised"]["checkpoint"]),
                           ("SimCLR", sources["simclr"]["checkpoint"])):
            for strategy, options, train_options in (("full", {}, dict(epochs=30, batch_size=16)),
                                                     ("linear-probe", {"solver": "lbfgs"}, {})):
                if start is None and strategy == "linear-probe":
                    continue  # a random backbone's probe says nothing
                runs = []
                for seed in range(args.seeds):
                    result = warmstart.finetune(start, DataConfig("fashion-mnist", **target),
                                                model="cnn" if start is None else None,
                                                strategy=create_strategy(strategy, **options),
                                                train=quiet(**train_options, seed=seed))
                    runs.append({"seed": seed, "accuracy": result.metrics.accuracy,
                                 "macro_f1": result.metrics.macro_f1, "train_time_s": result.train_time_s})
                    print(f"images {arm} {strategy} seed {seed}: {result.metrics.accuracy:.4f}", flush=True)
                cells.append(summarise({"start": arm, "strategy": strategy}, runs))
                write_report(args, {"sources": sources, "cells": cells})
    return {"sources": sources, "cells": cells}


# --- the report ------------------------------------------------------------------------------------------------------

def summarise(cell: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    accuracies = [r["accuracy"] for r in runs]
    return {**cell, "runs": runs, "accuracy_mean": statistics.mean(accuracies),
            "accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0}


def write_report(args: argparse.Namespace, body: dict[str, Any]) -> dict[str, Any]:
    report = {"command": command_line("benchmarks/self_supervised.py",
                                      prefix="OMP_NUM_THREADS=1 nice -n 10"),
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "machine": machine_info(), **body, "total_time_s": time.perf_counter() - STARTED}
    write_results(args.out, args.name, report, to_markdown(args, report))
    return report


def to_markdown(args: argparse.Namespace, report: dict[str, Any]) -> str:
    lines = [f"# Self-supervised pretraining ({args.part})", "",
             f"Command: `{report['command']}` ({report['total_time_s']:.0f} s; "
             f"{report['machine']['torch_threads']} torch thread(s), load average {report['machine']['load_average']}"
             "). Accuracy on " + ("the whole test split" if getattr(args, "test_examples", None) is None else
                                  f"{args.test_examples} test rows drawn with seed 0 (not the whole test split)")
             + ", mean ± std over the sampling seeds.", ""]
    if args.part == "text":
        lines += ["| dataset | K per class | recipe | start | accuracy | seeds | best today (README) | goal |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in report["cells"]:
            lines.append(f"| {c['dataset']} | {c['shots']} | {c['recipe']} | {c['start']} | "
                         f"{c['accuracy_mean']:.3f} ± {c['accuracy_std']:.3f} | {len(c['runs'])} | "
                         f"{c['best_today'] or '-'} | {c['goal'] or '-'} |")
        lines += ["", "TAPT stages (SimCSE from minilm, labels unused):", ""]
        for name, t in report["tapt"].items():
            s = t["lineage"]
            lines.append(f"- {name}: {s['examples']} texts, {s['epochs']} epoch(s), {s['steps']} steps of "
                         f"{s['batch_size']} at lr {s['lr']:g}, final loss {s['final_loss']:.4f}, "
                         f"{t['train_time_s']:.0f} s")
    else:
        lines += ["| source | fine-tuning on 10 per class of 5-9 | accuracy | seeds |", "|---|---|---|---|"]
        for c in report["cells"]:
            lines.append(f"| {c['start']} | {c['strategy']} | {c['accuracy_mean']:.3f} ± {c['accuracy_std']:.3f} | "
                         f"{len(c['runs'])} |")
        lines += ["", "Sources: " + "; ".join(f"{k}: {v['train_time_s']:.0f} s" for k, v in
                                               report["sources"].items())]
    return "\n".join(lines) + "\n"


STARTED = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("text", "images"), required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--datasets", nargs="+", default=["sst2", "emotion", "trec"], choices=list(DATASETS))
    parser.add_argument("--shots", nargs="+", type=int, default=[8, 64])
    parser.add_argument("--recipe", choices=list(ARMS), help="one recipe for every cell (default: the best per cell)")
    parser.add_argument("--tapt-texts", type=int, default=None, help="unlabelled texts per dataset (default: all)")
    parser.add_argument("--tapt-epochs", type=int, default=1)
    parser.add_argument("--tapt-batch-size", type=int, default=64)
    parser.add_argument("--tapt-lr", type=float, default=3e-5)
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--test-examples", type=int, default=None,
                        help="score on this many test rows (seed 0) instead of the whole test split")
    parser.add_argument("--images", type=int, default=30000, help="pretraining images (SimCLR and supervised)")
    parser.add_argument("--simclr-classes", choices=("0-4", "all"), default="0-4")
    parser.add_argument("--simclr-epochs", type=int, default=20)
    parser.add_argument("--temperature-images", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    args.name = args.name or f"self_supervised_{args.part}"
    torch.manual_seed(0)
    text_part(args) if args.part == "text" else image_part(args)


if __name__ == "__main__":
    main()
