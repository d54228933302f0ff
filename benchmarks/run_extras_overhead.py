"""What the default TensorBoard tracker and the run reports add to a run, measured in one process.

Arms interleaved round by round (tracking off, TensorBoard on), 5 rounds of ``pretrain`` on digits 0-4 with an MLP
for 3 epochs (the size of the CLI tests' runs); medians and their ratio. Then the rebuild time of report.html and
MODEL_CARD.md of one such run. Writes benchmarks/results/run_extras_overhead.json with the load average.

    OMP_NUM_THREADS=1 python benchmarks/run_extras_overhead.py
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from warmstart import api
from warmstart.config import DataConfig, TrainConfig
from warmstart.reporting import write_run_reports

from _common import RESULTS, command_line, machine_info, write_results


def main(rounds: int = 5) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="warmstart-extras-"))
    started = time.perf_counter()
    from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (the one-time import, timed on its own)

    import_s = time.perf_counter() - started
    times: dict[str, list[float]] = {"no tracker": [], "tensorboard": []}
    reports = []
    load_before = os.getloadavg()
    for i in range(rounds):
        for arm in times:
            t = time.perf_counter()
            api.pretrain(DataConfig("digits", classes="0-4"), model="mlp",
                         train=TrainConfig(epochs=3, progress=False, trackers=() if arm == "no tracker" else (arm,)),
                         out=folder / f"{arm}-{i}")
            times[arm].append(time.perf_counter() - t)
        t = time.perf_counter()
        write_run_reports(folder / f"no tracker-{i}")
        reports.append(time.perf_counter() - t)
    medians = {arm: statistics.median(v) for arm, v in times.items()}
    result = {"tensorboard_import_s": import_s, "run_s": times, "median_run_s": medians,
              "ratio_tensorboard_over_none": medians["tensorboard"] / medians["no tracker"],
              "report_and_card_rebuild_s": reports, "median_report_and_card_s": statistics.median(reports),
              "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "cpu_count": os.cpu_count(),
              "command": command_line("benchmarks/run_extras_overhead.py"),
              "machine": machine_info()}
    write_results(RESULTS, "run_extras_overhead", result)
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
