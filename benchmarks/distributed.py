"""Data-parallel and mixed-precision throughput on this machine: samples per second and peak memory per process.

One fine-tune, four ways: a `cnn` pretrained for 1 epoch on Fashion-MNIST classes 0-4 (600 images per class) is
fine-tuned (`full`, AdamW lr 1e-3, cosine, batch 64 global, 2 epochs, seed 0) on classes 5-9 with 600 training
images per class, and scored on their 5,000 test images. The arms:

- ``1 proc x 2 threads, fp32``: one process, ``OMP_NUM_THREADS=2`` (both cores)
- ``2 procs x 1 thread, fp32``: ``torchrun --nproc-per-node 2``, gloo, ``OMP_NUM_THREADS=1`` each (both cores)
- ``1 proc x 1 thread, fp32``: one process on one core, to separate DDP's overhead from the thread count
- ``1 proc x 2 threads, bf16`` and ``1 proc x 1 thread, bf16``: as the fp32 arms, under bfloat16 autocast

On a busy machine two OpenMP threads in one process can be many times slower than one (each thread spins waiting
for the other, which is descheduled), so bf16 is also compared with fp32 at one thread, where load matters less.

Samples per second = training examples x epochs / the training time of the run (``train_time_s`` in its
metrics.json: the epoch loop, on rank 0 under DDP, all-reduce waits included; process start, data loading and the
test pass are not in it). Peak memory = ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of each process at its end
(every process loads the whole Fashion-MNIST training set before selecting classes). The arms alternate over R
rounds (round r starts with a different arm) and each figure is the median over rounds; ``uptime``'s load average
is recorded before and after, since other work on the machine distorts timings. Accuracy does not depend on load.

    .venv/bin/python benchmarks/distributed.py [--rounds 3] [--epochs 2] [--shots 600]

Writes benchmarks/results/distributed.{json,md}. The committed run (the defaults) took 365 s at a load average of
about 3.7 on 2 cores (other work running), most of it in the two-thread arms, which such load slows most.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import RESULTS, command_line, machine_info, pretrain_source, uptime, write_results

NAME = "distributed"
ARMS = {  # name: (processes, threads per process, precision)
    "1 proc x 2 threads, fp32": (1, 2, "fp32"),
    "2 procs x 1 thread, fp32": (2, 1, "fp32"),
    "1 proc x 1 thread, fp32": (1, 1, "fp32"),
    "1 proc x 2 threads, bf16": (1, 2, "bf16"),
    "1 proc x 1 thread, bf16": (1, 1, "bf16"),
}


def worker(args: argparse.Namespace) -> None:
    """One process of a run (under torchrun, one rank): fine-tune, then report this process's figures."""
    import torch

    from warmstart import api
    from warmstart.config import DataConfig, TrainConfig

    torch.set_num_threads(args.threads)
    result = api.finetune(args.source, DataConfig("fashion-mnist", classes="5-9", shots=args.shots),
                          strategy="full", train=TrainConfig(epochs=args.epochs, batch_size=64, lr=1e-3, seed=0,
                                                             precision=args.precision, progress=False),
                          out=args.out)
    rank = int(os.environ.get("RANK", "0"))
    report = {"rank": rank, "threads": torch.get_num_threads(), "train_time_s": result.train_time_s,
              "accuracy": result.metrics.accuracy, "train_examples": 5 * args.shots,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    Path(args.out, f"rank{rank}.json").write_text(json.dumps(report))


def run_arm(name: str, source: Path, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    processes, threads, precision = ARMS[name]
    out = folder / f"{name.replace(' ', '_').replace(',', '')}_{time.monotonic_ns()}"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "WARMSTART_OFFLINE": "1"}
    work = [str(Path(__file__).resolve()), "--worker", "--source", str(source), "--out", str(out), "--threads",
            str(threads), "--precision", precision, "--epochs", str(args.epochs), "--shots", str(args.shots)]
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
                 "--max-restarts=0"] if processes > 1 else [sys.executable])
    started = time.perf_counter()
    subprocess.run([*launcher, *work], check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    ranks = sorted((json.loads(p.read_text()) for p in out.glob("rank*.json")), key=lambda r: r["rank"])
    main = ranks[0]
    return {"arm": name, "processes": processes, "threads": threads, "precision": precision,
            "samples_per_s": main["train_examples"] * args.epochs / main["train_time_s"],
            "train_time_s": main["train_time_s"], "wall_s": wall, "accuracy": main["accuracy"],
            "peak_rss_mb_per_process": [r["peak_rss_mb"] for r in ranks]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--source")
    parser.add_argument("--out")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--shots", type=int, default=600, help="Training images per target class.")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    import torch

    from warmstart.config import DataConfig

    started = time.perf_counter()
    load_before = uptime()
    folder = Path(tempfile.mkdtemp(prefix="warmstart-bench-distributed-"))
    torch.set_num_threads(1)  # the source model only sets the scene; one thread stays clear of the arms' timing
    source = folder / "source"
    pretrain_source(source, dataset=DataConfig("fashion-mnist", classes="0-4", shots=args.shots), epochs=1,
                    batch_size=64, seed=0)
    names = list(ARMS)
    rows = []
    for round_index in range(args.rounds):
        order = names[round_index % len(names):] + names[:round_index % len(names)]
        for name in order:
            row = run_arm(name, source, folder, args)
            row["round"] = round_index + 1
            rows.append(row)
            print(f"round {round_index + 1} {name}: {row['samples_per_s']:.0f} samples/s, "
                  f"accuracy {row['accuracy']:.4f}, peak RSS {row['peak_rss_mb_per_process']} MB", flush=True)
    load_after = uptime()
    shutil.rmtree(folder, ignore_errors=True)
    summary = {}
    for name in names:
        mine = [r for r in rows if r["arm"] == name]
        summary[name] = {"samples_per_s": statistics.median(r["samples_per_s"] for r in mine),
                         "train_time_s": statistics.median(r["train_time_s"] for r in mine),
                         "accuracy": statistics.median(r["accuracy"] for r in mine),
                         "peak_rss_mb_per_process": statistics.median(max(r["peak_rss_mb_per_process"])
                                                                      for r in mine)}
    base = summary["1 proc x 2 threads, fp32"]
    report = {"command": command_line("benchmarks/distributed.py"), "arms": summary, "runs": rows,
              "ratios": {"2 procs / 1 proc (both on 2 cores)": summary["2 procs x 1 thread, fp32"]["samples_per_s"]
                         / base["samples_per_s"],
                         "bf16 / fp32 (1 proc x 2 threads)": summary["1 proc x 2 threads, bf16"]["samples_per_s"]
                         / base["samples_per_s"],
                         "bf16 / fp32 (1 proc x 1 thread)": summary["1 proc x 1 thread, bf16"]["samples_per_s"]
                         / summary["1 proc x 1 thread, fp32"]["samples_per_s"],
                         "2 procs x 1 thread / 1 proc x 1 thread": summary["2 procs x 1 thread, fp32"]["samples_per_s"]
                         / summary["1 proc x 1 thread, fp32"]["samples_per_s"]},
              "load_before": load_before, "load_after": load_after,
              "machine": machine_info(),
              "settings": vars(args) | {"worker": None}, "total_s": time.perf_counter() - started}
    lines = [f"# Data-parallel and bf16 throughput on {os.cpu_count()} CPU cores", "",
             f"Command: `{report['command']}` (total {report['total_s']:.0f} s; torch {torch.__version__}).", "",
             f"Load: before `{load_before}`; after `{load_after}`. The machine is shared: compare arms within this "
             "run (they alternate), not with other runs.", "",
             f"Fine-tune of a cnn (pretrained 1 epoch on Fashion-MNIST 0-4) on classes 5-9, {5 * args.shots} "
             f"training images, {args.epochs} epochs, global batch 64, AdamW; median over {args.rounds} rounds.", "",
             "| arm | samples/s | train s | test accuracy | peak RSS per process (MB) |", "|---|---|---|---|---|"]
    for name, s in summary.items():
        lines.append(f"| {name} | {s['samples_per_s']:.0f} | {s['train_time_s']:.2f} | {s['accuracy']:.4f} | "
                     f"{s['peak_rss_mb_per_process']:.0f} |")
    lines += ["", *(f"- {k}: **{v:.2f}x**" for k, v in report["ratios"].items()), "",
              "Per run: " + "; ".join(f"r{r['round']} {r['arm']}: {r['samples_per_s']:.0f}/s" for r in rows), ""]
    write_results(RESULTS, NAME, report, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
