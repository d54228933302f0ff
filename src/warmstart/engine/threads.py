"""How many intra-op threads to use when other processes want the same cores.

PyTorch's CPU kernels split each operation over ``torch.get_num_threads()`` threads and wait for the slowest. When
another CPU-bound process holds one of two cores, one of the two threads is descheduled for whole time slices and
the other waits for it (OpenMP's waiting threads spin, so they burn the time they wait): measured here, one
pretraining epoch took 3.3x its quiet time beside one busy process, while that process's fair share would cost 2x
at most. Waiting passively (``OMP_WAIT_POLICY=PASSIVE``) helped under load but made the quiet epoch 57% slower, so
the thread count itself follows the load instead: before training, and after every epoch, the cores that *other*
processes kept busy are read from ``/proc/stat`` (the machine's busy time, less this process's own CPU time), and
the run uses the cores left, at least one and never more than it started with. A quiet machine keeps every thread;
``benchmarks/contention.py`` measures both cases side by side.

The price: floating-point sums run in another order at another thread count, so a run the policy moved to fewer
threads can differ from a quiet run of the same seed in the last bits. ``WARMSTART_ADAPTIVE_THREADS=0`` turns the
policy off (the thread count then stays as torch or the user set it), for bit-identical reruns; the tests do.
Where ``/proc/stat`` does not exist (macOS, Windows) nothing changes.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .callbacks import Callback

log = logging.getLogger("warmstart")

PROC_STAT = Path("/proc/stat")
# A core counts as taken by others once they use this much of it over the window. Half a core, not a whole one:
# while our threads still spin on both cores, a competitor gets only about two thirds of one, and it must still
# count; a shell or an editor (a few percent) keeps every thread.
BUSY_THRESHOLD = 0.5
START_WINDOW_S = 0.2  # how long the first look at the load takes, before any of our own work


@dataclass(frozen=True)
class CpuSample:
    """Busy and total CPU time of the whole machine (from ``/proc/stat``) and of this process, in seconds."""

    machine_busy_s: float
    own_s: float
    wall_s: float


def read_sample(stat: Path = PROC_STAT) -> CpuSample | None:
    """The current counters; None where ``/proc/stat`` cannot be read."""
    try:
        fields = stat.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(v) for v in fields[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    hertz = os.sysconf("SC_CLK_TCK")
    # guest time is already counted in user time: the first 8 fields are the whole
    busy = (sum(ticks[:8]) - idle) / hertz
    return CpuSample(machine_busy_s=busy, own_s=time.process_time(), wall_s=time.perf_counter())


def others_busy_cores(before: CpuSample, after: CpuSample) -> float:
    """How many cores other processes kept busy between two samples (this process's CPU time taken out)."""
    wall = after.wall_s - before.wall_s
    if wall <= 0:
        return 0.0
    others = (after.machine_busy_s - before.machine_busy_s) - (after.own_s - before.own_s)
    return max(0.0, others / wall)


def fair_threads(max_threads: int, cores: int, others_busy: float) -> int:
    """The cores the others leave free, between 1 and ``max_threads``: ``cores`` less each core they hold at least
    ``BUSY_THRESHOLD`` of."""
    taken = int(others_busy + (1.0 - BUSY_THRESHOLD))
    return max(1, min(max_threads, cores - taken))


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def enabled() -> bool:
    return os.environ.get("WARMSTART_ADAPTIVE_THREADS", "1") != "0" and PROC_STAT.exists()


class AdaptiveThreads(Callback):
    """A training callback that sets ``torch.set_num_threads`` to the fair share, before training and after each
    epoch, from the load measured over the epoch that just ran. It restores the starting count when training ends.
    """

    def __init__(self, *, max_threads: int | None = None, cores: int | None = None):
        self.max_threads = max_threads or torch.get_num_threads()
        self.cores = cores or available_cores()
        self.active = enabled() and self.max_threads > 1
        self._last: CpuSample | None = None
        self.history: list[int] = []

    def adapt(self, before: CpuSample | None, after: CpuSample | None) -> int:
        threads = self.max_threads
        if before is not None and after is not None:
            threads = fair_threads(self.max_threads, self.cores, others_busy_cores(before, after))
        if threads != torch.get_num_threads():
            log.debug("intra-op threads: %d (other processes busy on this machine)", threads)
            torch.set_num_threads(threads)
        self.history.append(threads)
        return threads

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        if not self.active:
            return
        before = read_sample()
        time.sleep(START_WINDOW_S)  # idle on our side: whatever is busy now is someone else's
        self._last = read_sample()
        self.adapt(before, self._last)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if not self.active:
            return
        now = read_sample()
        self.adapt(self._last, now)
        self._last = now

    def on_train_end(self, logs: dict[str, Any]) -> None:
        if self.active:
            torch.set_num_threads(self.max_threads)
