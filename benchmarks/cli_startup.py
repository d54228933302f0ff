"""Command-line start-up: how long `warmstart --help`, `warmstart --version` and `warmstart finetune --help` take,
side by side with `python -c pass` (the interpreter's own start-up), each the median wall time of N runs in a fresh
process. The goal is under 0.5 s for every help: importing the command line must not import torch.

Run it on a quiet machine; it writes benchmarks/results/cli_startup.{json,md} (or --out DIR).

    .venv/bin/python benchmarks/cli_startup.py [--runs 10] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from warmstart.io import write_json, write_text

CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "warmstart --help": [sys.executable, "-m", "warmstart", "--help"],
    "warmstart --version": [sys.executable, "-m", "warmstart", "--version"],
    "warmstart finetune --help": [sys.executable, "-m", "warmstart", "finetune", "--help"],
}


def wall_time(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def measure(runs: int) -> dict[str, dict[str, float]]:
    """Interleaved: run r of every case before run r + 1 of any, so that a busy moment hits all cases alike."""
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for name, argv in CASES.items():  # one untimed run each: the file cache, compiled bytecode
        wall_time(argv)
    for _ in range(runs):
        for name, argv in CASES.items():
            times[name].append(wall_time(argv))
    return {name: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t)} for name, t in times.items()}


def to_markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# Command-line start-up (median of {report['runs']} runs)", "",
             f"Command: `{report['command']}`; {m['cpu_count']} CPU cores, {m['processor']}, Python {m['python']}, "
             f"{m['platform']}.", "", "| command | median s | min s | max s |", "| --- | ---: | ---: | ---: |"]
    for name, row in report["result"].items():
        lines.append(f"| `{name}` | {row['median_s']:.3f} | {row['min_s']:.3f} | {row['max_s']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    report = {"command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]), "runs": args.runs,
              "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                          "processor": platform.processor() or platform.machine(), "platform": platform.platform(),
                          "load_average": list(os.getloadavg())},
              "result": measure(args.runs)}
    write_json(args.out / "cli_startup.json", report)
    write_text(args.out / "cli_startup.md", to_markdown(report))
    print(to_markdown(report))


if __name__ == "__main__":
    main()
