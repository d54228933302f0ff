"""Text classification with all-MiniLM-L6-v2 on the shared datasets, per strategy, against the peers' baseline.

For TREC-6, SST-2, emotion and Banking77, at K labelled examples per class (`--shots`, default 8 and 64; `all` is the
whole training set) and `--seeds` sampling seeds, each strategy fine-tunes the `minilm` alias and is scored on the
dataset's whole test split: accuracy, macro-F1, training time and wall time.

Strategies (`--strategies`; recipes in ARMS below):
- `linear-probe`: the encoder runs once (cached), the head trains 100 epochs in the loop (AdamW, head lr 1e-2).
- `linear-probe-lbfgs`: the same cached embeddings, the head fitted to convergence as an L2 logistic regression,
  C chosen by cross-validation on the training examples (the peers' recipe, with C chosen instead of fixed at 1).
- `full`: every layer, AdamW lr 5e-5 with the head at 100x, linear decay, batch 16.
- `lp-ft`: the L-BFGS probe first (Kumar et al. 2022), then every layer at lr 2e-5, linear decay, batch 16.
- `lora`: rank-8 adapters on query/value at lr 5e-4, the head at 10x, linear decay, batch 16.
- `setfit`: SetFit (Tunstall et al. 2022) as the SetFit library runs it by default: 20 rounds of pairs
  (num_iterations), one epoch over them at lr 2e-5, batch 16 pairs, linear decay; then the L-BFGS head.
  Its budget is the pairs, not the step budget below; `--setfit-iterations` changes the rounds.
Fine-tuning arms get a budget of about 100 optimizer steps: epochs = clamp(round(1600 / n_train), 2, 20). On the
whole training set (`--shots all`) they train 2 epochs at batch 32, the Hugging Face Trainer's usual batch.

The peers' figures (../shared/BASELINES.md: frozen encoder + scikit-learn LogisticRegression, C=1; same seeds
protocol) are printed beside the probes. Writes benchmarks/results/NAME.{md,json} (`--name`, text_few_shot).

    .venv/bin/python benchmarks/text_few_shot.py [--seeds 3] [--datasets trec sst2 emotion banking77]
        [--shots 8 64 all] [--strategies linear-probe linear-probe-lbfgs full lp-ft lora] [--name NAME]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any


import warmstart
from warmstart import DataConfig, TrainConfig
from warmstart.strategies import create_strategy

from _common import RESULTS, command_line, machine_info, write_results

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASETS = {"trec": {"label_column": "label"}, "sst2": {"label_column": "label"},
            "emotion": {"label_column": "label"}, "banking77": {"label_column": "category"}}
TRAIN_SIZES = {"trec": 5452, "sst2": 6920, "emotion": 16000, "banking77": 10003}
CLASSES = {"trec": 6, "sst2": 2, "emotion": 6, "banking77": 77}
# ../shared/BASELINES.md: frozen encoder + LogisticRegression, mean ± std over 3 sampling seeds; full set: one run
PEERS = {("sst2", 8): "0.607 ± 0.023", ("sst2", 64): "0.746 ± 0.003", ("emotion", 8): "0.329 ± 0.020",
         ("emotion", 64): "0.464 ± 0.005", ("trec", 8): "0.544 ± 0.018", ("trec", 64): "0.760 ± 0.021",
         ("banking77", 8): "0.802 ± 0.005", ("trec", "all"): "0.914", ("sst2", "all"): "0.811",
         ("emotion", "all"): "0.687", ("banking77", "all"): "0.908"}
# the SetFit library (1.2, MiniLM body, num_iterations=20) in ../shared/BASELINES.md, and the published figures
SETFIT_PEERS = {("sst2", 8): "SetFit 1.2: 0.621 ± 0.027", ("emotion", 8): "SetFit 1.2: 0.395 ± 0.035; paper: 0.391",
                ("sst2", 32): "model card: 0.751"}
PROBES = {"linear-probe", "linear-probe-lbfgs"}
DATA_EXTRAS: dict[str, Any] = {}  # DataConfig fields every cell gets (--class-name-examples)
ARMS: dict[str, dict[str, Any]] = {
    "linear-probe": {"strategy": ("linear-probe", {}),
                     "train": dict(epochs=100, batch_size=32, lr=1e-3)},  # the head trains at 10x: 1e-2
    "linear-probe-lbfgs": {"strategy": ("linear-probe", {"solver": "lbfgs", "C": "auto"}), "train": {}},
    "full": {"strategy": ("full", {"head_lr_scale": 100.0}),
             "train": dict(batch_size=16, lr=5e-5, weight_decay=0.01, schedule="linear")},
    "lp-ft": {"strategy": ("lp-ft", {"probe": "lbfgs"}),
              "train": dict(batch_size=16, lr=2e-5, weight_decay=0.01, schedule="linear")},
    "lora": {"strategy": ("lora", {"rank": 8, "alpha": 16, "head_lr_scale": 10.0}),
             "train": dict(batch_size=16, lr=5e-4, weight_decay=0.01, schedule="linear")},
    "setfit": {"strategy": ("setfit", {"iterations": 20}),
               "train": dict(batch_size=16, lr=2e-5, weight_decay=0.01, schedule="linear", epochs=1)},
}
STEP_BUDGET = 1600  # examples seen per fine-tuning run: about 100 steps of 16
WHOLE_SET_BATCH = 32  # fine-tuning on a whole training set: thousands of examples, so the larger batch


def fine_tuning_epochs(train_examples: int) -> int:
    return max(2, min(20, round(STEP_BUDGET / train_examples)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--shots", nargs="+", default=["8", "64"], help="per class; 'all' for the whole set")
    parser.add_argument("--strategies", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="text_few_shot", help="the results' file name, without extension")
    parser.add_argument("--setfit-iterations", type=int, default=20, help="rounds of pairs for the setfit arm")
    parser.add_argument("--class-name-examples", type=int, default=0,
                        help="add N training examples per class written from its name (DataConfig."
                             "class_name_examples); the epochs still follow the labelled examples")
    args = parser.parse_args()
    DATA_EXTRAS["class_name_examples"] = args.class_name_examples
    ARMS["setfit"]["strategy"][1]["iterations"] = args.setfit_iterations
    started = time.perf_counter()
    load = [os.getloadavg()]
    cells = []
    for name in args.datasets:
        for shots_arg in args.shots:
            shots = None if shots_arg == "all" else int(shots_arg)
            if name == "banking77" and shots == 64:
                continue  # 4,928 examples: too close to the whole set to say anything new
            n_train = TRAIN_SIZES[name] if shots is None else shots * CLASSES[name]
            for arm in args.strategies:
                cells.append(run_cell(name, shots, arm, n_train, 1 if shots is None else args.seeds))
                load.append(os.getloadavg())
                report = write_report(args, cells, load, started)  # after every cell: a long run keeps its results
    print(to_markdown(report))


def write_report(args: argparse.Namespace, cells: list[dict[str, Any]], load: list, started: float) -> dict:
    report = {"command": command_line("benchmarks/text_few_shot.py"),
              "machine": machine_info(load_average_1_5_15=load),
              "arms": ARMS, "step_budget_examples": STEP_BUDGET, "max_length": 64, "data_extras": DATA_EXTRAS,
              "cells": cells, "total_time_s": time.perf_counter() - started}
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(args.out, args.name, report, to_markdown(report))
    return report


def run_cell(name: str, shots: int | None, arm: str, n_train: int, seeds: int) -> dict[str, Any]:
    strategy_name, options = ARMS[arm]["strategy"]
    train_options = dict(ARMS[arm]["train"])
    if arm not in PROBES:
        train_options.setdefault("epochs", fine_tuning_epochs(n_train))
        if shots is None:
            train_options["batch_size"] = WHOLE_SET_BATCH
    # no validation hold-out: every labelled example trains, as in the peers' protocol
    data_options = {**DATASETS[name], "val_fraction": 0.0, **DATA_EXTRAS}
    runs = []
    for seed in range(seeds):
        data = DataConfig(str(SHARED / name), shots=shots, **data_options)
        result = warmstart.finetune("minilm", data, strategy=create_strategy(strategy_name, **options),
                                    train=TrainConfig(**train_options, seed=seed, progress=False))
        runs.append({"seed": seed, "accuracy": result.metrics.accuracy, "macro_f1": result.metrics.macro_f1,
                     "train_time_s": result.train_time_s, "wall_time_s": result.wall_time_s,
                     "notes": list(result.notes)})
        print(f"{name} {arm} K={shots or 'all'} seed {seed}: {result.metrics.accuracy:.4f} "
              f"({result.train_time_s:.1f} s train, {result.wall_time_s:.1f} s in all)", flush=True)

    def spread(key: str) -> tuple[float, float]:
        values = [r[key] for r in runs]
        return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    (acc, acc_std), (f1, f1_std) = spread("accuracy"), spread("macro_f1")
    return {"dataset": name, "shots": shots or "all", "strategy": arm, "train_examples": n_train,
            "epochs": train_options.get("epochs"), "batch_size": train_options.get("batch_size"), "runs": runs,
            "accuracy_mean": acc, "accuracy_std": acc_std,
            "macro_f1_mean": f1, "macro_f1_std": f1_std,
            "train_time_s": statistics.median(r["train_time_s"] for r in runs),
            "wall_time_s": statistics.median(r["wall_time_s"] for r in runs),
            "peer": peer(name, shots or "all", arm)}


def peer(name: str, shots: int | str, arm: str) -> str | None:
    """The peers' figure an arm is compared with: frozen encoder + LogisticRegression for the probes, SetFit's."""
    if arm in PROBES:
        return f"frozen + LogReg: {PEERS[name, shots]}" if (name, shots) in PEERS else None
    return SETFIT_PEERS.get((name, shots)) if arm == "setfit" else None


def to_markdown(report: dict) -> str:
    load = report["machine"]["load_average_1_5_15"]
    lines = ["# Text classification with all-MiniLM-L6-v2 (`minilm`), per strategy", "",
             f"Command: `{report['command'].strip()}` (total {report['total_time_s']:.0f} s on "
             f"{report['machine']['cpu_count']} CPU cores, {report['machine']['torch_threads']} torch threads; "
             f"1-minute load average {min(x[0] for x in load):.1f}-{max(x[0] for x in load):.1f} during the run: "
             "times are comparable within this table only). Test split of each dataset; mean ± std over the "
             "sampling seeds (one run on the whole training set). Recipes: the docstring of "
             "benchmarks/text_few_shot.py. Peers: ../shared/BASELINES.md, frozen encoder + scikit-learn "
             "LogisticRegression (C=1) on normalised embeddings; SetFit 1.2 (num_iterations=20) and its published "
             "figures." + (f" Every training set also holds {report['data_extras']['class_name_examples']} "
                           "examples per class written from its name ('This sentence is NAME')."
                           if report.get("data_extras", {}).get("class_name_examples") else ""), "",
             "| dataset | K per class | strategy | epochs | accuracy | macro-F1 | peers | "
             "train s (median) | wall s (median) |", "|---|---|---|---|---|---|---|---|---|"]
    for c in report["cells"]:
        lines.append(f"| {c['dataset']} | {c['shots']} | {c['strategy']} | {c['epochs'] or '-'} | "
                     f"{c['accuracy_mean']:.3f} ± {c['accuracy_std']:.3f} | {c['macro_f1_mean']:.3f} ± "
                     f"{c['macro_f1_std']:.3f} | {c['peer'] or '-'} | {c['train_time_s']:.1f} | "
                     f"{c['wall_time_s']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
