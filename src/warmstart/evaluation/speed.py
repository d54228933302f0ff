"""Inference speed on the CPU: latency at batch 1 and throughput at batch 64, the two numbers serving depends on.

A pure measurement: ``predict`` is any callable on a batch of model inputs (a PyTorch model, an ONNX session's
wrapper). Each figure is the median over ``rounds`` timed calls after one untimed warm-up call, so a first call's
allocation and a stray pause of the machine do not count. The numbers depend on the machine and on its load: a
figure measured while other processes hold the cores says little (``benchmarks/`` says how they were measured).

Models that are compared (a student against its teacher) are timed *interleaved* by :func:`measure_speeds`: each
round calls every model once, in turn, so a change of the machine's state during the measurement (another process
waking, the CPU's clock moving) falls on all of them alike instead of on whichever was timed at that moment. Timed
one after the other, the same two models on a quiet machine gave speed-ups from 1.1x to 1.9x between runs.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Mapping

import torch

LATENCY_BATCH, THROUGHPUT_BATCH = 1, 64

Predict = Callable[[torch.Tensor], Any]


def _interleaved_median_seconds(calls: Mapping[str, tuple[Predict, torch.Tensor]], rounds: int) -> dict[str, float]:
    for predict, batch in calls.values():
        predict(batch)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, (predict, batch) in calls.items():
            start = time.perf_counter()
            predict(batch)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _throughput_batch(inputs: torch.Tensor) -> torch.Tensor:
    """``inputs`` repeated to fill a batch of 64 when there are fewer."""
    repeats = -(-THROUGHPUT_BATCH // len(inputs))
    return inputs.repeat(repeats, *([1] * (inputs.ndim - 1)))[:THROUGHPUT_BATCH]


@torch.no_grad()
def measure_speeds(models: Mapping[str, tuple[Predict, torch.Tensor]], *, rounds: int) -> dict[str, dict[str, float]]:
    """For each name, ``latency_ms`` (one example) and ``throughput_per_s`` (examples per second in batches of 64)
    of its ``predict`` on its real ``inputs``, every model timed in turn within each round (see the module's note),
    with the threads torch used."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    if not models:
        raise ValueError("measure_speeds needs at least one model")
    single = _interleaved_median_seconds(
        {name: (predict, inputs[:LATENCY_BATCH]) for name, (predict, inputs) in models.items()}, rounds)
    many = _interleaved_median_seconds(
        {name: (predict, _throughput_batch(inputs)) for name, (predict, inputs) in models.items()}, rounds)
    return {name: {"latency_ms": single[name] * 1000.0, "throughput_per_s": THROUGHPUT_BATCH / many[name],
                   "rounds": rounds, "threads": torch.get_num_threads()} for name in models}
