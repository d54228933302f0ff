"""Linear probe on cached features against a frozen backbone recomputed every epoch (what the peers do).

One `cnn` is pretrained on Fashion-MNIST classes 0-4 (as `warmstart demo` does). For each K (labelled images per
class of classes 5-9) and each seed, the same checkpoint is fine-tuned twice with the same data, head
initialisation, batch order, optimizer, learning rate and epochs: `freeze` (the backbone runs on every batch of
every epoch) and `linear-probe` (the backbone runs once; the head trains on the cached features). The two arms run
interleaved per seed, alternating which goes first, so machine noise hits both.

Reported per arm, as medians over seeds: the median epoch time (RunResult.history[i]["epoch_time_s"]), the
training time of the loop alone, the linear probe's one-off feature extraction (which warmstart runs before the
loop and counts in RunResult.train_time_s) and the end-to-end training time (RunResult.train_time_s: the loop plus
the extraction), and test accuracy on all 5,000 test images of classes 5-9. The goals under test: per epoch at least
20x faster, test accuracy within 0.5 points. Writes benchmarks/results/linear_probe_cache.{json,md}.

    .venv/bin/python benchmarks/linear_probe_cache.py [--shots 500 all] [--epochs 20] [--seeds 3] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import torch

import warmstart
import warmstart.run.training
import warmstart.engine.features
from warmstart import DataConfig, TrainConfig
from warmstart.engine.features import clear_memory_cache
from warmstart.io import write_json, write_text

RESULTS = Path(__file__).parent / "results"
NAME = "linear_probe_cache"
ARMS = ("freeze", "linear-probe")
GOAL_EPOCH_SPEEDUP = 20.0
GOAL_ACCURACY_POINTS = 0.5


@contextlib.contextmanager
def timed_feature_extraction() -> Iterator[list[dict[str, Any]]]:
    """Time every call of the feature cache that ``finetune`` makes (train and validation features).

    warmstart logs the extraction time only in a note, to 2 decimals; this wraps the very function it times, so
    the two agree, with full precision and with whether the cache was hit. The backbone's forward passes are
    timed too (``forward_s``); the rest is the cache's own work, mostly fingerprinting the weights and inputs.
    """
    calls: list[dict[str, Any]] = []
    forwards: list[float] = []
    original_cached = warmstart.run.training.cached_features
    original_extract = warmstart.engine.features.extract_features

    def timed_extract(*args: Any, **kwargs: Any):
        started = time.perf_counter()
        features = original_extract(*args, **kwargs)
        forwards.append(time.perf_counter() - started)
        return features

    def timed_cached(*args: Any, **kwargs: Any):
        forwards.clear()
        started = time.perf_counter()
        features, hit = original_cached(*args, **kwargs)
        calls.append({"seconds": time.perf_counter() - started, "forward_s": sum(forwards),
                      "examples": len(features), "cache_hit": hit})
        return features, hit

    warmstart.run.training.cached_features = timed_cached
    warmstart.engine.features.extract_features = timed_extract
    try:
        yield calls
    finally:
        warmstart.run.training.cached_features = original_cached
        warmstart.engine.features.extract_features = original_extract


def run_arm(arm: str, checkpoint: Path, data: DataConfig, train: TrainConfig) -> dict[str, Any]:
    extraction: list[dict[str, Any]] = []
    clear_memory_cache()  # each linear-probe run pays its one-off extraction, as a first run would
    started = time.perf_counter()
    if arm == "linear-probe":
        with timed_feature_extraction() as extraction:
            result = warmstart.finetune(checkpoint, data, strategy=arm, train=train)
    else:
        result = warmstart.finetune(checkpoint, data, strategy=arm, train=train)
    call_s = time.perf_counter() - started
    epoch_times = [epoch["epoch_time_s"] for epoch in result.history]
    extraction_s = sum(call["seconds"] for call in extraction)
    if arm == "linear-probe" and not extraction:
        raise SystemExit("linear-probe: no call of warmstart.run.training.cached_features was seen; the extraction has "
                         "moved and this benchmark must time it where it now is")
    if any(call["cache_hit"] for call in extraction):
        raise SystemExit(f"{arm} seed {train.seed}: the feature cache was hit although it was cleared; the "
                         "extraction time would not be a first run's")
    return {"arm": arm, "seed": train.seed, "accuracy": result.metrics.accuracy, "macro_f1": result.metrics.macro_f1,
            "epoch_times_s": epoch_times, "median_epoch_s": statistics.median(epoch_times),
            "train_time_s": result.train_time_s - extraction_s, "extraction_s": extraction_s,
            "extraction_forward_s": sum(call["forward_s"] for call in extraction),
            "extraction_calls": extraction, "end_to_end_train_s": result.train_time_s,
            "finetune_wall_s": result.wall_time_s, "call_s": call_s,
            "steps_per_epoch": result.history[0]["steps_per_epoch"],
            "notes": list(result.notes)}


def median_of(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def summarise(shots: int | None, runs: list[dict[str, Any]]) -> dict[str, Any]:
    by_arm = {arm: [r for r in runs if r["arm"] == arm] for arm in ARMS}
    seeds = sorted({r["seed"] for r in runs})
    paired = []
    for seed in seeds:
        frozen = next(r for r in by_arm["freeze"] if r["seed"] == seed)
        probe = next(r for r in by_arm["linear-probe"] if r["seed"] == seed)
        paired.append({"seed": seed,
                       "epoch_speedup": frozen["median_epoch_s"] / probe["median_epoch_s"],
                       "end_to_end_speedup": frozen["train_time_s"] / probe["end_to_end_train_s"],
                       "loop_only_speedup": frozen["train_time_s"] / probe["train_time_s"],
                       "accuracy_diff_points": 100 * (probe["accuracy"] - frozen["accuracy"])})
    arms = {arm: {key: median_of(rows, key) for key in ("median_epoch_s", "train_time_s", "extraction_s",
                                                          "extraction_forward_s", "end_to_end_train_s",
                                                          "finetune_wall_s", "accuracy",
                                                          "macro_f1")}
            for arm, rows in by_arm.items()}
    ratios = {key: {"median": statistics.median(p[key] for p in paired), "min": min(p[key] for p in paired),
                    "max": max(p[key] for p in paired)}
              for key in ("epoch_speedup", "end_to_end_speedup", "loop_only_speedup", "accuracy_diff_points")}
    worst_diff = max(abs(p["accuracy_diff_points"]) for p in paired)
    goals = {"epoch_speedup_at_least": GOAL_EPOCH_SPEEDUP,
             "epoch_speedup_met": ratios["epoch_speedup"]["median"] >= GOAL_EPOCH_SPEEDUP,
             "accuracy_within_points": GOAL_ACCURACY_POINTS,
             "accuracy_met_median": abs(ratios["accuracy_diff_points"]["median"]) <= GOAL_ACCURACY_POINTS,
             "accuracy_met_every_seed": worst_diff <= GOAL_ACCURACY_POINTS}
    return {"shots": shots, "arms": arms, "paired": paired, "ratios": ratios, "goals": goals, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", nargs="+", default=None,
                        help="K images per class of the target (an integer, or 'all'); default 500")
    parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs E (default 20)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds, 0..n-1 (default 3)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--pretrain-epochs", type=int, default=None, help="default 6")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: pretrain 1 epoch, K=20, E=3, 2 seeds (explicit options still win)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results (default %(default)s)")
    args = parser.parse_args()
    quick = {"shots": ["20"], "epochs": 3, "seeds": 2, "pretrain_epochs": 1}
    full = {"shots": ["500"], "epochs": 20, "seeds": 3, "pretrain_epochs": 6}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    shots_list = [None if s == "all" else int(s) for s in args.shots]

    started = time.perf_counter()
    cells = []
    with tempfile.TemporaryDirectory(prefix="warmstart-lp-cache-") as tmp:
        source = warmstart.pretrain(DataConfig(args.data, classes="0-4"), model="cnn", out=Path(tmp) / "source",
                                    train=TrainConfig(epochs=args.pretrain_epochs, batch_size=128, lr=2e-3,
                                                      progress=False))
        print(f"source: accuracy {source.metrics.accuracy:.4f} on classes 0-4, {source.train_time_s:.1f} s",
              flush=True)
        for shots in shots_list:
            # no validation split in either arm: it would add a full-model pass per epoch to the frozen arm's
            # epoch time and pick a best epoch, which is not what is measured here
            data = DataConfig(args.data, classes="5-9", shots=shots, val_fraction=0.0)
            runs = []
            for index, seed in enumerate(range(args.seeds)):
                train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=seed, progress=False)
                order = ARMS if index % 2 == 0 else ARMS[::-1]
                for arm in order:
                    run = run_arm(arm, source.checkpoint, data, train)
                    runs.append(run)
                    print(f"K={shots or 'all'} seed {seed} {arm}: median epoch {run['median_epoch_s'] * 1e3:.1f} ms, "
                          f"train {run['train_time_s']:.3f} s + extraction {run['extraction_s']:.3f} s, "
                          f"accuracy {run['accuracy']:.4f}", flush=True)
            cells.append(summarise(shots, runs))

    report = {
        "command": " ".join(["python", "benchmarks/linear_probe_cache.py", *sys.argv[1:]]),
        "environment": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "warmstart": warmstart.__version__,
                    "python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                    "device": "cuda" if torch.cuda.is_available() else "cpu"},
        "settings": {"data": args.data, "source_classes": "0-4", "target_classes": "5-9",
                     "pretrain": {"epochs": args.pretrain_epochs, "batch_size": 128, "lr": 2e-3},
                     "finetune": {"epochs": args.epochs, "batch_size": args.batch_size, "optimizer": "adamw",
                                  "lr": TrainConfig().lr, "weight_decay": TrainConfig().weight_decay,
                                  "schedule": TrainConfig().schedule, "head_lr_scale": 10.0, "val_fraction": 0.0},
                     "seeds": list(range(args.seeds)), "shots": [s or "all" for s in shots_list],
                     "quick": args.quick},
        "source": {"accuracy": source.metrics.accuracy, "train_time_s": source.train_time_s},
        "cells": cells,
        "total_time_s": time.perf_counter() - started,
    }
    write_json(args.out / f"{NAME}.json", report)
    markdown = to_markdown(report)
    write_text(args.out / f"{NAME}.md", markdown)
    print(markdown)


def to_markdown(report: dict[str, Any]) -> str:
    s, m = report["settings"], report["machine"]
    f = s["finetune"]
    threads = f", OMP_NUM_THREADS={report['environment']['OMP_NUM_THREADS']}" \
        if "OMP_NUM_THREADS" in report["environment"] else ""
    lines = [
        "# Linear probe on cached features vs frozen backbone recomputed every epoch", "",
        f"Command: `{report['command']}`{threads} (total {report['total_time_s']:.0f} s; {m['cpu_count']} CPU cores, "
        f"{m['torch_threads']} torch threads, torch {m['torch']}, {m['device']}).", "",
        f"Source: `cnn` pretrained {s['pretrain']['epochs']} epoch(s) on {s['data']} classes 0-4 (batch 128, lr 2e-3; "
        f"test accuracy {report['source']['accuracy']:.4f}). Target: classes 5-9, K images per class, "
        f"{f['epochs']} epochs, batch {f['batch_size']}, AdamW lr {f['lr']} (head at {f['head_lr_scale']:g}x), "
        f"weight decay {f['weight_decay']}, {f['schedule']} schedule, no validation split; test on all 5,000 test "
        f"images of classes 5-9. Both arms: same checkpoint, data, head initialisation and batch order; run "
        f"interleaved per seed (seeds {', '.join(map(str, s['seeds']))}), alternating which goes first. "
        "Medians over seeds. \"Whole call\" is `RunResult.wall_time_s`: loading the data and the checkpoint, "
        "training and scoring the test split.", "",
        "`freeze` runs the frozen backbone on every batch of every epoch; `linear-probe` runs it once before the "
        "loop (the extraction, with the feature cache cleared before each run) and trains the head on the features. "
        "End-to-end = the loop + the extraction = warmstart's `train_time_s` for `linear-probe`.", "",
        "| K | arm | median epoch (ms) | loop train (s) | extraction (s) [of which backbone forward] | "
        "end-to-end train (s) | whole call (s) | test accuracy |",
        "|---|---|---|---|---|---|---|---|"]
    for cell in report["cells"]:
        for arm in ARMS:
            a = cell["arms"][arm]
            extraction = (f"{a['extraction_s']:.3f} [{a['extraction_forward_s']:.3f}]" if arm == "linear-probe"
                          else "-")
            lines.append(f"| {cell['shots'] or 'all'} | {arm} | {a['median_epoch_s'] * 1e3:.2f} | "
                         f"{a['train_time_s']:.3f} | {extraction} | {a['end_to_end_train_s']:.3f} | "
                         f"{a['finetune_wall_s']:.2f} | {a['accuracy']:.4f} |")
    lines += ["", "Ratios (freeze / linear-probe; each seed paired, median [min-max] over seeds) and goals:", "",
              "| K | per-epoch speed-up | end-to-end speed-up | loop-only speed-up | accuracy diff (points, "
              "probe - freeze) | goal: epoch >= 20x | goal: accuracy within 0.5 |",
              "|---|---|---|---|---|---|---|"]
    for cell in report["cells"]:
        r, g = cell["ratios"], cell["goals"]
        fmt = lambda k, spec: f"{r[k]['median']:{spec}} [{r[k]['min']:{spec}}-{r[k]['max']:{spec}}]"  # noqa: E731
        accuracy_goal = ("met" if g["accuracy_met_every_seed"] else
                         "met (median), not every seed" if g["accuracy_met_median"] else "not met")
        lines.append(f"| {cell['shots'] or 'all'} | {fmt('epoch_speedup', '.1f')}x | "
                     f"{fmt('end_to_end_speedup', '.1f')}x | {fmt('loop_only_speedup', '.1f')}x | "
                     f"{r['accuracy_diff_points']['median']:+.2f} [{r['accuracy_diff_points']['min']:+.2f} to "
                     f"{r['accuracy_diff_points']['max']:+.2f}] | "
                     f"{'met' if g['epoch_speedup_met'] else 'not met'} | {accuracy_goal} |")
    lines += ["", f"Per-run epoch times, extraction calls and notes are in {NAME}.json.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
