"""Training step time: warmstart's loop (`full` strategy) against a bare PyTorch loop, same model and batches.

Both arms train the same `cnn` (default widths, 1x28x28 inputs, 5 classes) from the same initialisation
(torch.manual_seed before building it) on the same in-memory tensors (real Fashion-MNIST images of classes 5-9,
normalised) with AdamW at lr 1e-3 and weight decay 1e-4, batch 64, in the same shuffled order. warmstart's arm is
`warmstart.engine.fit` with `create_strategy("full")` and a constant schedule, one epoch of W + N steps; the bare
arm is the textbook loop::

    model.train()
    for x, y in batches:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

A step's time is the interval between consecutive step ends: warmstart's through a Callback's ``on_batch_end``,
the bare loop's through ``perf_counter`` at the same point, so both include fetching the batch. The first W
intervals are warm-up and dropped; each arm's time is the median step interval of a round. The arms alternate
over R rounds (each round runs both, alternating which goes first), and the result is the median over rounds of
the per-round medians, with the ratio ours / bare (goal: at most 1.05). Writes benchmarks/results/step_time.{json,md}.

    .venv/bin/python benchmarks/step_time.py [--steps 300] [--warmup 20] [--rounds 5] [--batch-size 64] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from warmstart import DataConfig, TrainConfig
from warmstart.data import load_split
from warmstart.data.preprocess import Normalization
from warmstart.engine import Callback, fit, resolve_device
from warmstart.models import create_model
from warmstart.strategies import create_strategy

from _common import RESULTS, command_line, machine_info, write_results

NAME = "step_time"
GOAL_RATIO = 1.05
LR, WEIGHT_DECAY = 1e-3, 1e-4
INPUT_SHAPE, NUM_CLASSES = (1, 28, 28), 5

# What warmstart's loop does on every step beyond the bare loop, so a reader can interpret the ratio.
EXTRA_WORK = [
    "`scheduler.step()`: a LambdaLR over every parameter group, even with the constant schedule",
    "more parameter groups for AdamW: `full` gives each layer group (stem, stage1-3, head) two groups, weights with "
    "decay and 1-D parameters without, 10 in all, against the bare loop's one; warmstart's AdamW runs torch's "
    "fused kernel per group, the bare loop torch's default multi-tensor one",
    "`strategy.penalty(model)` (None for `full`) and the `grad_clip_norm is None` test",
    "`.to(device, non_blocking=True)` on the batch (a no-op on the CPU)",
    "running loss and accuracy summed on the device: `loss_sum += loss.detach() * n` and "
    "`correct += (logits.argmax(1) == y).sum()` (an argmax, a comparison, a sum and two in-place adds)",
    "callback dispatch: a loop over the callbacks, each `on_batch_end(step, {\"loss\": lambda: ...})` (a dict and a "
    "closure per step); here the one timing callback",
]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepClock(Callback):
    """Timestamps every step end (after the optimizer step) through the loop's own callback hook."""

    def __init__(self, device: torch.device):
        self.device = device
        self.stamps: list[float] = []
        self.first_loss: float | None = None

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        synchronize(self.device)
        self.stamps = [time.perf_counter()]

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        synchronize(self.device)
        self.stamps.append(time.perf_counter())
        if self.first_loss is None:  # read once, in the warm-up: proves both arms start from the same point
            self.first_loss = logs["loss"]()


def intervals(stamps: list[float], warmup: int) -> list[float]:
    return [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1:])]


