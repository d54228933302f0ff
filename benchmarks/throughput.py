"""Training throughput of warmstart's loop under each precision, with and without torch.compile and channels-last.

For a GPU (``benchmarks/gpu.sh`` runs it there); ``--device cpu --smoke`` checks on a CPU that it works. Each
configuration trains the same ``cnn`` (``--widths``, ``--image-size`` square RGB inputs, 10 classes) from the same
initialisation with ``warmstart.engine.fit`` (``full``, AdamW, constant schedule) on random inputs held on the
device (throughput does not depend on the pixel values; nothing is copied from the host per step), for
``--warmup`` + ``--steps`` optimizer steps. The clock starts after the warm-up steps (compilation and cuDNN
autotuning happen there) and stops after the last, with a device synchronisation at both ends. Samples per second
= steps x batch / elapsed, and the peak device memory (CUDA) is recorded. Under torchrun (``--nproc-per-node N``)
every rank trains 1/N of each global batch, and the figure is for the whole group.

    python benchmarks/throughput.py --device cuda [--batch-size 256] [--steps 200] [--json-out DIR]
    python benchmarks/throughput.py --device cpu --smoke
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time
from pathlib import Path

import torch

from warmstart.config import TrainConfig
from warmstart.engine import Callback, fit
from warmstart.engine import distributed
from warmstart.models import create_model
from warmstart.strategies import create_strategy

from _common import command_line, machine_info, write_results


class StepClock(Callback):
    """Wall time between the end of step ``warmup`` and the end of the last step, the device synchronised."""

    def __init__(self, device: torch.device, warmup: int, last: int):
        self.device, self.warmup, self.last = device, warmup, last
        self.started = self.elapsed = None

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def on_batch_end(self, step, logs):
        if step == self.warmup:
            self._sync()
            self.started = time.perf_counter()
        elif step == self.last:
            self._sync()
            self.elapsed = time.perf_counter() - self.started


def measure(device: torch.device, precision: str, compile: bool, channels_last: bool, args) -> dict:
    torch.manual_seed(0)
    shape = (3, args.image_size, args.image_size)
    model = create_model("cnn", shape, 10, widths=args.widths)
    steps = args.warmup + args.steps
    n = steps * args.batch_size
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn((n, *shape), generator=g, device=device)
    y = torch.randint(0, 10, (n,), generator=g, device=device)
    clock = StepClock(device, args.warmup, steps)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    config = TrainConfig(epochs=1, batch_size=args.batch_size, schedule="constant", precision=precision,
                         compile=compile, channels_last=channels_last, progress=False, device=str(device))
    fit(model, create_strategy("full"), (x, y), None, config, device=device, generator=torch.Generator().manual_seed(0),
        callbacks=[clock])
    row = {"precision": precision, "compile": compile, "channels_last": channels_last,
           "samples_per_s": args.steps * args.batch_size / clock.elapsed, "elapsed_s": clock.elapsed}
    if device.type == "cuda":
        row["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3, help="Runs per configuration; the median is reported.")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "fp16"])
    parser.add_argument("--no-compile", action="store_true", help="Skip the torch.compile configurations.")
    parser.add_argument("--smoke", action="store_true", help="Tiny sizes: checks that every configuration runs.")
    parser.add_argument("--json-out", default=os.environ.get("OUT"), help="Folder for throughput.json ($OUT).")
    args = parser.parse_args()
    if args.smoke:
        args.batch_size, args.image_size, args.widths, args.steps, args.warmup, args.repeats = 8, 16, [4, 8], 3, 2, 1
    ranks, device = distributed.setup(torch.device(args.device))
    precisions = [p for p in args.precisions if device.type == "cuda" or p != "fp16"]  # fp16 needs CUDA
    grid = list(itertools.product(precisions, [False] if args.no_compile else [False, True], [False, True]))
    rows = []
    for precision, compile, channels_last in grid:
        runs = [measure(device, precision, compile, channels_last, args) for _ in range(args.repeats)]
        row = {**runs[0], "samples_per_s": statistics.median(r["samples_per_s"] for r in runs),
               "all_samples_per_s": [r["samples_per_s"] for r in runs]}
        rows.append(row)
        if ranks.is_main:
            print(f"{precision:5s} compile={compile!s:5s} channels_last={channels_last!s:5s} "
                  f"{row['samples_per_s']:10.0f} samples/s", flush=True)
    if not ranks.is_main:
        return
    base = next(r["samples_per_s"] for r in rows if (r["precision"], r["compile"], r["channels_last"]) ==
                ("fp32", False, False))
    print("\n| precision | compile | channels-last | samples/s | vs fp32 eager |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['precision']} | {r['compile']} | {r['channels_last']} | {r['samples_per_s']:.0f} | "
              f"{r['samples_per_s'] / base:.2f}x |")
    report = {"command": command_line("benchmarks/throughput.py"), "rows": rows,
              "settings": {k: v for k, v in vars(args).items() if k != "json_out"},
              "processes": ranks.world_size, "device": str(device), "torch": torch.__version__,
              "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
              "machine": machine_info()}
    if args.json_out:
        path = write_results(Path(args.json_out), f"throughput_{device.type}_{ranks.world_size}proc", report)
        print(f"written: {path}")


if __name__ == "__main__":
    main()
