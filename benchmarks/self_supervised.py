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

Images (`--part images`): Fashion-MNIST, the `cnn` source. SimCLR on unlabelled training images (labels never
read): `--images` of classes 0-4, or with `--simclr-classes all` all 60,000 of the ten classes (`--simclr-images N`
for another count); against the supervised source on `--images` labelled images of 0-4 at equal pretraining compute
(the same forward and backward image passes: SimCLR runs two views per image, so the supervised source trains
2 x SimCLR's images / its own x SimCLR's epochs); against SimCLR then supervised fine-tuning on those labelled
images of 0-4 with the supervised source's recipe (it spends both budgets, and the report says so); and against
scratch. Each source is then fine-tuned on 10 labelled images per class of 5-9 (`full`, and the L-BFGS linear probe)
and scored on the test images of 5-9. It prints a time estimate first (training steps timed on this machine), and
writes the results after every source and every arm, so a run that is stopped keeps what finished.

    python benchmarks/self_supervised.py --part text [--datasets sst2 emotion trec] [--shots 8 64] [--seeds 3]
        [--tapt-texts N] [--tapt-epochs 1] [--tapt-batch-size 64] [--tapt-lr 3e-5] [--temperature 0.05]
    python benchmarks/self_supervised.py --part images [--images N] [--simclr-classes 0-4|all] [--simclr-images N]
        [--simclr-epochs E] [--seeds 3]

The issue's protocol (on a quiet machine; hours on CPU):

    python benchmarks/self_supervised.py --part images --images 30000 --simclr-epochs 20 --seeds 3
    python benchmarks/self_supervised.py --part images --images 30000 --simclr-classes all --simclr-epochs 20 \
        --seeds 3 --name self_supervised_images_all

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

PRETRAIN_BATCH, PRETRAIN_LR = 256, 2e-3  # every image source's recipe (SimCLR, supervised, SimCLR + supervised)
TARGET = dict(classes="5-9", shots=10, val_fraction=0.0)
FINE_TUNING = (("full", {}, dict(epochs=30, batch_size=16)), ("linear-probe", {"solver": "lbfgs"}, {}))
TEST_IMAGES = 5000  # the test images of classes 5-9, which every fine-tuned model is scored on


def image_plan(args: argparse.Namespace, simclr_images: int, supervised_images: int) -> dict[str, Any]:
    """The image part's pretraining budgets. Equal compute counts forward and backward image passes: SimCLR runs
    two views of each image, so the supervised source trains 2 x simclr_images / supervised_images times SimCLR's
    epochs (rounded), the same passes on its own images."""
    supervised_epochs = max(1, round(2 * args.simclr_epochs * simclr_images / supervised_images))
    return {"simclr_images": simclr_images, "simclr_epochs": args.simclr_epochs,
            "simclr_passes": 2 * simclr_images * args.simclr_epochs,
            "supervised_images": supervised_images, "supervised_epochs": supervised_epochs,
            "supervised_passes": supervised_images * supervised_epochs}


def estimate_seconds(plan: dict[str, Any], seeds: int) -> float:
    """A rough wall time for the whole image part: one training step of the `cnn` at the pretraining batch and at
    the fine-tuning batch, timed now on this machine (under its current load), times the steps planned, plus 10%
    for the optimizer and data loading; each test scoring as a third of a step per batch (forward only)."""
    from warmstart.models import create_model
    from warmstart.strategies.auto import measure_step_seconds

    torch.manual_seed(0)
    model = create_model("cnn", (1, 28, 28), 5)
    step = {b: measure_step_seconds(model, torch.randn(b, 1, 28, 28), torch.randint(0, 5, (b,)))
            for b in (PRETRAIN_BATCH, 16)}
    pretraining = (2 * batches(plan["simclr_images"], PRETRAIN_BATCH) * plan["simclr_epochs"]  # two views a step
                   + 2 * batches(plan["supervised_images"], PRETRAIN_BATCH) * plan["supervised_epochs"])
    full_runs, probe_runs = 4 * seeds, 3 * seeds  # scratch + 3 sources with full; the 3 sources with the probe
    fine_tuning = full_runs * FINE_TUNING[0][2]["epochs"] * batches(50, 16)
    scoring = (full_runs + probe_runs) * batches(TEST_IMAGES, PRETRAIN_BATCH) / 3
    return 1.1 * (step[PRETRAIN_BATCH] * (pretraining + scoring) + step[16] * fine_tuning)