def build_model(seed: int, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("cnn", INPUT_SHAPE, NUM_CLASSES).to(device)


def run_warmstart(x: torch.Tensor, y: torch.Tensor, *, batch_size: int, warmup: int, seed: int,
                  device: torch.device) -> tuple[list[float], float]:
    model = build_model(seed, device)
    clock = StepClock(device)
    config = TrainConfig(epochs=1, batch_size=batch_size, optimizer="adamw", lr=LR, weight_decay=WEIGHT_DECAY,
                         schedule="constant", seed=seed, progress=False)
    fit(model, create_strategy("full"), (x, y), None, config, device=device,
        generator=torch.Generator().manual_seed(seed), callbacks=[clock])
    return intervals(clock.stamps, warmup), clock.first_loss


def run_bare(x: torch.Tensor, y: torch.Tensor, *, batch_size: int, warmup: int, seed: int,
             device: torch.device) -> tuple[list[float], float]:
    model = build_model(seed, device)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    # the same shuffled order warmstart's TensorBatches draws from the same seed, sliced from the same tensors
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    batches = ((x[order[i:i + batch_size]], y[order[i:i + batch_size]]) for i in range(0, len(y), batch_size))
    model.train()
    synchronize(device)
    stamps = [time.perf_counter()]
    first_loss = None
    for xb, yb in batches:
        xb, yb = xb.to(device), yb.to(device)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        synchronize(device)
        stamps.append(time.perf_counter())
        if first_loss is None:  # read once, in the warm-up, as the warmstart arm does
            first_loss = float(loss.detach())
    return intervals(stamps, warmup), first_loss


def load_tensors(data: str, examples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``examples`` training images of classes 5-9, normalised with their own statistics."""
    dataset = load_split(DataConfig(data, classes="5-9"), "train")
    if examples > len(dataset):
        raise SystemExit(f"--steps + --warmup asks for {examples} images; classes 5-9 have {len(dataset)}")
    dataset = dataset.subset(list(range(examples)))
    x = Normalization.fit(dataset).apply(dataset.x)
    return x, torch.from_numpy(dataset.y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="timed steps N per round (default 300)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up steps W dropped per round (default 20)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds R, each running both arms (default 5)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default %(default)s)")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: N=30, W=5, R=2 (explicit options still win)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results (default %(default)s)")
    args = parser.parse_args()
    for key, quick, full in (("steps", 30, 300), ("warmup", 5, 20), ("rounds", 2, 5)):
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    if args.steps < 1 or args.warmup < 0 or args.rounds < 1:
        raise SystemExit("--steps and --rounds must be at least 1, --warmup at least 0")

    started = time.perf_counter()
    device = resolve_device(args.device)
    # exactly W + N full batches: one epoch of warmstart's loop is the whole run, and no step is a short batch
    x, y = load_tensors(args.data, (args.warmup + args.steps) * args.batch_size)
    x, y = x.to(device), y.to(device)
    arms = {"warmstart": run_warmstart, "bare": run_bare}
    rounds = []
    for r in range(args.rounds):
        order = ("warmstart", "bare") if r % 2 == 0 else ("bare", "warmstart")
        result: dict[str, Any] = {"round": r + 1, "order": list(order)}
        for arm in order:
            steps, first_loss = arms[arm](x, y, batch_size=args.batch_size, warmup=args.warmup, seed=args.seed,
                                          device=device)
            assert len(steps) == args.steps, (arm, len(steps))
            result[arm] = {"first_step_loss": first_loss, "median_step_s": statistics.median(steps),
                           "mean_step_s": statistics.fmean(steps),
                           "p90_step_s": statistics.quantiles(steps, n=10)[-1] if len(steps) > 1 else steps[0]}
        result["ratio"] = result["warmstart"]["median_step_s"] / result["bare"]["median_step_s"]
        # same initialisation and same first batch give the same first loss; anything else is not a like-for-like
        if abs(result["warmstart"]["first_step_loss"] - result["bare"]["first_step_loss"]) > 1e-4:
            raise SystemExit(f"round {r + 1}: first-step losses differ (warmstart "
                             f"{result['warmstart']['first_step_loss']}, bare {result['bare']['first_step_loss']}): "
                             "the arms do not train the same model on the same batches")
        rounds.append(result)
        print(f"round {r + 1}: warmstart {result['warmstart']['median_step_s'] * 1e3:.2f} ms, "
              f"bare {result['bare']['median_step_s'] * 1e3:.2f} ms, ratio {result['ratio']:.3f}", flush=True)

    ours = statistics.median(r["warmstart"]["median_step_s"] for r in rounds)
    bare = statistics.median(r["bare"]["median_step_s"] for r in rounds)
    report = {
        "command": command_line("benchmarks/step_time.py"),
        "environment": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
        "machine": machine_info(device=str(device)),
        "settings": {"model": "cnn", "input_shape": list(INPUT_SHAPE), "num_classes": NUM_CLASSES,
                     "batch_size": args.batch_size, "optimizer": "adamw", "lr": LR, "weight_decay": WEIGHT_DECAY,
                     "schedule": "constant", "steps": args.steps, "warmup": args.warmup, "rounds": args.rounds,
                     "seed": args.seed, "data": f"{args.data} classes 5-9, first {len(y)} training images",
                     "quick": args.quick},
        "result": {"warmstart_median_step_s": ours, "bare_median_step_s": bare, "ratio": ours / bare,
                   "ratio_of_round_ratios_median": statistics.median(r["ratio"] for r in rounds),
                   "goal_ratio_at_most": GOAL_RATIO, "goal_met": ours / bare <= GOAL_RATIO},
        "rounds": rounds,
        "warmstart_extra_work_per_step": EXTRA_WORK,
        "total_time_s": time.perf_counter() - started,
    }
    markdown = to_markdown(report)
    write_results(args.out, NAME, report, markdown)
    print(markdown)


def to_markdown(report: dict[str, Any]) -> str:
    s, m, res = report["settings"], report["machine"], report["result"]
    threads = f", OMP_NUM_THREADS={report['environment']['OMP_NUM_THREADS']}" \
        if "OMP_NUM_THREADS" in report["environment"] else ""
    lines = [
        "# Training step time: warmstart (`full`) vs a bare PyTorch loop", "",
        f"Command: `{report['command']}`{threads} (total {report['total_time_s']:.0f} s; {m['cpu_count']} CPU cores, "
        f"{m['torch_threads']} torch threads, torch {m['torch']}, device {m['device']}).", "",
        f"Same `cnn` (1x28x28, {s['num_classes']} classes, same initialisation), same batches ({s['data']}, batch "
        f"{s['batch_size']}, same shuffled order), AdamW lr {s['lr']}, weight decay {s['weight_decay']}, constant "
        f"schedule. Per round, each arm runs {s['warmup']} warm-up + {s['steps']} timed steps; a step is the interval "
        f"between step ends (batch fetch included); the arms alternate over {s['rounds']} rounds. Median over rounds "
        "of each round's median step. Both arms' first-step losses agree (checked each round: "
        f"{report['rounds'][0]['warmstart']['first_step_loss']:.6f}), so they start from the same model and batch.",
        "",
        "| arm | median step (ms) |", "|---|---|",
        f"| warmstart `fit` | {res['warmstart_median_step_s'] * 1e3:.3f} |",
        f"| bare loop | {res['bare_median_step_s'] * 1e3:.3f} |", "",
        f"Ratio warmstart / bare: **{res['ratio']:.3f}** (median of per-round ratios "
        f"{res['ratio_of_round_ratios_median']:.3f}); goal at most {res['goal_ratio_at_most']:.2f}: "
        f"{'met' if res['goal_met'] else 'not met'}.", "",
        "| round | first | warmstart (ms) | bare (ms) | ratio |", "|---|---|---|---|---|"]
    for r in report["rounds"]:
        lines.append(f"| {r['round']} | {r['order'][0]} | {r['warmstart']['median_step_s'] * 1e3:.3f} | "
                     f"{r['bare']['median_step_s'] * 1e3:.3f} | {r['ratio']:.3f} |")
    lines += ["", "What warmstart's loop does per step beyond the bare loop:", ""]
    lines += [f"- {item}" for item in report["warmstart_extra_work_per_step"]]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
