"""Training beside another busy process: one pretraining epoch, quiet and loaded, with and without the thread policy.

The workload is the demo's pretraining epoch (the `cnn` on Fashion-MNIST classes 0-4, batch 128, lr 2e-3), run in a
fresh process each time so that torch starts with its default thread count. "Loaded" means one competing process
that keeps a core busy (a Python busy loop) for the whole epoch, started before the run. Two arms:

- ``adaptive``: warmstart as shipped; the thread policy (``warmstart.engine.threads``) reads the load before
  training and after every epoch and uses the cores the others leave;
- ``fixed``: the same run with ``WARMSTART_ADAPTIVE_THREADS=0``, torch's own thread count throughout.

Each cell is the median over R rounds of the epoch's training time (``train_time_s``, the loop alone); the arms
and conditions alternate within a round. Goals (issue 14): loaded/quiet at most 2.5 with the policy, and the
policy's quiet time at most 1.05x the fixed arm's quiet time. Writes benchmarks/results/contention.{json,md}.

    .venv/bin/python benchmarks/contention.py [--rounds 3] [--epochs 1] [--quiet-only --name contention_quiet]

``--quiet-only`` times the quiet cells alone (more rounds of the policy's cost on an idle machine).

Run it on an otherwise quiet machine: anything else running is a second competitor.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
NAME = "contention"
GOAL_LOADED_RATIO, GOAL_QUIET_COST = 2.5, 1.05

CHILD = """
import json, sys, tempfile
import warmstart
from warmstart import DataConfig, TrainConfig
with tempfile.TemporaryDirectory() as out:
    result = warmstart.pretrain(DataConfig("fashion-mnist", classes="0-4"), model="cnn", out=out + "/run",
                                train=TrainConfig(epochs=int(sys.argv[1]), batch_size=128, lr=2e-3, progress=False,
                                                  trackers=()))
print(json.dumps({"train_time_s": result.train_time_s, "accuracy": result.metrics.accuracy}))
"""


def one_epoch(epochs: int, adaptive: bool, loaded: bool) -> dict[str, float]:
    env = {**os.environ, "WARMSTART_ADAPTIVE_THREADS": "1" if adaptive else "0"}
    competitor = None
    if loaded:
        competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(1.0)  # let it take its core before we start
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, str(epochs)], env=env, check=True, capture_output=True,
                              text=True)
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--quiet-only", action="store_true", help="only the quiet cells")
    parser.add_argument("--name", default=NAME, help="results file name")
    args = parser.parse_args()
    conditions = ("quiet",) if args.quiet_only else ("quiet", "loaded")
    cells = [(arm, condition) for condition in conditions for arm in ("adaptive", "fixed")]
    times: dict[str, list[float]] = {f"{arm}/{condition}": [] for arm, condition in cells}
    for round_ in range(args.rounds):
        order = cells if round_ % 2 == 0 else cells[::-1]
        for arm, condition in order:
            result = one_epoch(args.epochs, arm == "adaptive", condition == "loaded")
            times[f"{arm}/{condition}"].append(result["train_time_s"])
            print(f"round {round_ + 1}: {arm:8s} {condition:6s} {result['train_time_s']:7.1f} s", flush=True)
    median = {key: statistics.median(values) for key, values in times.items()}
    if args.quiet_only:
        write_quiet_only(args, times, median)
        return
    ratios = {arm: median[f"{arm}/loaded"] / median[f"{arm}/quiet"] for arm in ("adaptive", "fixed")}
    quiet_cost = median["adaptive/quiet"] / median["fixed/quiet"]
    command = "python benchmarks/contention.py " + " ".join(sys.argv[1:])
    machine = {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
               "python": platform.python_version(), "torch_threads_default": os.cpu_count()}
    payload = {"command": command.strip(), "machine": machine, "epochs": args.epochs, "rounds": args.rounds,
               "times_s": times, "median_s": median, "loaded_over_quiet": ratios,
               "adaptive_quiet_over_fixed_quiet": quiet_cost,
               "goals": {"loaded_over_quiet": GOAL_LOADED_RATIO, "quiet_cost": GOAL_QUIET_COST}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        f"# Training beside one busy process ({args.epochs} pretraining epoch(s), median of {args.rounds} rounds)",
        "", f"Command: `{payload['command']}`; {machine['cpus']} CPUs ({machine['processor']}), Python "
        f"{machine['python']}.", "",
        "| arm | quiet (s) | loaded (s) | loaded / quiet |", "|---|---|---|---|",
        *(f"| {arm} | {median[f'{arm}/quiet']:.1f} | {median[f'{arm}/loaded']:.1f} | {ratios[arm]:.2f} |"
          for arm in ("adaptive", "fixed")), "",
        f"Goal: loaded / quiet at most {GOAL_LOADED_RATIO} with the policy (adaptive: {ratios['adaptive']:.2f}); "
        f"the policy's quiet time at most {GOAL_QUIET_COST}x the fixed arm's (measured {quiet_cost:.3f}).", "",
        "`adaptive` is warmstart as shipped (engine/threads.py: the thread count follows the other processes' load, "
        "read before training and after each epoch); `fixed` sets WARMSTART_ADAPTIVE_THREADS=0. The competitor is a "
        "Python busy loop started one second before the run.", ""]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines))
    print("\n".join(lines))


def write_quiet_only(args: argparse.Namespace, times: dict[str, list[float]], median: dict[str, float]) -> None:
    cost = median["adaptive/quiet"] / median["fixed/quiet"]
    command = ("python benchmarks/contention.py " + " ".join(sys.argv[1:])).strip()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps({"command": command, "times_s": times, "median_s": median,
                                                           "adaptive_over_fixed": cost}, indent=2) + "\n")
    lines = [f"# The thread policy on a quiet machine ({args.epochs} pretraining epoch(s), {args.rounds} rounds)", "",
             f"Command: `{command}`.", "", "| arm | median (s) | each round (s) |", "|---|---|---|",
             *(f"| {arm} | {median[f'{arm}/quiet']:.1f} | {', '.join(f'{t:.1f}' for t in times[f'{arm}/quiet'])} |"
               for arm in ("adaptive", "fixed")), "",
             f"adaptive / fixed: {cost:.3f} (goal at most {GOAL_QUIET_COST}).", ""]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