def batches(examples: int, batch_size: int) -> int:
    return -(-examples // batch_size)


def image_part(args: argparse.Namespace) -> dict[str, Any]:
    from warmstart.data import fashion_mnist

    train, _ = fashion_mnist.load()
    rng = np.random.default_rng(0)
    source_pool = np.flatnonzero(train.y < 5)
    pool = source_pool if args.simclr_classes == "0-4" else np.arange(len(train.y))
    simclr_count = args.simclr_images or (args.images if args.simclr_classes == "0-4" else len(pool))
    chosen = np.sort(rng.choice(pool, min(simclr_count, len(pool)), replace=False))
    supervised_pool = np.sort(rng.choice(source_pool, min(args.images, len(source_pool)), replace=False))
    plan = image_plan(args, len(chosen), len(supervised_pool))
    estimate = estimate_seconds(plan, args.seeds)
    print(f"images: SimCLR on {plan['simclr_images']} unlabelled images ({args.simclr_classes}) for "
          f"{plan['simclr_epochs']} epoch(s); the supervised source on {plan['supervised_images']} labelled images of "
          f"0-4 for {plan['supervised_epochs']} epoch(s) (equal image passes); estimated total about "
          f"{estimate / 60:.0f} minutes (steps timed on this machine now)", flush=True)
    cells, sources = [], {}
    body = {"plan": plan, "estimated_total_s": estimate, "sources": sources, "cells": cells}

    def save(stage: str) -> None:  # partial results after every source and arm: a stopped run keeps what finished
        write_report(args, {**body, "finished": stage == "finished"})
        if stage != "finished":
            elapsed = time.perf_counter() - STARTED
            print(f"  [{stage} done: {elapsed / 60:.1f} of about {estimate / 60:.0f} minutes estimated]", flush=True)

    pretrain_train = dict(batch_size=PRETRAIN_BATCH, lr=PRETRAIN_LR, seed=0)
    with tempfile.TemporaryDirectory(prefix="warmstart-simclr-") as tmp:
        unlabelled = Path(tmp) / "unlabelled.npz"
        np.savez(unlabelled, x=(train.x[chosen, 0] * 255).round().astype(np.uint8))  # inputs only: no labels
        labelled = Path(tmp) / "source.npz"
        np.savez(labelled, x=(train.x[supervised_pool, 0] * 255).round().astype(np.uint8), y=train.y[supervised_pool])
        source_data = DataConfig(str(labelled), val_fraction=0.0)
        simclr = warmstart.pretrain(str(unlabelled), model="cnn", out=Path(tmp) / "simclr",
                                    objective=create_objective("simclr", temperature=args.temperature_images),
                                    train=quiet(epochs=plan["simclr_epochs"], **pretrain_train))
        sources["SimCLR"] = {"checkpoint": str(simclr.run_dir), "train_time_s": simclr.train_time_s,
                             "passes": plan["simclr_passes"], "lineage": simclr.info.extra["self_supervised"]}
        print(f"SimCLR: {simclr.train_time_s:.0f} s, losses {[round(e['pretext_loss'], 3) for e in simclr.history]}",
              flush=True)
        save("SimCLR")
        supervised = warmstart.pretrain(source_data, model="cnn", out=Path(tmp) / "supervised",
                                        train=quiet(epochs=plan["supervised_epochs"], **pretrain_train))
        sources["supervised 0-4"] = {"checkpoint": str(supervised.run_dir), "train_time_s": supervised.train_time_s,
                                     "passes": plan["supervised_passes"],
                                     "source_test_accuracy": supervised.metrics.accuracy}
        print(f"supervised source: {supervised.train_time_s:.0f} s, test accuracy on 0-4 "
              f"{supervised.metrics.accuracy:.4f}", flush=True)
        save("supervised 0-4")
        # SimCLR's backbone, then the supervised source's recipe on the same labelled images of 0-4: it spends both
        # budgets, SimCLR's and the supervised source's (the report says so)
        both = warmstart.finetune(simclr.run_dir, source_data, strategy="full", out=Path(tmp) / "simclr-supervised",
                                  train=quiet(epochs=plan["supervised_epochs"], **pretrain_train))
        sources["SimCLR + supervised 0-4"] = {
            "checkpoint": str(both.run_dir), "train_time_s": simclr.train_time_s + both.train_time_s,
            "passes": plan["simclr_passes"] + plan["supervised_passes"], "source_test_accuracy": both.metrics.accuracy}
        print(f"SimCLR + supervised source: {both.train_time_s:.0f} s after SimCLR, test accuracy on 0-4 "
              f"{both.metrics.accuracy:.4f}", flush=True)
        save("SimCLR + supervised 0-4")
        for arm, start in (("scratch", None), *((name, source["checkpoint"]) for name, source in sources.items())):
            for strategy, options, train_options in FINE_TUNING:
                if start is None and strategy == "linear-probe":
                    continue  # a random backbone's probe says nothing
                runs = []
                for seed in range(args.seeds):
                    result = warmstart.finetune(start, DataConfig("fashion-mnist", **TARGET),
                                                model="cnn" if start is None else None,
                                                strategy=create_strategy(strategy, **options),
                                                train=quiet(**train_options, seed=seed))
                    runs.append({"seed": seed, "accuracy": result.metrics.accuracy,
                                 "macro_f1": result.metrics.macro_f1, "train_time_s": result.train_time_s})
                    print(f"images {arm} {strategy} seed {seed}: {result.metrics.accuracy:.4f}", flush=True)
                cells.append(summarise({"start": arm, "strategy": strategy}, runs))
                save(f"{arm} {strategy}")
    save("finished")
    return body


# --- the report ------------------------------------------------------------------------------------------------------

def summarise(cell: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    accuracies = [r["accuracy"] for r in runs]
    return {**cell, "runs": runs, "accuracy_mean": statistics.mean(accuracies),
            "accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0}


def write_report(args: argparse.Namespace, body: dict[str, Any]) -> dict[str, Any]:
    report = {"command": command_line("benchmarks/self_supervised.py"),
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
        plan, sources = report["plan"], report["sources"]
        if not report.get("finished"):
            lines += [f"**Partial results** (the run stopped, or is still running): {len(report['cells'])} of 7 "
                      f"cells; estimated total {report['estimated_total_s'] / 60:.0f} minutes.", ""]
        lines += ["| source | pretraining image passes | fine-tuning on 10 per class of 5-9 | accuracy | seeds |",
                  "|---|---|---|---|---|"]
        for c in report["cells"]:
            passes = sources.get(c["start"], {}).get("passes", 0)
            lines.append(f"| {c['start']} | {passes:,} | {c['strategy']} | {c['accuracy_mean']:.3f} ± "
                         f"{c['accuracy_std']:.3f} | {len(c['runs'])} |")
        classes = "classes 0-4" if args.simclr_classes == "0-4" else "all ten classes"
        lines += ["", f"Sources: SimCLR on {plan['simclr_images']:,} unlabelled training images "
                      f"({classes}; labels never read), {plan['simclr_epochs']} epoch(s) of two views; the "
                      f"supervised source on {plan['supervised_images']:,} labelled images of 0-4 for "
                      f"{plan['supervised_epochs']} epoch(s), "
                      + ("the same number of image passes (equal compute); "
                         if plan["supervised_passes"] == plan["simclr_passes"] else
                         "the whole number of epochs nearest to SimCLR's image passes (the table gives both); ")
                      + "SimCLR + supervised: the SimCLR source fine-tuned with the supervised source's recipe on its "
                      + "images, so it spends both budgets (twice the others'). Batch 256, lr 2e-3."]
        lines += ["", "Source times (SimCLR + supervised: both stages): " + "; ".join(
            f"{k}: {v['train_time_s']:.0f} s" + (f", test accuracy on 0-4 {v['source_test_accuracy']:.3f}"
                                                 if "source_test_accuracy" in v else "")
            for k, v in sources.items())]
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
    parser.add_argument("--images", type=int, default=30000,
                        help="labelled images of 0-4 for the supervised source (and SimCLR's, unless --simclr-images)")
    parser.add_argument("--simclr-classes", choices=("0-4", "all"), default="0-4",
                        help="SimCLR's unlabelled images: of classes 0-4, or of all ten (the 60,000 training images)")
    parser.add_argument("--simclr-images", type=int, default=None,
                        help="SimCLR's unlabelled images (default: --images of 0-4; with --simclr-classes all, all "
                             "60,000)")
    parser.add_argument("--simclr-epochs", type=int, default=20)
    parser.add_argument("--temperature-images", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    args.name = args.name or f"self_supervised_{args.part}"
    torch.manual_seed(0)
    try:
        text_part(args) if args.part == "text" else image_part(args)
    except KeyboardInterrupt:  # what finished is already written
        print(f"stopped: the results so far are in {args.out / args.name}.md and .json", flush=True)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
